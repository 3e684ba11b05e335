# Benchmark (label `bench`, by hand; not part of CI): NVMe passthrough vs the block path, in one VM
# run on the same emulated drives (issue 6, "Speed"; results in doc/nvme.md).
#  (a) the engine: bench/astra_bench, a 4+2 pool on the six namespaces, through NvmeDevice
#      (/dev/vmh/ng<i>n1) and through UringDevice (/dev/vmh/nvme<i>n1, ASTRA_FORCE_BLOCK_PATH=1),
#      ASTRA_NVME_BENCH_REPS times each in A-B-B-A order; then passthrough with plain buffers only
#      (ASTRA_NVME_FIXED_BUFFERS=0) and with polled completions (ASTRA_NVME_IOPOLL=1);
#  (b) fio on one drive: --ioengine=io_uring_cmd --cmd_type=nvme --nonvectored=1 on /dev/ng0n1
#      (non-vectored, as NvmeDevice issues its commands) vs --ioengine=io_uring --direct=1 on
#      /dev/nvme0n1, 4 KiB random read/write at QD1 and QD32 and 128 KiB sequential read/write at
#      QD32, A-B-B-A job by job; then the passthrough 4 KiB jobs with fixedbufs, with hipri
#      (polled), and vectored (fio's default for io_uring_cmd).
# Everything is preceded by an unreported warm-up: under TCG the first half minute of I/O in a
# fresh guest is up to 3x slower (translation caches), which would bias whichever path runs first.
# The guest boots with nvme.poll_queues=2 (polled I/O needs them; other I/O does not use them).
# Under TCG the ratios show per-I/O CPU cost (what passthrough exists to cut), not drive speed.
# Env: ASTRA_BENCH_RUNTIME seconds per fio job (default 8), ASTRA_NVME_BENCH_REPS (default 2),
# ASTRA_BENCH_SEQ_MIB user data per sequential engine phase (default 64),
# ASTRA_BENCH_RAND_SECONDS per random engine phase (default 3), ASTRA_NVME_BENCH_PARTS (default
# "engine fio").
rt=${ASTRA_BENCH_RUNTIME:-5}
reps=${ASTRA_NVME_BENCH_REPS:-2}
seq_mib=${ASTRA_BENCH_SEQ_MIB:-64}
rand_s=${ASTRA_BENCH_RAND_SECONDS:-3}
parts=${ASTRA_NVME_BENCH_PARTS:-engine fio}
ASTRA_BENCH_BIN=$ASTRA_BUILD/bench/astra_bench
OUT=$ASTRA_WORK/nvme_bench
mkdir -p "$OUT"
NG=$(echo /dev/vmh/ng{0..5}n1 | tr " " ,)
NB=$(echo /dev/vmh/nvme{0..5}n1 | tr " " ,)
blk=$(readlink -f /dev/vmh/nvme0n1)
echo "poll queues: io_poll $(cat "/sys/block/${blk##*/}/queue/io_poll"); $(nproc) vCPUs"

engine() {  # engine LABEL DEVICES SEQ_MIB [env...]
  local label=$1 devs=$2 mib=$3
  shift 3
  env "$@" "$ASTRA_BENCH_BIN" --devices "$devs" --seq-mib "$mib" --rand-seconds "$rand_s" \
    --threads 1 --meta-mib 0 --warmup-mib 16 --json-out "$OUT/engine-$label.json" \
    > "$OUT/engine-$label.txt" 2> "$OUT/engine-$label.err" ||
    { cat "$OUT/engine-$label.err"; fail "astra_bench $label"; }
  cat "$OUT/engine-$label.txt"
  # Table columns: phase threads qd MiB/s IOPS p50_us ...
  awk -v l="$label" '$1 ~ /^(seq|rand)/ && NF >= 11 {
      printf "ENGINE %-14s %-14s T%-3s QD%-3s %9.1f MiB/s %9.0f IOPS p50 %8.1f us\n", l, $1, $2, $3, $4, $5, $6 }' \
    "$OUT/engine-$label.txt" | tee -a "$OUT/engine.lines"
}

fio_job() {  # fio_job LABEL FILE RW BS QD [fio options...]; prints one FIO line
  local label=$1 file=$2 rw=$3 bs=$4 qd=$5
  shift 5
  fio --name=b --filename="$file" --rw="$rw" --bs="$bs" --iodepth="$qd" --size=256M \
    --time_based --runtime="$rt" --ramp_time=1 --output-format=terse --terse-version=3 "$@" \
    > /tmp/b.terse || fail "fio $label $rw $bs QD$qd"
  awk -F';' -v l="$label" -v j="$rw-$bs-QD$qd" '{ iops = $8 + $49; bw = $7 + $48;
      lat = ($8 > 0 ? $40 : $81);
      printf "FIO %-16s %-18s %9.0f IOPS %9.1f MiB/s %9.1f us\n", l, j, iops, bw / 1024, lat }' \
    /tmp/b.terse | tee -a "$OUT/fio.lines"
}
PT=(--ioengine=io_uring_cmd --cmd_type=nvme --nonvectored=1)
BL=(--ioengine=io_uring --direct=1)

