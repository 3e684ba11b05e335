#!/bin/bash
# Installs every Debian package AstraFS needs to build and test, and fetches the upstream C sources
# the real-workload tests build (tests/fs/real_workload_test.cc). Idempotent. Run as root.
set -euo pipefail
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
PKGS=(build-essential cmake ninja-build pkg-config git
      libfuse3-dev fuse3 liburing-dev libisal-dev libxxhash-dev libzstd-dev
      libboost-program-options-dev libspdlog-dev libabsl-dev
      libgtest-dev libgmock-dev libbenchmark-dev
      fio attr acl xz-utils bzip2 e2fsprogs util-linux
      linux-source-6.1)
missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Real upstream C projects for the build-on-a-mount test: the .orig tarballs of Debian's source
# packages, kept in SRC_DIR. Needs deb-src entries; when the machine has none, they are derived
# from its own Debian entries (same mirror, suites and components), in a file of our own.
SRC_DIR=${ASTRAFS_SOURCES_DIR:-/var/cache/astrafs/sources}
SRC_PKGS=(zlib gzip)
need=()
for s in "${SRC_PKGS[@]}"; do
  compgen -G "$SRC_DIR/${s}_*.orig.tar.*" >/dev/null || need+=("$s")
done
if [ ${#need[@]} -gt 0 ]; then
  DEBSRC=/etc/apt/sources.list.d/astrafs-deb-src.sources
  fresh=
  if ! grep -Eqs '^(Types:.*deb-src|deb-src )' \
       /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; then
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
      sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources | $SUDO tee "$DEBSRC" >/dev/null
    elif grep -qs '^deb ' /etc/apt/sources.list; then
      sed -n 's/^deb /deb-src /p' /etc/apt/sources.list \
        | $SUDO tee /etc/apt/sources.list.d/astrafs-deb-src.list >/dev/null
    else
      echo "setup: no Debian apt sources found to derive deb-src entries from" >&2; exit 1
    fi
    fresh=1
  fi
  if [ -n "$fresh" ] || ! compgen -G '/var/lib/apt/lists/*_Sources*' >/dev/null; then
    $SUDO apt-get update -q
  fi
  $SUDO mkdir -p "$SRC_DIR"
  # The tarballs are checked against the archive's signed Sources index by apt itself.
  (cd "$SRC_DIR" && $SUDO apt-get source -q --download-only "${need[@]}")
  for s in "${need[@]}"; do
    compgen -G "$SRC_DIR/${s}_*.orig.tar.*" >/dev/null \
      || { echo "setup: apt-get source $s gave no .orig tarball in $SRC_DIR" >&2; exit 1; }
  done
fi
echo "setup: all build and test packages present"
