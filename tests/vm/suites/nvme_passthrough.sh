# NvmeDevice (io_uring NVMe passthrough on /dev/ngXnY) on the guest's emulated NVMe drives:
# the device test (read/write/flush/trim with byte checks, a command beyond the namespace fails
# and does not hang, locking against the block path), then a 4+2 pool on six /dev/vmh/ng<i>n1
# made by mkfs.astrafs: a ublk volume of that pool with fio verify and a discard; the pool's file
# system mounted with astrafs-mount (every member nvme-passthrough in the mount's status), a real
# tree copied in, unmounted, fsck.astrafs -n clean (volume and files), remounted, every byte and
# every entry's type, mode, owner, group, mtime and symlink target compared; the same pool opened
# through the block path. NVME_LBA (512 by default; nvme_passthrough_4k.sh sets 4096) is the LBA
# size the guest's drives were given with --nvme-opts; ASTRA_FS_TREE the tree to copy.
NVME_LBA=${NVME_LBA:-512}
MKFS=$ASTRA_BUILD/tools/mkfs.astrafs
FSCK=$ASTRA_BUILD/tools/fsck.astrafs
ASTRAFS=$ASTRA_BUILD/tools/astrafs
NVME_TEST=$ASTRA_BUILD/tests/engine/nvme_device_test
MOUNT=$ASTRA_BUILD/mount-helper/astrafs-mount
tree=${ASTRA_FS_TREE:-/usr/include/c++/12}
P=/tmp/pool

step "namespaces: LBA size $NVME_LBA expected"
for i in 0 1 2 3 4 5; do
  [ -c /dev/vmh/ng${i}n1 ] || fail "/dev/vmh/ng${i}n1 missing"
done
[ "$(blockdev --getss /dev/vmh/nvme0n1)" = "$NVME_LBA" ] ||
  fail "nvme0n1 has LBA $(blockdev --getss /dev/vmh/nvme0n1), not $NVME_LBA"

step "nvme_device_test on /dev/vmh/ng0n1"
rc=0
ASTRA_NVME_EXPECT_LBA=$NVME_LBA "$NVME_TEST" --gtest_color=no > /tmp/nvme_test.log 2>&1 || rc=$?
grep -v '^\[ *\(RUN\|OK\) *\]' /tmp/nvme_test.log || true
[ "$rc" = 0 ] || fail "nvme_device_test exit $rc"
if grep -q '^\[  SKIPPED \]' /tmp/nvme_test.log; then fail "nvme_device_test skipped in the VM"; fi

step "mkfs.astrafs 4+2 on six /dev/vmh/ng<i>n1"
NG=$(echo /dev/vmh/ng{0..5}n1 | tr " " ,)
"$MKFS" -k 4 -m 2 --force --json "$NG" > /tmp/mkfs.json || fail "mkfs.astrafs"
n=$(grep -o '"backend": *"nvme-passthrough"' /tmp/mkfs.json | wc -l)
[ "$n" = 6 ] || { cat /tmp/mkfs.json; fail "$n of 6 members on nvme-passthrough"; }

step "astrafs status names the backend of each member"
"$ASTRAFS" status "$NG" | tee /tmp/status.txt
[ "$(grep -c nvme-passthrough /tmp/status.txt)" = 6 ] || fail "status does not show passthrough"

step "ublk volume on the passthrough pool: fio verify 4k and 128k"
dev=$(ublk add --volume v1 --size 512M --queues 2 --depth 32 "$NG")
[ -b "$dev" ] || fail "$dev is not a block device"
fio_verify nvme-ublk-4k "$dev" --rw=randwrite --bs=4k --size=16M --iodepth=32
fio_verify nvme-ublk-128k "$dev" --offset=128M --rw=randwrite --bs=128k --size=64M --iodepth=32
blkdiscard --offset $((256 << 20)) --length $((64 << 20)) "$dev"
ublk del "${dev#/dev/ublkb}"

# Every entry under $1: path, type, mode, owner, group, mtime (ns), symlink target; sorted.
# (Sizes and bytes are diff -r's job; a directory's size is the file system's own business.)
manifest() { (cd "$1" && find . -printf '%P|%y|%m|%U|%G|%T@|%l\n' | LC_ALL=C sort); }
mount_pool() {
  "$MOUNT" -o log="$ASTRA_WORK/astrafs-mount.log" "$NG" $P || fail "astrafs-mount exit $?"
  MOUNT_PID=$(pidof astrafs-mount)
  [ -n "$MOUNT_PID" ] || fail "astrafs-mount is not running"
}
umount_pool() {  # returns once the daemon has exited (pool closed, member locks released)
  local i
  umount $P
  for ((i = 0; i < 600; i++)); do kill -0 "$MOUNT_PID" 2>/dev/null || return 0; sleep 0.1; done
  fail "astrafs-mount $MOUNT_PID still runs 60 s after umount"
}

step "mount the pool's file system with astrafs-mount; every member nvme-passthrough"
[ -c /dev/fuse ] || fail "/dev/fuse is missing in the guest"
mkdir -p $P
mount_pool
"$ASTRAFS" status --json $P > /tmp/mstatus.json || fail "astrafs status of the mount"
jq -r '.members[] | "\(.index) \(.path) \(.backend) \(.state)"' /tmp/mstatus.json
n=$(jq '[.members[] | select(.backend == "nvme-passthrough" and .state == "online")] | length' \
    /tmp/mstatus.json)
[ "$n" = 6 ] || fail "$n of 6 members of the mounted pool online on nvme-passthrough"

step "copy $tree ($(du -sh "$tree" | cut -f1), $(find "$tree" | wc -l) entries) into the mount"
t0=$(date +%s.%N)
cp -a "$tree" $P/tree || fail "copy into the FUSE mount failed"
sync
echo "copy + sync: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
diff -r --no-dereference "$tree" $P/tree || fail "the copy differs before the unmount"
manifest "$tree" > /tmp/manifest.src
[ "$(wc -l < /tmp/manifest.src)" -gt 100 ] || fail "the manifest of $tree is too small"

step "unmount; fsck.astrafs -n clean (the volume's writes and discards, the file system)"
umount_pool
"$FSCK" -n "$NG" || fail "fsck.astrafs -n exit $?"

step "remount; every byte and every entry's attributes as copied"
mount_pool
diff -r --no-dereference "$tree" $P/tree || fail "the copy differs after the remount"
manifest $P/tree > /tmp/manifest.pool
diff /tmp/manifest.src /tmp/manifest.pool || fail "attributes differ after the remount"
echo "$(wc -l < /tmp/manifest.pool) entries identical: bytes, type, mode, owner, group, mtime, link"
umount_pool

step "the same pool through the block path (ASTRA_FORCE_BLOCK_PATH=1): status, uring backend"
NB=$(echo /dev/vmh/nvme{0..5}n1 | tr " " ,)
ASTRA_FORCE_BLOCK_PATH=1 "$ASTRAFS" status "$NB" > /tmp/status_blk.txt || fail "status, block path"
[ "$(grep -c ' uring ' /tmp/status_blk.txt)" = 6 ] || { cat /tmp/status_blk.txt; fail "forced"; }

step "a non-NVMe character device is refused by name"
if "$FSCK" -n /dev/null > /tmp/null.txt 2>&1; then fail "fsck accepted /dev/null"; fi
grep -q '/dev/null' /tmp/null.txt || { cat /tmp/null.txt; fail "error does not name /dev/null"; }
cat /tmp/null.txt
