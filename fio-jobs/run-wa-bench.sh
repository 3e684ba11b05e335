#!/usr/bin/env bash
# Write-amplification benchmark driver (issue 7; doc/space.md "Measured write amplification",
# doc/benchmarks.md). Runs bench/wa_bench: a fresh 4+2 pool of 6 RAM members per case, filled to
# 50/80/90% of its capacity, then uniform and 80/20 hot/cold random 4 KiB overwrites, with the
# cost-benefit and the greedy cleaner on the same seeded trace. Every byte written to every member
# is counted (superblocks, journal, data area); WA = device bytes / user bytes over the measured
# overwrites, parity excluded (data area * k/(k+m)) and included. No devices, no root needed.
#
# Usage: fio-jobs/run-wa-bench.sh [extra wa_bench flags...]
# Environment (defaults):
#   WA_BENCH    build/wabench/bench/wa_bench
#   MEMBER_MIB  128          size of each of the 6 RAM members (sparse; ~0.8 GiB RAM peak at 90%)
#   FILLS       50,80,90     percent of PoolStatus.space.capacity_bytes held live
#   WORKLOADS   uniform,hot
#   POLICIES    cost-benefit,greedy
#   WARMUP_X    1            unmeasured overwrites, in multiples of the live data
#   MEASURE_X   1            measured overwrites, in multiples of the live data
#   FLUSH_MIB   4            a Flush every this many MiB of user writes
#   SEED        7
#   OUT         build/wabench/results/<timestamp>
# A full run takes ~5 minutes on 2 shared cores (most of it the 90% cases).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=${WA_BENCH:-$ROOT/build/wabench/bench/wa_bench}
MEMBER_MIB=${MEMBER_MIB:-128}
FILLS=${FILLS:-50,80,90}
WORKLOADS=${WORKLOADS:-uniform,hot}
POLICIES=${POLICIES:-cost-benefit,greedy}
WARMUP_X=${WARMUP_X:-1}
MEASURE_X=${MEASURE_X:-1}
FLUSH_MIB=${FLUSH_MIB:-4}
SEED=${SEED:-7}
OUT=${OUT:-$ROOT/build/wabench/results/$(date +%Y%m%d-%H%M%S)}

[[ -x $BENCH ]] || {
  echo "no $BENCH: cmake -S . -B build/wabench -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo && ninja -C build/wabench wa_bench" >&2
  exit 1
}
mkdir -p "$OUT"
{
  echo "date: $(date -Iseconds)"
  echo "host: $(hostname)"
  echo "nproc: $(nproc)"
  echo "kernel: $(uname -r)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet HEAD -- engine 2>/dev/null || echo ' (engine/ has uncommitted changes)')"
  echo "loadavg_start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/env.txt"

start=$(date +%s)
"$BENCH" --member-mib "$MEMBER_MIB" --fills "$FILLS" --workloads "$WORKLOADS" --policies "$POLICIES" \
  --warmup-x "$WARMUP_X" --measure-x "$MEASURE_X" --flush-mib "$FLUSH_MIB" --seed "$SEED" \
  --json-out "$OUT/wa.json" "$@" | tee "$OUT/wa.txt"
rc=${PIPESTATUS[0]}
echo "loadavg_end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/env.txt"
echo "elapsed_s: $(($(date +%s) - start))" | tee -a "$OUT/env.txt"

# The issue's floor: 80% fill, uniform random, WA excluding parity <= 2.5 (each policy).
python3 - "$OUT/wa.json" <<'PY' | tee "$OUT/floor.txt"
import json, sys
runs = json.load(open(sys.argv[1]))["runs"]
ok = True
for r in runs:
    if r["fill_pct"] == 80 and r["workload"] == "uniform":
        wa = r["wa_data_excl_parity"]
        good = r["completed"] and wa <= 2.5
        ok &= good
        print(f"floor 80% uniform {r['policy']:12s} WA excl parity {wa:.3f} <= 2.5: {'PASS' if good else 'FAIL'}")
cb = {(r["fill_pct"], r["workload"]): r["wa_data_excl_parity"] for r in runs if r["policy"] == "cost-benefit"}
gr = {(r["fill_pct"], r["workload"]): r["wa_data_excl_parity"] for r in runs if r["policy"] == "greedy"}
for key in sorted(cb):
    if key in gr and gr[key] > 0:
        print(f"cost-benefit / greedy at {key[0]:.0f}% {key[1]:8s}: {cb[key]:.3f} / {gr[key]:.3f} = {cb[key] / gr[key]:.3f}")
print("floor:", "PASS" if ok else "FAIL")
PY
echo "results in $OUT"
exit "$rc"
