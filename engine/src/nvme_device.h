// NvmeDevice: a Device over one NVMe namespace, speaking NVMe commands through io_uring
// URING_CMD passthrough on the namespace's generic character device (/dev/ngXnY), which skips
// the block layer's per-I/O work (bio splitting, merging, scheduling).
//
// One ring (IORING_SETUP_SQE128 | IORING_SETUP_CQE32, as NVME_URING_CMD_IO requires) of
// kCommandSlots entries per device and one reaper thread. Each IoRequest takes one request slot
// (kDeviceQueueDepth of them; Submit() blocks while all are in flight, never failing for a full
// queue) and one or more command slots: reads and writes larger than max_transfer_bytes() are
// split into commands issued in parallel; the request completes once all its commands have, with
// the first error any of them reported.
//
// Ops: read -> NVMe Read (0x02), write -> Write (0x01), flush -> Flush (0x00), which covers every
// write completed before it was submitted; trim -> Dataset Management (0x09) with the deallocate
// attribute, one range. Deallocated LBAs read back as the drive reports in DLFEAT (zeros on
// qemu's NVMe); the engine does not rely on their contents.
//
// Geometry: the namespace id (NVME_IOCTL_ID) and Identify Namespace (CNS 0) give the size (NSZE)
// and the LBA format; 512- and 4096-byte LBAs without metadata or protection information are
// supported, anything else is refused naming the device. The largest command comes from the
// controller's MDTS (Identify Controller, CNS 1, on /dev/nvmeX when it can be opened; 128 KiB
// when not), further capped by the namespace queue's max_hw_sectors_kb and max_segments from
// sysfs (the kernel maps a plain user buffer page by page and rejects larger requests).
//
// Errors: a negative CQE result is an errno (Status::FromErrno naming path, op, offset); a
// positive one is an NVMe status (SCT/SC, plus the More and Do-Not-Retry bits): kIOError with
// retryable() = !DNR, with data_loss() for media errors (SCT 2). Transient io_uring errors
// (EAGAIN, EINTR, ECANCELED) are resubmitted a bounded number of times.
//
// Fixed buffers: RegisterBuffers() registers long-lived buffers with the ring; a read or write
// whose whole buffer lies inside one of them is issued with IORING_URING_CMD_FIXED and
// sqe->buf_index (every command of a split request too), so the kernel maps pre-pinned pages
// instead of pinning the user pages per command. Open() probes whether the kernel takes fixed
// passthrough commands (6.1+; 5.19/6.0 refuse the flag with EINVAL) with its first read; when it
// does not, or ASTRA_NVME_FIXED_BUFFERS=0 is set (for comparisons), RegisterBuffers() returns
// kNotSupported and every command stays plain.
//
// Polled completions: with ASTRA_NVME_IOPOLL=1 in the environment and poll queues on the
// namespace's queue (/sys/block/nvmeXnY/queue/io_poll = 1; the nvme driver's poll_queues
// parameter), the ring is set up with IORING_SETUP_IOPOLL and the reaper polls the completion
// queue while commands are in flight (it sleeps on a condition variable when none are, so an
// idle device costs no CPU). Without poll queues a log line says so and completions come by
// interrupt, as by default.
//
// Locks: an exclusive flock(2) on the character device and, best effort, on the namespace's
// block device /dev/nvmeXnY, so that this device and a UringDevice on the block path of the same
// namespace exclude each other (kBusy naming the holder).
//
// Thread safety: Submit() may be called from any thread at once; completions run on the reaper
// thread. The destructor waits for every in-flight request and must not race with Submit().
#pragma once

#include <liburing.h>

#include <array>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <sys/uio.h>

#include "astra/device.h"
#include "astra/limits.h"
#include "astra/result.h"
#include "registered_buffers.h"

namespace astra {

struct NvmeOpenOptions {
  // Name used in DeviceInfo::path and messages; empty means the char device's path. OpenDevice
  // sets it to the block device path when it picked passthrough for /dev/nvmeXnY.
  std::string display_path;
  // Polled completions (IORING_SETUP_IOPOLL): kFromEnv reads ASTRA_NVME_IOPOLL ("1" asks for
  // them); either way they are used only when the namespace's queue has poll queues.
  enum class Poll : uint8_t { kFromEnv, kOff, kOn };
  Poll poll = Poll::kFromEnv;
  // Tests only: pretend the namespace has this many bytes (> 0), so that requests past its real
  // end pass CheckRequest and reach the drive, which must fail them.
  uint64_t test_size_override_bytes = 0;
};

class NvmeDevice final : public Device {
 public:
  // Opens the NVMe generic character device `path` (O_RDWR), locks it, identifies the
  // namespace, sets up the ring and starts the reaper. Errors: kNotFound; kInvalidArgument (not
  // an NVMe generic char device, too small); kNotSupported (LBA format with metadata or
  // protection information, or LBA size other than 512/4096; kernel without NVMe passthrough
  // on io_uring); kBusy (locked by someone); kIOError (permission denied, identify failed,
  // anything else). Every message names `path`.
  static Result<std::unique_ptr<NvmeDevice>> Open(const std::string& path,
                                                  const NvmeOpenOptions& opts = {});
  ~NvmeDevice() override;

