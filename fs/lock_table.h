// LockTable: a fixed table of mutexes sharded by inode number, so the file system never keeps a
// lock object per inode and never takes a global lock. Two inodes may share a shard; that only
// costs concurrency, never correctness.
//
// Two tables are used (see doc/fs.md, "Locking"): data locks (shared_mutex: shared for aligned
// in-size writes, exclusive for read-modify-write, extension, truncate, punch, clone) and meta
// locks (mutex: every read-modify-write of an inode record or of a directory's entries).
// Lock order: data before meta; within one table, ascending shard index (ShardSet does this).
//
// Thread safety: all methods may be called from any thread.
#pragma once

#include <algorithm>
#include <array>
#include <cassert>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <shared_mutex>

#include "catalog_format.h"

namespace astra::fs {

inline constexpr uint32_t kLockShards = 1024;  // a power of two
static_assert((kLockShards & (kLockShards - 1)) == 0);
inline constexpr uint32_t kLockSetInodesMax = 4;  // rename: two parents, source, target

inline uint32_t LockShard(Ino ino) {
  // Fibonacci hashing spreads consecutive inode numbers (AllocateId is sequential).
  return static_cast<uint32_t>((ino * 0x9E3779B97F4A7C15ull) >> 54) & (kLockShards - 1);
}

template <typename Mutex>
class LockTable {
 public:
  Mutex& ForShard(uint32_t shard) { return mu_[shard]; }
  Mutex& For(Ino ino) { return mu_[LockShard(ino)]; }

 private:
  std::array<Mutex, kLockShards> mu_;
};

// The sorted, de-duplicated shards of up to kLockSetInodesMax inodes (0 entries are ignored).
class ShardSet {
 public:
  ShardSet(std::initializer_list<Ino> inos) {
    assert(inos.size() <= kLockSetInodesMax);
    for (Ino ino : inos) {
      if (ino != 0) shards_[n_++] = LockShard(ino);
    }
    std::sort(shards_.begin(), shards_.begin() + n_);
    n_ =
        static_cast<uint32_t>(std::unique(shards_.begin(), shards_.begin() + n_) - shards_.begin());
  }
  uint32_t size() const { return n_; }
  uint32_t operator[](uint32_t i) const { return shards_[i]; }

 private:
  std::array<uint32_t, kLockSetInodesMax> shards_{};
  uint32_t n_ = 0;
};

// Holds the meta locks of a set of inodes, taken in ascending shard order.
class MetaLockSet {
 public:
  MetaLockSet(LockTable<std::mutex>& table, std::initializer_list<Ino> inos)
      : table_(table), set_(inos) {
    for (uint32_t i = 0; i < set_.size(); ++i) table_.ForShard(set_[i]).lock();
  }
  ~MetaLockSet() {
    for (uint32_t i = set_.size(); i > 0; --i) table_.ForShard(set_[i - 1]).unlock();
  }
  MetaLockSet(const MetaLockSet&) = delete;
  MetaLockSet& operator=(const MetaLockSet&) = delete;

 private:
  LockTable<std::mutex>& table_;
  ShardSet set_;
};

// Holds the data locks of up to two inodes exclusively (copy_file_range, truncate).
class DataLockSet {
 public:
  DataLockSet(LockTable<std::shared_mutex>& table, std::initializer_list<Ino> inos)
      : table_(table), set_(inos) {
    for (uint32_t i = 0; i < set_.size(); ++i) table_.ForShard(set_[i]).lock();
  }
  ~DataLockSet() {
    for (uint32_t i = set_.size(); i > 0; --i) table_.ForShard(set_[i - 1]).unlock();
  }
  DataLockSet(const DataLockSet&) = delete;
  DataLockSet& operator=(const DataLockSet&) = delete;

 private:
  LockTable<std::shared_mutex>& table_;
  ShardSet set_;
};

}  // namespace astra::fs
