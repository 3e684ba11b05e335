# Bad input gets a clear error and touches nothing: unknown volume without --size, sizes beyond
# the limits or malformed, a pool already opened by another process, a volume exported twice,
# recover/del of devices that do not exist.
expect_error() {  # expect_error "PATTERN" command...: must fail, stderr must match PATTERN
  local pattern=$1; shift
  if "$@" >/tmp/out 2>/tmp/err; then cat /tmp/out; fail "'$*' succeeded"; fi
  grep -q -- "$pattern" /tmp/err || { cat /tmp/err; fail "'$*': error does not say '$pattern'"; }
  echo "ok: $(head -1 /tmp/err)"
}
step "format a 4+2 pool"
make_pool 4 2
step "a pool member held by another process"
flock /dev/vmh/nvme3n1 sleep 30 &
holder=$!
sleep 0.5
holder_child=$(pgrep -P "$holder")   # the sleep inherits the locked descriptor
expect_error "pool" ublk add --volume v --size 1G "$MEMBERS"
kill "$holder_child" "$holder"; wait "$holder" 2>/dev/null || true
step "one server for the pool (opening a pool is the slow part under TCG)"
dev=$(ublk add --volume v --size 1G "$MEMBERS")
step "unknown volume without --size"
expect_error "does not exist: give --size" ublk add --volume nosuch "$MEMBERS"
step "sizes beyond the limits, malformed, too small"
expect_error "beyond the limit" ublk add --volume big --size 1P "$MEMBERS"
expect_error "beyond the limits" ublk add --volume big --size 99999999999999999999 "$MEMBERS"
expect_error "unknown unit" ublk add --volume big --size 10X "$MEMBERS"
expect_error "multiple of 4096" ublk add --volume odd --size 1048577 "$MEMBERS"
expect_error "below the minimum" ublk add --volume tiny --size 4096 "$MEMBERS"
expect_error "volume name" ublk add --volume 'a/b' --size 1G "$MEMBERS"
[ "$(ls /run/astrafs/ublk/*.json 2>/dev/null | wc -l)" = 1 ] || fail "a failed add left a device behind"
step "a volume exported twice; an existing volume with another size"
expect_error "already exported" ublk add --volume v "$MEMBERS"
expect_error "exists with size" ublk add --volume v --size 2G "$MEMBERS"
step "recover / del / status of devices that do not exist"
expect_error "no record" ublk recover 77
expect_error "no record" ublk del 77
expect_error "not a ublk device number" ublk del abc
expect_error "already served" ublk recover "${dev#/dev/ublkb}"
step "data is intact after all that"
fio_verify v "$dev" --rw=randwrite --bs=4k --size=16M --iodepth=32
step "SIGTERM: the server deletes its devices and closes the pool"
pid=$(ublk list | awk -v d="$dev" '$2 == d { print $6 }')
kill -TERM "$pid"
for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "server $pid still running 30 s after SIGTERM"
[ ! -e "$dev" ] || fail "$dev still exists after SIGTERM"
[ -z "$(ls /run/astrafs/ublk/*.json 2>/dev/null)" ] || fail "records left after SIGTERM"
step "del of a device whose server died (kill -9): removed without a server"
dev=$(ublk add --volume v "$MEMBERS")
pid=$(ublk list | awk -v d="$dev" '$2 == d { print $6 }')
kill -9 "$pid"
ublk del "${dev#/dev/ublkb}"
[ ! -e "$dev" ] || fail "$dev still exists after del"
step "a full pool: writes get ENOSPC (the engine's kNoSpace as -ENOSPC), stored data stays intact"
dev=$(ublk add --volume v "$MEMBERS")
fio_verify keep "$dev" --rw=write --bs=128k --size=8M
full=$(ublk add --volume full --size 4G "$MEMBERS")
if dd if=/dev/urandom of="$full" bs=1M count=2048 oflag=direct status=none 2>/tmp/dd.err; then
  fail "writing 2 GiB of random data into a pool of about 1 GiB succeeded"
fi
grep -q "No space left on device" /tmp/dd.err || { cat /tmp/dd.err; fail "a full pool did not report ENOSPC"; }
echo "ok: $(head -1 /tmp/dd.err)"
fio --name=keep --filename="$dev" --ioengine=io_uring --direct=1 --rw=write --bs=128k --size=8M \
    --verify=crc32c --verify_only --verify_fatal=1 --verify_state_save=0 >/tmp/keep.out 2>&1 ||
  { cat /tmp/keep.out; fail "data written before the pool filled up does not verify"; }
echo "ok: data written before the pool filled up verifies"
