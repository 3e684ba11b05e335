# Issue 5: a pool member dies mid-run under a block volume. A 4+2 pool on the guest's emulated
# NVMe drives through the block path (ASTRA_FORCE_BLOCK_PATH=1: UringDevice on /dev/nvmeXn1); the
# server is started with the test option ASTRA_TEST_FAULT=3:N (doc/blockdev.md), so member 3
# fails every I/O after N requests, while fio writes random 4 KiB blocks at QD 32 on 2 queues and
# verifies them (crc32c, verify_fatal). Asserted: the member dies while fio runs; fio sees no
# error and verifies clean; the pool says member 3 failed and itself DEGRADED; fsck --degraded on
# the 5 survivors finds no data error; the volume re-exported without member 3 verifies again;
# `astrafs replace` rebuilds member 3, the pool is healthy and the data verifies on all 6.
export ASTRA_FORCE_BLOCK_PATH=1
ASTRAFS=$ASTRA_BUILD/tools/astrafs
FSCK=$ASTRA_BUILD/tools/fsck.astrafs
DEAD=3            # member index (and /dev/vmh/nvme3n1)
AFTER_IOS=10      # requests member 3 still serves once the pool is open (it dies during
                  # fio's write phase, or at the latest early in its verify reads)

# fio_job NAME [fio options...]: the test's data set: 2 jobs (one per ublk queue's worth of
# load), each 16 MiB of random 4 KiB writes at QD 32 in its own 64 MiB window; with
# --verify_only=1 it re-reads and checks what an earlier run wrote (same seeds). Fails on a
# non-zero exit or any job's error counter (terse v3 field 5).
# 2 x 16 MiB: enough mapped blocks that the pool's checkpoint spans many stripes, so the
# degraded opens below (status, fsck, re-export) read a long range with a member absent (this
# once hung the engine's reconstruction search; fixed, and covered on the host by
# DeviceLossTest.DegradedOpenOfALargeCheckpointIsFast).
fio_job() {
  local name=$1; shift
  fio --name="$name" --filename="$dev" --ioengine=io_uring --direct=1 --rw=randwrite --bs=4k \
      --size=16M --numjobs=2 --offset_increment=64M --iodepth=32 --verify=crc32c \
      --verify_fatal=1 --verify_state_save=0 --output-format=terse --terse-version=3 "$@" \
      > "/tmp/$name.out" 2> "/tmp/$name.err"
  local rc=$?
  grep '^3;' "/tmp/$name.out" > "/tmp/$name.terse"  # without fio's warnings
  return $rc
}
fio_check() {
  local name=$1 rc=$2
  awk -F';' -v n="$name" '{ printf "fio %s job %s: write %s IOPS, verify-read %s IOPS, errors %s\n",
      n, NR, $49, $8, $5 }' "/tmp/$name.terse"
  [ "$rc" = 0 ] || { cat "/tmp/$name.out" "/tmp/$name.err"; fail "fio $name exited with $rc"; }
  [ "$(wc -l < "/tmp/$name.terse")" = 2 ] || { cat "/tmp/$name.out"; fail "fio $name: not 2 jobs"; }
  awk -F';' '$5 != 0 { bad = 1 } END { exit bad }' "/tmp/$name.terse" ||
    fail "fio $name reported I/O errors"
  ! grep -Eqi "io_u error|verify failed|bad (magic|header)|crc32c" "/tmp/$name.err" ||
    { cat "/tmp/$name.err"; fail "fio $name: $(head -1 "/tmp/$name.err")"; }
}
server_pid() { ublk list | awk -v d="$dev" '$2 == d { print $6 }'; }
wait_gone() {  # the server closes the pool (flush, checkpoint) after its last device is deleted
  local i
  for ((i = 0; i < 600; i++)); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  fail "server $1 still runs 60 s after del"
}
survivors() {
  local i list=()
  for ((i = 0; i < 6; i++)); do [ $i = $DEAD ] || list+=("/dev/vmh/nvme${i}n1"); done
  (IFS=,; echo "${list[*]}")
}

step "format a 4+2 pool on 6 emulated NVMe drives (block path)"
make_pool 4 2
SURVIVORS=$(survivors)
step "add volume f (2 queues, depth 32), member $DEAD armed: dies after $AFTER_IOS more I/Os"
dev=$(ASTRA_TEST_FAULT=$DEAD:$AFTER_IOS ublk add --volume f --size 1G --queues 2 --depth 32 \
      "$MEMBERS")
