// BlockLocks: a striped table of reader-writer locks keyed by engine block number, so that
// read-modify-write of a 4 KiB engine block (a request not aligned to 4 KiB on a device with
// 512-byte logical blocks) cannot lose the bytes of a concurrent request touching the same block.
//
// A write request locks every engine block it touches: exclusively the (at most two) blocks it
// only partly covers, which it reads, patches and writes back; shared the blocks it overwrites
// whole, which it writes directly. So two RMWs of one block run one after the other, an RMW and
// a whole-block write of one block too, while whole-block writes never wait for each other.
// Reads take no lock: a block is written whole, so a reader sees the old or the new one, and an
// RMW writes back the bytes it did not change as it read them.
//
// Block b maps to stripe b % kStripes; a guard takes its stripes in ascending order (each once,
// exclusive when any of its blocks needs it), so guards never deadlock. Unrelated blocks that
// share a stripe wait for each other needlessly, nothing worse.
//
// Thread safety: Lock() from any number of threads; a RangeLock is released by its owner.
#pragma once

#include <array>
#include <cstdint>
#include <shared_mutex>

namespace astra::blockdev {

class BlockLocks {
 public:
  static constexpr uint32_t kStripes = 1024;  // > the blocks of one 512 KiB request (129)

  // Holds the stripes of one request until destroyed.
  class RangeLock {
   public:
    RangeLock(RangeLock&& o) noexcept : table_(o.table_), mode_(o.mode_) { o.table_ = nullptr; }
    RangeLock(const RangeLock&) = delete;
    RangeLock& operator=(const RangeLock&) = delete;
    ~RangeLock();

   private:
    friend class BlockLocks;
    enum : uint8_t { kNone = 0, kShared = 1, kExclusive = 2 };
    explicit RangeLock(BlockLocks* table) : table_(table), mode_{} {}
    BlockLocks* table_;
    std::array<uint8_t, kStripes> mode_;
  };

  // Locks blocks [first, first + count) (count >= 1): shared, except `partial_a` and
  // `partial_b` (blocks inside the range, or kNoBlock) which are locked exclusively.
  static constexpr uint64_t kNoBlock = UINT64_MAX;
  RangeLock Lock(uint64_t first, uint64_t count, uint64_t partial_a, uint64_t partial_b);

 private:
  std::array<std::shared_mutex, kStripes> stripes_;
};

}  // namespace astra::blockdev
