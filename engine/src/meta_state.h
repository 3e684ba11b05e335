// MetaState: the engine's metadata as a deterministic state machine.
//
// Every mutation is an encoded record (journal_format.h). The live path encodes a record, applies
// it with Apply() and queues the same bytes for the journal; recovery decodes journal batches and
// applies them with the same Apply(). So the recovered state is, by construction, the live state
// at the flush that wrote the last valid batch. A checkpoint is Serialize(); loading one is
// Deserialize(). All derived state (reference counts, segment live bytes, free lists, the dedup
// index) is recomputed on load, so a checkpoint can never carry inconsistent copies of it.
//
// Thread safety: none; the pool serialises access with its own locks.
#pragma once

#include <absl/container/btree_map.h>
#include <absl/container/flat_hash_map.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "astra/pool.h"
#include "astra/status.h"
#include "block_map.h"
#include "coding.h"
#include "journal_format.h"

namespace astra {

// A stored extent: one 4 KiB logical block, stored raw (4096 bytes), compressed on its own, or
// as one block of a compressed frame shared with its siblings (journal_format.h). A free slot of
// the extent table has length 0 (a stored extent is never empty). Its dedup fingerprint lives in a
// side table that exists only when the pool deduplicates (MetaState::fingerprint).
struct Extent {
  uint32_t segment = 0;
  uint32_t offset = 0;      // bytes into the segment's data space (of the frame, if in one)
  uint32_t crc = 0;         // CRC-32C of the stored bytes
  uint32_t refs = 0;        // map entries pointing here (derived)
  uint16_t length = 0;      // stored bytes (of the whole frame, if in one); 0 = free slot
  uint8_t flags = 0;        // compression, frame index, frame blocks (journal_format.h)
  bool used() const { return length != 0; }
};
static_assert(sizeof(Extent) == 20, "extent table entry stays 20 bytes (RAM budget, doc/benchmarks.md)");
static_assert(kFrameBlocksMax * 4096 <= UINT16_MAX, "a frame's stored length fits Extent::length");

inline uint32_t FrameBlocks(const Extent& x) { return FlagsFrameBlocks(x.flags); }
inline uint32_t FrameIndex(const Extent& x) { return FlagsFrameIndex(x.flags); }
// The stored bytes charged to this extent (live bytes, stored bytes): its share of the frame, so
// that the shares of a frame's blocks add up to the frame's length exactly.
inline uint32_t ExtentCharge(const Extent& x) {
  const uint64_t n = FrameBlocks(x), i = FrameIndex(x), l = x.length;
  return uint32_t(l * (i + 1) / n - l * i / n);
}
// True if (length, flags) describe a storable extent: index < blocks; one block is 1..4096
// bytes (raw: exactly 4096); a frame is compressed and at most blocks x 4096 bytes.
bool ExtentShapeValid(uint32_t length, uint8_t flags);

enum class SegState : uint8_t { kFree = 0, kOpen = 1, kSealed = 2, kFreePending = 3, kCheckpoint = 4 };
enum class SegKind : uint8_t { kData = 0, kCheckpoint = 1 };  // stored: do not change

struct SegmentInfo {
  SegState state = SegState::kFree;
  SegKind kind = SegKind::kData;
  uint32_t written_stripes = 0;  // durable write pointer, in stripes
  uint64_t live_bytes = 0;       // stored bytes of used extents (derived)
};

class MetaState {
 public:
  // `capacity_bytes`: data capacity of the pool (bounds the extent table against corrupt ids).
  void Init(uint64_t segments, bool dedup, uint64_t capacity_bytes);

  // Applies one encoded record (type byte + u32 length + body). kCorruption if it does not decode
  // or references something out of range (replayed bytes are never trusted).
  Status Apply(const uint8_t* rec, size_t len);
  // Applies every record of a batch payload.
  Status ApplyAll(const uint8_t* payload, size_t len, uint32_t count);

  // Checkpoint image. Segments in kCheckpoint / kFreePending are written as kFree.
  void Serialize(Encoder* e) const;
  Status Deserialize(const uint8_t* p, size_t n);

  // ---- record builders (append to `e`) ----
  // `fingerprint`: 64 bits of XXH3-128 of the logical block (dedup hint), 0 = none.
  static void RecNewExtent(Encoder* e, uint32_t id, const Extent& x, uint64_t fingerprint);
  static void RecMap(Encoder* e, uint64_t obj, uint64_t block, const uint32_t* ids, uint32_t count);
  static void RecTrim(Encoder* e, uint64_t obj, uint64_t block, uint64_t count);
  static void RecCatalog(Encoder* e, const CatalogTxn& txn);
  static void RecSegOpen(Encoder* e, uint32_t seg, SegKind kind);
  static void RecSegAdvance(Encoder* e, uint32_t seg, uint32_t stripes);
  static void RecSegSeal(Encoder* e, uint32_t seg);
  static void RecNextId(Encoder* e, uint64_t next);
  static void RecClone(Encoder* e, uint64_t src, uint64_t sb, uint64_t dst, uint64_t db, uint64_t n);
  static void RecExtentMove(Encoder* e, uint32_t id, uint32_t seg, uint32_t off);
  // A re-encoded copy of extent `id` (the cleaner re-packs frames with dead blocks): new
  // location, length, flags and CRC; references and fingerprint unchanged.
  static void RecExtentRelocate(Encoder* e, uint32_t id, const Extent& x);
  static void RecZeroBlocks(Encoder* e, uint64_t count);

