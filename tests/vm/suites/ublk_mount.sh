# Both front ends on one pool at once: astrafs-mount serves the pool's file system and, asked
# through its control socket (astrafs-ublk add ... MOUNTPOINT), a block volume of the same pool.
# ext4 on the volume and the FUSE mount are filled at the same time with the same tree, compared
# byte for byte; space is shared (the volume's and the files' bytes are in the one pool's figures,
# a file written through both is stored once); unmount, fsck.astrafs clean, remount, compare again.
tree=${ASTRA_FS_TREE:-/usr/include/c++/12}
MOUNT=$ASTRA_BUILD/mount-helper/astrafs-mount
ASTRAFS=$ASTRA_BUILD/tools/astrafs
FSCK=$ASTRA_BUILD/tools/fsck.astrafs
P=/tmp/pool E=/tmp/ext4
MIB=$((1024 * 1024))
[ -c /dev/fuse ] || fail "/dev/fuse is missing in the guest"
mkdir -p $P $E

# jq over 'astrafs status --json MOUNTPOINT' (the daemon's online figures).
pool_json() { "$ASTRAFS" status --json $P | jq -r "$1"; }
mount_pool() {
  "$MOUNT" -o log="$ASTRA_WORK/astrafs-mount.log" "$MEMBERS" $P
  MOUNT_PID=$(pidof astrafs-mount)
  [ -n "$MOUNT_PID" ] || fail "astrafs-mount is not running"
}
umount_pool() {  # returns once the daemon has exited (pool closed, member locks released)
  umount $P
  wait_gone
}
wait_gone() {
  local i
  for ((i = 0; i < 600; i++)); do kill -0 "$MOUNT_PID" 2>/dev/null || return 0; sleep 0.1; done
  ! kill -0 "$MOUNT_PID" 2>/dev/null || fail "astrafs-mount $MOUNT_PID still runs after 60 s"
}

step "format a 4+2 pool; mount it with astrafs-mount"
make_pool 4 2
mount_pool
echo "astrafs-mount pid $MOUNT_PID; tree $tree ($(du -sh "$tree" | cut -f1))"

step "errors: a directory that is not an AstraFS mount; an unknown volume without --size"
out=$(ublk add --volume fs --size 1G /tmp 2>&1) && fail "add on /tmp succeeded: $out"
echo "$out" | grep -q "not the mount point of an AstraFS pool" || fail "unexpected message: $out"
out=$(ublk add --volume nosuch $P 2>&1) && fail "add of an unknown volume succeeded: $out"
echo "$out" | grep -q "does not exist" || fail "unexpected message: $out"

