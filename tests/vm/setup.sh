#!/bin/bash
# tests/vm/setup.sh — prepares the qemu (TCG) harness used by `ctest -L vm`.
#
# The development and CI hosts run a kernel without ublk_drv and without an NVMe driver, so the
# block-device tests boot Debian's own 6.12 kernel under qemu instead. This script:
#   1. installs the host packages the harness needs (qemu-system-x86, busybox-static, fio,
#      nvme-cli, kmod, cpio, xz-utils, plus e2fsprogs/xfsprogs/util-linux used by the guest suites,
#      which run the host's binaries);
#   2. downloads (never installs) linux-image-6.12.*-amd64 with `apt-get download`, unpacks it
#      into the cache and runs depmod there;
#   3. builds a busybox initramfs whose /init is tests/vm/vm-init.sh.
# Idempotent and cheap when everything is cached (a few seconds); ~1-2 minutes from scratch.
#
# Env:  ASTRA_VM_DIR   cache directory (default $HOME/.cache/astrafs-vm)
#       ASTRA_VM_KPKG  kernel package to use (default: what linux-image-6.12-amd64 depends on)
# Run as root (apt-get). Prints the cache directory on success.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${ASTRA_VM_DIR:-$HOME/.cache/astrafs-vm}
mkdir -p "$cache/debs" "$cache/kernels"

log() { echo "vm-setup: $*"; }

# ---- 1. host packages -------------------------------------------------------------------------
pkgs=(qemu-system-x86 busybox-static fio nvme-cli kmod cpio xz-utils zstd
      e2fsprogs xfsprogs util-linux)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
apt_fresh() { [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -720 2>/dev/null | head -1)" ]; }
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt_fresh || apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# ---- 2. the guest kernel ----------------------------------------------------------------------
# Bookworm's own 6.1 kernel is built without CONFIG_BLK_DEV_UBLK; bookworm-security carries 6.12
# (meta package linux-image-6.12-amd64). Use the generic flavour: the cloud one lacks 9p.
kpkg=${ASTRA_VM_KPKG:-}
if [ -z "$kpkg" ]; then
  kpkg=$(apt-cache depends linux-image-6.12-amd64 2>/dev/null |
         sed -n 's/^ *Depends: \(linux-image-6\.12\.[^ ]*-amd64\)$/\1/p' | head -1)
  if [ -z "$kpkg" ]; then
    apt-get update -q
    kpkg=$(apt-cache depends linux-image-6.12-amd64 2>/dev/null |
           sed -n 's/^ *Depends: \(linux-image-6\.12\.[^ ]*-amd64\)$/\1/p' | head -1)
  fi
fi
[ -n "$kpkg" ] || { echo "vm-setup: no linux-image-6.12 package found (is bookworm-security in the apt sources?)" >&2; exit 1; }
kdir=$cache/kernels/$kpkg
if [ ! -d "$kdir/boot" ]; then
  log "downloading $kpkg"
  (cd "$cache/debs" && apt-get download -q "$kpkg")
  rm -rf "$kdir.tmp" && mkdir -p "$kdir.tmp"
  dpkg-deb -x "$(ls -t "$cache"/debs/"${kpkg}"_*.deb | head -1)" "$kdir.tmp"
  mv "$kdir.tmp" "$kdir"
fi
kver=$(ls "$kdir/lib/modules" | head -1)
[ -f "$kdir/lib/modules/$kver/modules.dep" ] || depmod -b "$kdir" "$kver"
ln -sfn "kernels/$kpkg" "$cache/kernel"
log "kernel $kver from $kpkg"

# ---- 3. the initramfs -------------------------------------------------------------------------
# busybox + the modules needed to mount the host root over virtio-9p (decompressed, in load order)
# + vm-init.sh as /init. Everything else (nvme, ublk_drv) is modprobe'd later from the unpacked
# package, which the guest reaches through that 9p mount.
moddir=$kdir/lib/modules/$kver
stage=$(mktemp -d "$cache/initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,host,mods}
cp /bin/busybox "$stage/bin/busybox"
for applet in sh mount umount mkdir insmod cat cut sleep poweroff chroot echo grep sed ls ln \
              wc dmesg tail sync; do
  ln -s busybox "$stage/bin/$applet"
done

declare -a load_order=()
resolve() {  # $1: module path relative to $moddir; dependencies are appended first
  local mod=$1 dep
  for dep in $(awk -F': ' -v m="$mod" '$1 == m { print $2 }' "$moddir/modules.dep"); do
    resolve "$dep"
  done
  case " ${load_order[*]-} " in *" $mod "*) ;; *) load_order+=("$mod") ;; esac
}
for name in virtio_pci 9p 9pnet_virtio; do
  grep -q "/$name\.ko\$" "$moddir/modules.builtin" && continue   # built in: nothing to load
  rel=$(awk -F: -v n="/$name.ko" 'index($1, n) { print $1; exit }' "$moddir/modules.dep")
  [ -n "$rel" ] || { echo "vm-setup: module $name missing from $kpkg" >&2; exit 1; }
  resolve "$rel"
done
: > "$stage/mods/order"
for rel in "${load_order[@]}"; do
  base=$(basename "$rel"); base=${base%.xz}; base=${base%.zst}
  case "$rel" in
    *.xz)  xz -dc "$moddir/$rel" > "$stage/mods/$base" ;;
    *.zst) zstd -qdc "$moddir/$rel" > "$stage/mods/$base" ;;
    *)     cp "$moddir/$rel" "$stage/mods/$base" ;;
  esac
  echo "$base" >> "$stage/mods/order"
done
install -m 0755 "$here/vm-init.sh" "$stage/init"
(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) > "$cache/initramfs.cpio.gz.tmp"
mv "$cache/initramfs.cpio.gz.tmp" "$cache/initramfs.cpio.gz"
log "initramfs with $(tr '\n' ' ' < "$stage/mods/order")"
log "ready in $cache"
