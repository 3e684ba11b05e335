#include "blockdev/block_locks.h"

#include <cassert>

namespace astra::blockdev {

BlockLocks::RangeLock BlockLocks::Lock(uint64_t first, uint64_t count, uint64_t partial_a,
                                       uint64_t partial_b) {
  assert(count >= 1);
  assert(partial_a == kNoBlock || (partial_a >= first && partial_a - first < count));
  assert(partial_b == kNoBlock || (partial_b >= first && partial_b - first < count));
  RangeLock g(this);
  if (count >= kStripes) {
    g.mode_.fill(RangeLock::kShared);
  } else {
    for (uint64_t b = first; b < first + count; b++) g.mode_[b % kStripes] = RangeLock::kShared;
  }
  if (partial_a != kNoBlock) g.mode_[partial_a % kStripes] = RangeLock::kExclusive;
  if (partial_b != kNoBlock) g.mode_[partial_b % kStripes] = RangeLock::kExclusive;
  // Ascending order, each stripe once: no two guards can wait for each other in a cycle.
  for (uint32_t s = 0; s < kStripes; s++) {
    if (g.mode_[s] == RangeLock::kExclusive) stripes_[s].lock();
    if (g.mode_[s] == RangeLock::kShared) stripes_[s].lock_shared();
  }
  return g;
}

BlockLocks::RangeLock::~RangeLock() {
  if (table_ == nullptr) return;
  for (uint32_t s = kStripes; s-- > 0;) {
    if (mode_[s] == kExclusive) table_->stripes_[s].unlock();
    if (mode_[s] == kShared) table_->stripes_[s].unlock_shared();
  }
}

}  // namespace astra::blockdev
