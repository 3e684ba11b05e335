// UblkControl: the control device /dev/ublk-control, driven with io_uring URING_CMD.
//
// Owns one small SQE128 ring. Every command is synchronous (submit, wait for its CQE). Feature
// bits come from GET_FEATURES, probed once at Open(); a kernel without GET_FEATURES reports 0 and
// gets the legacy (non-ioctl) command encoding.
//
// Thread safety: all methods may be called from any thread; commands are serialised. START_DEV
// and END_USER_RECOVERY block until every queue has fetched: issue them only after the queue
// threads are running.
#pragma once

#include <linux/ublk_cmd.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "astra/result.h"
#include "astra/status.h"
#include "blockdev/ublk_uapi.h"

struct io_uring;

namespace astra::ublk {

inline constexpr const char* kControlPath = "/dev/ublk-control";

class UblkControl {
 public:
  // Errors: kNotFound "ublk_drv not loaded: run modprobe ublk_drv" when the control device is
  // absent; kIOError when it cannot be opened or the ring cannot be set up.
  static Result<std::unique_ptr<UblkControl>> Open();
  ~UblkControl();
  UblkControl(const UblkControl&) = delete;
  UblkControl& operator=(const UblkControl&) = delete;

  uint64_t features() const { return features_; }
  bool ioctl_encode() const { return (features_ & kFeatCmdIoctlEncode) != 0; }
  std::string FeatureString() const;  // "0x1fe (USER_RECOVERY ... USER_COPY ZONED)"

  // ADD_DEV: `info` in (queues, depth, max I/O, flags, dev_id or -1), out (what the kernel chose).
  Status AddDev(ublksrv_ctrl_dev_info* info);
  Status SetParams(uint32_t dev_id, const ublk_params& params);
  Status StartDev(uint32_t dev_id, pid_t server_pid);
  Status StopDev(uint32_t dev_id);
  Status DelDev(uint32_t dev_id);
  Result<ublksrv_ctrl_dev_info> GetDevInfo(uint32_t dev_id);
  Result<ublk_params> GetParams(uint32_t dev_id);
  // kBusy while the dead server's state is still being torn down (retry), kOk once quiesced.
  Status StartUserRecovery(uint32_t dev_id);
  Status EndUserRecovery(uint32_t dev_id, pid_t server_pid);

 private:
  UblkControl() = default;
  // Runs one command; returns the CQE result (>= 0) or an error naming the command and device.
  Result<int> Run(CtrlCmd cmd, uint32_t dev_id, void* buf, uint16_t len, uint64_t data0);

  std::mutex mu_;
  int fd_ = -1;
  std::unique_ptr<io_uring> ring_;
  uint64_t features_ = 0;
};

}  // namespace astra::ublk
