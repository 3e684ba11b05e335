# UBLK_F_USER_RECOVERY: kill -9 the server while fio writes; `astrafs-ublk recover` re-attaches
# the same /dev/ublkbN; the fio job continues (its pending requests are re-issued to the new
# server) and its crc32c verification passes; data flushed before the kill is intact.
step "format a 4+2 pool; add volume r (2 queues)"
make_pool 4 2
dev=$(ublk add --volume r --size 1G --queues 2 --depth 32 "$MEMBERS")
id=${dev#/dev/ublkb}
flags=$(ublk list | awk -v d="$dev" '$2 == d')
echo "$flags"
step "write a reference region (32 MiB at 512 MiB) and flush it"
fio --name=ref --filename="$dev" --ioengine=io_uring --direct=1 --rw=write --bs=128k \
    --offset=512M --size=32M --iodepth=16 --verify=crc32c --do_verify=0 --verify_state_save=0 \
    --end_fsync=1 >/dev/null || fail "reference write"
step "fio O_SYNC random writes with verify in the background; kill -9 the server mid-run"
# sync=1: every write completes only once durable (FUA), so everything fio has seen complete must
# survive the server's death; verification runs after the write phase, on the recovered server.
# 64 MiB: O_SYNC writes at QD 32 are batched (one engine flush per batch), and 4 MiB took under
# a second, finishing before the kill.
fio --name=crash --filename="$dev" --ioengine=io_uring --direct=1 --sync=1 --rw=randwrite \
    --bs=4k --size=64M --iodepth=32 --verify=crc32c --do_verify=1 --verify_fatal=1 \
    --verify_state_save=0 --output-format=terse --terse-version=3 > /tmp/crash.terse 2>&1 &
fio_pid=$!
pid=$(ublk list | awk -v d="$dev" '$2 == d { print $6 }')
sleep 2
kill -0 $fio_pid 2>/dev/null || { cat /tmp/crash.terse; fail "fio finished before the kill: make it longer"; }
echo "killing server $pid"
kill -9 "$pid"
sleep 1
ublk list
step "recover $id"
ublk recover "$id"
ublk list
step "wait for fio to finish its write + verify phases"
wait $fio_pid || { cat /tmp/crash.terse; fail "fio failed across the server crash"; }
awk -F';' '{ printf "fio crash: write %s IOPS, verify-read %s IOPS, errors %s\n", $49, $8, $5 }' /tmp/crash.terse
[ "$(cut -d';' -f5 /tmp/crash.terse)" = 0 ] || fail "fio reported errors"
step "the reference region flushed before the kill is intact"
fio --name=ref --filename="$dev" --ioengine=io_uring --direct=1 --rw=write --bs=128k \
    --offset=512M --size=32M --iodepth=16 --verify=crc32c --verify_only=1 --verify_fatal=1 \
    --verify_state_save=0 >/dev/null || fail "reference region damaged"
step "a second kill while idle, recover, full fio verify"
pid=$(ublk list | awk -v d="$dev" '$2 == d { print $6 }')
kill -9 "$pid"
ublk recover "$id"
step "full fio verify after the second recovery"
fio_verify after "$dev" --rw=randwrite --bs=64k --size=16M --offset=128M --iodepth=32
ublk del "$id"
