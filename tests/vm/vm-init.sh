#!/bin/sh
# tests/vm/vm-init.sh — /init of the harness initramfs (busybox sh, PID 1 in the guest).
#
# It mounts the host's root read-only over virtio-9p, loads the requested modules from the unpacked
# kernel package, gives the emulated NVMe drives stable names, runs the test command chrooted into
# the host root, writes the command's exit status to the run directory and powers off.
#
# Kernel command line (written by run-vm.sh):
#   astra.cache=DIR harness cache on the host (9p tag "cache", read-only), re-mounted over the guest
#                   tmpfs when it lives under /root or /tmp (it holds the kernel modules)
#   astra.run=DIR   run directory on the host (9p tag "run", read-write): holds cmd.sh; gets "rc"
#   astra.rw=A,B    more host directories shared read-write (tags rw0, rw1, ...) at the same paths
#   astra.kdir=DIR  unpacked kernel package on the host (modprobe -d)
#   astra.mods=a,b  modules to load before the test
#   astra.cwd=DIR   working directory of the test command
#   astra.nvme=N    NVMe controllers to wait for (serials astranvme0 .. N-1)
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

note() { echo "VM: $*"; }
fatal() { note "FATAL: $*"; echo "VM_EXIT=255"; poweroff -f; sleep 10; }

cache= run_dir= rw_dirs= kdir= mods= cwd=/ nvme=0
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    astra.cache=*) cache=${arg#*=} ;;
    astra.run=*)  run_dir=${arg#*=} ;;
    astra.rw=*)   rw_dirs=${arg#*=} ;;
    astra.kdir=*) kdir=${arg#*=} ;;
    astra.mods=*) mods=${arg#*=} ;;
    astra.cwd=*)  cwd=${arg#*=} ;;
    astra.nvme=*) nvme=${arg#*=} ;;
  esac
done

for m in $(cat /mods/order); do insmod "/mods/$m" || fatal "insmod $m"; done

p9=trans=virtio,version=9p2000.L,msize=512000
# cache=loose is safe for the host root: nothing changes it while the guest runs (the read-write
# shares below are mounted without caching).
mount -t 9p -o "$p9,ro,cache=loose" hostroot /host || fatal "cannot mount the host root"
mount -t proc proc /host/proc
mount -t sysfs sysfs /host/sys
mount -t devtmpfs devtmpfs /host/dev
mkdir -p /host/dev/pts /host/dev/shm 2>/dev/null
mount -t devpts devpts /host/dev/pts
mount -t tmpfs tmpfs /host/dev/shm
for d in /tmp /run /root /var/tmp; do mount -t tmpfs tmpfs "/host$d"; done
mount -t configfs configfs /host/sys/kernel/config 2>/dev/null
if [ -n "$cache" ]; then
  mkdir -p "/host$cache" 2>/dev/null
  mount -t 9p -o "$p9,ro" cache "/host$cache" || fatal "cannot mount $cache"
fi
[ -n "$run_dir" ] && { mount -t 9p -o "$p9,rw" run "/host$run_dir" || fatal "cannot mount $run_dir"; }
i=0
for d in $(echo "$rw_dirs" | sed 's/,/ /g'); do
  mkdir -p "/host$d" 2>/dev/null   # only possible under a guest tmpfs such as /tmp
  mount -t 9p -o "$p9,rw" "rw$i" "/host$d" || fatal "cannot mount $d"
  i=$((i + 1))
done

env="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb"
env="$env LANG=C.UTF-8 ASTRA_VM_GUEST=1 ASTRA_VM_RUN=$run_dir"
if [ -n "$mods" ] && [ -n "$kdir" ]; then
  # The host has no /lib/modules for this kernel: the host's modprobe reads the unpacked package.
  chroot /host /usr/bin/env -i $env /sbin/modprobe -a -d "$kdir" $(echo "$mods" | sed 's/,/ /g') ||
    note "modprobe $mods failed"
fi

# NVMe controllers probe asynchronously, so nvme0 need not be the first -device. Wait for every
# namespace, then link /dev/vmh/nvme<i>n<ns> and /dev/vmh/ng<i>n<ns> by controller serial.
if [ "$nvme" -gt 0 ]; then
  tries=0
  while [ "$(ls -d /sys/class/nvme/nvme*/nvme*n1 2>/dev/null | wc -l)" -lt "$nvme" ]; do
    tries=$((tries + 1))
    [ $tries -gt 300 ] && { note "WARNING: fewer than $nvme NVMe namespaces appeared"; break; }
    sleep 0.1
  done
  mkdir -p /host/dev/vmh
  for ctrl in /sys/class/nvme/nvme*; do
    serial=$(cat "$ctrl/serial"); idx=${serial#astranvme}; idx=${idx%% *}; ctrl=${ctrl##*/}
    for ns in /sys/class/nvme/$ctrl/${ctrl}n*; do
      [ -e "$ns" ] || continue
      ns=${ns##*/}; nsid=${ns##*n}
      ln -sf "../$ns" "/host/dev/vmh/nvme${idx}n$nsid"
      ln -sf "../ng${ctrl#nvme}n$nsid" "/host/dev/vmh/ng${idx}n$nsid"
    done
  done
fi

note "test starts at $(cut -d' ' -f1 /proc/uptime) s"
chroot /host /usr/bin/env -i $env /bin/sh -c 'cd "$1" && exec /bin/bash "$2/cmd.sh"' - "$cwd" "$run_dir"
rc=$?
note "test ends at $(cut -d' ' -f1 /proc/uptime) s"
if [ $rc -ne 0 ]; then note "test failed (rc=$rc); last kernel messages:"; dmesg | tail -40; fi
[ -n "$run_dir" ] && echo $rc > "/host$run_dir/rc"
echo "VM_EXIT=$rc"
sync
umount -a -r 2>/dev/null
poweroff -f
