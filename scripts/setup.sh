#!/bin/bash
# Installs every Debian package AstraFS needs to build and test. Idempotent. Run as root.
set -euo pipefail
PKGS=(build-essential cmake ninja-build pkg-config git
      libfuse3-dev fuse3 liburing-dev libisal-dev libxxhash-dev libzstd-dev
      libboost-program-options-dev libspdlog-dev libabsl-dev
      libgtest-dev libgmock-dev libbenchmark-dev
      fio attr acl xz-utils e2fsprogs util-linux)
missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
echo "setup: all build and test packages present"
