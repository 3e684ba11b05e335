# recover for devices served by astrafs-mount: the mount daemon exports two volumes (r: fio
# O_SYNC random writes with crc32c verify running; s: 512-byte logical blocks, requested through
# the mount's export command, with ext4 mounted on it). kill -9 of the daemon: I/O waits, nothing
# fails. `astrafs-ublk recover` refuses until the pool is mounted again and says so; after the
# remount it brings the same /dev/ublkbN back, served by the new daemon; fio finishes and
# verifies, the region flushed before the kill is intact, ext4 compares and fsck is clean,
# fsck.astrafs is clean.
tree=${ASTRA_FS_TREE:-/usr/include/c++/12}
MOUNT=$ASTRA_BUILD/mount-helper/astrafs-mount
FSCK=$ASTRA_BUILD/tools/fsck.astrafs
P=/tmp/pool E=/tmp/ext4
[ -c /dev/fuse ] || fail "/dev/fuse is missing in the guest"
mkdir -p $P $E
mount_pool() {
  "$MOUNT" -o log="$ASTRA_WORK/astrafs-mount.log" "$MEMBERS" $P
  MOUNT_PID=$(pidof astrafs-mount)
  [ -n "$MOUNT_PID" ] || fail "astrafs-mount is not running"
}
wait_gone() {
  local i
  for ((i = 0; i < 600; i++)); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  fail "process $1 still runs after 60 s"
}
server_of() { ublk list | awk -v d="$1" '$2 == d { print $6 }'; }

step "format a 4+2 pool; mount it; export r (4096) and s (512-byte blocks) from the mount"
make_pool 4 2
mount_pool
dev=$(ublk add --volume r --size 1G --queues 2 --depth 32 $P)
id=${dev#/dev/ublkb}
sdev=$(ublk add --volume s --size 512M --queues 2 --depth 32 --logical-block-size 512 $P)
sid=${sdev#/dev/ublkb}
[ "$(blockdev --getss "$sdev")" = 512 ] || fail "$sdev: logical block size is not 512"
[ "$(blockdev --getss "$dev")" = 4096 ] || fail "$dev: logical block size is not 4096"
ublk list $P
[ "$(server_of "$dev")" = "$MOUNT_PID" ] || fail "$dev is not served by astrafs-mount"
grep -q '"by_mount": 1' /run/astrafs/ublk/$id.json || fail "the record does not say by_mount"

step "ext4 on $sdev (512-byte logical blocks), copy a tree, sync"
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$sdev"
mount "$sdev" $E
cp -a "$tree" $E/tree
sync
step "reference region on $dev (32 MiB at 512 MiB), flushed"
fio --name=ref --filename="$dev" --ioengine=io_uring --direct=1 --rw=write --bs=128k \
    --offset=512M --size=32M --iodepth=16 --verify=crc32c --do_verify=0 --verify_state_save=0 \
    --end_fsync=1 >/dev/null || fail "reference write"

step "fio O_SYNC random writes with verify on $dev; kill -9 astrafs-mount mid-run"
fio --name=crash --filename="$dev" --ioengine=io_uring --direct=1 --sync=1 --rw=randwrite \
    --bs=4k --size=64M --iodepth=32 --verify=crc32c --do_verify=1 --verify_fatal=1 \
    --verify_state_save=0 --output-format=terse --terse-version=3 > /tmp/crash.terse 2>&1 &
fio_pid=$!
sleep 2
kill -0 $fio_pid 2>/dev/null || { cat /tmp/crash.terse; fail "fio finished before the kill"; }
old_pid=$MOUNT_PID
echo "killing astrafs-mount $old_pid"
kill -9 "$old_pid"
wait_gone "$old_pid"
ublk list

step "recover before the pool is mounted again: refused, with what to do"
out=$(ublk recover "$id" 2>&1) && fail "recover without a mount succeeded: $out"
echo "$out"
echo "$out" | grep -q "mount the pool again" || fail "unexpected message: $out"
ls /run/astrafs/ublk/pool-*.sock 2>/dev/null && fail "an astrafs-ublk server was started"
kill -0 $fio_pid 2>/dev/null || { cat /tmp/crash.terse; fail "fio ended while the server was dead"; }

step "remount the pool (the dead FUSE mount is detached first)"
umount -l $P 2>/dev/null || true
mount_pool
[ "$MOUNT_PID" != "$old_pid" ] || fail "the same daemon?"
step "recover $id and $sid through the new mount"
got=$(ublk recover "$id")
[ "$got" = "$dev" ] || fail "recover printed '$got', not $dev"
got=$(ublk recover "$sid")
[ "$got" = "$sdev" ] || fail "recover printed '$got', not $sdev"
ublk list $P
[ "$(server_of "$dev")" = "$MOUNT_PID" ] || fail "$dev is not served by the new astrafs-mount"
[ "$(server_of "$sdev")" = "$MOUNT_PID" ] || fail "$sdev is not served by the new astrafs-mount"
[ "$(blockdev --getss "$sdev")" = 512 ] || fail "$sdev lost its 512-byte logical blocks"
out=$(ublk recover "$id" 2>&1) && fail "a second recover succeeded: $out"
echo "second recover: $out"

step "fio finishes its writes and verifies"
wait $fio_pid || { cat /tmp/crash.terse; fail "fio failed across the daemon's death"; }
awk -F';' '{ printf "fio crash: write %s IOPS, verify-read %s IOPS, errors %s\n", $49, $8, $5 }' /tmp/crash.terse
[ "$(cut -d';' -f5 /tmp/crash.terse)" = 0 ] || fail "fio reported errors"
step "the reference region flushed before the kill is intact"
fio --name=ref --filename="$dev" --ioengine=io_uring --direct=1 --rw=write --bs=128k \
    --offset=512M --size=32M --iodepth=16 --verify=crc32c --verify_only=1 --verify_fatal=1 \
    --verify_state_save=0 >/dev/null || fail "reference region damaged"
step "ext4 on $sdev: still mounted, compares, unmount, fsck -fn clean"
diff -r --no-dereference "$tree" $E/tree || fail "ext4 tree differs after recovery"
umount $E
fsck.ext4 -fn "$sdev" || fail "fsck.ext4 found problems"
dmesg | grep -iE "ublkb($id|$sid).*error|I/O error, dev ublkb" && fail "the kernel logged I/O errors"

step "delete both through the mount, unmount, fsck.astrafs clean"
ublk del "$id"
ublk del "$sid"
[ ! -e "$dev" ] && [ ! -e "$sdev" ] || fail "devices left after del"
umount $P
wait_gone "$MOUNT_PID"
"$FSCK" -n "$MEMBERS" || fail "fsck.astrafs -n exit $?"
