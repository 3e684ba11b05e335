// Device: the engine's only view of storage (the role Env plays in LevelDB).
//
// A Device is an array of bytes addressed by byte offset, accessed through asynchronous requests
// that complete in any order. Offsets and lengths of reads, writes and trims are multiples of
// info().logical_block_bytes (512 or 4096); buffers are aligned to kIoAlignBytes (4096).
//
// Implementations: UringDevice (io_uring + O_DIRECT on files and block devices), MemDevice (RAM,
// sparse), FaultyDevice (wraps another and injects faults and power loss). NvmeDevice (io_uring
// URING_CMD passthrough on /dev/ngXnY) plugs in behind the same interface.
//
// Thread safety: Submit() and the synchronous helpers may be called from any thread at once.
// Each request completes exactly once; completion may run on another thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include <sys/uio.h>

#include "astra/result.h"
#include "astra/status.h"

namespace astra {

enum class IoOp : uint8_t { kRead = 0, kWrite = 1, kFlush = 2, kTrim = 3 };
// "read", "write", "flush", "trim": for error messages.
const char* IoOpName(IoOp op);

// Counts outstanding requests; Wait() returns once every request handed to it has completed.
class IoWaiter {
 public:
  void Add(uint32_t n) {
    std::lock_guard<std::mutex> l(mu_);
    pending_ += n;
  }
  void Done() {
    std::lock_guard<std::mutex> l(mu_);
    if (--pending_ == 0) cv_.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return pending_ == 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint32_t pending_ = 0;
};

struct IoRequest {
  IoOp op = IoOp::kRead;
  uint64_t offset_bytes = 0;  // ignored for kFlush
  uint32_t length_bytes = 0;  // ignored for kFlush
  void* buf = nullptr;        // kRead: filled; kWrite: source; aligned to kIoAlignBytes
  Status status;              // set by the device before waiter->Done()
  IoWaiter* waiter = nullptr; // required; Done() is called exactly once per request
  // Scatter read (kRead through ReadAll only; Device::Submit ignores it): when set, the bytes go
  // to these `iov_count` buffers in order instead of `buf`. Each buffer is aligned to
  // kIoAlignBytes and a multiple of it long; the lengths add up to length_bytes.
  const iovec* iov = nullptr;
  uint32_t iov_count = 0;
};

struct DeviceInfo {
  std::string path;             // what the user named ("/dev/nvme0n1", "/tmp/a.img", "mem:3")
  std::string backend;          // "uring", "nvme-passthrough", "mem", "faulty(uring)"
  uint64_t size_bytes = 0;      // usable size, a multiple of logical_block_bytes
  uint32_t logical_block_bytes = 4096;
  bool supports_trim = false;
};

class Device {
 public:
  virtual ~Device() = default;
  virtual const DeviceInfo& info() const = 0;

  // Starts `n` requests. Each one completes exactly once: its status is set, then
  // waiter->Done() is called. Never blocks on I/O except to wait for a free queue slot.
  // Invalid requests (misaligned, out of range) complete with kInvalidArgument.
  virtual void Submit(IoRequest* const* reqs, size_t n) = 0;

  // Registers long-lived I/O buffers with the device, so that a read or write whose whole buffer
  // lies inside one of them skips the kernel's per-I/O page pinning (io_uring fixed buffers:
  // UringDevice, NvmeDevice). An optimisation only: requests with other buffers keep working, and
  // a device without the notion (MemDevice, the default here) ignores the call and returns Ok.
  // Replaces any earlier registration; an empty span drops it. Waits for in-flight requests.
  // The kernel keeps the registered pages pinned: the memory must not be freed (nor reused for
  // another buffer at the same address) until the registration is replaced or the device is
  // destroyed. Errors (the caller goes on with plain buffers): kNotSupported (the kernel refuses
  // fixed buffers for this device), kInvalidArgument (an empty iovec, too many), kIOError
  // (io_uring_register_buffers failed, e.g. ENOMEM from RLIMIT_MEMLOCK when not root).
  // Thread safety: any thread.
  virtual Status RegisterBuffers(std::span<const iovec> bufs) {
    (void)bufs;
    return Status::Ok();
  }

  // A descriptor of the underlying file or block device, opened O_DIRECT, on which callers may
  // issue plain reads themselves (ReadAll does, through the calling thread's own io_uring), or
  // -1 when every request must go through Submit() (the default: MemDevice, FaultyDevice, whose
  // faults must apply, NvmeDevice, whose I/O is passthrough commands). Thread safety: any thread.
  virtual int InlineReadFd() const { return -1; }

