# NvmeDevice with polled completions (IORING_SETUP_IOPOLL): the guest boots with
# nvme.poll_queues=2, and nvme_device_test runs with ASTRA_NVME_IOPOLL=1, so every NvmeDevice it
# opens reaps by polling (read/write/flush/trim with byte checks, 300 requests at once, fixed
# buffers, a command beyond the namespace fails without hanging, a pool on a passthrough member,
# an idle polled device does not spin). ASTRA_NVME_EXPECT_IOPOLL=1 makes the test fail if a
# device falls back to interrupts. See doc/nvme.md.
NVME_TEST=$ASTRA_BUILD/tests/engine/nvme_device_test

step "poll queues on the namespace"
blk=$(readlink -f /dev/vmh/nvme0n1)
io_poll=$(cat "/sys/block/${blk##*/}/queue/io_poll")
echo "${blk##*/}: io_poll $io_poll, nvme poll_queues $(cat /sys/module/nvme/parameters/poll_queues)"
[ "$io_poll" = 1 ] || fail "${blk##*/} has no poll queues (io_poll $io_poll)"

step "nvme_device_test with ASTRA_NVME_IOPOLL=1"
rc=0
ASTRA_NVME_IOPOLL=1 ASTRA_NVME_EXPECT_IOPOLL=1 "$NVME_TEST" --gtest_color=no \
  > /tmp/nvme_test.log 2>&1 || rc=$?
grep -v '^\[ *\(RUN\|OK\) *\]' /tmp/nvme_test.log || true
[ "$rc" = 0 ] || fail "nvme_device_test exit $rc"
if grep -q '^\[  SKIPPED \]' /tmp/nvme_test.log; then fail "nvme_device_test skipped in the VM"; fi
grep -q 'completions polled' /tmp/nvme_test.log || fail "the device did not report polling"
