// UringDevice: a Device over a regular file or a block device, through io_uring and O_DIRECT.
//
// One ring of kDeviceQueueDepth entries per device and one reaper thread that waits for
// completions. Submit() takes one of kDeviceQueueDepth preallocated slots per request (blocking
// while all are in flight, never failing for a full queue), fills an SQE and submits; the reaper
// finishes the request: a negative result becomes a Status naming path, op and offset; a short
// read or write is resubmitted for its remainder; a zero-byte transfer is kIOError.
//
// Ops: read/write -> IORING_OP_READ/WRITE (READ_FIXED/WRITE_FIXED when the buffer lies inside a
// registered buffer, see RegisterBuffers); flush -> IORING_OP_FSYNC with IORING_FSYNC_DATASYNC,
// covering every write completed before the flush was submitted (flush does not order against
// writes still in flight); trim -> on files IORING_OP_FALLOCATE(PUNCH_HOLE|KEEP_SIZE), so trimmed
// ranges read as zeros; on block devices ioctl(BLKDISCARD), done synchronously inside Submit(),
// after which the range's contents are unspecified.
//
// The device holds an exclusive flock(2) on the opened file for its lifetime: a second open, from
// this process or another, fails with kBusy naming the holder.
//
// Thread safety: Submit() and RegisterBuffers() may be called from any thread at once;
// completions run on the reaper thread. The destructor waits for every in-flight request and must
// not race with Submit().
#pragma once

#include <liburing.h>
#include <sys/uio.h>

#include <array>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "astra/device.h"
#include "astra/limits.h"
#include "astra/result.h"
#include "registered_buffers.h"

namespace astra {

// "read /path at offset O length L" for request `r` with `done_bytes` already transferred: the
// context of every I/O error the uring paths return.
std::string DescribeIo(const std::string& path, const IoRequest& r, uint32_t done_bytes);

class UringDevice final : public Device {
 public:
  // Opens an existing regular file or block device at `path` (O_RDWR | O_DIRECT), locks it, sets
  // up the ring and starts the reaper. Errors: kNotFound, kBusy (locked by someone),
  // kInvalidArgument (not a file or block device, too small, no O_DIRECT support), kNotSupported
  // (logical block larger than 4096), kIOError (anything else).
  static Result<std::unique_ptr<UringDevice>> Open(const std::string& path);
  ~UringDevice() override;

  UringDevice(const UringDevice&) = delete;
  UringDevice& operator=(const UringDevice&) = delete;

  const DeviceInfo& info() const override { return info_; }
  void Submit(IoRequest* const* reqs, size_t n) override;

  // Registers `bufs` with the ring (the kernel allows up to 16384 iovecs of at most 1 GiB each;
  // the pinned pages count against RLIMIT_MEMLOCK unless the process has CAP_IPC_LOCK), replacing
  // any earlier registration. Afterwards a read or write whose whole buffer lies inside one of
  // them is issued as READ_FIXED/WRITE_FIXED (no per-I/O page pinning); other buffers still work.
  // The memory must stay valid until UnregisterBuffers() or destruction. Waits for in-flight
  // requests to drain before changing the registration. Thread safety: any thread.
  Status RegisterBuffers(std::span<const iovec> bufs) override;
  // The O_DIRECT descriptor (ReadAll issues reads on it through the caller's own ring).
  int InlineReadFd() const override { return fd_; }
  // Drops the registration (no-op if none). Thread safety: any thread.
  Status UnregisterBuffers();
  // Requests issued with a fixed buffer since open (for tests and stats). Thread safety: any.
  uint64_t fixed_ios() const;

 private:
  struct Slot {
    IoRequest* req = nullptr;
    uint32_t done_bytes = 0;  // transferred so far (short transfers are resubmitted)
    uint32_t retries = 0;     // resubmissions after EAGAIN / EINTR / ECANCELED
    int buf_index = -1;       // registered buffer, or -1
  };
  UringDevice() = default;
  // Takes a free slot, waiting (after submitting prepared SQEs) while none is. Requires mu_.
  uint32_t AcquireSlotLocked(std::unique_lock<std::mutex>& l);
  // Fills an SQE for slot `idx` (its remainder). Requires mu_.
  void PrepLocked(uint32_t idx);
  // Hands every prepared SQE to the kernel. Requires mu_.
  void SubmitPreparedLocked();
  // Block devices: BLKDISCARD, synchronous.
  Status Discard(const IoRequest& r);
  void ReaperLoop();
  void HandleCompletion(uint32_t idx, int res);
  // Frees the slot and completes its request. Must not hold mu_.
  void Finish(uint32_t idx, Status s);
  std::string Describe(const IoRequest& r, uint32_t done_bytes) const;

  DeviceInfo info_;
  int fd_ = -1;
  bool is_block_ = false;
  bool ring_ready_ = false;
  io_uring ring_{};
  std::thread reaper_;

  mutable std::mutex mu_;       // guards the SQ side of ring_ and everything below
  std::condition_variable cv_;  // a slot was freed
  std::array<Slot, kDeviceQueueDepth> slots_{};
  std::vector<uint32_t> free_slots_;
  RegisteredBufferTable registered_;  // what the ring has registered (guarded by mu_)
  uint64_t fixed_ios_ = 0;
  bool stopping_ = false;
};

}  // namespace astra
