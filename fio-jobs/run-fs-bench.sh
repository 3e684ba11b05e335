#!/usr/bin/env bash
# File-system benchmark of issue 4 ("Speed"; results in doc/fs-benchmarks.md): AstraFS, ext4 and
# btrfs measured side by side in one run, on files on the same disk, reported as ratios.
#
#   astrafs  4+2 pool on 6 sparse member files (default mkfs: zstd:1 + dedup on), astrafs-mount
#            with its defaults (writeback_cache, 16 threads); the engine does O_DIRECT io_uring
#            I/O on the member files
#   ext4     one sparse image file on a loop device (--direct-io=on), default mkfs.ext4/mount
#   btrfs    mkfs.btrfs -d raid6 -m raid1c3 over 6 loop devices (--direct-io=on) on sparse files,
#            mounted -o compress=zstd:1 (skipped, and said so, when the kernel has no btrfs)
#
# Workloads, interleaved (each workload runs on every file system before the next one starts,
# caches dropped before each, so slow drifts of the shared machine's load hit all three alike):
#   seq-write / seq-read    1 MiB blocks, one SEQ_SIZE file, incompressible data, crc32c verify
#                           (fio-jobs/fs-seq.fio)
#   rand-{read,write}-qd{1,32}   4 KiB random I/O on that file, RAND_RUNTIME s each, writes
#                           verified afterwards (fio-jobs/fs-rand.fio)
#   meta                    create / stat / unlink of META_FILES empty files in one directory,
#                           each phase timed and ended by fsync(dir) + syncfs, caches dropped
#                           between phases (a small C program, built from this script)
#   copy                    cp -a COPY_SRC in, then out to COPYOUT (tmpfs; caches dropped first),
#                           each timed including syncfs + fsync(dir); the copy out is compared
#                           with diff -r
# O_DIRECT is used where the mount accepts it (probed), else buffered + end_fsync (reported).
#
# Ratios: AstraFS / ext4 and AstraFS / btrfs for every number. Floors (issue 4): sequential
# read and write >= 0.50 of btrfs; metadata operations >= 0.30 of ext4.
#
# Usage (as root):  fio-jobs/run-fs-bench.sh          about 5-8 minutes with the defaults
# Environment (defaults):
#   BUILD         build/fsbench       where astrafs-mount and mkfs.astrafs were built
#   WORK          /var/tmp/astra-fsbench   scratch directory (must not exist or be empty;
#                                     removed at the end, also on failure)
#   FSES          "astrafs ext4 btrfs"
#   WORKLOADS     "seq rand meta copy"   which workloads to run, in this order (e.g. WORKLOADS=meta
#                          FSES="astrafs ext4" for the metadata floor alone; rand needs seq's file)
#   META_REPEAT   1        run the meta workload this many times (each round on every file system
#                          before the next round; the summary gives the median and every round)
#   MEMBER_MIB    2048     size of each of the 6 sparse member files (AstraFS and btrfs)
#   EXT4_MIB      8192     size of the sparse ext4 image
#   SEQ_SIZE      2g       sequential file size
#   SEQ_QD        4        iodepth of the sequential jobs (io_uring)
#   SEQ_CAP       120      runtime cap (s) of a sequential job (a safety net, not a limit)
#   RAND_RUNTIME  8        seconds per random job
#   META_FILES    50000
#   COPY_SRC      /usr/include
#   COPYOUT       /dev/shm/astra-fsbench-out   copy-out destination (tmpfs, so that the copy out
#                          measures reading the file system, not the host disk; removed after use)
#   IOENGINE      io_uring
#   ASTRA_OPTS    ""       extra astrafs-mount -o options (e.g. no_writeback_cache, threads=N)
#   PROFILE       0        1: perf record -g the astrafs-mount daemon during each AstraFS phase
#                          (perturbs the numbers: use for a separate profiling run, FSES=astrafs)
#   OUT           build/fsbench/results/<timestamp>
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build/fsbench}
MKFS_ASTRA=$BUILD/tools/mkfs.astrafs
MOUNT_ASTRA=$BUILD/mount-helper/astrafs-mount
WORK=${WORK:-/var/tmp/astra-fsbench}
FSES=${FSES:-"astrafs ext4 btrfs"}
MEMBER_MIB=${MEMBER_MIB:-2048}
EXT4_MIB=${EXT4_MIB:-8192}
SEQ_SIZE=${SEQ_SIZE:-2g}
SEQ_QD=${SEQ_QD:-4}
SEQ_CAP=${SEQ_CAP:-120}
RAND_RUNTIME=${RAND_RUNTIME:-8}
META_FILES=${META_FILES:-50000}
WORKLOADS=${WORKLOADS:-"seq rand meta copy"}
META_REPEAT=${META_REPEAT:-1}
COPY_SRC=${COPY_SRC:-/usr/include}
COPYOUT=${COPYOUT:-/dev/shm/astra-fsbench-out}
IOENGINE=${IOENGINE:-io_uring}
ASTRA_OPTS=${ASTRA_OPTS:-}
PROFILE=${PROFILE:-0}
OUT=${OUT:-$ROOT/build/fsbench/results/$(date +%Y%m%d-%H%M%S)}

