# The generic ublk machinery on its own (RAM target): both data-transfer modes, 2 queues, QD 32,
# 4 KiB and 128 KiB random writes with crc32c verification, discard and write-zeroes reading zeros.
step "features + USER_COPY mode, 2 queues"
"$MEMDISK" --size 64 --queues 2 --depth 32 -- bash -c "
  set -e; source $ASTRA_SRC/tests/vm/suites/lib_fio.sh
  fio_verify mem-uc-4k \$UBLK_DEV --rw=randwrite --bs=4k --size=32M --iodepth=32
  fio_verify mem-uc-128k \$UBLK_DEV --rw=randwrite --bs=128k --size=32M --iodepth=32
  blkdiscard \$UBLK_DEV; cmp -n 64M \$UBLK_DEV /dev/zero
  dd if=/dev/urandom of=\$UBLK_DEV bs=1M count=4 oflag=direct status=none
  blkdiscard -z \$UBLK_DEV; cmp -n 64M \$UBLK_DEV /dev/zero"
step "buffer-copy mode"
"$MEMDISK" --size 32 --buffer-copy -- bash -c "
  set -e; source $ASTRA_SRC/tests/vm/suites/lib_fio.sh
  fio_verify mem-bc-4k \$UBLK_DEV --rw=randwrite --bs=4k --size=16M --iodepth=32"