  NvmeDevice(const NvmeDevice&) = delete;
  NvmeDevice& operator=(const NvmeDevice&) = delete;

  const DeviceInfo& info() const override { return info_; }
  void Submit(IoRequest* const* reqs, size_t n) override;

  // Largest data transfer of one NVMe command (a multiple of the LBA size). Thread safety: any.
  uint32_t max_transfer_bytes() const { return max_transfer_bytes_; }
  uint32_t nsid() const { return nsid_; }
  // Commands issued since open (a split request counts once per command). Thread safety: any.
  uint64_t commands_issued() const;

  // See Device::RegisterBuffers. Up to kRegisteredBuffersMax iovecs, each at most 1 GiB (the
  // kernel's limit). kNotSupported when Open() found the kernel refusing fixed passthrough
  // commands. Waits for in-flight requests. Thread safety: any thread.
  Status RegisterBuffers(std::span<const iovec> bufs) override;
  static constexpr size_t kRegisteredBuffersMax = 1024;
  // Whether the kernel accepts IORING_URING_CMD_FIXED on this device (probed by Open()).
  bool fixed_buffers_supported() const { return fixed_supported_; }
  // Read and write commands issued since open with a registered (fixed) buffer and with a plain
  // one; a split request counts once per command, resubmissions after transient errors do not
  // count again. Thread safety: any.
  struct BufferStats {
    uint64_t fixed_commands = 0;
    uint64_t plain_commands = 0;
  };
  BufferStats buffer_stats() const;
  // Whether completions are polled (IORING_SETUP_IOPOLL) rather than interrupt-driven.
  bool polled() const { return iopoll_; }

  // Maps an NVMe completion status (as io_uring reports it: SC in bits 7:0, SCT in 10:8, More
  // bit 13, DNR bit 14) to a Status whose message starts with `what`. Exposed for tests.
  static Status StatusFromNvme(uint32_t nvme_status, const std::string& what);

 private:
  // Command slots: one per NVMe command in flight; the ring's SQ has this many entries.
  static constexpr uint32_t kCommandSlots = 128;
  static_assert(kCommandSlots >= kDeviceQueueDepth);

  struct Request {
    IoRequest* req = nullptr;
    uint32_t pending = 0;   // commands not yet completed
    Status first_error;     // of any of them
    // Dataset Management range for a trim (context attributes, length in LBAs, start LBA); the
    // drive reads it by DMA, so it lives here until the command completes.
    alignas(16) uint32_t dsm_range[4] = {};
  };
  struct Command {
    uint32_t request = 0;  // index into requests_
    int buf_index = -1;    // registered buffer holding this command's bytes, or -1 (plain)
    uint64_t offset_bytes = 0;
    uint32_t length_bytes = 0;
    uint32_t buf_offset = 0;  // into the request's buffer
    uint32_t retries = 0;
    bool busy = false;
  };

  NvmeDevice() = default;
  // Open()'s first read of LBA 0, issued fixed when the kernel can take it; sets
  // fixed_supported_. Must not hold mu_.
  Status ProbeFirstRead();
  void ReaperLoopPolled();
  uint32_t AcquireRequestLocked(std::unique_lock<std::mutex>& l);
  uint32_t AcquireCommandLocked(std::unique_lock<std::mutex>& l);
  // Fills an SQE for command slot `c`. Requires mu_.
  void PrepLocked(uint32_t c);
  void SubmitPreparedLocked();
  void ReaperLoop();
  void HandleCompletion(uint32_t c, int res);
  // Frees command slot `c`; completes its request when it was the last one. Must not hold mu_.
  void FinishCommand(uint32_t c, Status s);
  std::string Describe(const IoRequest& r, uint64_t offset_bytes, uint32_t length_bytes) const;

  DeviceInfo info_;
  std::string dev_path_;  // the char device actually opened
  int fd_ = -1;
  int block_lock_fd_ = -1;  // the namespace's block device, held only for its flock
  uint32_t nsid_ = 0;
  uint32_t lba_shift_ = 9;
  uint32_t max_transfer_bytes_ = 128 * 1024;
  bool ring_ready_ = false;
  bool iopoll_ = false;           // ring set up with IORING_SETUP_IOPOLL
  bool fixed_supported_ = false;  // set once by Open()
  std::string no_fixed_reason_;   // why not, when !fixed_supported_
  io_uring ring_{};
  std::thread reaper_;

  mutable std::mutex mu_;       // guards the SQ side of ring_ and everything below
  std::condition_variable cv_;  // a request or command slot was freed
  std::condition_variable reap_cv_;  // polled ring: commands entered the ring, or stopping
  std::array<Request, kDeviceQueueDepth> requests_{};
  std::array<Command, kCommandSlots> commands_{};
  std::vector<uint32_t> free_requests_;
  std::vector<uint32_t> free_commands_;
  RegisteredBufferTable registered_;  // what the ring has registered (guarded by mu_)
  uint32_t in_ring_ = 0;  // commands handed to the kernel whose completion was not yet reaped
  uint64_t commands_issued_ = 0;
  BufferStats buffer_stats_;
  bool stopping_ = false;
  bool reaper_exit_ = false;  // polled ring: the reaper returns once in_ring_ is 0
};

}  // namespace astra
