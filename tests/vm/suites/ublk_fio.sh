# astrafs-ublk on a 4+2 pool of the guest's NVMe drives: fio crc32c verification (random 4 KiB and
# 128 KiB writes, QD 32, 2 queues), then blkdiscard: reads return zeros and the volume's mapped
# space drops; a second volume of the same pool served at once by the same server.
step "format a 4+2 pool on 6 emulated NVMe drives"
make_pool 4 2
step "add volume v1 (2 queues, depth 32)"
dev=$(ublk add --volume v1 --size 1G --queues 2 --depth 32 "$MEMBERS")
echo "device $dev"
[ -b "$dev" ] || fail "$dev is not a block device"
[ "$(blockdev --getss "$dev")" = 4096 ] || fail "logical block size is not 4096"
[ "$(cat /sys/block/${dev#/dev/}/queue/write_cache)" = "write back" ] || fail "no volatile cache"
id=${dev#/dev/ublkb}
step "fio 4k random write + verify, QD 32"
fio_verify ublk-4k "$dev" --rw=randwrite --bs=4k --size=16M --iodepth=32 --numjobs=1
step "fio 128k random write + verify, QD 32"
fio_verify ublk-128k "$dev" --offset=256M --rw=randwrite --bs=128k --size=64M --iodepth=32
step "fio job file fio-jobs/ublk-verify.fio (2 jobs, mixed sizes)"
UBLK_DEV=$dev fio --output-format=terse --terse-version=3 "$ASTRA_SRC/fio-jobs/ublk-verify.fio" \
  > /tmp/jobfile.terse || { cat /tmp/jobfile.terse; fail "fio-jobs/ublk-verify.fio"; }
awk -F';' '{ if ($5 != 0) exit 1 }' /tmp/jobfile.terse || fail "fio job file reported errors"
step "a second volume of the same pool, served by the same process"
dev2=$(ublk add --volume v2 --size 256M "$MEMBERS")
echo "device $dev2"
fio_verify ublk-v2 "$dev2" --rw=randwrite --bs=64k --size=32M --iodepth=16
pids=$(ublk list | awk 'NR > 1 { print $6 }' | sort -u | wc -l)
[ "$pids" = 1 ] || { ublk list; fail "volumes of one pool served by $pids processes"; }
ublk list
step "blkdiscard: reads return zeros, mapped space drops"
before=$(ublk status "$id" | awk -v d="$dev" '$3 == d { print $9 }')
blkdiscard "$dev"
# the written ranges: [0, 32M) and [256M, 320M)
cmp -n $((32 << 20)) "$dev" /dev/zero || fail "discarded device does not read as zeros at 0"
cmp -i $((256 << 20)):0 -n $((64 << 20)) "$dev" /dev/zero ||
  fail "discarded device does not read as zeros at 256M"
after=$(ublk status "$id" | awk -v d="$dev" '$3 == d { print $9 }')
echo "mapped bytes of v1: $before before, $after after discard"
ublk status "$id"
[ "$before" -gt 0 ] && [ "$after" -lt "$before" ] || fail "discard did not release space"
step "v2 is untouched by v1's discard"
fio --name=v2check --filename="$dev2" --ioengine=io_uring --direct=1 --rw=randwrite --bs=64k \
    --size=32M --iodepth=16 --verify=crc32c --verify_only=1 --verify_fatal=1 \
    --verify_state_save=0 >/dev/null || fail "v2 data changed"
step "del both devices"
ublk del "${dev2#/dev/ublkb}"
ublk del "$id"
[ ! -e "$dev" ] || fail "$dev still exists after del"
