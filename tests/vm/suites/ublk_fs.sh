# File systems on an AstraFS volume: mkfs, mount, copy a real tree, unmount, fsck clean, remount,
# compare every byte; for ext4 and XFS. The volume is deleted and re-added between the two checks
# of ext4, so the bytes come back through a fresh server (pool closed and reopened).
tree=${ASTRA_FS_TREE:-/usr/include}
step "format a 4+2 pool; add volume fs (2 GiB, 2 queues)"
make_pool 4 2
dev=$(ublk add --volume fs --size 2G --queues 2 --depth 32 "$MEMBERS")
id=${dev#/dev/ublkb}
echo "device $dev; tree $tree ($(du -sh "$tree" | cut -f1))"
step "ext4: mkfs, mount, copy"
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$dev"
mkdir -p /mnt/a
mount "$dev" /mnt/a
cp -a "$tree" /mnt/a/tree
umount /mnt/a
step "ext4: fsck -fn"
fsck.ext4 -fn "$dev" || fail "fsck.ext4 found problems"
step "restart the server (del + add: pool closed and reopened)"
ublk del "$id"
dev=$(ublk add --volume fs "$MEMBERS")
id=${dev#/dev/ublkb}
step "ext4: remount, compare every byte"
mount -o ro "$dev" /mnt/a
diff -r --no-dereference "$tree" /mnt/a/tree || fail "tree differs after remount"
umount /mnt/a
if command -v mkfs.xfs >/dev/null; then
  step "xfs: mkfs, mount, copy, unmount, xfs_repair -n, remount, compare"
  mkfs.xfs -q -f "$dev"
  mount "$dev" /mnt/a
  cp -a "$tree" /mnt/a/tree
  umount /mnt/a
  xfs_repair -n "$dev" || fail "xfs_repair -n found problems"
  mount -o ro "$dev" /mnt/a
  diff -r --no-dereference "$tree" /mnt/a/tree || fail "tree differs on xfs"
  umount /mnt/a
else
  step "xfs: SKIPPED (xfsprogs not installed; run tests/vm/setup.sh)"
fi
ublk del "$id"
