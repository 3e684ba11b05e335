# Benchmark (label `bench`, not part of `vm`): where does the time of the ublk path go?
# Same fio jobs on (a) the raw emulated NVMe drive, (b) a RAM-backed ublk device (the ublk path
# alone: kernel <-> server round trips, copies), (c) an AstraFS 4+2 volume (ublk + engine).
# Under TCG absolute numbers mean little; the ratios are what to look at.
# Env: ASTRA_BENCH_RUNTIME seconds per job (default 10).
rt=${ASTRA_BENCH_RUNTIME:-10}
bench() {  # bench LABEL FILE
  local label=$1 file=$2 job
  for job in "randread 4k 1" "randread 4k 32" "randwrite 4k 1" "randwrite 4k 32" \
             "read 128k 32" "write 128k 32"; do
    set -- $job
    fio --name=b --filename="$file" --ioengine=io_uring --direct=1 --rw=$1 --bs=$2 \
        --iodepth=$3 --size=256M --time_based --runtime="$rt" --ramp_time=1 \
        --output-format=terse --terse-version=3 > /tmp/b.terse
    awk -F';' -v l="$label" -v j="$1 $2 QD$3" \
      '{ iops = $8 + $49; bw = $7 + $48; printf "BENCH %-8s %-18s %9.0f IOPS %9.1f MiB/s\n", l, j, iops, bw / 1024 }' \
      /tmp/b.terse
  done
}
step "prefill the raw drive and the volume (reads of holes would measure nothing)"
make_pool 4 2
dev=$(ublk add --volume bench --size 1G --queues 2 --depth 64 "$MEMBERS")
dd if=/dev/urandom of=/tmp/rand bs=1M count=256 status=none
dd if=/tmp/rand of="$dev" bs=1M oflag=direct status=none
step "(c) AstraFS volume (ublk + engine, 4+2)"
bench astrafs "$dev"
ublk del "${dev#/dev/ublkb}"
step "(a) raw NVMe drive"
dd if=/tmp/rand of=/dev/vmh/nvme0n1 bs=1M oflag=direct status=none
bench raw /dev/vmh/nvme0n1
step "(b) RAM-backed ublk device (the ublk path alone)"
"$MEMDISK" --size 512 --queues 2 --depth 64 -- bash -c "
  $(declare -f bench); rt=$rt
  dd if=/tmp/rand of=\$UBLK_DEV bs=1M oflag=direct status=none
  bench ublk-ram \$UBLK_DEV"
