# 512-byte logical blocks (astrafs-ublk add --logical-block-size 512): the server does
# read-modify-write of the engine's 4 KiB blocks for requests not aligned to 4 KiB.
# fio crc32c with verify_fatal: 512-byte random writes at QD32 on 2 queues (neighbouring sectors
# of one 4 KiB block in flight at once), then mixed unaligned sizes 512 B..64 KiB; discard of
# unaligned ranges reads zeros; XFS with 512-byte sectors and ext4 with 1 KiB blocks: copy a tree,
# repair/fsck clean, compare; kill -9 + recover keeps the 512-byte block size; bad values refused.
tree=${ASTRA_FS_TREE:-/usr/include/c++/12}
step "format a 4+2 pool; add volume s512 (1 GiB, 512-byte logical blocks, 2 queues)"
make_pool 4 2
out=$(ublk add --volume bad --size 1G --logical-block-size 1024 "$MEMBERS" 2>&1) &&
  fail "a 1024-byte logical block was accepted: $out"
echo "$out" | grep -q "use 512 or 4096" || fail "unexpected message: $out"
dev=$(ublk add --volume s512 --size 1G --queues 2 --depth 32 --logical-block-size 512 "$MEMBERS")
id=${dev#/dev/ublkb}
q=/sys/block/ublkb$id/queue
echo "$dev: logical $(cat $q/logical_block_size) physical $(cat $q/physical_block_size)" \
     "minimum_io $(cat $q/minimum_io_size)"
[ "$(cat $q/logical_block_size)" = 512 ] || fail "logical block size is not 512"
[ "$(cat $q/physical_block_size)" = 4096 ] || fail "physical block size is not 4096"
[ "$(blockdev --getss "$dev")" = 512 ] || fail "blockdev --getss is not 512"
grep -q '"block_bytes": 512' /run/astrafs/ublk/$id.json || fail "device record lacks block_bytes 512"
step "the volume keeps its block size: a different one for it is refused"
out=$(ublk add --volume s512 --logical-block-size 4096 "$MEMBERS" 2>&1) &&
  fail "re-export with 4096 accepted: $out"
echo "$out" | grep -q "512-byte logical blocks, not 4096" || fail "unexpected message: $out"

step "fio: 512-byte random writes, QD32, verify crc32c (neighbouring sectors in flight at once)"
fio_verify s512 "$dev" --rw=randwrite --bs=512 --size=2M --iodepth=32
step "fio: mixed unaligned sizes 512 B..64 KiB, random writes at QD32, two fio at once, verify"
for j in 0 1; do
  fio_verify mixed$j "$dev" --rw=randwrite --bsrange=512-64k --blockalign=512 \
      --size=12M --offset=$((64 + 32 * j))M --iodepth=32 &
  eval "p$j=\$!"
done
wait "$p0" || fail "fio mixed0"
wait "$p1" || fail "fio mixed1"
step "fio: sequential writes with an odd sector offset (every request straddles 4 KiB blocks)"
fio_verify oddseq "$dev" --rw=write --bs=12k --offset=$((200 * 1048576 + 1536)) --size=8M \
    --iodepth=16
rmw=$(ublk status "$id" | sed -n "s/^device $id .* rmw_blocks \([0-9]*\).*/\1/p")
echo "RMW of partial engine blocks so far: $rmw"
[ "${rmw:-0}" -gt 0 ] || fail "no read-modify-write happened: the test is not testing it"

step "blkdiscard of an unaligned range (sectors 3 .. 8 MiB + 5 sectors) reads zeros, neighbours kept"
dd if=/dev/urandom of=/tmp/pat bs=1M count=9 status=none
dd if=/tmp/pat of="$dev" bs=1M seek=300 oflag=direct status=none
blkdiscard -o $((300 * 1048576 + 1536)) -l $((8 * 1048576 + 1024)) "$dev"
dd if="$dev" of=/tmp/back bs=1M skip=300 count=9 iflag=direct status=none
cmp -n 1536 /tmp/pat /tmp/back || fail "bytes before the discarded range changed"
cmp -n $((8 * 1048576 + 1024)) -i 1536:1536 /tmp/back /dev/zero || fail "discarded range is not zero"
cmp -i $((8 * 1048576 + 2560)) /tmp/pat /tmp/back || fail "bytes after the discarded range changed"

if command -v mkfs.xfs >/dev/null; then
  step "xfs with 512-byte sectors: mkfs, copy $tree, unmount, xfs_repair -n, remount, compare"
  mkfs.xfs -q -f -s size=512 "$dev"
  mkdir -p /tmp/mnt
  mount "$dev" /tmp/mnt
  xfs_info /tmp/mnt | grep -q "sectsz=512" || fail "xfs does not use 512-byte sectors"
  cp -a "$tree" /tmp/mnt/tree
  umount /tmp/mnt
  xfs_repair -n "$dev" || fail "xfs_repair -n found problems"
  mount -o ro "$dev" /tmp/mnt
  diff -r --no-dereference "$tree" /tmp/mnt/tree || fail "tree differs on xfs"
  umount /tmp/mnt
fi
step "ext4 with 1 KiB blocks: mkfs, copy, unmount, fsck -fn"
mkfs.ext4 -q -F -b 1024 -E lazy_itable_init=0,lazy_journal_init=0 "$dev"
mkdir -p /tmp/mnt
mount "$dev" /tmp/mnt
cp -a "$tree" /tmp/mnt/tree
umount /tmp/mnt
fsck.ext4 -fn "$dev" || fail "fsck.ext4 found problems"

step "kill -9 the server, recover: the same device with 512-byte blocks, ext4 compares"
pid=$(ublk list | awk -v d="$dev" '$2 == d { print $6 }')
kill -9 "$pid"
ublk recover "$id"
[ "$(cat $q/logical_block_size)" = 512 ] || fail "logical block size after recover is not 512"
grep -q '"block_bytes": 512' /run/astrafs/ublk/$id.json || fail "record after recover lacks 512"
mount -o ro "$dev" /tmp/mnt
diff -r --no-dereference "$tree" /tmp/mnt/tree || fail "tree differs after recover"
umount /tmp/mnt
fsck.ext4 -fn "$dev" || fail "fsck.ext4 after recover found problems"
ublk status "$id"
ublk status "$id" | grep -q "^device $id .* errors 0 " || fail "the server counted errors"
ublk del "$id"