die() { echo "run-fs-bench: $*" >&2; exit 1; }
for w in $WORKLOADS; do
  case $w in seq|rand|meta|copy) ;; *) die "unknown workload $w (WORKLOADS: seq rand meta copy)" ;; esac
done
[[ " $WORKLOADS " == *" rand "* && " $WORKLOADS " != *" seq "* ]] && die "WORKLOADS: rand needs seq (it reads seq's file)"
[[ $META_REPEAT =~ ^[1-9][0-9]*$ ]] || die "META_REPEAT wants a positive integer"
wants() { [[ " $WORKLOADS " == *" $1 "* ]]; }
[[ $(id -u) == 0 ]] || die "must run as root (loop devices, mounts, drop_caches)"
[[ -x $MKFS_ASTRA && -x $MOUNT_ASTRA ]] || die "build first: cmake -S . -B $BUILD -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo && ninja -C $BUILD astrafs-mount mkfs.astrafs"
for t in fio losetup mkfs.ext4 fusermount3 cc python3; do
  command -v $t >/dev/null || die "$t is not installed"
done
if [[ -e $WORK ]] && [[ -n $(ls -A "$WORK") ]]; then
  die "$WORK exists and is not empty (left over from a killed run? unmount/losetup -d and remove it)"
fi
[[ -e $COPYOUT ]] && die "$COPYOUT exists (left over from a killed run? remove it)"

