// BlockMap: the logical-to-physical map of every object, (object, block) -> extent id, kept in
// RAM as runs.
//
// A run maps `count` consecutive blocks of one object to `count` consecutive extent ids:
// block start + i -> first_id + i. A sequential write allocates consecutive ids (new extents are
// numbered densely, freed ids are handed out lowest first after a load), so a sequentially written
// object costs one 24-byte btree slot per run instead of one per 4 KiB block; random overwrites
// degrade gracefully to one run per block, the cost of a per-block map. Runs are split on
// overwrite and merged with their neighbours when a block continues them, the way extent trees
// of btrfs/XFS keep (offset, length) items rather than per-block pointers.
//
// The checkpoint image and the journal still describe the map block by block (journal_format.h,
// doc/format/): runs are an in-RAM representation only, so no format changes.
//
// Thread safety: none; MetaState's owner serialises access.
#pragma once

#include <absl/container/btree_map.h>

#include <cstdint>
#include <optional>
#include <utility>

#include "journal_format.h"

namespace astra {

struct MapKey {
  uint64_t obj;
  uint64_t block;
  bool operator<(const MapKey& o) const { return obj != o.obj ? obj < o.obj : block < o.block; }
  bool operator==(const MapKey& o) const { return obj == o.obj && block == o.block; }
};

class BlockMap {
 public:
  // The extent id of (obj, block), kHoleId if the block is unmapped.
  uint32_t Get(uint64_t obj, uint64_t block) const;

  // Maps (obj, block) to `id` (kHoleId unmaps it). Returns the id it mapped before (kHoleId if
  // none). Reference counting is the caller's.
  uint32_t Set(uint64_t obj, uint64_t block, uint32_t id);

  // Unmaps blocks [block, end) of `obj`, calling fn(id) once for every block that was mapped.
  // Within a run the ids are reported highest first (so that a LIFO free list hands them out
  // again lowest first, in ascending order, and a later sequential write forms runs again).
  // Returns the number of blocks unmapped. `fn` must not touch this map.
  template <class Fn>
  uint64_t Erase(uint64_t obj, uint64_t block, uint64_t end, Fn&& fn);

  // Calls fn(block, id) for every mapped block of `obj` in [block, end), in block order.
  template <class Fn>
  void ForEachIn(uint64_t obj, uint64_t block, uint64_t end, Fn&& fn) const;

  // Calls fn(obj, block, id) for every mapped block, in (obj, block) order.
  template <class Fn>
  void ForEach(Fn&& fn) const;

  // The first mapped block of `obj` at or after `block`, if any.
  std::optional<uint64_t> NextMapped(uint64_t obj, uint64_t block) const;
  // One past the last mapped block of `obj` (0 if it maps nothing).
  uint64_t BlockEnd(uint64_t obj) const;

  uint64_t blocks() const { return blocks_; }  // mapped blocks in all
  uint64_t runs() const { return runs_.size(); }
  void Clear() {
    runs_.clear();
    blocks_ = 0;
  }
  // Approximate heap bytes (btree slots at ~90 % fill, plus node headers).
  uint64_t MemoryBytes() const { return uint64_t(double(runs_.size()) * sizeof(Slot) * 1.15); }

 private:
  struct Run {
    uint32_t first_id;
    uint32_t count;
  };
  using Slot = std::pair<MapKey, Run>;
  using Tree = absl::btree_map<MapKey, Run>;

  // The run holding (obj, block), or runs_.end().
  Tree::iterator Find(uint64_t obj, uint64_t block);
  Tree::const_iterator Find(uint64_t obj, uint64_t block) const;
  // Maps an unmapped (obj, block) to id, merging with the runs before and after.
  void Insert(uint64_t obj, uint64_t block, uint32_t id);
  // Splits the run at `it` so that a run starts at `block` (inside it). Returns that run.
  Tree::iterator SplitAt(Tree::iterator it, uint64_t block);

  Tree runs_;
  uint64_t blocks_ = 0;
};

template <class Fn>
uint64_t BlockMap::Erase(uint64_t obj, uint64_t block, uint64_t end, Fn&& fn) {
  if (block >= end) return 0;
  auto it = Find(obj, block);
  if (it != runs_.end() && it->first.block < block) it = SplitAt(it, block);
  if (it == runs_.end()) it = runs_.lower_bound(MapKey{obj, block});
  uint64_t erased = 0;
  while (it != runs_.end() && it->first.obj == obj && it->first.block < end) {
    Run r = it->second;
    const uint64_t start = it->first.block;
    const uint64_t n = std::min<uint64_t>(r.count, end - start);
    if (n < r.count) {  // the run reaches past `end`: keep its tail as a run of its own
      it = SplitAt(it, start + n);
      it = std::prev(it);
    }
    for (uint64_t i = n; i-- > 0;) fn(uint32_t(r.first_id + i));
    it = runs_.erase(it);
    erased += n;
  }
  blocks_ -= erased;
  return erased;
}

template <class Fn>
void BlockMap::ForEachIn(uint64_t obj, uint64_t block, uint64_t end, Fn&& fn) const {
  if (block >= end) return;
  auto it = Find(obj, block);
  if (it == runs_.end()) it = runs_.lower_bound(MapKey{obj, block});
  for (; it != runs_.end() && it->first.obj == obj && it->first.block < end; ++it) {
    const uint64_t start = it->first.block;
    const uint64_t from = std::max(start, block);
    const uint64_t to = std::min<uint64_t>(start + it->second.count, end);
    for (uint64_t b = from; b < to; b++) fn(b, uint32_t(it->second.first_id + (b - start)));
  }
}

template <class Fn>
void BlockMap::ForEach(Fn&& fn) const {
  for (const auto& [k, r] : runs_)
    for (uint32_t i = 0; i < r.count; i++) fn(k.obj, k.block + i, uint32_t(r.first_id + i));
}

}  // namespace astra
