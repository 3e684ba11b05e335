// UblkQueue: one hardware queue of a ublk device: one thread, one io_uring, `depth` tags.
//
// The queue thread is the only submitter on its ring (the kernel requires FETCH_REQ and
// COMMIT_AND_FETCH_REQ of a queue to come from one task). It fetches a request per tag, hands it
// to the queue's worker threads (which move data and call the BlockTarget), and commits each
// result with COMMIT_AND_FETCH_REQ, which also fetches the tag's next request.
//
// Tag life cycle (every tag is completed exactly once per request, asserted):
//   kInKernel --CQE ok--> kServing --worker--> kDone --queue thread--> kInKernel (commit+fetch)
//   kInKernel --CQE abort--> kGone (device stopped, or the server is going away)
//
// Data: buffer-copy mode gives the kernel each tag's buffer address; USER_COPY mode leaves it 0 and
// the worker pread()s / pwrite()s the request's data from / to /dev/ublkcN itself. Buffers are
// allocated once, up front (depth x max I/O bytes, populated lazily).
//
// Thread safety: Start/RequestStop/Join from one controlling thread.
#pragma once

#include <linux/ublk_cmd.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "astra/status.h"
#include "blockdev/block_target.h"
#include "blockdev/ublk_uapi.h"

struct io_uring;

namespace astra::ublk {

// Bounds (TIGER_STYLE: a limit on everything).
inline constexpr uint16_t kQueueDepthMax = 1024;
inline constexpr uint16_t kQueuesMax = 16;
inline constexpr uint32_t kWorkersPerQueueMax = 16;
inline constexpr uint32_t kIoBytesMax = 1u << 20;
// Pending READ (or WRITE) requests a worker takes at once and serves as one engine batch.
inline constexpr uint32_t kBatchMax = 32;

struct QueueConfig {
  uint16_t queue_id = 0;
  uint16_t depth = 64;
  uint32_t max_io_bytes = 512 * 1024;
  uint32_t workers = 2;
  bool user_copy = false;
  bool ioctl_encode = true;
  int cdev_fd = -1;  // /dev/ublkcN, owned by the device
};

struct QueueStats {
  std::atomic<uint64_t> requests{0}, errors{0}, bytes_read{0}, bytes_written{0};
  // Where a request's time goes inside the server (CLOCK_MONOTONIC nanoseconds, summed over
  // `requests`), for the speed breakdown in doc/blockdev.md:
  //   dispatch: its CQE reaped by the queue thread -> a worker starts on it
  //   copy:     USER_COPY pread (WRITE) / pwrite (READ) of the data from / to /dev/ublkcN
  //   target:   BlockTarget::Serve (the engine call)
  //   complete: the worker is done -> the queue thread queues COMMIT_AND_FETCH_REQ
  // Not seen here: the kernel's side and the io_uring round trip (fio's latency minus these).
  std::atomic<uint64_t> dispatch_ns{0}, copy_ns{0}, target_ns{0}, complete_ns{0};
};

// CLOCK_MONOTONIC in nanoseconds.
uint64_t MonotonicNs();

class UblkQueue {
 public:
  UblkQueue(const QueueConfig& cfg, BlockTarget* target);
  ~UblkQueue();
  UblkQueue(const UblkQueue&) = delete;
  UblkQueue& operator=(const UblkQueue&) = delete;

  // Starts the queue thread and its workers; returns once FETCH_REQ has been submitted for every
  // tag (so START_DEV / END_USER_RECOVERY can follow), or with the setup error.
  Status Start();
  // Asks the thread to finish: it commits what workers still hold, then leaves; outstanding fetches
  // are cancelled when its ring is torn down. Call after STOP_DEV (or on fatal errors).
  void RequestStop();
  void Join();
  const QueueStats& stats() const { return stats_; }

 private:
  enum class TagState : uint8_t { kIdle, kInKernel, kServing, kDone, kGone };
  struct Tag {
    TagState state = TagState::kIdle;
    int32_t result = 0;
  };

  void QueueThread();
  void WorkerThread();
  Status SetUpRing();
  void PrepIoCmd(IoCmd cmd, uint16_t tag, int32_t result);
  void PrepWakeupRead();
  void ServeTag(uint16_t tag);
  // Serves tags of one kind together as one engine batch: kRead through BlockTarget::ServeReads
  // (then each one's data is copied out), kWrite through ServeWrites (each one's data copied in
  // first); records results and stats as ServeTag does.
  void ServeBatchTags(const std::vector<uint16_t>& tags, BlockOp op);
  // The operation the kernel asked of `tag` (its descriptor's op field).
  BlockOp TagOp(uint16_t tag) const;
  uint8_t* TagBuffer(uint16_t tag) const;

  const QueueConfig cfg_;
  BlockTarget* const target_;
  QueueStats stats_;

  std::unique_ptr<io_uring> ring_;
  const ublksrv_io_desc* descs_ = nullptr;  // mmap'ed from /dev/ublkcN, read-only
  size_t descs_bytes_ = 0;
  uint8_t* buffers_ = nullptr;  // depth * max_io_bytes
  size_t buffers_bytes_ = 0;
  int wake_fd_ = -1;            // eventfd: workers -> queue thread
  uint64_t wake_value_ = 0;     // target of the pending eventfd read
  std::vector<Tag> tags_;       // touched by the queue thread only (workers get tags by value)

  std::mutex mu_;               // guards pending_, done_, stop_workers_
  std::condition_variable work_cv_;
  std::vector<uint16_t> pending_;  // fetched, waiting for a worker (capacity depth)
  std::vector<uint16_t> done_;     // served, waiting for commit (capacity depth)
  std::vector<int32_t> results_;   // per tag, written by the worker before it lands in done_
  std::vector<uint64_t> fetched_ns_;  // per tag: when its CQE was reaped (queue thread)
  std::vector<uint64_t> served_ns_;   // per tag: when its worker finished (before done_)
  bool stop_workers_ = false;

  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<std::thread> workers_;
  std::mutex start_mu_;
  std::condition_variable start_cv_;
  bool started_ = false;
  Status start_status_;
};

}  // namespace astra::ublk