# ---------------------------------------------------------------- clean-up (also on failure)
LOOPS=()
SAMPLER_PID=""
PERF_PID=""
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  [[ -n $PERF_PID ]] && kill -INT "$PERF_PID" 2>/dev/null && wait "$PERF_PID" 2>/dev/null
  [[ -n $SAMPLER_PID ]] && kill "$SAMPLER_PID" 2>/dev/null && wait "$SAMPLER_PID" 2>/dev/null
  local fs m pid i
  for fs in astrafs ext4 btrfs; do
    m=$WORK/mnt/$fs
    mountpoint -q "$m" 2>/dev/null || continue
    if [[ $fs == astrafs ]]; then
      pid=$(astra_pid)
      for i in 1 2 3 4 5; do fusermount3 -u "$m" 2>/dev/null && break; sleep 1; done
      # The daemon flushes and closes the pool after the unmount: wait for it (it holds the files).
      for i in $(seq 1 60); do [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    else
      for i in 1 2 3 4 5; do umount "$m" 2>/dev/null && break; sleep 1; done
    fi
    mountpoint -q "$m" && echo "run-fs-bench: WARNING: could not unmount $m" >&2
  done
  for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null || echo "run-fs-bench: WARNING: losetup -d $l failed" >&2; done
  [[ -d $COPYOUT ]] && rm -rf "$COPYOUT"
  if [[ -d $WORK ]]; then
    if grep -q " $WORK/" /proc/mounts; then
      echo "run-fs-bench: WARNING: something is still mounted under $WORK; not removing it" >&2
    else
      rm -rf "$WORK"
    fi
  fi
  [[ $rc != 0 ]] && echo "run-fs-bench: FAILED (exit $rc); partial results in $OUT" >&2
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The astrafs-mount daemon serving our mount point (found by its command line, never by name).
astra_pid() {
  local p c
  for p in /proc/[0-9]*; do
    c=$( { tr '\0' ' ' < "$p/cmdline"; } 2>/dev/null) || continue
    [[ $c == *astrafs-mount*" $WORK/mnt/astrafs"* ]] && { echo "${p#/proc/}"; return; }
  done
}

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
cpu_total_ticks() { awk '/^cpu / {s=0; for (i=2;i<=9;i++) s+=$i; print s, $5+$6}' /proc/stat; }  # total, idle+iowait
proc_ticks() { [[ -n ${1:-} && -r /proc/$1/stat ]] && awk '{print $14+$15}' "/proc/$1/stat" || echo 0; }

mkdir -p "$OUT" "$WORK"/{img,mnt,state} "$COPYOUT"
START=$(date +%s)
{
  echo "date: $(date -Iseconds)"
  echo "host: $(hostname)"
  echo "nproc: $(nproc)"
  echo "kernel: $(uname -r)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "mem_total_kib: $(awk '/MemTotal/ {print $2}' /proc/meminfo)"
  echo "disk: $(df -hT "$WORK" | tail -1)"
  echo "fio: $(fio --version)"
  echo "e2fsprogs: $(dpkg-query -W -f='${Version}' e2fsprogs 2>/dev/null || echo ?)"
  echo "btrfs-progs: $(dpkg-query -W -f='${Version}' btrfs-progs 2>/dev/null || echo not installed)"
  echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "loadavg_start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "settings: FSES='$FSES' MEMBER_MIB=$MEMBER_MIB EXT4_MIB=$EXT4_MIB SEQ_SIZE=$SEQ_SIZE SEQ_QD=$SEQ_QD RAND_RUNTIME=$RAND_RUNTIME META_FILES=$META_FILES WORKLOADS='$WORKLOADS' META_REPEAT=$META_REPEAT COPY_SRC=$COPY_SRC IOENGINE=$IOENGINE ASTRA_OPTS='$ASTRA_OPTS' PROFILE=$PROFILE"
} > "$OUT/machine.txt"
cat "$OUT/machine.txt"
ps -eo pid,pcpu,etime,comm --sort=-pcpu | head -8 > "$OUT/top-at-start.txt"

( while :; do echo "$(date +%s) $(cut -d' ' -f1-3 /proc/loadavg)"; sleep 2; done ) > "$OUT/loadavg.log" &
SAMPLER_PID=$!

# ---------------------------------------------------------------- the metadata program
cat > "$WORK/fsmeta.c" <<'EOF'
// fsmeta DIR N: create, stat and unlink N empty files in DIR (one directory), each phase timed;
// each phase ends with fsync of the directory plus syncfs (reported separately: a FUSE mount
// ignores syncfs, the kernel only sends FUSE_SYNCFS for virtiofs, so the fsync is what makes
// AstraFS durable: fsyncdir is Pool::Flush), and the kernel caches are dropped between phases so
// stat and unlink look every name up in the file system, not in the dcache.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static void drop(void) {
  sync();
  int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
  if (fd < 0 || write(fd, "3", 1) != 1) { perror("drop_caches"); exit(1); }
  close(fd);
}
int main(int argc, char** argv) {
  if (argc != 3) { fprintf(stderr, "usage: fsmeta DIR N\n"); return 2; }
  int n = atoi(argv[2]);
  if (mkdir(argv[1], 0755) != 0) { perror("mkdir"); return 1; }
  int dfd = open(argv[1], O_RDONLY | O_DIRECTORY);
  if (dfd < 0) { perror("open dir"); return 1; }
  char name[32];
  double t[3], s[3];
  const char* ph[3] = {"create", "stat", "unlink"};
  for (int p = 0; p < 3; p++) {
    if (p > 0) drop();
    double t0 = now();
    for (int i = 0; i < n; i++) {
      snprintf(name, sizeof name, "f%07d", i);
      if (p == 0) {
        int fd = openat(dfd, name, O_CREAT | O_EXCL | O_WRONLY, 0644);
        if (fd < 0 || close(fd) != 0) { perror("create"); return 1; }
      } else if (p == 1) {
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_size != 0) { perror("stat"); return 1; }
      } else if (unlinkat(dfd, name, 0) != 0) { perror("unlink"); return 1; }
    }
    double t1 = now();
    if (fsync(dfd) != 0 || syncfs(dfd) != 0) { perror("fsync/syncfs"); return 1; }
    t[p] = t1 - t0;
    s[p] = now() - t1;
  }
  printf("{\"files\": %d", n);
  for (int p = 0; p < 3; p++) printf(", \"%s_s\": %.4f, \"%s_sync_s\": %.4f", ph[p], t[p], ph[p], s[p]);
  printf("}\n");
  close(dfd);
  return unlinkat(AT_FDCWD, argv[1], AT_REMOVEDIR) == 0 ? 0 : 1;
}
EOF
cc -O2 -Wall -o "$WORK/fsmeta" "$WORK/fsmeta.c"