id=${dev#/dev/ublkb}
ublk status "$id" | tee /tmp/status.before
! grep -q DEGRADED /tmp/status.before || fail "the pool is degraded before fio started"

step "fio: 2 x 4 MiB random 4k writes at QD 32, then verify reads; member $DEAD dies meanwhile"
echo "fio starts at $(date +%T.%3N)"
fio_job fail &
fio_pid=$!
died_during_fio=no
while kill -0 $fio_pid 2>/dev/null; do
  if ublk status "$id" | grep -q DEGRADED; then
    kill -0 $fio_pid 2>/dev/null && died_during_fio=yes
    break
  fi
  sleep 0.5
done
rc=0
wait $fio_pid || rc=$?
echo "fio ends at $(date +%T.%3N)"
fio_check fail "$rc"
[ "$died_during_fio" = yes ] || fail "member $DEAD did not die while fio ran (AFTER_IOS too big?)"
grep -h "ASTRA_TEST_FAULT\|failed:" /run/astrafs/ublk/pool-*.log || true
grep -q "member $DEAD .* dies now" /run/astrafs/ublk/pool-*.log || fail "no fault in the server log"

step "the server reports the pool DEGRADED and no request error"
ublk status "$id" | tee /tmp/status.after
grep -q DEGRADED /tmp/status.after || fail "the pool is not degraded after the member died"
awk -v d="$dev" '$3 == d && $NF != 0 { exit 1 }' /tmp/status.after ||
  fail "the volume reports failed requests"

step "verify the data again through the degraded server (reads rebuild member $DEAD's chunks)"
rc=0; fio_job fail --verify_only=1 || rc=$?
fio_check fail "$rc"

step "del the device; offline status: member $DEAD failed, pool degraded"
pid=$(server_pid)
ublk del "$id"
wait_gone "$pid"
"$ASTRAFS" status "$MEMBERS"
"$ASTRAFS" status --json "$MEMBERS" > /tmp/st.json
[ "$(jq -r .degraded /tmp/st.json)" = true ] || fail "offline status: pool not degraded"
[ "$(jq -r ".members[$DEAD].state" /tmp/st.json)" = failed ] ||
  fail "offline status: member $DEAD is $(jq -r ".members[$DEAD].state" /tmp/st.json), not failed"
[ "$(jq -r '[.members[] | select(.state == "online")] | length' /tmp/st.json)" = 5 ] ||
  fail "offline status: not 5 members online"
[ "$(jq -r '[.members[].backend] | unique | join(",")' /tmp/st.json)" = uring ] ||
  fail "members not on the block path: $(jq -c '[.members[].backend]' /tmp/st.json)"

step "fsck.astrafs --degraded on the 5 survivors: no data error"
rc=0; "$FSCK" --degraded --json "$SURVIVORS" > /tmp/fsck.json || rc=$?
cat /tmp/fsck.json; echo
# exit 4 = "left uncorrected": a degraded pool always is (only replace restores redundancy)
[ "$rc" = 4 ] || fail "fsck --degraded exited $rc (expected 4: degraded, nothing else)"
for k in checksum_errors parity_errors refcount_errors other_errors; do
  [ "$(jq -r .$k /tmp/fsck.json)" = 0 ] || fail "fsck: $k = $(jq -r .$k /tmp/fsck.json)"
done
[ "$(jq -r .degraded /tmp/fsck.json)" = true ] || fail "fsck: pool not degraded"
[ "$(jq -r .extents_checked /tmp/fsck.json)" -gt 0 ] || fail "fsck checked no extent"
[ "$(jq -r .uncorrected_errors /tmp/fsck.json)" = 1 ] ||
  fail "fsck: problems beyond the absent member: $(jq -c .problems /tmp/fsck.json)"

step "re-export f from the 5 survivors (degraded) and verify the fio data"
dev=$(ublk add --volume f --queues 2 --depth 32 "$SURVIVORS")
id=${dev#/dev/ublkb}
ublk status "$id" | tee /tmp/status.degraded
grep -q DEGRADED /tmp/status.degraded || fail "re-exported pool is not degraded"
rc=0; fio_job fail --verify_only=1 || rc=$?
fio_check fail "$rc"
pid=$(server_pid)
ublk del "$id"
wait_gone "$pid"

step "astrafs replace: rebuild member $DEAD onto /dev/vmh/nvme${DEAD}n1"
# The drive still holds this pool's stale member 3: --force, as for a disk swapped in place.
"$ASTRAFS" replace --force "$DEAD" "/dev/vmh/nvme${DEAD}n1" "$SURVIVORS"
"$ASTRAFS" status --json "$MEMBERS" > /tmp/st.json
[ "$(jq -r .degraded /tmp/st.json)" = false ] || fail "pool still degraded after replace"
[ "$(jq -r '[.members[] | select(.state == "online")] | length' /tmp/st.json)" = 6 ] ||
  fail "not 6 members online after replace: $(jq -c '[.members[].state]' /tmp/st.json)"

step "export f from the healthy pool, verify the fio data, fsck clean"
dev=$(ublk add --volume f --queues 2 --depth 32 "$MEMBERS")
id=${dev#/dev/ublkb}
ublk status "$id" | tee /tmp/status.healthy
! grep -q DEGRADED /tmp/status.healthy || fail "pool degraded after replace"
rc=0; fio_job fail --verify_only=1 || rc=$?
fio_check fail "$rc"
pid=$(server_pid)
ublk del "$id"
wait_gone "$pid"
rc=0; "$FSCK" -n "$MEMBERS" || rc=$?
[ "$rc" = 0 ] || fail "fsck -n after replace exited $rc"
