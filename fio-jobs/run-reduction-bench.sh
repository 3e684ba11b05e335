#!/usr/bin/env bash
# Data-reduction benchmark driver (issue 3; doc/data-reduction.md, doc/benchmarks.md). In one run,
# on the same bytes, on this machine:
#   1. tar of the corpus (a file; `zstd < file` gives the same output as `tar cf - | zstd`),
#      zstd -1 -T1 and zstd -3 -T1 of it: size and time -> ratio = tar bytes / zstd bytes,
#      throughput = tar bytes / seconds;
#   2. borg init --encryption=none; borg create --compression zstd,1 --stats --json of the corpus:
#      ratio = original_size / deduplicated_size (first archive: the unique compressed chunks);
#   3. bench/reduction_bench: ingest into a fresh 4+2 pool, one variant per process
#      (SETTINGS, default "zstd:1:on zstd:1:off none:0:on"); the first is the headline and also
#      runs the compression-unit experiment;
#   4. the summary: our ratio / borg ratio (floor >= 0.70), our ingest MB/s / zstd -1 -T1 MB/s
#      (floor >= 0.50), dedup index bytes per unique 4 KiB block (floor <= 48).
# Our ratio for the comparison is file bytes / stored bytes (the same numerator as borg's
# original_size; the engine's own logical_bytes also counts the zero padding of file tails).
#
# Usage: fio-jobs/run-reduction-bench.sh
# Environment (defaults):
#   CORPUS        /var/tmp/astra-corpus        a directory tree (e.g. the unpacked linux-source-6.1
#                                              and linux-source-6.12 trees; not in the repository)
#   REDUCTION_BENCH build/redbench/bench/reduction_bench
#   WORK          /var/tmp/astra-redbench      member files, the tar, the zstd outputs, the borg repo
#   FILE_MIB      2048                         size of each of the 6 sparse member files
#   SETTINGS      "zstd:1:on zstd:1:off none:0:on"   compression:level:dedup[:frame blocks] per engine
#                                              run (frame blocks: the engine's compression unit,
#                                              1..8; default the engine's, 8)
#   UNITS         1,2,4,8,16,32                compression units (blocks) for the unit experiment
#                                              ("none": skip the experiment)
#   OUT           build/redbench/results/<timestamp>
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CORPUS=${CORPUS:-/var/tmp/astra-corpus}
BENCH=${REDUCTION_BENCH:-$ROOT/build/redbench/bench/reduction_bench}
WORK=${WORK:-/var/tmp/astra-redbench}
FILE_MIB=${FILE_MIB:-2048}
SETTINGS=${SETTINGS:-"zstd:1:on zstd:1:off none:0:on"}
UNITS=${UNITS:-1,2,4,8,16,32}
OUT=${OUT:-$ROOT/build/redbench/results/$(date +%Y%m%d-%H%M%S)}

[[ -x $BENCH ]] || { echo "no $BENCH: cmake -S . -B build/redbench -G Ninja && ninja -C build/redbench reduction_bench" >&2; exit 1; }
[[ -d $CORPUS ]] || { echo "no corpus $CORPUS (see doc/data-reduction.md)" >&2; exit 1; }
for t in zstd borg tar python3; do command -v $t >/dev/null || { echo "$t is not installed" >&2; exit 1; }; done
mkdir -p "$OUT" "$WORK"
start=$(date +%s)