  // Synchronous helpers over Submit(): same alignment rules; return the request's status.
  Status Read(uint64_t offset_bytes, void* buf, uint32_t length_bytes);
  Status Write(uint64_t offset_bytes, const void* buf, uint32_t length_bytes);
  Status Flush();
  Status Trim(uint64_t offset_bytes, uint64_t length_bytes);
};

// Runs a batch of reads, reqs[i] on devs[i] (several devices allowed), all in flight at once, and
// returns when every one has completed with its status set; each request's `waiter` is
// overwritten. Reads on devices with an InlineReadFd() are issued through an io_uring owned by
// the calling thread (created on its first call, 128 entries, torn down when the thread exits):
// one submission and one wait for the whole batch, completions reaped by the caller itself
// rather than handed over by the device's reaper thread (that hand-off, two thread wake-ups per
// request, dominated small random reads: doc/engine.md, "Read path"). Short reads continue for
// their remainder; a zero-byte read, an error, or a request that fails CheckRequest completes
// with a Status naming path, offset and length, as through Submit(). Requests on other devices,
// and every request when the thread's ring cannot be set up, go through Device::Submit().
// Requests must be kRead. A request with an `iov` is a scatter read: one IORING_OP_READV on the
// thread's ring, or, on a device without an InlineReadFd, a read into a bounce buffer that is
// then copied out (a scatter list that is misaligned or does not add up to length_bytes fails
// the request with kInvalidArgument). Thread safety: any thread (the ring is per thread).
void ReadAll(std::span<Device* const> devs, std::span<IoRequest* const> reqs);

// How ReadAll waits, and what it does as requests complete.
struct ReadAllOptions {
  // Hybrid polling: after submitting, the thread polls its ring for completions (running the
  // ring's completion work without sleeping, and yielding the CPU between polls with
  // sched_yield, so a runnable thread on this CPU — an io_uring worker doing the copies of a
  // file system without asynchronous reads, such as tmpfs — is not held up) for up to this many
  // microseconds without a completion before it sleeps until every request is done. 0: sleep at
  // once (one wake-up per batch). Polling saves the wake-up of a sleeping thread per batch (an
  // inter-processor interrupt, costly in a VM) and lets the caller's work on early completions
  // (`on_done`) overlap the device's work on later ones; measurements in doc/engine.md
  // ("Read path"). The same idea as the kernel's hybrid polling of block devices (io_poll_delay).
  uint32_t poll_us = 0;
  // When set, called on the calling thread exactly once per request, with its index in `reqs`,
  // as soon as its status is final and (when ok) its bytes are in place, in completion order.
  // It must not call ReadAll.
  void (*on_done)(void* ctx, uint32_t index) = nullptr;
  void* ctx = nullptr;
};

// ReadAll with options: see ReadAllOptions. Same contract otherwise.
void ReadAll(std::span<Device* const> devs, std::span<IoRequest* const> reqs, const ReadAllOptions& opts);

// Validates a request against the device's geometry; shared by implementations.
Status CheckRequest(const DeviceInfo& info, const IoRequest& r);

// Opens a member by path: /dev/ngXnY (and /dev/nvmeXnY whose generic device can be opened) get
// an NvmeDevice (io_uring NVMe passthrough; ASTRA_FORCE_BLOCK_PATH=1 forces the block path);
// regular files and other block devices get a UringDevice (O_DIRECT). See doc/nvme.md.
// `create_size_bytes` > 0 creates a missing regular file of that size (sparse).
// Errors: kNotFound (no such path), kInvalidArgument (not a file or block device, too small),
// kIOError (open/io_uring setup failed), kBusy (another process holds the member's lock).
// The device takes an exclusive flock(2) on the path for its lifetime.
Result<std::unique_ptr<Device>> OpenDevice(const std::string& path, uint64_t create_size_bytes = 0);

// A RAM device of `size_bytes` (sparse: unwritten 4 KiB pages cost nothing and read as zeros).
std::unique_ptr<Device> NewMemDevice(uint64_t size_bytes, std::string name = "mem");

// 4 KiB-aligned heap buffer, owned; for I/O buffers anywhere in the engine.
struct AlignedFree {
  void operator()(void* p) const;
};
using AlignedBuf = std::unique_ptr<uint8_t[], AlignedFree>;
AlignedBuf AllocAligned(size_t bytes);

}  // namespace astra
