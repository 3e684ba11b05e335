#!/bin/bash
# Installs what the build and tests need, builds (release preset), and runs every test:
# unit, crash (power-loss simulation), integration (real FUSE mounts) and vm (qemu: ublk, NVMe).
# Usage: scripts/test.sh [ctest args...]   e.g. scripts/test.sh -LE vm   (skip the VM suites)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! bash tests/vm/setup.sh; then
  # On a machine without the VM harness the vm suites report "skipped"; CI must have them.
  if [ "${CI:-}" = true ]; then echo "test.sh: VM harness setup failed" >&2; exit 1; fi
  echo "test.sh: VM harness setup failed; vm suites will be skipped" >&2
fi
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
cd build/release
# Label `bench` (benchmarks in the VM) is run by hand: ctest -L bench.
ctest --output-on-failure --no-tests=error -LE bench "$@"