# ---------------------------------------------------------------- set up the file systems
new_loop() { losetup -f --show --direct-io=on "$1"; }
ACTIVE=""
for fs in $FSES; do
  m=$WORK/mnt/$fs
  mkdir -p "$m"
  case $fs in
  astrafs)
    members=""
    for i in 0 1 2 3 4 5; do members="$members${members:+,}$WORK/img/astra-$i.img"; done
    "$MKFS_ASTRA" -s "${MEMBER_MIB}M" "$members" > "$OUT/astrafs-mkfs.txt" 2>&1 || { cat "$OUT/astrafs-mkfs.txt"; die "mkfs.astrafs failed"; }
    "$MOUNT_ASTRA" -o "log=$OUT/astrafs-mount.log${ASTRA_OPTS:+,$ASTRA_OPTS}" "$members" "$m" || die "astrafs-mount failed"
    ;;
  ext4)
    truncate -s "${EXT4_MIB}M" "$WORK/img/ext4.img"
    l=$(new_loop "$WORK/img/ext4.img"); LOOPS+=("$l")
    mkfs.ext4 -F -q -E lazy_itable_init=0,lazy_journal_init=0 "$l"
    mount "$l" "$m"
    ;;
  btrfs)
    command -v mkfs.btrfs >/dev/null || { echo "btrfs: SKIPPED (btrfs-progs not installed)" | tee -a "$OUT/skipped.txt"; continue; }
    if ! grep -qw btrfs /proc/filesystems && ! modprobe btrfs 2>/dev/null; then
      echo "btrfs: SKIPPED (the kernel $(uname -r) has no btrfs: not in /proc/filesystems, modprobe failed)" | tee -a "$OUT/skipped.txt"
      continue
    fi
    devs=()
    for i in 0 1 2 3 4 5; do
      truncate -s "${MEMBER_MIB}M" "$WORK/img/btrfs-$i.img"
      l=$(new_loop "$WORK/img/btrfs-$i.img"); LOOPS+=("$l"); devs+=("$l")
    done
    mkfs.btrfs -f -q -d raid6 -m raid1c3 "${devs[@]}" > "$OUT/btrfs-mkfs.txt" 2>&1 || { cat "$OUT/btrfs-mkfs.txt"; die "mkfs.btrfs failed"; }
    btrfs device scan "${devs[@]}" > /dev/null 2>&1 || true
    devopt=$(printf ',device=%s' "${devs[@]}")
    mount -o "compress=zstd:1$devopt" "${devs[0]}" "$m"
    ;;
  *) die "unknown file system $fs" ;;
  esac
  ACTIVE="$ACTIVE $fs"
