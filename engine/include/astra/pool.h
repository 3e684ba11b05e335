// Pool: the AstraFS engine. A pool of N member devices holding objects (file data, block
// volumes) and an ordered catalogue (file-system inodes, directory entries, xattrs, volume
// records), log-structured and Reed-Solomon k+m erasure-coded across the members, made durable by
// a journal and checkpoints. See doc/engine.md and doc/format/ for the design and on-disk format.
//
// Units: objects are arrays of 4 KiB blocks (kBlockBytes); every block argument is a block index,
// every count is in blocks, buffers hold count * 4096 bytes (no alignment required).
//
// Durability: a mutation (Write, Trim, Clone, catalogue Commit, ...) is applied at once and visible
// to every later call, and is durable once a Flush() that *started* after it has returned OK.
// After a crash, the pool recovers a prefix of the mutations in the order they were applied, which
// always includes everything covered by a completed Flush().
//
// Thread safety: every method may be called from many threads at once, except Close() and the
// destructor, which need all other calls to have returned.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "astra/device.h"
#include "astra/limits.h"
#include "astra/result.h"
#include "astra/status.h"

namespace astra {

using ObjectId = uint64_t;

enum class Compression : uint8_t { kNone = 0, kZstd = 1 };  // stored in the superblock

struct FormatOptions {
  uint32_t data_shards = 4;     // k
  uint32_t parity_shards = 2;   // m
  uint32_t chunk_bytes = 4096;  // bytes of one stripe on one member
  uint64_t segment_column_bytes = 1u << 20;  // bytes of one segment on one member
  uint64_t journal_bytes = 0;   // per member; 0 = automatic (1/32 of a member, 4..64 MiB)
  Compression compression = Compression::kZstd;
  int compression_level = 1;    // zstd level, 1..19
  bool dedup = true;
  bool force = false;           // overwrite members that already hold a pool
};

enum class CleanerPolicy : uint8_t {
  kCostBenefit = 0,  // Sprite LFS: maximise (1 - u) * age / (1 + u)
  kGreedy = 1,       // least live bytes first
};

// Segment cleaner activity since the pool was opened.
struct CleanerStats {
  uint64_t passes = 0;              // foreground + background + on-demand passes
  uint64_t segments_cleaned = 0;
  uint64_t bytes_relocated = 0;     // stored bytes moved to the cold stream
  uint64_t segments_trimmed = 0;    // freed segments discarded on the members
};

struct OpenOptions {
  bool read_only = false;       // never write to the members (fsck -n); no journal replay writes
  bool background_checkpoints = true;   // background flush, checkpoint and cleaning thread
  CleanerPolicy cleaner_policy = CleanerPolicy::kCostBenefit;
  // Test seam (issue 3): when set, every block's dedup fingerprint is this value, so every
  // write is a dedup candidate of every other: the byte comparison must tell them apart.
  std::optional<uint64_t> force_fingerprint;
  // Compression unit, in 4 KiB blocks: new consecutive blocks of one Write are compressed
  // together as one zstd frame of up to this many blocks (1..8; 0 = the default, 8, lowered so
  // a frame never spans more than 3 stripes: at most 2 x k x chunk bytes). Only the writer
  // uses it: pools hold frames of any size up to 8, whatever it is set to. Measurements of the
  // unit's effect on ratio and speed: doc/data-reduction.md.
  uint32_t compression_unit_blocks = 0;
  // Sequential readahead, bytes kept prefetched ahead of a reader that continues where its last
  // Read ended (in windows of up to 1 MiB, filled by background threads); 0 turns it off.
  // Prefetched blocks are dropped when their object changes, so reads never see older bytes.
  uint64_t readahead_bytes = 2u << 20;
  // Hybrid polling of member reads, microseconds: a reader polls its ring for completions (and
  // yields the CPU between polls) for up to this long without one before it sleeps, and checks
  // each stored range as soon as it lands (ReadAllOptions::poll_us). 0: sleep at once. Costs at
  // most this much CPU per wait; saves a wake-up per batch. Measurements: doc/engine.md.
  uint32_t read_poll_us = 50;
};

enum class MemberState : uint8_t { kOnline = 0, kMissing = 1, kFailed = 2, kRebuilding = 3 };
const char* MemberStateName(MemberState s);

struct MemberStatus {
  uint32_t index = 0;
  std::string path;
  std::string backend;
  MemberState state = MemberState::kOnline;
  uint64_t read_errors = 0, write_errors = 0, checksum_errors = 0;
};

// Space accounting of one object (a block volume, a file), for per-volume status. Shared stored
// bytes are divided among the blocks that reference them, so summed over every object these
// equal the pool's SpaceStats figures of the same name.
struct ObjectSpaceStats {
  uint64_t logical_bytes = 0;            // mapped blocks * 4096 (holes excluded)
  uint64_t stored_bytes = 0;             // this object's share of stored bytes (shared extents divided by references)
  uint64_t exclusive_stored_bytes = 0;   // stored bytes only this object references (what deleting it frees, at most)
  uint64_t dedup_saved_bytes = 0;        // sum over blocks of 4096 * (refs - 1) / refs
  uint64_t compression_saved_bytes = 0;  // sum over blocks of (4096 - stored charge) / refs
  double data_reduction_ratio = 1.0;     // logical / stored
};

struct SpaceStats {
  uint64_t logical_bytes = 0;          // referenced user blocks * 4096 (holes excluded)
  uint64_t stored_bytes = 0;           // data bytes of live extents on disk, before parity
  uint64_t raw_bytes = 0;              // stored bytes including parity, at segment granularity
  uint64_t zero_saved_bytes = 0;       // zero blocks written and recorded as holes
  uint64_t dedup_saved_bytes = 0;      // logical bytes served by shared extents
  uint64_t compression_saved_bytes = 0;
  uint64_t capacity_bytes = 0;         // user-data capacity (data shards only)
  uint64_t free_bytes = 0;             // user-data bytes still writable (free segments, reserve excluded)
  uint64_t reclaimable_bytes = 0;      // dead bytes in sealed segments the cleaner can free
  double data_reduction_ratio = 1.0;   // logical / stored
};

struct PoolStatus {
  std::string pool_uuid;
  uint32_t data_shards = 0, parity_shards = 0, members = 0;
  uint64_t generation = 0;
  bool degraded = false;
  bool read_only = false;
  std::vector<MemberStatus> member_status;
  SpaceStats space;
  uint64_t segments_total = 0, segments_free = 0;
  uint64_t journal_seq = 0, checkpoint_seq = 0;
  uint64_t repaired_blocks = 0;        // blocks rebuilt from parity after a bad read
  // Readahead: blocks served from prefetched windows, prefetched, and prefetched but dropped
  // unread (the object changed, the reader went elsewhere).
  uint64_t readahead_hit_blocks = 0, readahead_filled_blocks = 0, readahead_dropped_blocks = 0;
  uint32_t readahead_pending_windows = 0;  // prefetch windows queued or being filled now
  // Dedup candidates verified from the write path's read window (stored bytes read ahead when
  // candidates come in stored order) instead of a device read of their own.
  uint64_t dedup_window_hits = 0;
  CleanerStats cleaner;
  Compression compression = Compression::kNone;
  int compression_level = 0;
  bool dedup = false;
  uint32_t read_poll_us = 0;  // OpenOptions::read_poll_us this pool was opened with, microseconds
};

// Progress callback for long operations: (done, total, phase). Called from the calling thread.
using ProgressFn = std::function<void(uint64_t done, uint64_t total, std::string_view phase)>;

struct CheckReport {
  uint64_t extents_checked = 0, stripes_checked = 0, blocks_mapped = 0;
  uint64_t checksum_errors = 0, parity_errors = 0, refcount_errors = 0, other_errors = 0;
  uint64_t repaired = 0;
  std::vector<std::string> problems;  // one line each, naming the object and location
  bool clean() const {
    return checksum_errors + parity_errors + refcount_errors + other_errors == 0;
  }
};

// One catalogue mutation inside a transaction. Keys are compared bytewise (memcmp order).
struct CatalogOp {
  enum class Kind : uint8_t {
    kPut = 1,           // key = value
    kDelete = 2,        // remove key (no error if absent)
    kDeleteObject = 3,  // drop every block of `object`
    kTruncateObject = 4 // drop every block of `object` at or after `block`
  };
  Kind kind = Kind::kPut;
  std::string key;
  std::string value;
  ObjectId object = 0;
  uint64_t block = 0;
};

// Atomic catalogue transaction: all ops apply, or (on error, or after a crash) none.
// Optional preconditions make it a compare-and-set: `expect_absent` keys must not exist.
struct CatalogTxn {
  std::vector<CatalogOp> ops;
  std::vector<std::string> expect_absent;
  void Put(std::string k, std::string v) {
    ops.push_back({CatalogOp::Kind::kPut, std::move(k), std::move(v), 0, 0});
  }
  void Delete(std::string k) { ops.push_back({CatalogOp::Kind::kDelete, std::move(k), {}, 0, 0}); }
  void DeleteObject(ObjectId o) { ops.push_back({CatalogOp::Kind::kDeleteObject, {}, {}, o, 0}); }
  void TruncateObject(ObjectId o, uint64_t first_block) {
    ops.push_back({CatalogOp::Kind::kTruncateObject, {}, {}, o, first_block});
  }
};

// One read of a ReadBatch: `count` blocks of `obj` from `block` into `buf` (count * 4096 bytes,
// no alignment required). `status` is the result, set by ReadBatch.
struct ReadOp {
  ObjectId obj = 0;
  uint64_t block = 0;
  uint32_t count = 0;   // blocks, 1..kBlocksPerIoMax
  void* buf = nullptr;
  Status status;
};

// One write of a WriteBatch: `count` blocks of `obj` from `block`, taken from `buf` (count * 4096
// bytes, no alignment required). `status` is the result, set by WriteBatch.
struct WriteOp {
  ObjectId obj = 0;
  uint64_t block = 0;
  uint32_t count = 0;   // blocks, 0..kBlocksPerIoMax (0: nothing to do)
  const void* buf = nullptr;
  Status status;
};

class Pool {
 public:
  virtual ~Pool() = default;

