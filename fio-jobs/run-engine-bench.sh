#!/usr/bin/env bash
# Engine benchmark driver (doc/benchmarks.md): for each target directory, measures the raw
# capability of 6 member-sized files with fio, then the engine (bench/astra_bench) on the same 6
# files (formatted as a 4+2 pool; ENGINE_FILES=sparse: 6 new sparse files instead), and prints
# engine/raw ratios against the floors:
#   write: engine user-data MiB/s / (raw fio write MiB/s * k/(k+m))   floor 0.60
#   read:  engine MiB/s / raw fio read MiB/s                          floor 0.70
#   metadata RAM: bytes per stored 4 KiB block                        limit 64
# Everything is measured in this one run, on this machine, so the ratios are comparable.
#
# Usage: fio-jobs/run-engine-bench.sh            (about 4-5 minutes with the defaults)
# Environment (defaults):
#   ASTRA_BENCH   build/bench/bench/astra_bench   the benchmark binary
#   TARGETS       "/dev/shm/astra-bench /var/tmp/astra-bench"
#   FILE_MIB      1024     size of each of the 6 files (prefilled by fio)
#   ENGINE_FILES  same     "same": the engine's members are fio's 6 files, allocated and written
#                          as fio measured them; "sparse": new sparse files (every first write
#                          of a block then also allocates it in the host file system)
#   SEQ_MIB       512      user data per sequential engine phase
#   RUNTIME       4        seconds per fio job
#   RAND_SECONDS  3        seconds per random engine phase
#   META_MIB      256      user data written for the metadata-RAM measurement
#   SEQ_IODEPTH   6        fio iodepth of the sequential jobs (one I/O in flight per file)
#   SETTINGS      "none:off zstd:on"   engine compression:dedup settings; the first gives the ratios
#   OUT           build/bench/results/<timestamp>   where JSON and summary.md go
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=${ASTRA_BENCH:-$ROOT/build/bench/bench/astra_bench}
TARGETS=${TARGETS:-"/dev/shm/astra-bench /var/tmp/astra-bench"}
FILE_MIB=${FILE_MIB:-1024}
SEQ_MIB=${SEQ_MIB:-512}
ENGINE_FILES=${ENGINE_FILES:-same}
RUNTIME=${RUNTIME:-4}
RAND_SECONDS=${RAND_SECONDS:-3}
META_MIB=${META_MIB:-256}
SEQ_IODEPTH=${SEQ_IODEPTH:-6}
SETTINGS=${SETTINGS:-"none:off zstd:on"}
OUT=${OUT:-$ROOT/build/bench/results/$(date +%Y%m%d-%H%M%S)}

[[ -x $BENCH ]] || { echo "no $BENCH: build it (cmake -S . -B build/bench -G Ninja && ninja -C build/bench astra_bench)" >&2; exit 1; }
command -v fio >/dev/null || { echo "fio is not installed" >&2; exit 1; }
mkdir -p "$OUT"
echo "$SETTINGS" > "$OUT/settings"
start=$(date +%s)

{
  echo "date: $(date -Iseconds)"
  echo "host: $(hostname)"
  echo "nproc: $(nproc)"
  echo "kernel: $(uname -r)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "mem_total_kib: $(awk '/MemTotal/ {print $2}' /proc/meminfo)"
  echo "fio: $(fio --version)"
  echo "loadavg_start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
} > "$OUT/machine.txt"
cat "$OUT/machine.txt"

ti=0
for dir in $TARGETS; do
  tag=t$ti
  ti=$((ti + 1))
  mkdir -p "$dir"
  echo "$dir" > "$OUT/$tag.dir"
  df -hT "$dir" | tail -1 > "$OUT/$tag.fs"
  # O_DIRECT probe: tmpfs accepts O_DIRECT since Linux 6.6; older kernels refuse it (EINVAL).
  direct=1
  if ! dd if=/dev/zero of="$dir/.odirect-probe" bs=4096 count=1 oflag=direct status=none 2>/dev/null; then
    direct=0
  fi
  rm -f "$dir/.odirect-probe"
  echo "$direct" > "$OUT/$tag.direct"
  echo "== $dir ($(awk '{print $2}' "$OUT/$tag.fs"), fio direct=$direct)"

  files=""
  for i in 0 1 2 3 4 5; do files="$files${files:+:}$dir/raw-$i.dat"; done
  export RAW_FILES=$files RAW_SIZE=${FILE_MIB}m RAW_DIRECT=$direct RAW_RUNTIME=$RUNTIME RAW_SEQ_IODEPTH=$SEQ_IODEPTH
  echo "-- fio prefill (6 x $FILE_MIB MiB)"
  fio "$ROOT/fio-jobs/raw-prefill.fio" --output-format=json --output="$OUT/$tag-fio-prefill.json"
  for nj in 1 2; do
    echo "-- fio patterns, numjobs=$nj"
    RAW_NUMJOBS=$nj fio "$ROOT/fio-jobs/raw-patterns.fio" --output-format=json --output="$OUT/$tag-fio-nj$nj.json"
  done
  if [[ $ENGINE_FILES == same ]]; then
    members=(--devices "${files//:/,}" --k 4 --m 2)
  else
    rm -f "$dir"/raw-?.dat
    members=(--dir "$dir" --file-mib "$FILE_MIB")
  fi
  echo "$ENGINE_FILES" > "$OUT/$tag.engine-files"

  for s in $SETTINGS; do
    comp=${s%%:*}
    dedup=${s##*:}
    echo "-- astra_bench compression=$comp dedup=$dedup (members: $ENGINE_FILES files)"
    "$BENCH" "${members[@]}" --seq-mib "$SEQ_MIB" --rand-seconds "$RAND_SECONDS" \
      --threads 1,2 --qd-threads 32 --compression "$comp" --dedup "$dedup" --meta-mib "$META_MIB" \
      --json-out "$OUT/$tag-astra-$comp-$dedup.json" | tee "$OUT/$tag-astra-$comp-$dedup.txt"
  done
  rm -f "$dir"/raw-?.dat
  rmdir "$dir" 2>/dev/null || true
done

echo "loadavg_end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"
echo "elapsed_seconds: $(( $(date +%s) - start ))" >> "$OUT/machine.txt"
python3 "$ROOT/bench/summarize.py" "$OUT" | tee "$OUT/summary.md"
echo "results in $OUT"