done
ASTRA_PID=""
[[ $ACTIVE == *astrafs* ]] && ASTRA_PID=$(astra_pid)
grep " $WORK/mnt/" /proc/mounts | tee "$OUT/mounts.txt"

# O_DIRECT probe per mount.
declare -A DIRECT
for fs in $ACTIVE; do
  if dd if=/dev/zero of="$WORK/mnt/$fs/.odirect-probe" bs=4096 count=1 oflag=direct status=none 2>/dev/null; then
    DIRECT[$fs]=1
  else
    DIRECT[$fs]=0
    echo "$fs: O_DIRECT refused: buffered I/O + end_fsync instead" | tee -a "$OUT/notes.txt"
  fi
  rm -f "$WORK/mnt/$fs/.odirect-probe"
  echo "${DIRECT[$fs]}" > "$OUT/$fs.direct"
done

# ---------------------------------------------------------------- phase bookkeeping
# phases.tsv: fs phase wall_s loadavg1_before loadavg1_after machine_busy_cpu_s astrafs_daemon_cpu_s
echo -e "fs\tphase\twall_s\tload1_before\tload1_after\tmachine_busy_cpu_s\tastrafs_daemon_cpu_s" > "$OUT/phases.tsv"
HZ=$(getconf CLK_TCK)
phase() {  # phase FS NAME COMMAND...
  local fs=$1 name=$2; shift 2
  local l0 c0 d0 t0 l1 c1 d1 t1 rc=0
  l0=$(cut -d' ' -f1 /proc/loadavg); read -r c0 i0 < <(cpu_total_ticks); d0=$(proc_ticks "$ASTRA_PID"); t0=$(now)
  if [[ $PROFILE == 1 && $fs == astrafs && -n $ASTRA_PID ]]; then
    perf record -q -F 499 -g -p "$ASTRA_PID" -o "$OUT/perf-$name.data" > /dev/null 2>&1 &
    PERF_PID=$!
    sleep 0.3
  fi
  "$@" || rc=$?
  if [[ -n $PERF_PID ]]; then kill -INT "$PERF_PID"; wait "$PERF_PID" || true; PERF_PID=""; fi
  t1=$(now); l1=$(cut -d' ' -f1 /proc/loadavg); read -r c1 i1 < <(cpu_total_ticks); d1=$(proc_ticks "$ASTRA_PID")
  echo -e "$fs\t$name\t$(echo "$t1 - $t0" | bc -l | xargs printf '%.3f')\t$l0\t$l1\t$(echo "(($c1 - $i1) - ($c0 - $i0)) / $HZ" | bc -l | xargs printf '%.2f')\t$([[ $fs == astrafs ]] && echo "($d1 - $d0) / $HZ" | bc -l | xargs printf '%.2f' || echo -)" >> "$OUT/phases.tsv"
  return $rc
}

run_fio() {  # run_fio FS JOBFILE SECTION [extra env]
  local fs=$1 job=$2 sec=$3
  FS_DIR=$WORK/mnt/$fs FS_DIRECT=${DIRECT[$fs]} FS_IOENGINE=$IOENGINE FS_SEQ_QD=$SEQ_QD FS_SEQ_SIZE=$SEQ_SIZE \
    FS_SEQ_CAP=$SEQ_CAP FS_RAND_RUNTIME=${FS_RAND_RUNTIME_OVERRIDE:-$RAND_RUNTIME} FS_VERIFY_ONLY=${FS_VERIFY_ONLY:-0} \
    fio "$ROOT/fio-jobs/$job" --section="$sec" --aux-path="$WORK/state/$fs" \
      --output-format=json --output="$OUT/$fs-$sec${SUFFIX:-}.json"
  local err
  err=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["jobs"][0]["error"])' "$OUT/$fs-$sec${SUFFIX:-}.json")
  [[ $err == 0 ]] || { echo "$fs $sec: fio error $err" >&2; return 1; }
}

