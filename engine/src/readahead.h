// Readahead: sequential-read detection and prefetch of logical blocks for Pool::Read.
//
// A synchronous reader of 128 KiB at a time keeps 128 KiB in flight: four 32 KiB member reads
// on a 4+2 pool, then nothing while it copies. Like the readahead of Linux (mm/readahead.c) and
// ZFS's prefetcher (dmu_zfetch.c), this component notices a reader that continues where its last
// read ended and fetches the windows after it on worker threads, so the devices always have
// work queued; the reader's next calls are served from memory.
//
// What it caches: decoded logical blocks of one object, [first, first + count). Correctness
// rests on the object epochs: every mutation of an object's block map (write, trim, clone into,
// truncate, delete) calls Invalidate(obj) *after* its map change is applied, before it returns.
// A window records the epoch before its fill looks the blocks up, and is served only while the
// epoch is unchanged; so a read that starts after a mutation returned never sees bytes from
// before it. Epochs are striped (kEpochStripes counters, hashed by object id): a mutation of one
// object may also invalidate windows of another, never the reverse. Where blocks live on the
// devices (cleaning, repair, rebuild move them) does not matter: the bytes are logical.
//
// Thread safety: every method is safe from any thread. Windows are filled by `workers` threads
// calling `fill` (the pool's own read path) without any lock of this class held.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "astra/device.h"
#include "astra/status.h"

namespace astra {

struct ReadaheadStats {
  uint64_t hit_blocks = 0;      // blocks served from a prefetched window
  uint64_t filled_blocks = 0;   // blocks prefetched
  uint64_t dropped_blocks = 0;  // prefetched blocks dropped unread (stale epoch, evicted)
  uint32_t pending_windows = 0; // windows queued or being filled now
};

class Readahead {
 public:
  // Reads `count` (<= 256) logical blocks of object `obj` from `block` into `buf` (count x 4 KiB).
  using FillFn = std::function<Status(uint64_t obj, uint64_t block, uint32_t count, uint8_t* buf)>;

  // `window_blocks`: blocks per prefetch (1..256; one fill call each). `windows_ahead`: windows
  // kept ahead of a sequential reader. `workers`: fill threads (windows in flight at once).
  Readahead(FillFn fill, uint32_t window_blocks, uint32_t windows_ahead, uint32_t workers);
  ~Readahead();

  // Stops the workers after their current fill; later TryRead calls miss. Idempotent.
  void Stop();

  // Serves the read of `count` blocks of `obj` at `block` into `out` from prefetched windows if
  // they hold all of it (waiting for a fill already running), and returns true; otherwise false
  // (the caller reads from the devices). Either way records the access: the kRunToPrefetch-th
  // read in a row that starts where the previous read of its stream ended, and every one after
  // it, queue windows ahead of the reader.
  bool TryRead(uint64_t obj, uint64_t block, uint32_t count, uint8_t* out);

  // Marks every window of `obj` stale. Call after a change of the object's blocks is applied.
  void Invalidate(uint64_t obj) { epoch(obj).fetch_add(1, std::memory_order_acq_rel); }

  ReadaheadStats stats() const;

 private:
  static constexpr uint32_t kEpochStripes = 64;
  static constexpr uint32_t kStreamsMax = 8;
  // Reads in a row that must continue their predecessor before windows are queued: one
  // coincidence in a random workload does not start a stream.
  static constexpr uint32_t kRunToPrefetch = 2;

  enum class State : uint8_t { kQueued, kFilling, kReady, kFailed };
  struct Window {
    uint64_t obj = 0, first = 0;
    uint32_t count = 0;
    uint32_t served = 0;  // blocks copied out to readers
    uint64_t epoch = 0;  // set by the worker before it fills
    State state = State::kQueued;
    bool cancelled = false;  // evicted while queued or filling: the worker drops it
    AlignedBuf buf;  // 4 KiB-aligned: raw blocks are read straight into it (scatter reads)
  };
  struct Stream {
    uint64_t obj = 0;
    uint64_t next = 0;      // block where the previous read ended
    uint64_t frontier = 0;  // end of the last window scheduled
    uint32_t run = 0;       // consecutive reads that continued the previous one
    uint64_t last_use = 0;
    std::vector<std::shared_ptr<Window>> windows;
  };

  std::atomic<uint64_t>& epoch(uint64_t obj) { return epochs_[(obj * 0x9E3779B97F4A7C15ull) >> 58]; }
  Stream* FindStreamLocked(uint64_t obj, uint64_t block);
  void DropWindowLocked(const std::shared_ptr<Window>& w);
  void Worker();

  const FillFn fill_;
  const uint32_t window_blocks_, windows_ahead_;
  std::array<std::atomic<uint64_t>, kEpochStripes> epochs_{};

  mutable std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  bool stop_ = false;
  uint64_t clock_ = 0;
  std::vector<Stream> streams_;
  std::deque<std::shared_ptr<Window>> queue_;
  ReadaheadStats stats_;
  uint32_t filling_ = 0;
  std::vector<std::thread> workers_;
};

}  // namespace astra
