#include "blockdev/ublk_device.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <chrono>
#include <thread>

namespace astra::ublk {
namespace {

uint8_t Log2(uint32_t v) {
  uint8_t s = 0;
  while ((1u << s) < v) s++;
  return s;
}

}  // namespace

uint64_t ChooseDeviceFlags(uint64_t kernel_features, const DeviceOptions& opts) {
  uint64_t flags = 0;
  if (kernel_features & kFeatCmdIoctlEncode) flags |= kFeatCmdIoctlEncode;
  if (opts.user_copy && (kernel_features & kFeatUserCopy)) flags |= kFeatUserCopy;
  if (opts.recovery && (kernel_features & kFeatUserRecovery)) {
    flags |= kFeatUserRecovery;
    // Requests the dead server held are re-queued instead of failed: a user that is waiting
    // sees no error. Re-issuing a block write is harmless (same bytes, same place).
    if (kernel_features & kFeatUserRecoveryReissue) flags |= kFeatUserRecoveryReissue;
  }
  return flags;
}

ublk_params MakeParams(const DeviceOptions& opts, uint32_t max_io_bytes) {
  assert(opts.logical_block_bytes == 512 || opts.logical_block_bytes == 4096);
  assert(opts.size_bytes % opts.logical_block_bytes == 0);
  ublk_params p{};
  p.len = sizeof(p);
  p.types = UBLK_PARAM_TYPE_BASIC | UBLK_PARAM_TYPE_DISCARD;
  // A volatile write cache makes the kernel send FLUSH (fsync, O_SYNC, journal commits); FUA
  // lets it mark single writes that must be durable on completion.
  p.basic.attrs = UBLK_ATTR_VOLATILE_CACHE | UBLK_ATTR_FUA;
  p.basic.logical_bs_shift = Log2(opts.logical_block_bytes);
  p.basic.physical_bs_shift = 12;  // the engine's block
  p.basic.io_min_shift = 12;
  p.basic.io_opt_shift = 12;
  p.basic.max_sectors = max_io_bytes >> 9;
  p.basic.dev_sectors = opts.size_bytes >> 9;
  p.discard.discard_granularity = 4096;
  p.discard.discard_alignment = 0;
  p.discard.max_discard_sectors = opts.discard_max_bytes >> 9;
  p.discard.max_write_zeroes_sectors = opts.discard_max_bytes >> 9;
  p.discard.max_discard_segments = 1;
  return p;
}

Result<std::unique_ptr<UblkDevice>> UblkDevice::Create(UblkControl* ctrl,
                                                       const DeviceOptions& opts,
                                                       BlockTarget* target) {
  if (opts.queues < 1 || opts.queues > kQueuesMax) {
    return Status::InvalidArgument("queues must be 1.." + std::to_string(kQueuesMax));
  }
  if (opts.depth < 1 || opts.depth > kQueueDepthMax) {
    return Status::InvalidArgument("depth must be 1.." + std::to_string(kQueueDepthMax));
  }
  if (opts.size_bytes == 0 || opts.size_bytes % opts.logical_block_bytes != 0) {
    return Status::InvalidArgument("device size must be a positive multiple of " +
                                   std::to_string(opts.logical_block_bytes) + " bytes");
  }
  std::unique_ptr<UblkDevice> dev(new UblkDevice(ctrl, target));
  ublksrv_ctrl_dev_info& info = dev->info_;
  info.nr_hw_queues = opts.queues;
  info.queue_depth = opts.depth;
  info.max_io_buf_bytes = opts.max_io_bytes;
  info.dev_id = static_cast<uint32_t>(opts.dev_id);
  info.flags = ChooseDeviceFlags(ctrl->features(), opts);
  ASTRA_RETURN_IF_ERROR(ctrl->AddDev(&info));
  // From here on, a failure deletes the half-made device.
  auto undo = [&](Status s) -> Status {
    dev->StopQueues();
    ctrl->DelDev(info.dev_id).IgnoreError();
    return s;
  };
  assert(info.max_io_buf_bytes <= kIoBytesMax);
  Status st = ctrl->SetParams(info.dev_id, MakeParams(opts, info.max_io_buf_bytes));
  if (!st.ok()) return undo(st);
  st = dev->OpenCharDev();
  if (!st.ok()) return undo(st);
  st = dev->StartQueues(opts.workers_per_queue);
  if (!st.ok()) return undo(st);
  st = ctrl->StartDev(info.dev_id, getpid());
  if (!st.ok()) return undo(st);
  dev->logical_block_bytes_ = opts.logical_block_bytes;
  dev->stopped_ = false;
  return dev;
}

Result<std::unique_ptr<UblkDevice>> UblkDevice::Recover(UblkControl* ctrl, uint32_t dev_id,
                                                        BlockTarget* target,
                                                        uint32_t workers_per_queue,
                                                        uint32_t expect_logical_block_bytes,
                                                        int wait_quiesce_ms) {
  ASTRA_ASSIGN_OR_RETURN(ublksrv_ctrl_dev_info info, ctrl->GetDevInfo(dev_id));
  ASTRA_ASSIGN_OR_RETURN(ublk_params params, ctrl->GetParams(dev_id));
  if (params.basic.logical_bs_shift != 9 && params.basic.logical_bs_shift != 12) {
    return Status::NotSupported("ublk device " + std::to_string(dev_id) +
                                " has a logical block of 2^" +
                                std::to_string(params.basic.logical_bs_shift) +
                                " bytes (only 512 and 4096 are served)");
  }
  const uint32_t lbs = 1u << params.basic.logical_bs_shift;
  if (expect_logical_block_bytes != 0 && lbs != expect_logical_block_bytes) {
    return Status::InvalidArgument("ublk device " + std::to_string(dev_id) + " has " +
                                   std::to_string(lbs) + "-byte logical blocks, its record " +
                                   std::to_string(expect_logical_block_bytes));
  }
  if (!(info.flags & kFeatUserRecovery)) {
    return Status::NotSupported("ublk device " + std::to_string(dev_id) +
                                " was created without USER_RECOVERY");
  }
  if (info.state == kStateLive && info.ublksrv_pid > 0 && kill(info.ublksrv_pid, 0) == 0) {
    return Status::Busy("ublk device " + std::to_string(dev_id) + " is served by live process " +
                        std::to_string(info.ublksrv_pid));
  }
  // The kernel quiesces the device some time after the server dies (it notices when the old
  // process's ring and /dev/ublkcN are torn down): START_USER_RECOVERY says EBUSY until then.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_quiesce_ms);
  for (;;) {
    Status st = ctrl->StartUserRecovery(dev_id);
    if (st.ok()) break;
    if (st.code() != Status::Code::kBusy || std::chrono::steady_clock::now() > deadline) {
      return st.Annotate("recovery");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::unique_ptr<UblkDevice> dev(new UblkDevice(ctrl, target));
  ASTRA_ASSIGN_OR_RETURN(dev->info_, ctrl->GetDevInfo(dev_id));
  ASTRA_RETURN_IF_ERROR(dev->OpenCharDev());
  Status st = dev->StartQueues(workers_per_queue);
  if (!st.ok()) {
    dev->StopQueues();
    return st;
  }
  st = ctrl->EndUserRecovery(dev_id, getpid());
  if (!st.ok()) {
    dev->StopQueues();
    return st;
  }
  dev->logical_block_bytes_ = lbs;
  dev->stopped_ = false;
  return dev;
}

UblkDevice::~UblkDevice() {
  StopQueues();
  if (cdev_fd_ >= 0) close(cdev_fd_);
}

Status UblkDevice::OpenCharDev() {
  // udev (if any) creates /dev/ublkcN asynchronously; devtmpfs makes it at once. Wait briefly.
  const std::string path = char_path();
  for (int i = 0; i < 200; i++) {
    cdev_fd_ = open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (cdev_fd_ >= 0) return Status::Ok();
    if (errno != ENOENT) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Status::FromErrno(errno, "open " + path);
}

Status UblkDevice::StartQueues(uint32_t workers_per_queue) {
  assert(cdev_fd_ >= 0 && queues_.empty());
  for (uint16_t q = 0; q < info_.nr_hw_queues; q++) {
    QueueConfig cfg;
    cfg.queue_id = q;
    cfg.depth = info_.queue_depth;
    cfg.max_io_bytes = info_.max_io_buf_bytes;
    cfg.workers = workers_per_queue;
    cfg.user_copy = (info_.flags & kFeatUserCopy) != 0;
    cfg.ioctl_encode = (info_.flags & kFeatCmdIoctlEncode) != 0;
    cfg.cdev_fd = cdev_fd_;
    queues_.push_back(std::make_unique<UblkQueue>(cfg, target_));
    Status st = queues_.back()->Start();
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

void UblkDevice::StopQueues() {
  for (auto& q : queues_) q->RequestStop();
  for (auto& q : queues_) q->Join();
  queues_.clear();
}

Status UblkDevice::Stop() {
  if (stopped_) return Status::Ok();
  // STOP_DEV removes the disk; the kernel completes in-flight requests through our queues first,
  // so they must keep running until it returns.
  Status st = ctrl_->StopDev(id());
  StopQueues();
  stopped_ = true;
  return st;
}

Status UblkDevice::Delete() {
  assert(stopped_);
  if (cdev_fd_ >= 0) {
    close(cdev_fd_);  // DEL_DEV waits for the last opener of /dev/ublkcN
    cdev_fd_ = -1;
  }
  return ctrl_->DelDev(id());
}

DeviceTotals UblkDevice::totals() const {
  DeviceTotals t;
  for (const auto& q : queues_) {
    const QueueStats& s = q->stats();
    t.requests += s.requests.load();
    t.errors += s.errors.load();
    t.dispatch_ns += s.dispatch_ns.load();
    t.copy_ns += s.copy_ns.load();
    t.target_ns += s.target_ns.load();
    t.complete_ns += s.complete_ns.load();
  }
  return t;
}

uint64_t UblkDevice::requests() const {
  uint64_t n = 0;
  for (const auto& q : queues_) n += q->stats().requests.load();
  return n;
}

}  // namespace astra::ublk
