#!/bin/bash
# The main job on an embedded default: set up, build, format a 4+2 pool on six sparse files,
# mount it, put a real tree on it and compare every byte, show the pool's status, unmount,
# check it, remount and compare again.
#   scripts/demo.sh [DIR]     (default DIR: /var/tmp/astrafs-demo; its pool files are reused
#                              only with --force semantics: the demo reformats them)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIR=${1:-/var/tmp/astrafs-demo}
bash scripts/setup.sh >/dev/null
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" >/dev/null
BIN=$ROOT/build/release
MKFS=$BIN/tools/mkfs.astrafs FSCK=$BIN/tools/fsck.astrafs ADMIN=$BIN/tools/astrafs
MOUNT=$BIN/mount-helper/astrafs-mount
mkdir -p "$DIR"
MNT=$DIR/mnt
mountpoint -q "$MNT" 2>/dev/null && fusermount3 -u "$MNT"
mkdir -p "$MNT"
DEVS=()
for i in 0 1 2 3 4 5; do rm -f "$DIR/member$i.img"; DEVS+=("$DIR/member$i.img"); done
LIST=$(IFS=,; echo "${DEVS[*]}")
SRC=/usr/include

echo "== mkfs.astrafs: 4 data + 2 parity shards on six sparse 1 GiB files in $DIR"
"$MKFS" --data-shards 4 --parity-shards 2 --size 1G "${DEVS[@]}"
echo "== astrafs-mount $LIST $MNT"
"$MOUNT" "$LIST" "$MNT"
trap 'mountpoint -q "$MNT" && fusermount3 -u "$MNT" || true' EXIT
echo "== copy $SRC into the mount, then compare every byte"
cp -a "$SRC" "$MNT/include"
# Symlinks are compared as links (some in /usr/include point outside the copied tree).
diff -r --no-dereference "$SRC" "$MNT/include"
echo "   identical: $(find "$MNT/include" -type f | wc -l) files, $(find "$MNT/include" -type l | wc -l) symlinks"
df -h "$MNT"
echo "== unmount, fsck, remount, compare again"
fusermount3 -u "$MNT"
for i in $(seq 50); do pgrep -f "astrafs-mount $LIST" >/dev/null || break; sleep 0.1; done
"$FSCK" -n "${DEVS[@]}"
"$ADMIN" status "${DEVS[@]}"
"$MOUNT" "$LIST" "$MNT"
diff -r --no-dereference "$SRC" "$MNT/include"
echo "   identical after remount"
fusermount3 -u "$MNT"
echo "== done: the pool is in $DIR (mount it again with: $MOUNT $LIST $MNT)"
