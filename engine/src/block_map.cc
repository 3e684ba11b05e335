#include "block_map.h"

#include <iterator>

namespace astra {

BlockMap::Tree::iterator BlockMap::Find(uint64_t obj, uint64_t block) {
  auto it = runs_.upper_bound(MapKey{obj, block});
  if (it == runs_.begin()) return runs_.end();
  --it;
  if (it->first.obj != obj || block - it->first.block >= it->second.count) return runs_.end();
  return it;
}

BlockMap::Tree::const_iterator BlockMap::Find(uint64_t obj, uint64_t block) const {
  auto it = runs_.upper_bound(MapKey{obj, block});
  if (it == runs_.begin()) return runs_.end();
  --it;
  if (it->first.obj != obj || block - it->first.block >= it->second.count) return runs_.end();
  return it;
}

uint32_t BlockMap::Get(uint64_t obj, uint64_t block) const {
  auto it = Find(obj, block);
  if (it == runs_.end()) return kHoleId;
  return uint32_t(it->second.first_id + (block - it->first.block));
}

BlockMap::Tree::iterator BlockMap::SplitAt(Tree::iterator it, uint64_t block) {
  const uint64_t start = it->first.block;
  const Run r = it->second;
  const uint32_t left = uint32_t(block - start);
  it->second.count = left;
  return runs_.emplace(MapKey{it->first.obj, block}, Run{r.first_id + left, r.count - left}).first;
}

void BlockMap::Insert(uint64_t obj, uint64_t block, uint32_t id) {
  blocks_++;
  // The run just before: does it end at block - 1 with id - 1?
  auto next = runs_.lower_bound(MapKey{obj, block});
  Tree::iterator prev = runs_.end();
  if (next != runs_.begin() && block > 0 && id > 0) {
    auto p = std::prev(next);
    if (p->first.obj == obj && p->first.block + p->second.count == block &&
        uint64_t(p->second.first_id) + p->second.count == id && p->second.count < UINT32_MAX)
      prev = p;
  }
  // The run just after: does it start at block + 1 with id + 1?
  const bool join_next = next != runs_.end() && next->first.obj == obj && next->first.block == block + 1 &&
                         uint64_t(next->second.first_id) == uint64_t(id) + 1 && id + 1 != kHoleId;
  if (prev != runs_.end()) {
    prev->second.count++;
    if (join_next && uint64_t(prev->second.count) + next->second.count <= UINT32_MAX) {
      prev->second.count += next->second.count;
      runs_.erase(next);
    }
    return;
  }
  if (join_next && next->second.count < UINT32_MAX) {
    const Run r{id, next->second.count + 1};
    runs_.erase(next);
    runs_.emplace(MapKey{obj, block}, r);
    return;
  }
  runs_.emplace(MapKey{obj, block}, Run{id, 1});
}

uint32_t BlockMap::Set(uint64_t obj, uint64_t block, uint32_t id) {
  auto it = Find(obj, block);
  if (it == runs_.end()) {
    if (id != kHoleId) Insert(obj, block, id);
    return kHoleId;
  }
  const uint64_t start = it->first.block;
  const uint32_t old = uint32_t(it->second.first_id + (block - start));
  if (old == id) return old;
  // Cut `block` out of its run: [start, block) stays, (block, end) becomes its own run.
  const Run r = it->second;
  const uint64_t off = block - start;
  if (off == 0) {
    it = runs_.erase(it);
  } else {
    it->second.count = uint32_t(off);
  }
  if (off + 1 < r.count)
    runs_.emplace(MapKey{obj, block + 1}, Run{uint32_t(r.first_id + off + 1), uint32_t(r.count - off - 1)});
  blocks_--;
  if (id != kHoleId) Insert(obj, block, id);
  return old;
}

std::optional<uint64_t> BlockMap::NextMapped(uint64_t obj, uint64_t block) const {
  if (Find(obj, block) != runs_.end()) return block;
  auto it = runs_.lower_bound(MapKey{obj, block});
  if (it == runs_.end() || it->first.obj != obj) return std::nullopt;
  return it->first.block;
}

uint64_t BlockMap::BlockEnd(uint64_t obj) const {
  if (obj == UINT64_MAX) {
    if (runs_.empty()) return 0;
    auto it = std::prev(runs_.end());
    return it->first.obj == obj ? it->first.block + it->second.count : 0;
  }
  auto it = runs_.lower_bound(MapKey{obj + 1, 0});
  if (it == runs_.begin()) return 0;
  --it;
  return it->first.obj == obj ? it->first.block + it->second.count : 0;
}

}  // namespace astra