step "export volume fs (1 GiB, thin) from the mount; the members also find the mount"
dev=$(ublk add --volume fs --size 1G --queues 2 --depth 32 $P)
id=${dev#/dev/ublkb}
[ -b "$dev" ] || fail "$dev is not a block device"
[ "$(cat /proc/$MOUNT_PID/comm)" = astrafs-mount ] || fail "server is not astrafs-mount"
dev2=$(ublk add --volume small --size 64M "$MEMBERS")   # pool in use: asks the mount, no new server
ls /run/astrafs/ublk/pool-*.sock 2>/dev/null && fail "an astrafs-ublk server was started"
ublk list $P
ublk list | grep -q "small" || fail "astrafs-ublk list does not show the mount's device"
ublk status "${dev2#/dev/ublkb}" | grep -q "server astrafs-mount pid $MOUNT_PID" ||
  fail "status does not name the mount's daemon"
ublk del "${dev2#/dev/ublkb}"
[ ! -e "$dev2" ] || fail "$dev2 still exists after del"
[ "$(ublk list $P | wc -l)" = 1 ] || fail "the mount still lists more than one device"

step "ext4 on $dev, mounted"
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$dev"
mount "$dev" $E
L0=$(pool_json .space.logical_bytes)

step "copy $tree into the FUSE mount and into ext4-on-ublk at the same time"
t0=$(date +%s.%N)
cp -a "$tree" $P/tree & p1=$!
cp -a "$tree" $E/tree & p2=$!
wait $p1 || fail "copy into the FUSE mount failed"
wait $p2 || fail "copy into ext4 failed"
sync   # FUSE writeback and ext4 (FLUSH to the volume) both reach the engine
echo "both copies: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"

step "compare both copies byte for byte"
diff -r --no-dereference "$tree" $P/tree || fail "FUSE copy differs"
diff -r --no-dereference "$tree" $E/tree || fail "ext4 copy differs"

step "space is shared: the volume's and the files' bytes are both in the pool figures"
T=$(du -sb "$tree" | cut -f1)
"$ASTRAFS" status $P
L1=$(pool_json .space.logical_bytes)
mapped=$(ublk list $P | sed -n 's/.* mapped_bytes \([0-9]*\) .*/\1/p')
echo "tree $T bytes; pool logical $L0 -> $L1; volume fs mapped $mapped"
[ $((L1 - L0)) -ge $((T * 2 * 9 / 10)) ] ||
  fail "pool logical bytes grew by $((L1 - L0)), less than both copies ($((2 * T)))"
[ "$mapped" -ge $((T * 9 / 10)) ] || fail "volume mapped bytes $mapped < the tree ($T)"
vol_logical=$(pool_json '.volumes[]? | select(.name == "fs") | .logical_bytes')
if [ -n "$vol_logical" ]; then
  echo "volume fs logical $vol_logical; file system $((L1 - vol_logical))"
  [ "$vol_logical" -ge $((T * 9 / 10)) ] || fail "volume fs logical $vol_logical < tree"
  [ $((L1 - vol_logical)) -ge $((T * 9 / 10)) ] || fail "files' logical $((L1 - vol_logical)) < tree"
fi

step "dedup across front ends: the same 16 MiB written to both is stored once"
head -c $((16 * MIB)) /dev/urandom > /tmp/random.bin
cp /tmp/random.bin $P/random.bin; sync $P/random.bin; sync
D1=$(pool_json .space.dedup_saved_bytes); S1=$(pool_json .space.stored_bytes)
cp /tmp/random.bin $E/random.bin; sync $E/random.bin; sync
D2=$(pool_json .space.dedup_saved_bytes); S2=$(pool_json .space.stored_bytes)
echo "dedup_saved $D1 -> $D2 (+$(((D2 - D1) / MIB)) MiB); stored $S1 -> $S2"
[ $((D2 - D1)) -ge $((16 * MIB * 9 / 10)) ] ||
  fail "the second copy (through ublk) was not deduplicated against the first (through FUSE)"
[ $((S2 - S1)) -lt $((4 * MIB)) ] || fail "stored bytes grew by $((S2 - S1)) for a duplicate"

step "unmount ext4, delete the export (through the mount)"
umount $E
ublk del "$id"
[ ! -e "$dev" ] || fail "$dev still exists after del"
[ ! -e /run/astrafs/ublk/$id.json ] || fail "device record left behind"

step "export again and leave it: unmounting the pool deletes the device first"
dev=$(ublk add --volume fs $P)
id=${dev#/dev/ublkb}
umount_pool
[ ! -e "$dev" ] || fail "$dev still exists after the pool was unmounted"
[ ! -e /run/astrafs/ublk/$id.json ] || fail "device record left behind by the unmount"
grep -q "deleting 1 device" "$ASTRA_WORK/astrafs-mount.log" || fail "the daemon did not log it"

step "fsck.astrafs: clean"
"$FSCK" -n "$MEMBERS" || fail "fsck.astrafs -n exit $?"

step "remount, export again, compare both copies"
mount_pool
dev=$(ublk add --volume fs $P)
id=${dev#/dev/ublkb}
mount -o ro "$dev" $E
diff -r --no-dereference "$tree" $P/tree || fail "FUSE copy differs after remount"
diff -r --no-dereference "$tree" $E/tree || fail "ext4 copy differs after remount"
cmp /tmp/random.bin $P/random.bin || fail "random.bin differs (FUSE)"
cmp /tmp/random.bin $E/random.bin || fail "random.bin differs (ext4)"
umount $E
fsck.ext4 -fn "$dev" || fail "fsck.ext4 found problems"

step "SIGTERM: the daemon deletes the device, then closes the pool"
kill -TERM "$MOUNT_PID"
wait_gone
[ ! -e "$dev" ] || fail "$dev still exists after SIGTERM"
umount $P 2>/dev/null || true  # the kernel side of the FUSE mount, if it is still there
"$FSCK" -n "$MEMBERS" || fail "fsck.astrafs -n after SIGTERM: exit $?"
