// UblkDevice: one /dev/ublkbN served by this process: its /dev/ublkcN and its queues.
//
// Create(): ADD_DEV, SET_PARAMS, queue threads fetching, START_DEV.
// Recover(): re-attach to a device whose server died (UBLK_F_USER_RECOVERY): wait for the kernel
//   to quiesce it, START_USER_RECOVERY, queue threads fetching, END_USER_RECOVERY. Requests the
//   dead server held are re-issued by the kernel when it offered USER_RECOVERY_REISSUE.
// Stop(): STOP_DEV (the kernel drains in-flight requests through us), queue threads leave.
// Delete(): DEL_DEV (after Stop()).
//
// Thread safety: one controlling thread per device; the BlockTarget must outlive the device.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "astra/result.h"
#include "astra/status.h"
#include "blockdev/block_target.h"
#include "blockdev/ublk_control.h"
#include "blockdev/ublk_queue.h"

namespace astra::ublk {

struct DeviceOptions {
  uint64_t size_bytes = 0;              // multiple of logical_block_bytes
  uint16_t queues = 1;                  // 1..kQueuesMax
  uint16_t depth = 64;                  // 1..kQueueDepthMax
  uint32_t max_io_bytes = 512 * 1024;   // largest request
  uint32_t logical_block_bytes = 4096;  // 512 or 4096
  uint32_t workers_per_queue = 2;
  int32_t dev_id = -1;                  // -1: the kernel picks
  bool user_copy = true;                // use USER_COPY when the kernel offers it
  bool recovery = true;                 // ask for USER_RECOVERY (+REISSUE) when offered
  uint32_t discard_max_bytes = 1u << 30;
};

// The flags ADD_DEV should ask for given what the kernel offers (never more).
uint64_t ChooseDeviceFlags(uint64_t kernel_features, const DeviceOptions& opts);
// Parameters for SET_PARAMS: block sizes, discard and write-zeroes limits, volatile cache + FUA.
ublk_params MakeParams(const DeviceOptions& opts, uint32_t max_io_bytes);

// Sums of every queue's QueueStats (ublk_queue.h), plain numbers.
struct DeviceTotals {
  uint64_t requests = 0, errors = 0;
  uint64_t dispatch_ns = 0, copy_ns = 0, target_ns = 0, complete_ns = 0;
};

class UblkDevice {
 public:
  static Result<std::unique_ptr<UblkDevice>> Create(UblkControl* ctrl, const DeviceOptions& opts,
                                                    BlockTarget* target);
  // `workers_per_queue`: geometry (queues, depth, flags, block size) comes from the kernel's
  // record; `expect_logical_block_bytes` (0: any) must match the kernel's (kInvalidArgument).
  static Result<std::unique_ptr<UblkDevice>> Recover(UblkControl* ctrl, uint32_t dev_id,
                                                     BlockTarget* target,
                                                     uint32_t workers_per_queue,
                                                     uint32_t expect_logical_block_bytes = 0,
                                                     int wait_quiesce_ms = 30000);
  ~UblkDevice();

  Status Stop();
  Status Delete();

  uint32_t id() const { return info_.dev_id; }
  uint64_t flags() const { return info_.flags; }
  uint16_t queues() const { return info_.nr_hw_queues; }
  uint16_t depth() const { return info_.queue_depth; }
  bool user_copy() const { return (info_.flags & kFeatUserCopy) != 0; }
  std::string block_path() const { return "/dev/ublkb" + std::to_string(id()); }
  std::string char_path() const { return "/dev/ublkc" + std::to_string(id()); }
  uint64_t requests() const;
  DeviceTotals totals() const;
  // The logical block size the kernel was given (SET_PARAMS), 512 or 4096.
  uint32_t logical_block_bytes() const { return logical_block_bytes_; }

 private:
  UblkDevice(UblkControl* ctrl, BlockTarget* target) : ctrl_(ctrl), target_(target) {}
  Status OpenCharDev();
  Status StartQueues(uint32_t workers_per_queue);
  void StopQueues();

  UblkControl* const ctrl_;
  BlockTarget* const target_;
  ublksrv_ctrl_dev_info info_{};
  int cdev_fd_ = -1;
  std::vector<std::unique_ptr<UblkQueue>> queues_;
  bool stopped_ = true;
  uint32_t logical_block_bytes_ = 4096;
};

}  // namespace astra::ublk
