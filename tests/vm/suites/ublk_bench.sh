# Benchmark (label `bench`, not part of `vm`): where does the time of the ublk path go?
# Same fio jobs on (a) the raw emulated NVMe drive, (b) a RAM-backed ublk device (the ublk path
# alone: kernel <-> server round trips, copies), (c) an AstraFS 4+2 volume (ublk + engine), and
# the same jobs on (d) the engine alone, in-process, no ublk (vm_engine_bench, same pool shape
# on the same drives). For (c) the server's own stage timers (`astrafs-ublk status`, QueueStats
# in blockdev/ublk_queue.h) split each request's time: STAGES lines, microseconds per request.
# Under TCG absolute numbers mean little; the ratios are what to look at.
# Env: ASTRA_BENCH_RUNTIME seconds per job (default 10).
rt=${ASTRA_BENCH_RUNTIME:-10}
ENGINE_BENCH=$ASTRA_BUILD/tests/vm/vm_engine_bench
JOBS=("randread 4k 1" "randread 4k 32" "randwrite 4k 1" "randwrite 4k 32" "read 128k 32"
      "write 128k 32")
# stages ID: "requests dispatch_ns copy_ns target_ns complete_ns" of /dev/ublkbID (or empty).
stages() { ublk status "$1" | awk -v id="$1" '$1 == "stages" && $2 == id { print $4, $6, $8, $10, $12 }'; }
bench() {  # bench LABEL FILE [UBLK_ID: also print the server's stage breakdown]
  local label=$1 file=$2 sid=${3:-} job before after
  for job in "${JOBS[@]}"; do
    set -- $job
    [ -n "$sid" ] && before=$(stages "$sid")
    fio --name=b --filename="$file" --ioengine=io_uring --direct=1 --rw=$1 --bs=$2 \
        --iodepth=$3 --size=256M --time_based --runtime="$rt" --ramp_time=1 \
        --output-format=terse --terse-version=3 > /tmp/b.terse
    # terse v3: 8/49 read/write IOPS, 7/48 KiB/s, 40/81 mean total latency (us)
    awk -F';' -v l="$label" -v j="$1 $2 QD$3" \
      '{ iops = $8 + $49; bw = $7 + $48; lat = ($8 > 0 ? $40 : $81);
         printf "BENCH %-8s %-18s %9.0f IOPS %9.1f MiB/s %9.1f us\n", l, j, iops, bw / 1024, lat }' \
      /tmp/b.terse
    if [ -n "$sid" ]; then
      after=$(stages "$sid")
      awk -F';' -v j="$1 $2 QD$3" -v b="$before" -v a="$after" '{
        split(b, x, " "); split(a, y, " "); n = y[1] - x[1]; if (n <= 0) n = 1;
        d = (y[2] - x[2]) / n / 1000; c = (y[3] - x[3]) / n / 1000;
        t = (y[4] - x[4]) / n / 1000; m = (y[5] - x[5]) / n / 1000;
        lat = ($8 > 0 ? $40 : $81); srv = d + c + t + m;
        printf "STAGES %-18s fio %8.1f us = server %8.1f (dispatch %7.1f copy %6.1f engine %8.1f commit %6.1f) + outside the server %8.1f\n",
               j, lat, srv, d, c, t, m, lat - srv }' /tmp/b.terse
    fi
  done
}
step "prefill the raw drive and the volume (reads of holes would measure nothing)"
make_pool 4 2
dev=$(ublk add --volume bench --size 1G --queues 2 --depth 64 "$MEMBERS")
dd if=/dev/urandom of=/tmp/rand bs=1M count=256 status=none
dd if=/tmp/rand of="$dev" bs=1M oflag=direct status=none
step "(c) AstraFS volume (ublk + engine, 4+2)"
bench astrafs "$dev" "${dev#/dev/ublkb}"
ublk status "${dev#/dev/ublkb}"
srv=$(ublk list | awk -v d="$dev" '$2 == d { print $6 }')
ublk del "${dev#/dev/ublkb}"
# del returns once the device is gone; the server then closes the pool (members locked until it exits)
for ((i = 0; i < 600; i++)); do kill -0 "$srv" 2>/dev/null || break; sleep 0.1; done
step "(d) the engine alone, in-process (no ublk), on a fresh 4+2 pool on the same drives"
make_pool 4 2
"$ENGINE_BENCH" --runtime "$rt" --size 256 ${MEMBERS//,/ } || fail "vm_engine_bench"

step "(a) raw NVMe drive"
dd if=/tmp/rand of=/dev/vmh/nvme0n1 bs=1M oflag=direct status=none
bench raw /dev/vmh/nvme0n1
step "(b) RAM-backed ublk device (the ublk path alone)"
"$MEMDISK" --size 512 --queues 2 --depth 64 -- bash -c "
  $(declare -f bench); $(declare -p JOBS); rt=$rt
  dd if=/tmp/rand of=\$UBLK_DEV bs=1M oflag=direct status=none
  bench ublk-ram \$UBLK_DEV"
