#include "blockdev/ublk_control.h"

#include <fcntl.h>
#include <liburing.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>

namespace astra::ublk {

const char* CtrlCmdName(CtrlCmd c) {
  switch (c) {
    case CtrlCmd::kGetDevInfo: return "GET_DEV_INFO";
    case CtrlCmd::kAddDev: return "ADD_DEV";
    case CtrlCmd::kDelDev: return "DEL_DEV";
    case CtrlCmd::kStartDev: return "START_DEV";
    case CtrlCmd::kStopDev: return "STOP_DEV";
    case CtrlCmd::kSetParams: return "SET_PARAMS";
    case CtrlCmd::kGetParams: return "GET_PARAMS";
    case CtrlCmd::kStartUserRecovery: return "START_USER_RECOVERY";
    case CtrlCmd::kEndUserRecovery: return "END_USER_RECOVERY";
    case CtrlCmd::kGetFeatures: return "GET_FEATURES";
  }
  return "?";
}

const char* FeatureName(int bit) {
  static const char* const kNames[] = {
      "ZERO_COPY",    "URING_CMD_COMP_IN_TASK", "NEED_GET_DATA", "USER_RECOVERY",
      "USER_RECOVERY_REISSUE", "UNPRIVILEGED_DEV", "CMD_IOCTL_ENCODE", "USER_COPY",
      "ZONED",        "USER_RECOVERY_FAIL_IO",  "UPDATE_SIZE",   "AUTO_BUF_REG",
      "QUIESCE",      "PER_IO_DAEMON",          "BUF_REG_OFF_DAEMON"};
  if (bit < 0 || bit >= static_cast<int>(sizeof(kNames) / sizeof(kNames[0]))) return "?";
  return kNames[bit];
}

const char* StateName(uint16_t state) {
  switch (state) {
    case kStateDead: return "dead";
    case kStateLive: return "live";
    case kStateQuiesced: return "quiesced";
    case kStateFailIo: return "fail-io";
  }
  return "unknown";
}

Result<std::unique_ptr<UblkControl>> UblkControl::Open() {
  int fd = ::open(kControlPath, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return Status::NotFound("ublk_drv not loaded: run modprobe ublk_drv (" +
                              std::string(kControlPath) + " is absent)");
    }
    return Status::FromErrno(errno, std::string("open ") + kControlPath);
  }
  std::unique_ptr<UblkControl> c(new UblkControl());
  c->fd_ = fd;
  c->ring_ = std::make_unique<io_uring>();
  int r = io_uring_queue_init(4, c->ring_.get(), IORING_SETUP_SQE128);
  if (r < 0) {
    c->ring_.reset();
    return Status::FromErrno(-r, "io_uring setup for the ublk control device");
  }
  // GET_FEATURES exists since 6.5 and only in the ioctl encoding; older kernels refuse it, and we
  // then assume nothing (features 0, legacy encoding).
  uint64_t features = 0;
  c->features_ = kFeatCmdIoctlEncode;  // so that Run() encodes this probe as an ioctl
  Result<int> res = c->Run(CtrlCmd::kGetFeatures, 0, &features, sizeof(features), 0);
  c->features_ = res.ok() ? features : 0;
  return c;
}

UblkControl::~UblkControl() {
  if (ring_) io_uring_queue_exit(ring_.get());
  if (fd_ >= 0) ::close(fd_);
}

std::string UblkControl::FeatureString() const {
  char hex[32];
  snprintf(hex, sizeof hex, "0x%llx", static_cast<unsigned long long>(features_));
  std::string s = hex;
  s += " (";
  bool first = true;
  for (int b = 0; b < 64; b++) {
    if (!(features_ & (1ull << b))) continue;
    if (!first) s += ' ';
    s += FeatureName(b);
    first = false;
  }
  return s + ")";
}