copy_in() {
  # syncfs (sync -f) writes the kernel's dirty pages back; it never reaches a FUSE daemon, so the
  # fsync of the directory (sync DIR: fsyncdir = Pool::Flush on AstraFS) makes it durable there.
  cp -a "$COPY_SRC" "$WORK/mnt/$1/copy" && sync -f "$WORK/mnt/$1/copy" && sync "$WORK/mnt/$1/copy"
}
copy_out() {
  cp -a "$WORK/mnt/$1/copy" "$COPYOUT/$1"
}

# ---------------------------------------------------------------- the workloads
for fs in $ACTIVE; do mkdir -p "$WORK/state/$fs"; done
SEQ_SECS=""; RAND_SECS=""
wants seq && SEQ_SECS="seq-write seq-read"
wants rand && RAND_SECS="rand-read-qd1 rand-read-qd32 rand-write-qd1 rand-write-qd32"
for sec in $SEQ_SECS; do
  for fs in $ACTIVE; do
    echo "== $sec on $fs (direct=${DIRECT[$fs]})"
    drop_caches
    phase "$fs" "$sec" run_fio "$fs" fs-seq.fio "$sec"
  done
done
for sec in $RAND_SECS; do
  for fs in $ACTIVE; do
    echo "== $sec on $fs"
    drop_caches
    phase "$fs" "$sec" run_fio "$fs" fs-rand.fio "$sec"
    if [[ $sec == rand-write-* ]]; then
      echo "   verify of $sec on $fs"
      FS_VERIFY_ONLY=1 FS_RAND_RUNTIME_OVERRIDE=0 SUFFIX=-verify phase "$fs" "$sec-verify" run_fio "$fs" fs-rand.fio "$sec"
      # The verify pass must have read back exactly what the timed pass wrote.
      python3 - "$OUT/$fs-$sec.json" "$OUT/$fs-$sec-verify.json" <<'PY' | tee -a "$OUT/verify.txt"
import json, sys
w = json.load(open(sys.argv[1]))["jobs"][0]["write"]["io_kbytes"]
r = json.load(open(sys.argv[2]))["jobs"][0]["read"]["io_kbytes"]
print(f"{sys.argv[1].rsplit('/', 1)[1]}: wrote {w} KiB, verified {r} KiB: {'OK' if r == w and w > 0 else 'MISMATCH'}")
sys.exit(0 if r == w and w > 0 else 1)
PY
    fi
  done
done
for fs in $ACTIVE; do rm -f "$WORK/mnt/$fs/fsbench-seq.dat"; done
META_ROUNDS=""
wants meta && META_ROUNDS=$(seq 1 "$META_REPEAT")
for r in $META_ROUNDS; do
  # Round 1 keeps the historical names (meta, <fs>-meta.json); later rounds are suffixed -r<N>.
  sfx=""; [[ $r == 1 ]] || sfx="-r$r"
  for fs in $ACTIVE; do
    echo "== meta$sfx ($META_FILES files) on $fs"
    drop_caches
    phase "$fs" "meta$sfx" bash -c "'$WORK/fsmeta' '$WORK/mnt/$fs/meta' $META_FILES > '$OUT/$fs-meta$sfx.json'"
    cat "$OUT/$fs-meta$sfx.json"
  done
done
COPY_FSES=""
wants copy && COPY_FSES=$ACTIVE
for fs in $COPY_FSES; do
  echo "== copy in $COPY_SRC on $fs"
  drop_caches
  phase "$fs" copy-in copy_in "$fs"
done
for fs in $COPY_FSES; do
  echo "== copy out on $fs"
  drop_caches
  phase "$fs" copy-out copy_out "$fs"
  diff -r -q --no-dereference "$COPY_SRC" "$COPYOUT/$fs" > "$OUT/$fs-copy-diff.txt" 2>&1 \
    || { cat "$OUT/$fs-copy-diff.txt" | head; die "$fs: the copy out differs from $COPY_SRC"; }
  rm -rf "${COPYOUT:?}/$fs"
