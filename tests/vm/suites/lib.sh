#!/bin/bash
# tests/vm/suites/lib.sh — runs INSIDE the guest: common helpers, then sources the suite.
#   lib.sh SUITE.sh     (env: ASTRA_BUILD, ASTRA_SRC, ASTRA_WORK set by run-suite.sh)
# Helpers: step (a titled section), fail (message, non-zero exit), ublk (the CLI),
# fio_verify (fio with crc32c verification, fatal on the first mismatch), make_pool (formats a
# pool on the guest's emulated NVMe drives), cleanup on exit (servers stopped, devices removed).
set -euo pipefail
UBLK=$ASTRA_BUILD/blockdev/astrafs-ublk
MKPOOL=$ASTRA_BUILD/tests/vm/vm_mkpool
MEMDISK=$ASTRA_BUILD/tests/vm/ublk_memdisk
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
cd /tmp   # writable (the caller's directory is the read-only host root in the guest)

STEP_T0=$(date +%s.%N)
step() {
  local now; now=$(date +%s.%N)
  echo "== [$(awk -v a="$STEP_T0" -v b="$now" 'BEGIN { printf "%6.1f", b - a }') s] $*"
}
fail() { echo "FAIL: $*"; exit 1; }
ublk() { "$UBLK" "$@"; }

source "$(dirname "${BASH_SOURCE[0]}")/lib_fio.sh"

# make_pool K M: formats /dev/vmh/nvme0n1 .. nvme(K+M-1)n1; sets MEMBERS (comma-separated).
make_pool() {
  local k=$1 m=$2 i list=()
  for ((i = 0; i < k + m; i++)); do list+=("/dev/vmh/nvme${i}n1"); done
  "$MKPOOL" --k "$k" --m "$m" "${list[@]}"
  MEMBERS=$(IFS=,; echo "${list[*]}")
}

cleanup() {
  local rc=$?
  for id in $(ls /run/astrafs/ublk 2>/dev/null | sed -n 's/^\([0-9]*\)\.json$/\1/p'); do
    "$UBLK" del "$id" >/dev/null 2>&1 || true
  done
  if [ $rc -ne 0 ]; then
    echo "--- server logs"; cat /run/astrafs/ublk/*.log 2>/dev/null | tail -40 || true
  fi
  cp /run/astrafs/ublk/*.log "$ASTRA_WORK/" 2>/dev/null || true
  exit $rc
}
trap cleanup EXIT

echo "== kernel $(uname -r), $(nproc) CPUs, suite $(basename "$1")"
source "$1"
step "suite passed"
