#!/bin/bash
# tests/vm/run-suite.sh — what ctest runs for label `vm`: boots one guest and runs one suite in it.
#
#   run-suite.sh BUILD_DIR [run-vm.sh options] -- SUITE.sh
# Exit status: the suite's; 77 (ctest SKIP_RETURN_CODE) when the harness is not set up on this
# machine (no qemu, or tests/vm/setup.sh has not been run) — CI runs setup.sh, so it never skips.
# Each run gets a fresh work directory BUILD_DIR/vm-work/<suite>, shared read-write with the guest
# (logs and any pool files the suite wants to keep).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(readlink -f "$1"); shift
vm_opts=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do vm_opts+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
suite=$(readlink -f "$1")
cache=${ASTRA_VM_DIR:-$HOME/.cache/astrafs-vm}
if ! command -v qemu-system-x86_64 >/dev/null || [ ! -e "$cache/kernel" ] ||
   [ ! -f "$cache/initramfs.cpio.gz" ]; then
  echo "SKIP: the VM harness is not set up (run tests/vm/setup.sh as root)"
  exit 77
fi
name=$(basename "$suite" .sh)
work=$build/vm-work/$name
rm -rf "$work"
mkdir -p "$work"
cd "$work"
# The console is also kept in $work/console.log (ctest drops the output of a test it times out).
set +e
# The guest mounts its own tmpfs over /tmp, /run, /root and /var/tmp: share the source and build
# trees (and with them the work directory) explicitly, wherever the checkout lives.
src=$(dirname "$(dirname "$here")")
shares=(--rw "$src")
case "$build/" in "$src/"*) ;; *) shares+=(--rw "$build") ;; esac
boot() {
  "$here/run-vm.sh" "${shares[@]}" "${vm_opts[@]}" -- \
    env ASTRA_BUILD="$build" ASTRA_SRC="$(dirname "$(dirname "$here")")" ASTRA_WORK="$work" \
        ASTRA_UBLK_RUN_DIR=/run/astrafs/ublk \
    bash "$here/suites/lib.sh" "$suite" 2>&1 | tee "$work/console.log"
  return "${PIPESTATUS[0]}"
}
boot
rc=$?
# A guest whose kernel died while booting, before vm-init.sh started the suite ("test starts"),
# ran none of the suite: boot once more, and say so. Seen once under TCG: an int3 oops in
# sched_clock_cpu during SMP bring-up, 1.6 s into boot. A guest that died after the suite
# started is a failure of the suite (125) and is not retried.
if [ "$rc" = 125 ] && ! grep -q "test starts at" "$work/console.log"; then
  mv "$work/console.log" "$work/console-failed-boot.log"
  echo "run-suite.sh: the guest died before the suite started (console-failed-boot.log); booting again"
  boot
  rc=$?
fi
exit "$rc"
