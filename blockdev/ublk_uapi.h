// ublk_uapi.h: the kernel's ublk UAPI as this project uses it.
//
// Debian 12 ships the 6.1-era <linux/ublk_cmd.h>; the kernels we run on (6.12 and later) speak a
// superset. Newer constants are defined here, under our own names, from the kernel's documented
// ABI. Nothing is assumed to be supported: every feature bit is probed with GET_FEATURES.
#pragma once

#include <linux/ublk_cmd.h>
#include <sys/ioctl.h>

#include <cstdint>

namespace astra::ublk {

// ---- Control commands (on /dev/ublk-control), ioctl-encoded when the kernel offers it ----------
enum class CtrlCmd : uint8_t {
  kGetDevInfo = UBLK_CMD_GET_DEV_INFO,
  kAddDev = UBLK_CMD_ADD_DEV,
  kDelDev = UBLK_CMD_DEL_DEV,
  kStartDev = UBLK_CMD_START_DEV,
  kStopDev = UBLK_CMD_STOP_DEV,
  kSetParams = UBLK_CMD_SET_PARAMS,
  kGetParams = UBLK_CMD_GET_PARAMS,
  kStartUserRecovery = UBLK_CMD_START_USER_RECOVERY,
  kEndUserRecovery = UBLK_CMD_END_USER_RECOVERY,
  kGetFeatures = 0x13,  // since 6.5
};
const char* CtrlCmdName(CtrlCmd c);

// The 32-bit cmd_op of a control command: _IOWR('u', nr, ublksrv_ctrl_cmd) in the ioctl encoding
// (UBLK_F_CMD_IOCTL_ENCODE, mandatory on kernels built without legacy opcodes), else the bare nr.
constexpr uint32_t CtrlCmdOp(CtrlCmd c, bool ioctl_encode) {
  const uint32_t nr = static_cast<uint32_t>(c);
  if (!ioctl_encode) return nr;
  if (c == CtrlCmd::kGetDevInfo || c == CtrlCmd::kGetParams || c == CtrlCmd::kGetFeatures) {
    return _IOR('u', nr, struct ublksrv_ctrl_cmd);
  }
  return _IOWR('u', nr, struct ublksrv_ctrl_cmd);
}

// ---- I/O commands (on /dev/ublkcN) -------------------------------------------------------------
enum class IoCmd : uint8_t {
  kFetchReq = UBLK_IO_FETCH_REQ,
  kCommitAndFetchReq = UBLK_IO_COMMIT_AND_FETCH_REQ,
};
constexpr uint32_t IoCmdOp(IoCmd c, bool ioctl_encode) {
  const uint32_t nr = static_cast<uint32_t>(c);
  return ioctl_encode ? static_cast<uint32_t>(_IOWR('u', nr, struct ublksrv_io_cmd)) : nr;
}

// ---- Feature flags (ublksrv_ctrl_dev_info.flags and GET_FEATURES) -------------------------------
inline constexpr uint64_t kFeatZeroCopy = 1ull << 0;
inline constexpr uint64_t kFeatCompInTask = 1ull << 1;
inline constexpr uint64_t kFeatNeedGetData = 1ull << 2;
inline constexpr uint64_t kFeatUserRecovery = 1ull << 3;
inline constexpr uint64_t kFeatUserRecoveryReissue = 1ull << 4;
inline constexpr uint64_t kFeatUnprivilegedDev = 1ull << 5;
inline constexpr uint64_t kFeatCmdIoctlEncode = 1ull << 6;
inline constexpr uint64_t kFeatUserCopy = 1ull << 7;
inline constexpr uint64_t kFeatZoned = 1ull << 8;
inline constexpr uint64_t kFeatUserRecoveryFailIo = 1ull << 9;
inline constexpr uint64_t kFeatUpdateSize = 1ull << 10;
inline constexpr uint64_t kFeatAutoBufReg = 1ull << 11;
inline constexpr uint64_t kFeatQuiesce = 1ull << 12;
inline constexpr uint64_t kFeatPerIoDaemon = 1ull << 13;
inline constexpr uint64_t kFeatBufRegOffDaemon = 1ull << 14;
// Space-separated names of the bits set in `features` ("USER_COPY USER_RECOVERY ...").
const char* FeatureName(int bit);

// ---- Device states (ublksrv_ctrl_dev_info.state) -----------------------------------------------
inline constexpr uint16_t kStateDead = UBLK_S_DEV_DEAD;
inline constexpr uint16_t kStateLive = UBLK_S_DEV_LIVE;
inline constexpr uint16_t kStateQuiesced = UBLK_S_DEV_QUIESCED;
inline constexpr uint16_t kStateFailIo = 3;  // since 6.13 (USER_RECOVERY_FAIL_IO)
const char* StateName(uint16_t state);

// ---- Shared memory and USER_COPY addressing -----------------------------------------------------
// Each queue's descriptor array is mmap'ed from /dev/ublkcN at this stride (the kernel sizes it for
// the largest possible queue depth, rounded up to pages).
inline constexpr uint64_t kMaxQueueDepth = UBLK_MAX_QUEUE_DEPTH;
inline constexpr uint64_t kIoBufOffset = UBLKSRV_IO_BUF_OFFSET;
inline constexpr int kIoBufBits = 25;  // byte offset inside one request's buffer
inline constexpr int kTagOffset = kIoBufBits;
inline constexpr int kTagBits = 16;
inline constexpr int kQueueIdOffset = kTagOffset + kTagBits;
// pread/pwrite position of request (queue, tag) byte `offset` in USER_COPY mode.
constexpr uint64_t UserCopyPos(uint16_t queue, uint16_t tag, uint32_t offset) {
  return kIoBufOffset + (static_cast<uint64_t>(queue) << kQueueIdOffset) +
         (static_cast<uint64_t>(tag) << kTagOffset) + offset;
}
static_assert(UserCopyPos(1, 0, 0) - UserCopyPos(0, 0, 0) == 1ull << 41);

inline constexpr int kIoResOk = UBLK_IO_RES_OK;
inline constexpr int kIoResAbort = UBLK_IO_RES_ABORT;

}  // namespace astra::ublk