step "warm-up (unreported): fio on both paths, a short astra_bench"
dd if=/dev/urandom of=/tmp/rand bs=1M count=256 status=none
dd if=/tmp/rand of=/dev/vmh/nvme0n1 bs=1M oflag=direct status=none
: > "$OUT/fio.lines"
for w in 1 2; do
  fio_job warmup /dev/vmh/nvme0n1 randread 4k 32 "${BL[@]}" > /dev/null
  fio_job warmup /dev/vmh/ng0n1 randwrite 4k 32 "${PT[@]}" > /dev/null
done
: > "$OUT/fio.lines"
: > "$OUT/engine.lines"
if [[ " $parts " == *" engine "* ]]; then
  "$ASTRA_BENCH_BIN" --devices "$NG" --seq-mib 16 --rand-seconds 1 --threads 1 --meta-mib 0 \
    --warmup-mib 16 > /dev/null 2>&1 || fail "astra_bench warm-up"
  step "(a) engine: astra_bench 4+2 on the six namespaces, passthrough vs block path, x$reps"
  for ((r = 1; r <= reps; r++)); do
    order="pt block"
    [ $((r % 2)) = 0 ] && order="block pt"
    for p in $order; do
      if [ "$p" = pt ]; then
        engine "passthrough-$r" "$NG" "$seq_mib"
        grep -q "(nvme-passthrough)" "$OUT/engine-passthrough-$r.txt" || fail "not passthrough"
      else
        engine "block-$r" "$NB" "$seq_mib" ASTRA_FORCE_BLOCK_PATH=1
        grep -q "(uring)" "$OUT/engine-block-$r.txt" || fail "members not on the block path"
      fi
    done
  done
  step "(a') engine through passthrough: plain buffers only; polled completions (16 MiB seq)"
  engine "pt-plainbufs" "$NG" "$seq_mib" ASTRA_NVME_FIXED_BUFFERS=0
  # Six polling reapers on two vCPUs: slow under TCG, so a smaller sequential data set.
  engine "pt-iopoll" "$NG" 16 ASTRA_NVME_IOPOLL=1
  grep -q "polled completions" "$OUT"/engine-pt-iopoll.* || fail "IOPOLL not used"
fi

if [[ " $parts " == *" fio "* ]]; then
step "(b) fio on drive 0: io_uring_cmd on ng0n1 vs io_uring O_DIRECT on nvme0n1"
dd if=/tmp/rand of=/dev/vmh/nvme0n1 bs=1M oflag=direct status=none
for job in "randread 4k 1" "randread 4k 32" "randwrite 4k 1" "randwrite 4k 32" \
           "read 128k 32" "write 128k 32"; do
  set -- $job
  fio_job block /dev/vmh/nvme0n1 "$1" "$2" "$3" "${BL[@]}"
  fio_job passthrough /dev/vmh/ng0n1 "$1" "$2" "$3" "${PT[@]}"
  fio_job passthrough /dev/vmh/ng0n1 "$1" "$2" "$3" "${PT[@]}"
  fio_job block /dev/vmh/nvme0n1 "$1" "$2" "$3" "${BL[@]}"
done
step "(b') fio passthrough 4 KiB: fixedbufs, hipri (polled), vectored"
for job in "randread 4k 1" "randread 4k 32" "randwrite 4k 1" "randwrite 4k 32"; do
  set -- $job
  fio_job pt-fixedbufs /dev/vmh/ng0n1 "$1" "$2" "$3" "${PT[@]}" --fixedbufs=1
  fio_job pt-hipri /dev/vmh/ng0n1 "$1" "$2" "$3" "${PT[@]}" --hipri=1
  fio_job pt-vectored /dev/vmh/ng0n1 "$1" "$2" "$3" "${PT[@]}" --nonvectored=0
  fio_job passthrough-ref /dev/vmh/ng0n1 "$1" "$2" "$3" "${PT[@]}"
done
fi

step "ratios (passthrough / block; > 1 means passthrough is faster)"
awk '$1 == "ENGINE" { split($2, a, "-"); v = ($3 ~ /^seq/ ? $6 : $8);
       key = $3 "-" $4 "-" $5; if (a[1] == "passthrough") p[key] += v; else if (a[1] == "block") b[key] += v }
     END { for (k in p) if (b[k] > 0) printf "RATIO engine %-22s %.3f\n", k, p[k] / b[k] }' \
  "$OUT/engine.lines" | sort | tee "$OUT/ratios.txt"
awk '$1 == "FIO" { v[$2 " " $3] += $4; n[$2 " " $3]++ }
     END { for (k in v) v[k] /= n[k];
           for (k in v) { split(k, a, " "); if (a[1] == "passthrough" && v["block " a[2]] > 0)
             printf "RATIO fio    %-22s %.3f\n", a[2], v[k] / v["block " a[2]];
           if (a[1] ~ /^pt-/ && v["passthrough-ref " a[2]] > 0)
             printf "RATIO fio    %-22s %.3f (%s / passthrough-ref)\n", a[2],
                    v[k] / v["passthrough-ref " a[2]], a[1] } }' \
  "$OUT/fio.lines" | sort | tee -a "$OUT/ratios.txt"