  // ---- queries ----
  uint32_t Lookup(uint64_t obj, uint64_t block) const;  // kHoleId if unmapped
  const Extent& extent(uint32_t id) const { return extents_[id]; }
  bool ExtentUsed(uint32_t id) const { return id < extents_.size() && extents_[id].used(); }
  // The extent's dedup fingerprint (0 = none; always 0 when the pool does not deduplicate).
  uint64_t fingerprint(uint32_t id) const { return id < fingerprints_.size() ? fingerprints_[id] : 0; }
  uint32_t ExtentCount() const { return uint32_t(extents_.size()); }
  uint32_t PeekFreeExtentId();  // the id the next new extent will get (not yet taken)
  uint32_t DedupLookup(uint64_t fp) const;  // kHoleId if none
  SegmentInfo& seg(uint32_t s) { return segs_[s]; }
  const SegmentInfo& seg(uint32_t s) const { return segs_[s]; }
  uint64_t segments() const { return segs_.size(); }
  const std::set<uint32_t>& free_segments() const { return free_segs_; }
  void MarkCheckpointSegment(uint32_t s);
  // After a checkpoint is durable: kFreePending and the given old checkpoint segments -> kFree.
  // After a journal batch is durable: every free-pending segment is dead in the durable state
  // too (the records that killed it are on disk), so it may be reused. Returns those freed.
  std::vector<uint32_t> ReleaseFreePending();
  // Returns the segments freed.
  std::vector<uint32_t> ReleaseAfterCheckpoint(const std::vector<uint32_t>& old_ckpt_segs);
  uint64_t next_id() const { return next_id_; }
  uint64_t zero_blocks() const { return zero_blocks_; }
  const BlockMap& map() const { return map_; }
  const absl::btree_map<std::string, std::string>& catalog() const { return catalog_; }
  const absl::flat_hash_map<uint64_t, uint32_t>& dedup_index() const { return dedup_; }
  uint64_t mapped_blocks() const { return map_.blocks(); }
  // Mapped blocks of one object (derived, O(1)).
  uint64_t ObjectMappedBlocks(uint64_t obj) const {
    auto it = obj_blocks_.find(obj);
    return it == obj_blocks_.end() ? 0 : it->second;
  }
  uint64_t stored_bytes() const { return stored_bytes_; }
  uint64_t used_extents() const { return used_extents_; }
  // Map entries beyond the first of each extent: blocks served by dedup or clone sharing.
  uint64_t shared_blocks() const {
    return map_.blocks() > used_extents_ ? map_.blocks() - used_extents_ : 0;
  }
  // Recomputes refs and live bytes from the maps and compares (fsck). Appends problems.
  uint64_t VerifyDerived(std::vector<std::string>* problems) const;
  // Approximate RAM of the metadata structures, bytes.
  uint64_t MemoryBytes() const;

 private:
  void SetMap(uint64_t obj, uint64_t block, uint32_t id);
  void CountBlocks(uint64_t obj, int64_t delta);
  void DropRange(uint64_t obj, uint64_t block, uint64_t end_block);
  void AddRef(uint32_t id);
  void DropRef(uint32_t id);
  void RecomputeDerived();
  void SegmentMaybeFree(uint32_t s);

  bool dedup_enabled_ = true;
  uint64_t max_extents_ = kExtentsMax;
  std::vector<Extent> extents_;
  std::vector<uint64_t> fingerprints_;  // parallel to extents_, only with dedup (else empty)
  std::vector<uint32_t> free_ids_;
  BlockMap map_;
  absl::btree_map<std::string, std::string> catalog_;
  absl::flat_hash_map<uint64_t, uint32_t> dedup_;
  absl::flat_hash_map<uint64_t, uint64_t> obj_blocks_;  // object -> mapped blocks (derived)
  std::vector<SegmentInfo> segs_;
  std::set<uint32_t> free_segs_;
  uint64_t next_id_ = 16;  // ids below 16 are reserved (1 = file-system root)
  uint64_t zero_blocks_ = 0;
  uint64_t stored_bytes_ = 0;
  uint64_t used_extents_ = 0;
};

}  // namespace astra
