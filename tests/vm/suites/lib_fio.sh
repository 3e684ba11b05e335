# tests/vm/suites/lib_fio.sh — fio_verify, usable from sub-shells too.
fail() { echo "FAIL: $*"; exit 1; }
# fio_verify NAME FILE [fio options...]: writes, then reads back and checks every block.
fio_verify() {
  local name=$1 file=$2; shift 2
  fio --name="$name" --filename="$file" --ioengine=io_uring --direct=1 --verify=crc32c \
      --do_verify=1 --verify_fatal=1 --verify_state_save=0 --output-format=terse \
      --terse-version=3 "$@" > "/tmp/$name.terse" || { cat "/tmp/$name.terse"; fail "fio $name"; }
  # terse v3: 5 = errors, 8 = read IOPS, 49 = write IOPS
  awk -F';' -v n="$name" '{ printf "fio %s: write %s IOPS, verify-read %s IOPS, errors %s\n", n, $49, $8, $5 }' \
    "/tmp/$name.terse"
  [ "$(cut -d';' -f5 "/tmp/$name.terse")" = 0 ] || fail "fio $name reported errors"
}