Result<int> UblkControl::Run(CtrlCmd cmd, uint32_t dev_id, void* buf, uint16_t len,
                             uint64_t data0) {
  assert(ring_ != nullptr);
  std::lock_guard<std::mutex> lock(mu_);
  io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
  if (sqe == nullptr) return Status::IOError("ublk control ring full");  // one command at a time
  memset(sqe, 0, 2 * sizeof(*sqe));  // SQE128: the command lives in the second half
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = fd_;
  sqe->cmd_op = CtrlCmdOp(cmd, ioctl_encode());
  sqe->user_data = static_cast<uint64_t>(cmd);
  auto* c = reinterpret_cast<ublksrv_ctrl_cmd*>(sqe->cmd);
  c->dev_id = dev_id;
  c->queue_id = static_cast<uint16_t>(-1);
  c->addr = reinterpret_cast<uintptr_t>(buf);
  c->len = len;
  c->data[0] = data0;
  int r = io_uring_submit(ring_.get());
  if (r < 0) return Status::FromErrno(-r, std::string("submit ublk ") + CtrlCmdName(cmd));
  io_uring_cqe* cqe = nullptr;
  do {
    r = io_uring_wait_cqe(ring_.get(), &cqe);
  } while (r == -EINTR);
  if (r < 0) return Status::FromErrno(-r, std::string("wait for ublk ") + CtrlCmdName(cmd));
  assert(cqe->user_data == static_cast<uint64_t>(cmd));
  int res = cqe->res;
  io_uring_cqe_seen(ring_.get(), cqe);
  if (res < 0) {
    std::string what = std::string("ublk ") + CtrlCmdName(cmd);
    if (dev_id != static_cast<uint32_t>(-1) && cmd != CtrlCmd::kGetFeatures) {
      what += " of device " + std::to_string(dev_id);
    }
    Status s = Status::FromErrno(-res, what);
    if (res == -EBUSY) s = Status::Busy(what + ": device busy");
    if (res == -ENODEV) s = Status::NotFound(what + ": no such device");
    return s;
  }
  return res;
}

Status UblkControl::AddDev(ublksrv_ctrl_dev_info* info) {
  // The kernel checks that the header's dev_id matches the one in the info block.
  Result<int> r = Run(CtrlCmd::kAddDev, info->dev_id, info, sizeof(*info), 0);
  return r.ok() ? Status::Ok() : r.status();
}

Status UblkControl::SetParams(uint32_t dev_id, const ublk_params& params) {
  ublk_params p = params;
  p.len = sizeof(p);
  Result<int> r = Run(CtrlCmd::kSetParams, dev_id, &p, sizeof(p), 0);
  return r.ok() ? Status::Ok() : r.status();
}

Status UblkControl::StartDev(uint32_t dev_id, pid_t server_pid) {
  Result<int> r = Run(CtrlCmd::kStartDev, dev_id, nullptr, 0, static_cast<uint64_t>(server_pid));
  return r.ok() ? Status::Ok() : r.status();
}

Status UblkControl::StopDev(uint32_t dev_id) {
  Result<int> r = Run(CtrlCmd::kStopDev, dev_id, nullptr, 0, 0);
  return r.ok() ? Status::Ok() : r.status();
}

Status UblkControl::DelDev(uint32_t dev_id) {
  Result<int> r = Run(CtrlCmd::kDelDev, dev_id, nullptr, 0, 0);
  return r.ok() ? Status::Ok() : r.status();
}

Result<ublksrv_ctrl_dev_info> UblkControl::GetDevInfo(uint32_t dev_id) {
  ublksrv_ctrl_dev_info info{};
  Result<int> r = Run(CtrlCmd::kGetDevInfo, dev_id, &info, sizeof(info), 0);
  if (!r.ok()) {
    if (r.status().code() == Status::Code::kNotFound) {
      return Status::NotFound("no ublk device " + std::to_string(dev_id));
    }
    return r.status();
  }
  return info;
}

Result<ublk_params> UblkControl::GetParams(uint32_t dev_id) {
  ublk_params p{};
  p.len = sizeof(p);
  Result<int> r = Run(CtrlCmd::kGetParams, dev_id, &p, sizeof(p), 0);
  if (!r.ok()) return r.status();
  return p;
}

Status UblkControl::StartUserRecovery(uint32_t dev_id) {
  Result<int> r = Run(CtrlCmd::kStartUserRecovery, dev_id, nullptr, 0, 0);
  return r.ok() ? Status::Ok() : r.status();
}

Status UblkControl::EndUserRecovery(uint32_t dev_id, pid_t server_pid) {
  Result<int> r =
      Run(CtrlCmd::kEndUserRecovery, dev_id, nullptr, 0, static_cast<uint64_t>(server_pid));
  return r.ok() ? Status::Ok() : r.status();
}

}  // namespace astra::ublk