  // Formats `members` (all must be present) as a new pool. Errors: kInvalidArgument (geometry
  // out of range, k+m > members, members too small or of unequal usable size, naming which),
  // kExists (a member already holds a pool and !opts.force), kIOError.
  static Status Format(std::vector<std::unique_ptr<Device>>& members, const FormatOptions& opts);

  // Opens a pool. `members[i]` may be nullptr for a member that is missing (order does not
  // matter: members are identified by their superblocks). Up to m members may be missing or
  // unreadable: the pool opens degraded. A read-write open records absent members as failed in
  // the superblocks (they missed writes): they return only through ReplaceMember (rebuild). Errors: kCorruption (no valid superblock, checkpoint or
  // journal, naming the member and structure), kInvalidArgument (members of different pools, too
  // many missing), kIOError.
  static Result<std::unique_ptr<Pool>> Open(std::vector<std::unique_ptr<Device>> members,
                                            const OpenOptions& opts = {});

  // Flushes, writes a checkpoint and releases the members. Further calls are invalid.
  virtual Status Close() = 0;

  // ---- Object data (4 KiB blocks) ----
  // Reads `count` blocks; unwritten blocks read as zeros. Errors: kCorruption/kIOError only when
  // more than m chunks of a stripe are bad (otherwise the data is rebuilt and repaired).
  virtual Status Read(ObjectId obj, uint64_t block, uint32_t count, void* buf) = 0;
  // Reads a batch of independent ranges (any objects, any order, overlaps allowed), each as
  // Read() would, with the device reads of the whole batch in flight at once: one caller's queue
  // depth (random 4 KiB reads at queue depth N are one ReadBatch of N one-block ops). One lookup
  // pass under the metadata lock, one submission per member, one wait. Readahead is not used (a
  // batch of consecutive ranges is the caller's own readahead). Sets every op's status;
  // returns Ok when all succeeded, else the first failed op's error (kInvalidArgument for an op
  // of 0 or more than kBlocksPerIoMax blocks; the others as Read). An empty batch is Ok.
  virtual Status ReadBatch(std::span<ReadOp> ops) = 0;
  // Writes `count` blocks (count <= kBlocksPerIoMax). Zero blocks become holes. kNoSpace when
  // the pool is full (nothing already stored is touched); kReadOnly after a fatal device error.
  virtual Status Write(ObjectId obj, uint64_t block, uint32_t count, const void* buf) = 0;
  // Applies a batch of writes (any objects; overlapping ops apply in order, the later one wins),
  // each as Write() would, with one acquisition of the writer lock for the whole batch: one
  // caller's queue depth of writes (random 4 KiB writes at queue depth N are one WriteBatch of N
  // one-block ops), without a thread per write or a lock hand-off per write. The lock-free work
  // (zero detection, fingerprints, compression) of every op is done first. Durable, like Write,
  // once a later Flush completes. Sets every op's status; returns Ok when all succeeded, else
  // the first failed op's error (kInvalidArgument for an op of more than kBlocksPerIoMax blocks
  // or out of range: that op alone; kNoSpace, kReadOnly as Write: that op and, as the pool is
  // then full or read-only, usually the ones after it). An empty batch is Ok. Thread safety: any
  // thread, concurrently with every other call.
  virtual Status WriteBatch(std::span<WriteOp> ops) = 0;
  // Drops `count` blocks (they read as zeros afterwards).
  virtual Status Trim(ObjectId obj, uint64_t block, uint64_t count) = 0;
  // Makes dst[dst_block..+count) share src's extents (copy_file_range); dst's old blocks dropped.
  virtual Status CloneRange(ObjectId src, uint64_t src_block, ObjectId dst, uint64_t dst_block,
                            uint64_t count) = 0;
  // Highest mapped block + 1 of an object (0 when empty). For fsck and SEEK_DATA-like use.
  virtual uint64_t ObjectBlockEnd(ObjectId obj) = 0;
  // Next mapped block at or after `block`, or nullopt (SEEK_DATA).
  virtual std::optional<uint64_t> NextMappedBlock(ObjectId obj, uint64_t block) = 0;
  // Number of mapped (non-hole) blocks in an object (st_blocks).
  virtual uint64_t ObjectMappedBlocks(ObjectId obj) = 0;
  // Space accounting of one object (see ObjectSpaceStats). Walks the object's block map: O(mapped
  // blocks) under the metadata lock (readers wait, writers too); meant for status, not hot paths.
  virtual ObjectSpaceStats GetObjectSpace(ObjectId obj) = 0;

