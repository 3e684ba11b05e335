// LookupTable: the kernel's lookup count (nlookup) per inode, as the FUSE protocol defines it:
// every successful lookup/create/mknod/mkdir/symlink/link reply and every readdirplus entry adds
// one; forget and batch_forget subtract. An inode whose link count reached zero is deleted when its
// lookup count reaches zero (the kernel holds a lookup for every open file).
//
// Only inode numbers and counts are kept (no pointers, no descriptors): inode numbers are stable
// engine ids. Thread safety: all methods may be called from any thread (sharded mutexes).
#pragma once

#include <array>
#include <cassert>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "catalog_format.h"
#include "lock_table.h"

namespace astra::fs {

class LookupTable {
 public:
  void Add(Ino ino, uint64_t n = 1) {
    Shard& s = shards_[LockShard(ino) % kShards];
    std::lock_guard<std::mutex> l(s.mu);
    s.counts[ino] += n;
  }
  // Subtracts `n`; returns true when the count reached zero (the entry is then dropped).
  bool Forget(Ino ino, uint64_t n) {
    Shard& s = shards_[LockShard(ino) % kShards];
    std::lock_guard<std::mutex> l(s.mu);
    auto it = s.counts.find(ino);
    if (it == s.counts.end()) return true;  // unknown: treat as unreferenced
    if (it->second <= n) {
      s.counts.erase(it);
      return true;
    }
    it->second -= n;
    return false;
  }
  bool Referenced(Ino ino) {
    Shard& s = shards_[LockShard(ino) % kShards];
    std::lock_guard<std::mutex> l(s.mu);
    return s.counts.count(ino) != 0;
  }
  void Clear() {
    for (Shard& s : shards_) {
      std::lock_guard<std::mutex> l(s.mu);
      s.counts.clear();
    }
  }

 private:
  static constexpr uint32_t kShards = 64;
  struct Shard {
    std::mutex mu;
    std::unordered_map<Ino, uint64_t> counts;
  };
  std::array<Shard, kShards> shards_;
};

}  // namespace astra::fs