done
if wants copy; then
  echo "copy_src_bytes: $(du -sb "$COPY_SRC" | cut -f1)" >> "$OUT/machine.txt"
  echo "copy_src_entries: $(find "$COPY_SRC" | wc -l)" >> "$OUT/machine.txt"
fi
for fs in $ACTIVE; do df -B1 "$WORK/mnt/$fs" | tail -1 > "$OUT/$fs-df-end.txt"; done
if [[ $ACTIVE == *btrfs* ]]; then btrfs filesystem df "$WORK/mnt/btrfs" > "$OUT/btrfs-fsdf.txt" 2>&1 || true; fi
echo "loadavg_end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"
echo "elapsed_s: $(( $(date +%s) - START ))" >> "$OUT/machine.txt"

if [[ $PROFILE == 1 ]]; then
  for d in "$OUT"/perf-*.data; do
    [[ -e $d ]] || continue
    perf report -i "$d" --no-children --sort dso,symbol --stdio 2>/dev/null | grep -v '^$' | grep -v '^#' | grep '%' | head -40 > "${d%.data}.top.txt" || true
  done
fi

# ---------------------------------------------------------------- summary
python3 - "$OUT" "$ACTIVE" "$META_REPEAT" <<'EOF' | tee "$OUT/summary.md"
import glob, json, os, statistics, sys
out, active, meta_repeat = sys.argv[1], sys.argv[2].split(), int(sys.argv[3])
def fio(fs, sec, key):
    p = f"{out}/{fs}-{sec}.json"
    if not os.path.exists(p): return None
    j = json.load(open(p))["jobs"][0][key]
    return j
res = {}
meta_rounds = {}
for fs in active:
    r = {}
    for sec, key in [("seq-write", "write"), ("seq-read", "read")]:
        j = fio(fs, sec, key)
        if j is not None: r[sec] = j["bw"] / 1024.0  # KiB/s -> MiB/s
    for sec, key in [("rand-read-qd1", "read"), ("rand-read-qd32", "read"), ("rand-write-qd1", "write"), ("rand-write-qd32", "write")]:
        j = fio(fs, sec, key)
        if j is None: continue
        r[sec] = j["iops"]
        r[sec + "-lat"] = j["clat_ns"]["mean"] / 1000.0
    rounds = []
    for i in range(1, meta_repeat + 1):
        p = f"{out}/{fs}-meta{'' if i == 1 else f'-r{i}'}.json"
        if os.path.exists(p): rounds.append(json.load(open(p)))
    meta_rounds[fs] = rounds
    for ph in ("create", "stat", "unlink"):
        if not rounds: break
        # The median over rounds (one round: that round's rate).
        r[ph] = statistics.median(m["files"] / (m[ph + "_s"] + m[ph + "_sync_s"]) for m in rounds)
        r[ph + "-nosync"] = statistics.median(m["files"] / m[ph + "_s"] for m in rounds)
    res[fs] = r
phases = {}
for line in open(f"{out}/phases.tsv").read().splitlines()[1:]:
    f = line.split("\t")
    phases[(f[0], f[1])] = f
for fs in active:
    for ph in ("copy-in", "copy-out"):
        if (fs, ph) in phases: res[fs][ph] = float(phases[(fs, ph)][2])
rows = [("seq-write", "MiB/s", True), ("seq-read", "MiB/s", True),
        ("rand-read-qd1", "IOPS", True), ("rand-read-qd32", "IOPS", True),
        ("rand-write-qd1", "IOPS", True), ("rand-write-qd32", "IOPS", True),
        ("create", "files/s", True), ("stat", "files/s", True), ("unlink", "files/s", True),
        ("create-nosync", "files/s", True), ("stat-nosync", "files/s", True), ("unlink-nosync", "files/s", True),
        ("copy-in", "s", False), ("copy-out", "s", False)]
floors = {"seq-write": ("btrfs", 0.5), "seq-read": ("btrfs", 0.5),
          "create": ("ext4", 0.3), "stat": ("ext4", 0.3), "unlink": ("ext4", 0.3)}