  // ---- Catalogue ----
  virtual Result<std::string> Get(std::string_view key) = 0;  // kNotFound if absent
  // Calls fn(key, value) for keys in [begin, end) in order until fn returns false.
  virtual Status Scan(std::string_view begin, std::string_view end,
                      const std::function<bool(std::string_view, std::string_view)>& fn) = 0;
  // Applies a transaction atomically. kAborted if a precondition fails (nothing applied).
  virtual Status Commit(const CatalogTxn& txn) = 0;
  // A fresh id, never returned before by this pool (persisted). For inode numbers / volumes.
  virtual Result<uint64_t> AllocateId() = 0;

  // ---- Durability and maintenance ----
  virtual Status Flush() = 0;
  virtual Status Checkpoint() = 0;
  // Full consistency check (fsck): every extent checksum, every stripe's parity, reference
  // counts against the maps. `repair` relocates what redundancy can rebuild.
  virtual Result<CheckReport> Check(bool repair, const ProgressFn& progress = nullptr) = 0;
  // Scrub: Check(repair = true) while online.
  virtual Result<CheckReport> Scrub(const ProgressFn& progress = nullptr) = 0;
  // Replaces member `index` by `dev` (formatted here) and rebuilds its chunks while online.
  virtual Status ReplaceMember(uint32_t index, std::unique_ptr<Device> dev,
                               const ProgressFn& progress = nullptr) = 0;
  // Runs the segment cleaner on demand (astrafs gc): relocates the live data of partly dead
  // segments, checkpoints, and discards the freed segments on the members.
  virtual Result<CleanerStats> CollectGarbage(const ProgressFn& progress = nullptr) = 0;
  // Marks a member failed (admin "offline", or tests): it gets no more I/O.
  virtual Status FailMember(uint32_t index) = 0;
  virtual PoolStatus GetStatus() = 0;
};

// Reads member superblocks without opening the pool (mkfs --force checks, status of a member).
struct MemberIdentity {
  std::string pool_uuid;
  uint32_t member_index = 0;
  uint32_t members = 0;
  uint64_t generation = 0;
};
Result<MemberIdentity> ProbeMember(Device& dev);

}  // namespace astra
