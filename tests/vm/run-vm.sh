#!/bin/bash
# tests/vm/run-vm.sh — boots a throw-away qemu guest (Debian 6.12 kernel, ublk_drv and nvme loaded,
# emulated NVMe drives), runs one command in it as root and exits with that command's status.
#
#   run-vm.sh [options] [--] command [args...]
#     --nvme N          emulated NVMe controllers, one namespace each (default 0, at most 8)
#     --nvme-size SIZE  size of each sparse backing file (default 1G)
#     --nvme-opts OPTS  extra qemu "-device nvme" properties (e.g. logical_block_size=4096)
#     --rw DIR          share host DIR read-write at the same path in the guest (repeatable)
#     --mods a,b        modules to load in the guest (default nvme,ublk_drv)
#     --append ARGS     extra kernel command line (module parameters work: nvme.poll_queues=1)
#     --mem SIZE        guest RAM (default 2G)           --smp N   guest CPUs (default 2)
#     --timeout SEC     kill the guest after SEC seconds (default 900; exit status 124)
#     --kvm             use KVM instead of TCG (only where /dev/kvm works)
#     --verbose         show the kernel's boot messages
#
# The guest's root is the host's / over virtio-9p, read-only, so host-built binaries run unchanged;
# /tmp, /run, /root and /var/tmp are the guest's own tmpfs. The command runs in the caller's working
# directory. NVMe numbering is racy (asynchronous probe): use /dev/vmh/nvme<i>n1 (block) and
# /dev/vmh/ng<i>n1 (passthrough), <i> being the controller's position on the qemu command line.
# Exit status: the command's; 2 = harness not set up (run tests/vm/setup.sh); 124 = timeout;
# 125 = the guest died without reporting a status. The console is also kept in the run directory
# when ASTRA_VM_KEEP=1.
set -euo pipefail

cache=${ASTRA_VM_DIR:-$HOME/.cache/astrafs-vm}
nvme=0 nvme_size=1G nvme_opts= mods=nvme,ublk_drv append_extra= mem=2G smp=2 timeout=900
accel=tcg verbose=0
rw_dirs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --nvme) nvme=$2; shift 2 ;;
    --nvme-size) nvme_size=$2; shift 2 ;;
    --nvme-opts) nvme_opts=,$2; shift 2 ;;
    --rw) rw_dirs+=("$(readlink -f "$2")"); shift 2 ;;
    --mods) mods=$2; shift 2 ;;
    --append) append_extra="$append_extra $2"; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --kvm) accel=kvm; shift ;;
    --verbose|-v) verbose=1; shift ;;
    --) shift; break ;;
    -*) echo "run-vm.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { sed -n '4,17p' "$0" >&2; exit 2; }
[ "$nvme" -le 8 ] || { echo "run-vm.sh: at most 8 NVMe controllers" >&2; exit 2; }

# Returns 0 when the harness can boot a guest; used by the ctest wrapper to skip cleanly.
if ! command -v qemu-system-x86_64 >/dev/null || [ ! -e "$cache/kernel" ] ||
   [ ! -f "$cache/initramfs.cpio.gz" ]; then
  echo "run-vm.sh: the VM harness is not set up: run tests/vm/setup.sh (as root)" >&2
  exit 2
fi
kdir=$(readlink -f "$cache/kernel")
kver=$(ls "$kdir/lib/modules" | head -1)
kernel=$kdir/boot/vmlinuz-$kver

mkdir -p "$cache/runs"
run=$(mktemp -d "$cache/runs/run.XXXXXX")
cleanup() { [ "${ASTRA_VM_KEEP:-0}" = 1 ] && echo "run-vm.sh: kept $run" >&2 || rm -rf "$run"; }
trap cleanup EXIT
{ printf 'set -e\n'; printf '%q ' "$@"; printf '\n'; } > "$run/cmd.sh"

args=(-M q35 -m "$mem" -smp "$smp" -display none -no-reboot -nodefaults -serial stdio
      -monitor none -kernel "$kernel" -initrd "$cache/initramfs.cpio.gz")
if [ "$accel" = kvm ]; then args+=(-accel kvm -cpu host)
else args+=(-accel tcg,thread=multi -cpu max); fi
args+=(-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
       -virtfs "local,path=$cache,mount_tag=cache,security_model=none,readonly=on"
       -virtfs "local,path=$run,mount_tag=run,security_model=none")
rw_list=
for i in "${!rw_dirs[@]}"; do
  args+=(-virtfs "local,path=${rw_dirs[$i]},mount_tag=rw$i,security_model=none")
  rw_list+=${rw_list:+,}${rw_dirs[$i]}
done
for ((i = 0; i < nvme; i++)); do
  truncate -s "$nvme_size" "$run/nvme$i.img"
  args+=(-drive "file=$run/nvme$i.img,if=none,id=nvm$i,format=raw,cache=unsafe,aio=threads,discard=unmap"
         -device "nvme,serial=astranvme$i,drive=nvm$i$nvme_opts")
done

cmdline="console=ttyS0 panic=-1 mitigations=off nokaslr tsc=reliable"
[ "$verbose" = 1 ] || cmdline+=" quiet loglevel=1"
cmdline+="$append_extra astra.cache=$cache astra.run=$run astra.kdir=$kdir astra.mods=$mods astra.cwd=$PWD"
cmdline+=" astra.nvme=$nvme${rw_list:+ astra.rw=$rw_list}"
args+=(-append "$cmdline")

start=$(date +%s.%N)
set +e
timeout --foreground -k 5 "$timeout" qemu-system-x86_64 "${args[@]}" </dev/null \
  2>"$run/qemu.stderr" | stdbuf -o0 tr -d '\r' | tee "$run/console.log"
qemu_rc=${PIPESTATUS[0]}
set -e
end=$(date +%s.%N)
if [ -f "$run/rc" ]; then rc=$(cat "$run/rc")
elif [ "$qemu_rc" = 124 ]; then echo "run-vm.sh: guest killed after ${timeout}s" >&2; rc=124
else
  rc=$(sed -n 's/^VM_EXIT=\([0-9]*\)$/\1/p' "$run/console.log" | tail -1)
  [ -n "$rc" ] || { echo "run-vm.sh: the guest reported no status (qemu exit $qemu_rc)" >&2; rc=125; }
fi
grep -v '^$' "$run/qemu.stderr" >&2 || true
echo "run-vm.sh: $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }') s, exit $rc" >&2
exit "$rc"