others = [f for f in ("ext4", "btrfs") if f in active]
hdr = "| workload | unit | " + " | ".join(active) + " | " + " | ".join(f"astrafs/{o}" for o in others) + " | floor |"
print(hdr)
print("|" + "---|" * (hdr.count("|") - 1))
for name, unit, higher in rows:
    if any(name not in res[fs] for fs in active): continue  # workload not run
    vals = [res[fs][name] for fs in active]
    cells = [f"{v:,.1f}" if v < 100 else f"{v:,.0f}" for v in vals]
    ratios = []
    for o in others:
        a, b = res["astrafs"][name], res[o][name]
        ratios.append(f"{(a / b if higher else b / a):.2f}" if "astrafs" in active else "-")
    fl = ""
    if name in floors and "astrafs" in active and floors[name][0] in active:
        base, lim = floors[name]
        a, b = res["astrafs"][name], res[base][name]
        ratio = a / b
        fl = f"{lim:.2f} of {base}: {'PASS' if ratio >= lim else 'FAIL'}"
    print(f"| {name} | {unit} | " + " | ".join(cells) + " | " + " | ".join(ratios) + f" | {fl} |")
print()
print("Ratios are AstraFS relative to the other file system, higher is better for AstraFS (times: other/astrafs).")
print("create/stat/unlink include the fsync(dir) + syncfs that ends the phase; *-nosync leave it out.")
if meta_repeat > 1:
    print(f"create/stat/unlink are the median of {meta_repeat} rounds; every round (files/s, ratio to ext4):")
    print()
    print("| round | " + " | ".join(f"{ph} {fs}" for ph in ("create", "stat", "unlink") for fs in active) + " | " +
          " | ".join(f"{ph} astrafs/ext4" for ph in ("create", "stat", "unlink")) + " |")
    print("|---|" + "---|" * (3 * len(active) + 3))
    for i in range(meta_repeat):
        if any(len(meta_rounds[fs]) <= i for fs in active): break
        rate = {(ph, fs): meta_rounds[fs][i]["files"] / (meta_rounds[fs][i][ph + "_s"] + meta_rounds[fs][i][ph + "_sync_s"])
                for ph in ("create", "stat", "unlink") for fs in active}
        cells = [f"{rate[(ph, fs)]:,.0f}" for ph in ("create", "stat", "unlink") for fs in active]
        ratios = [f"{rate[(ph, 'astrafs')] / rate[(ph, 'ext4')]:.2f}" if "astrafs" in active and "ext4" in active else "-"
                  for ph in ("create", "stat", "unlink")]
        print(f"| {i + 1} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
if all("rand-read-qd1-lat" in res[fs] for fs in active):
    print()
    print("Mean completion latency, microseconds (fio clat):")
    print()
    print("| workload | " + " | ".join(active) + " |")
    print("|---|" + "---|" * len(active))
    for name in ("rand-read-qd1", "rand-read-qd32", "rand-write-qd1", "rand-write-qd32"):
        print(f"| {name} | " + " | ".join(f"{res[fs][name + '-lat']:.0f}" for fs in active) + " |")
print()
print("Per phase: wall time, 1-min load average before/after, machine busy CPU-seconds, astrafs-mount CPU-seconds:")
print()
print("| fs | phase | wall s | load before | load after | machine busy CPU s | astrafs-mount CPU s |")
print("|---|---|---|---|---|---|---|")
for line in open(f"{out}/phases.tsv").read().splitlines()[1:]:
    print("| " + " | ".join(line.split("\t")) + " |")
loads = [float(l.split()[1]) for l in open(f"{out}/loadavg.log") if len(l.split()) >= 2]
if loads:
    print()
    print(f"1-min load average during the run (sampled every 2 s): min {min(loads):.2f}, mean {sum(loads)/len(loads):.2f}, max {max(loads):.2f}")
EOF
cat "$OUT/notes.txt" "$OUT/skipped.txt" 2>/dev/null || true
echo "results: $OUT"