now() { date +%s.%N; }
{
  echo "date: $(date -Iseconds)"
  echo "host: $(hostname)"
  echo "nproc: $(nproc)"
  echo "kernel: $(uname -r)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "mem_total_kib: $(awk '/MemTotal/ {print $2}' /proc/meminfo)"
  echo "zstd: $(zstd --version)"
  echo "borg: $(borg --version)"
  echo "corpus: $CORPUS ($(ls "$CORPUS" | tr '\n' ' '))"
  echo "loadavg_start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/env.txt"

# ---- 1. tar + zstd ----
TAR=$WORK/corpus.tar
rm -f "$TAR" "$WORK"/corpus.tar.zst*
echo "== tar"
(cd "$CORPUS" && tar cf "$TAR" .)
cat "$TAR" > /dev/null  # page cache: zstd and the bench both read from memory
tar_bytes=$(stat -c %s "$TAR")
zrun() {  # zrun NAME ARGS...: compress $TAR, record size and seconds
  local name=$1; shift
  local la; la=$(cut -d' ' -f1 /proc/loadavg)
  local t0 t1; t0=$(now)
  zstd -q -f "$@" "$TAR" -o "$WORK/corpus.tar.zst.$name"
  t1=$(now)
  local sz; sz=$(stat -c %s "$WORK/corpus.tar.zst.$name")
  echo "{\"name\": \"$name\", \"args\": \"$*\", \"tar_bytes\": $tar_bytes, \"zstd_bytes\": $sz, \"seconds\": $(awk "BEGIN{print $t1 - $t0}"), \"loadavg_start\": $la}" > "$OUT/zstd-$name.json"
  cat "$OUT/zstd-$name.json"
  rm -f "$WORK/corpus.tar.zst.$name"
}
echo "== zstd"
zrun l1 -1 -T1
zrun l3 -3 -T1

# ---- 2. borg ----
echo "== borg"
export BORG_REPO=$WORK/borg BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
rm -rf "$BORG_REPO"
borg init --encryption=none "$BORG_REPO"
la=$(cut -d' ' -f1 /proc/loadavg)
t0=$(now)
(cd "$CORPUS" && borg create --compression zstd,1 --stats --json "::corpus" .) > "$OUT/borg-create.json"
t1=$(now)
echo "{\"seconds\": $(awk "BEGIN{print $t1 - $t0}"), \"loadavg_start\": $la, \"repo_du_bytes\": $(du -sb "$BORG_REPO" | cut -f1)}" > "$OUT/borg-time.json"
borg info --json "$BORG_REPO" > "$OUT/borg-info.json"
rm -rf "$BORG_REPO"
rm -f "$TAR"

# ---- 3. engine ----
first=1
for s in $SETTINGS; do
  IFS=: read -r comp level dedup frames <<<"$s"
  spec=$comp; [[ $comp == zstd ]] && spec="zstd:$level"
  extra=()
  [[ $first == 1 && $UNITS != none ]] && extra=(--unit-experiment --units "$UNITS")
  tag=$comp$level-$dedup
  if [[ -n $frames ]]; then extra+=(--frame-blocks "$frames"); tag+="-f$frames"; fi
  echo "== reduction_bench $spec dedup=$dedup ${frames:+frame blocks $frames}"
  "$BENCH" --corpus "$CORPUS" --dir "$WORK" --file-mib "$FILE_MIB" --compression "$spec" --dedup "$dedup" \
    "${extra[@]}" --json-out "$OUT/engine-$tag.json" | tee "$OUT/engine-$tag.txt"
  first=0
done
echo "loadavg_end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/env.txt"
echo "elapsed_s: $(( $(date +%s) - start ))" | tee -a "$OUT/env.txt"

# ---- 4. summary ----
set -- $SETTINGS
IFS=: read -r comp level dedup frames <<<"$1"
head=engine-$comp$level-$dedup; [[ -n $frames ]] && head+="-f$frames"
python3 - "$OUT" "$head.json" <<'EOF' | tee "$OUT/summary.md"
import json, sys, os
out, head = sys.argv[1], sys.argv[2]
J = lambda n: json.load(open(os.path.join(out, n)))
z1, z3, bt = J("zstd-l1.json"), J("zstd-l3.json"), J("borg-time.json")
bc = J("borg-create.json")["archive"]["stats"]
eng = J(head); ing = eng["ingest"]
MB = 1e6; MiB = 1 << 20
borg_ratio = bc["original_size"] / bc["deduplicated_size"]
z1_ratio = z1["tar_bytes"] / z1["zstd_bytes"]; z3_ratio = z3["tar_bytes"] / z3["zstd_bytes"]
z1_speed = z1["tar_bytes"] / MB / z1["seconds"]
our_ratio = ing["ratio_file"]; our_speed = ing["ingest_MBps"]
idx = ing["index_bytes_per_unique_block"]
print(f"# Data reduction benchmark ({out})\n")
print(f"corpus: {eng['corpus']}, {ing['files']} files, {ing['file_bytes']/MiB:.1f} MiB of file data "
      f"(tar {z1['tar_bytes']/MiB:.1f} MiB)\n")
print("| system | stored MiB | ratio | MB/s (1 thread) |")
print("|---|---:|---:|---:|")
print(f"| tar \\| zstd -1 -T1 | {z1['zstd_bytes']/MiB:.1f} | {z1_ratio:.3f} (file bytes: {ing['file_bytes']/z1['zstd_bytes']:.3f}) | {z1_speed:.1f} |")
print(f"| tar \\| zstd -3 -T1 | {z3['zstd_bytes']/MiB:.1f} | {z3_ratio:.3f} (file bytes: {ing['file_bytes']/z3['zstd_bytes']:.3f}) | {z3['tar_bytes']/MB/z3['seconds']:.1f} |")
print(f"| borg create zstd,1 | {bc['deduplicated_size']/MiB:.1f} | {borg_ratio:.3f} (compressed only: {bc['original_size']/bc['compressed_size']:.3f}) | {bc['original_size']/MB/bt['seconds']:.1f} |")
for f in sorted(os.listdir(out)):
    if f.startswith("engine-") and f.endswith(".json"):
        e = J(f); i = e["ingest"]
        cname = f"zstd:{e['level']}" if e['compression'] == 'zstd' else 'none'
        fb = e.get('frame_blocks', 0)
        print(f"| AstraFS {cname} dedup {'on' if e['dedup'] else 'off'}{f' frame {fb}' if fb else ''} | "
              f"{i['stored_bytes']/MiB:.1f} | {i['ratio_file']:.3f} (logical/stored {i['ratio_engine']:.3f}) | {i['ingest_MBps']:.1f} |")
if "unit_experiment" in eng:
    ue = eng["unit_experiment"]
    print("\ncompression unit experiment (zstd, 4 KiB dedup first; ratio = file bytes / stored):\n")
    print("| unit (blocks) | stored MiB | ratio | vs borg |")
    print("|---:|---:|---:|---:|")
    for u in ue["units"]:
        print(f"| {u['blocks']} | {u['stored_bytes']/MiB:.1f} | {u['ratio_file']:.3f} | {u['ratio_file']/borg_ratio:.3f} |")
print("\n| check | value | floor | result |")
print("|---|---:|---:|---|")
r1 = our_ratio / borg_ratio; r2 = our_speed / z1_speed
print(f"| ratio / borg ratio | {our_ratio:.3f} / {borg_ratio:.3f} = {r1:.3f} | >= 0.70 | {'PASS' if r1 >= 0.70 else 'MISS'} |")
print(f"| ingest / zstd -1 -T1 | {our_speed:.1f} / {z1_speed:.1f} = {r2:.3f} | >= 0.50 | {'PASS' if r2 >= 0.50 else 'MISS'} |")
print(f"| dedup index B / unique block | {idx:.1f} (+8 B fingerprint in the extent entry) | <= 48 | {'PASS' if idx <= 48 else 'MISS'} |")
print(f"\nload average: zstd -1 start {z1['loadavg_start']}, borg start {bt['loadavg_start']}, "
      f"engine {ing['loadavg_start']} -> {ing['loadavg_end']} (2 shared cores)")
EOF
echo "results in $OUT"
