# File systems on an AstraFS volume: mkfs, mount, copy a real tree, unmount, fsck clean, remount,
# compare every byte; for ext4 and XFS. The volume is deleted and re-added between the two checks
# of ext4, so the bytes come back through a fresh server (pool closed and reopened).
tree=${ASTRA_FS_TREE:-/usr/include/c++/12}
step "format a 4+2 pool; add volume fs (1 GiB, 2 queues)"
make_pool 4 2
dev=$(ublk add --volume fs --size 1G --queues 2 --depth 32 "$MEMBERS")
id=${dev#/dev/ublkb}
echo "device $dev; tree $tree ($(du -sh "$tree" | cut -f1))"
step "ext4: mkfs, mount, copy"
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$dev"
mkdir -p /tmp/mnt
mount "$dev" /tmp/mnt
cp -a "$tree" /tmp/mnt/tree
umount /tmp/mnt
step "ext4: fsck -fn"
fsck.ext4 -fn "$dev" || fail "fsck.ext4 found problems"
step "restart the server (del + add: pool closed and reopened)"
ublk del "$id"
dev=$(ublk add --volume fs "$MEMBERS")
id=${dev#/dev/ublkb}
step "ext4: remount, compare every byte"
mount -o ro "$dev" /tmp/mnt
diff -r --no-dereference "$tree" /tmp/mnt/tree || fail "tree differs after remount"
umount /tmp/mnt
if command -v mkfs.xfs >/dev/null; then
  step "xfs: mkfs, mount, copy, unmount, xfs_repair -n, remount, compare"
  mkfs.xfs -q -f "$dev"
  mount "$dev" /tmp/mnt
  cp -a "$tree" /tmp/mnt/tree
  umount /tmp/mnt
  xfs_repair -n "$dev" || fail "xfs_repair -n found problems"
  mount -o ro "$dev" /tmp/mnt
  diff -r --no-dereference "$tree" /tmp/mnt/tree || fail "tree differs on xfs"
  umount /tmp/mnt
else
  step "xfs: SKIPPED (xfsprogs not installed; run tests/vm/setup.sh)"
fi
ublk del "$id"
