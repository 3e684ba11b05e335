// PoolImpl: the engine behind astra/pool.h. See doc/engine.md for the design.
//
// Locks (acquire in this order):
//   write_mu_   serialises every mutation, flush, checkpoint, rebuild and check: one writer.
//   reclaim_mu_ shared by readers for a whole Read (lookup + device I/O); exclusive while
//               segments are returned to the free list, so no reader can hold a stale location.
//   mu_         guards MetaState and the open segment's buffer: shared for lookups, exclusive
//               for Apply and buffer shifts. Never held across device I/O by a writer.
#pragma once

#include <absl/container/flat_hash_set.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include "astra/pool.h"
#include "block_codec.h"
#include "erasure_code.h"
#include "meta_state.h"
#include "readahead.h"
#include "superblock_format.h"

namespace astra {

inline constexpr uint64_t kChecksumErrorsToFail = 16;
// Free segments kept for the cleaner beyond the checkpoint reserve, so it can always progress.
inline constexpr uint32_t kCleanerReserveSegments = 2;
// Hidden over-provisioning, as on SSDs: the cleaner's working room. Bounds write amplification
// under random overwrites of a "full" pool (doc/space.md).
inline constexpr uint64_t kOverProvisionPercent = 10;
// Background cleaning per 5-second tick, in segments (its bounded share of the I/O).
inline constexpr uint32_t kBackgroundCleanSegmentsMax = 8;
// Readahead fill threads: prefetch windows in flight at once (doc/engine.md, "Readahead").
inline constexpr uint32_t kReadaheadWorkers = 2;

class PoolImpl final : public Pool {
 public:
  PoolImpl();
  ~PoolImpl() override;

  Status OpenImpl(std::vector<std::unique_ptr<Device>> devs, const OpenOptions& opts);

  Status Close() override;
  Status Read(ObjectId obj, uint64_t block, uint32_t count, void* buf) override;
  Status ReadBatch(std::span<ReadOp> ops) override;
  // Read without readahead: the device path (and readahead's fill).
  Status ReadDirect(ObjectId obj, uint64_t block, uint32_t count, void* buf);
  // The device path of a batch: every op's blocks looked up under one lock, every stored range
  // read at once (ReadExtentsBatch), decoded into the ops' buffers. Sets each op's status.
  void ReadDirectMany(std::span<ReadOp* const> ops);
  Status Write(ObjectId obj, uint64_t block, uint32_t count, const void* buf) override;
  Status WriteBatch(std::span<WriteOp> ops) override;
  Status Trim(ObjectId obj, uint64_t block, uint64_t count) override;
  Status CloneRange(ObjectId src, uint64_t src_block, ObjectId dst, uint64_t dst_block,
                    uint64_t count) override;
  uint64_t ObjectBlockEnd(ObjectId obj) override;
  std::optional<uint64_t> NextMappedBlock(ObjectId obj, uint64_t block) override;
  uint64_t ObjectMappedBlocks(ObjectId obj) override;
  Result<std::string> Get(std::string_view key) override;
  Status Scan(std::string_view begin, std::string_view end,
              const std::function<bool(std::string_view, std::string_view)>& fn) override;
  Status Commit(const CatalogTxn& txn) override;
  Result<uint64_t> AllocateId() override;
  Status Flush() override;
  Status Checkpoint() override;
  Result<CheckReport> Check(bool repair, const ProgressFn& progress) override;
  Result<CheckReport> Scrub(const ProgressFn& progress) override;
  Status ReplaceMember(uint32_t index, std::unique_ptr<Device> dev, const ProgressFn& progress) override;
  Status FailMember(uint32_t index) override;
  Result<CleanerStats> CollectGarbage(const ProgressFn& progress) override;
  PoolStatus GetStatus() override;
  ObjectSpaceStats GetObjectSpace(ObjectId obj) override;

 private:
  struct Member {
    std::unique_ptr<Device> dev;
    MemberState state = MemberState::kMissing;
    Uuid uuid{};
    std::atomic<uint64_t> read_errors{0}, write_errors{0}, checksum_errors{0};
    bool sb_valid[2] = {false, false};
  };
  // An open segment and its write buffer (data space bytes [buf_base, pos)). Two append streams
  // keep hot and cold data apart (hot/cold separation, as in Sprite LFS): user writes go to the
  // hot stream; the cleaner's and repair's relocations (data that survived) to the cold one.
  // Readers take bytes below disk_pos from the devices, the rest from buf: rows whose writes
  // are still in flight stay in the buffer until they complete.
  //
  // The buffer is a ring of ring_rows_ stripe rows laid out column by column, as the members
  // store them: chunk (row r, data column c) is at buf + (c * ring_rows_ + r % ring_rows_) *
  // chunk_. Consecutive rows of one column are contiguous, so a stripe batch's member writes go
  // straight from here and its parity is encoded from here in one pass per batch: appended bytes
  // are copied once (into the ring), not twice (doc/engine.md, "Write path").
  struct OpenSegment {
    uint32_t seg = kNoSegment;
    uint64_t pos = 0;       // bytes appended
    uint64_t sub_pos = 0;   // bytes whose stripe writes were submitted (stripe multiple)
    uint64_t disk_pos = 0;  // bytes whose stripe writes completed (stripe multiple, <= sub_pos)
    uint64_t buf_base = 0;  // data-space offset of the oldest row kept (stripe multiple)
    AlignedBuf buf;
  };
  // Data bytes a stream's ring holds (ring_rows_ stripes).
  uint64_t RingBytes() const { return uint64_t(ring_rows_) * StripeDataBytes(); }
  // Chunk (row, data column `col`) of the ring of `os`.
  uint8_t* RingChunk(const OpenSegment& os, uint64_t row, uint32_t col) const {
    return os.buf.get() + (uint64_t(col) * ring_rows_ + row % ring_rows_) * chunk_;
  }
  // Calls fn(p, n) for each contiguous piece of data-space bytes [off, off + len) of the ring, in
  // order (a piece ends at a chunk boundary). The bytes must lie in [buf_base, buf_base +
  // ring_rows_ stripes).
  template <typename Fn>
  void ForEachRingPiece(const OpenSegment& os, uint64_t off, uint64_t len, Fn&& fn) const {
    const uint64_t sdb = StripeDataBytes();
    assert(off >= os.buf_base && off + len <= os.buf_base + RingBytes());
    while (len > 0) {
      const uint64_t row = off / sdb, in_row = off % sdb;
      const uint32_t in_chunk = uint32_t(in_row % chunk_);
      const uint32_t n = uint32_t(std::min<uint64_t>(len, chunk_ - in_chunk));
      fn(RingChunk(os, row, uint32_t(in_row / chunk_)) + in_chunk, n);
      off += n;
      len -= n;
    }
  }
  // Copies buffered bytes [off, off + len) of `os` out to `out`.
  void CopyFromRing(const OpenSegment& os, uint64_t off, uint32_t len, uint8_t* out) const {
    ForEachRingPiece(os, off, len, [&](const uint8_t* p, uint32_t n) {
      std::memcpy(out, p, n);
      out += n;
    });
  }
  // A batch of full stripes being written: the column buffers (data copied, parity encoded), one
  // request per writable member, and the stream whose rows it carries (nullptr: checkpoint rows).
  // kStripeBatchesInFlight of them are used round robin, so batches complete in submission order.
  struct StripeBatch {
    std::vector<AlignedBuf> cols;  // w_ buffers of batch_rows_ chunks
    std::vector<IoRequest> reqs;   // per column
    std::vector<uint32_t> member_of;  // per column; UINT32_MAX: not written (member unwritable)
    IoWaiter waiter;
    OpenSegment* os = nullptr;
    uint32_t seg = kNoSegment, nrows = 0;
    bool busy = false;
  };
  enum Stream : uint32_t { kHot = 0, kCold = 1, kStreams = 2 };
  struct ReadPlan;

  // ---- geometry ----
  uint64_t StripeDataBytes() const { return uint64_t(k_) * chunk_; }
  uint64_t SegmentDataBytes() const { return uint64_t(k_) * sb_.segment_column_bytes; }
  uint32_t StripesPerSegment() const { return uint32_t(sb_.segment_column_bytes / chunk_); }
  bool ColumnReadable(uint32_t seg, uint32_t member) const;
  bool MemberWritable(uint32_t member) const;
  uint32_t UnavailableMembers() const;

  // ---- device I/O on segments ----
  // Issues the same request to every writable member at once and waits; returns the members
  // whose request failed (the caller decides: count, fail the member).
  std::vector<std::pair<uint32_t, Status>> ToEveryMemberLocked(IoOp op, uint64_t offset_bytes,
                                                               uint32_t length_bytes, void* buf);
  // Starts the write of `nrows` full stripes of `seg` from row `first_row` (<= batch_rows_)
  // and returns without waiting: takes the next StripeBatch (completing it first if it is still
  // in flight), encodes parity into its parity columns, submits one request per writable
  // member. With `os`, the data is the stream's ring at row `first_row` (the rows must not wrap
  // around the ring's end): data columns are written straight from the ring, and the batch
  // advances os->disk_pos when it completes. Otherwise `data` (nrows x StripeDataBytes(),
  // row-major) is first copied into the batch's data columns.
  Status StartRowsLocked(uint32_t seg, uint32_t first_row, uint32_t nrows, const uint8_t* data, OpenSegment* os);
  // Waits for batch `b`; fails the members whose write failed; advances its stream's disk_pos
  // and drops written rows from the stream's buffer (keeping keep_rows_).
  Status CompleteBatchLocked(StripeBatch& b);
  // Completes every batch in flight, oldest first; the first error, after all completed.
  Status DrainWritesLocked();
  // Reads whole chunks of one row; missing/failed columns set in `*erased`.
  void ReadRow(uint32_t seg, uint32_t row, uint8_t* const* chunks, std::vector<uint32_t>* erased);
  // Reads `len` bytes at data-space offset `off` of `seg`, verifying against `crc`; rebuilds from
  // parity on error. `*rebuilt` set when the bytes came from reconstruction.
  Status ReadStored(uint32_t seg, uint32_t off, uint32_t len, uint32_t crc, uint8_t* out, bool* rebuilt);
  Status Reconstruct(uint32_t seg, uint32_t off, uint32_t len, uint32_t crc, uint8_t* out);
  // Decodes the logical 4 KiB block of extent `x` from its verified stored bytes (a frame's
  // block: decompresses the frame). kCorruption if the bytes do not decode.
  Status DecodeBlock(const Extent& x, const uint8_t* stored, uint8_t* block);
  // Decodes the whole frame of `x` (FrameBlocks(x) x 4 KiB into `frame`).
  Status DecodeFrame(const Extent& x, const uint8_t* stored, uint8_t* frame);
  // Reads the stored bytes of every extent in one coalesced batch (one request per contiguous
  // device range, all in flight at once). (*slow)[i] is set where the bytes could not be read
  // or fail their CRC: the caller rebuilds those through ReadStored.
  // A stored byte range of a segment's data space and where its verified bytes go.
  struct StoredRange {
    uint32_t segment, offset, length, crc;
    uint8_t* out;
    bool verify = true;  // false: raw bytes of a range that is not one extent (no CRC to check)
  };
  // The one device read path for stored bytes: every range's pieces coalesced into one request
  // per contiguous device range per member, all in flight at once, CRC-checked. (*slow)[i] is
  // set where range i could not be read or fails its CRC (callers rebuild those).
  void ReadRangesBatch(const std::vector<StoredRange>& xs, std::vector<bool>* slow);
  // Stored bytes of a batch of extents: at[i] points into one arena (not zeroed).
  struct StoredBatch {
    std::unique_ptr<uint8_t[]> arena;
    std::vector<uint8_t*> at;
  };
  // With `direct`, extent i whose (*direct)[i] is set is read straight there (at[i] = it)
  // instead of into the arena.
  void ReadExtentsBatch(const std::vector<Extent>& xs, StoredBatch* stored, std::vector<bool>* slow,
                        const std::vector<uint8_t*>* direct = nullptr);
  // Stored bytes of the dedup candidates `xs` (device ranges, not buffered) for verification
  // under write_mu_, like ReadExtentsBatch, but through dedup_window_: a candidate that lies just
  // after the previous one in the same segment makes the read a window of kDedupWindowBytes, and
  // later candidates inside it need no device read (duplicates of data stored in order: a second
  // copy of a tree, of a disk image). stored->at[i] of such a candidate points into the window:
  // valid until the next call.
  void ReadCandidatesLocked(const std::vector<Extent>& xs, StoredBatch* stored, std::vector<bool>* slow);
  // Reads the logical 4 KiB block of extent `id` (used under write_mu_). Repairs if rebuilt.
  Status ReadExtentBlockLocked(uint32_t id, uint8_t* block);

  // ---- write path (write_mu_ held) ----
  // kNoSpace unless `bytes` more can be stored (`freed_bytes` is what the caller's overwrite
  // releases); checkpoints, flushes and cleans first when that makes room.
  Status EnsureSpaceLocked(uint64_t bytes, uint64_t freed_bytes);
  // What users may store: segments beyond the reserve, less kOverProvisionPercent.
  uint64_t UserCapacityBytes() const;
  // Drops the buffered rows of `os` that are on the devices, but for keep_rows_ before disk_pos,
  // so their ring slots can take new rows (advances buf_base; nothing moves).
  void CompactLocked(OpenSegment& os);
  Status AppendLocked(OpenSegment& os, const uint8_t* bytes, uint32_t len, uint32_t* seg, uint32_t* off);
  Status OpenNewSegmentLocked(OpenSegment& os);
  Status SealOpenSegmentLocked(OpenSegment& os);
  Status WriteOutLocked(OpenSegment& os, bool pad_partial);
  // Pads and writes out both streams and records their write pointers.
  Status WriteOutAllLocked();
  // The stream whose buffer still holds extent `x` (not yet on the devices), or nullptr.
  const OpenSegment* BufferedStream(const Extent& x) const;
  // ---- segment cleaner ----
  // Picks the sealed data segment to clean next (cost-benefit or greedy), or kNoSegment.
  uint32_t PickVictimLocked(double max_utilization) const;
  // Relocates every live extent of `victim` into the cold stream; the victim becomes free at
  // the next checkpoint.
  Status CleanSegmentLocked(uint32_t victim, uint64_t* moved_bytes);
  // Cleans until `free_target` segments are free (or nothing more can be gained).
  Status CleanUntilLocked(uint64_t free_target, uint32_t max_victims, const ProgressFn& progress);
  uint32_t CheckpointReserveSegments() const;
  // Pending journal bytes at which a write or commit writes the batch out (group commit under
  // pressure; Flush() writes it at any size): 3/4 of the largest batch this pool's journal takes
  // (a quarter of the region, at most kJournalProbeBytes), so one batch never needs splitting.
  uint64_t JournalBatchTarget() const {
    return std::min<uint64_t>(sb_.journal_bytes / 4, kJournalProbeBytes) * 3 / 4;
  }
  void TrimSegmentsLocked(const std::vector<uint32_t>& freed);
  void ApplyLocked(Encoder& rec);
  Status FlushLocked();
  Status WriteJournalBatchLocked();
  Status CheckpointLocked();
  Status WriteSuperblocksLocked();
  // Relocates the extents `ids` that still point at the verified stored bytes `stored` (`len`
  // bytes, one stored range) into the cold stream. A frame whose blocks are all among them moves
  // as it is; otherwise, with `repack` (the caller passes every live block of the range: the
  // cleaner, scrub), the live blocks are re-packed (decompressed, compressed again without the
  // dead ones) so the dead bytes are not carried along. Ids that moved meanwhile are skipped.
  Status RelocateFrameLocked(const std::vector<uint32_t>& ids, const uint8_t* stored, uint32_t len, bool repack);
  Status FailMemberLocked(uint32_t index, const Status& why);
  // Faults online members with kChecksumErrorsToFail or more proven checksum errors (as ZFS
  // faults a vdev with too many checksum errors): they are no longer trusted until replaced.
  void FailNoisyMembersLocked();
  Status CheckWritable() const;
  uint32_t ReserveSegments() const;

  // ---- open ----
  Status LoadCheckpoint();
  Status ReplayJournal(uint64_t* end_offset, uint64_t* next_seq, uint64_t* batches);

  void BackgroundLoop();

  // A write's work done before the writer lock (PrepareWrite), applied under it (WriteLocked).
  struct PreparedWrite {
    // len 0: store each block raw. crc: of the compressed bytes (len > 0).
    struct Frame { uint32_t first, blocks, len, crc; };
    ObjectId obj = 0;
    uint64_t block = 0;
    uint32_t count = 0;
    const uint8_t* in = nullptr;
    std::vector<uint8_t> zero;      // per block: all zeros (becomes a hole)
    std::vector<uint64_t> fps;      // per block: dedup fingerprint (0: none)
    std::vector<uint8_t> is_new;    // per block: no dedup candidate when prepared
    std::vector<Frame> frames;      // runs of new blocks, compressed together when it pays
    std::vector<int32_t> frame_of;  // per block: its frame, or -1
    std::vector<uint32_t> crcs;     // per block of a frame stored raw: CRC-32C of the block
    std::unique_ptr<uint8_t[]> packed;  // compressed frames, at their first block's offset
  };
  // Validates a write and does its lock-free work: zero detection, fingerprints, compression,
  // and the CRC-32C of every extent it expects to store (the first pass over the caller's bytes,
  // which are often cold in cache: measured at 7.5 GB/s for 4 KiB buffers from memory against
  // 25 GB/s cache-hot, so it is done where two writers overlap it, not under write_mu_).
  Status PrepareWrite(ObjectId obj, uint64_t block, uint32_t count, const void* buf, PreparedWrite* w);
  // Applies a prepared write (write_mu_ held): dedup, appends, the journal record. The caller
  // invalidates readahead and flushes the journal batch when it is due.
  Status WriteLocked(PreparedWrite& w);

  // Bumps the readahead epoch of `obj` when the mutation in scope ends (after its map change is
  // applied, before the call returns: see readahead.h).
  struct InvalidateOnExit {
    Readahead* ra;
    ObjectId obj;
    ~InvalidateOnExit() {
      if (ra) ra->Invalidate(obj);
    }
  };

  OpenOptions opts_;
  Superblock sb_;
  Placement place_;
  uint32_t k_ = 0, m_ = 0, w_ = 0, n_ = 0, chunk_ = 0;
  uint64_t pool_tag_ = 0;
  std::unique_ptr<ErasureCode> ec_;
  std::vector<std::unique_ptr<Member>> members_;
  std::vector<uint64_t> stale_;  // per segment: bit i = member i's column is not valid
  MetaState state_;
  std::unique_ptr<BlockCodec> codec_;  // write path (write_mu_)
  uint32_t frame_blocks_ = 1;          // compression unit of new writes, blocks

  std::mutex write_mu_;
  std::shared_mutex reclaim_mu_;
  mutable std::shared_mutex mu_;

  OpenSegment streams_[kStreams];
  uint64_t seal_clock_ = 0;         // advances per sealed segment: segment age for the cleaner
  std::vector<uint64_t> sealed_at_; // per segment
  CleanerStats cleaner_;
  // Stripe batches whose writes may be in flight at once (double buffering and more: the
  // devices work on one batch while the writer fills the next). Measured in doc/benchmarks.md.
  static constexpr uint32_t kStripeBatchesInFlight = 3;
  std::array<std::unique_ptr<StripeBatch>, kStripeBatchesInFlight> batches_;
  uint32_t next_batch_ = 0;  // the batch the next StartRowsLocked uses (the oldest, if busy)
  uint32_t batch_rows_ = 0;
  uint32_t ring_rows_ = 0;          // stripe rows in a stream's ring buffer
  uint32_t keep_rows_ = 1;          // written stripes kept in a stream's buffer before disk_pos

  // Stored bytes read ahead for dedup verification (write_mu_). Valid while reclaim_gen_ is
  // unchanged: a segment's bytes can change only after it returned to the free list.
  static constexpr uint32_t kDedupWindowBytes = 1u << 20;
  struct DedupWindow {
    uint32_t segment = kNoSegment;
    uint32_t offset = 0, length = 0;   // data-space bytes of `segment` held in buf
    uint64_t reclaim_gen = 0;
    uint32_t last_segment = kNoSegment;  // the last candidate not found in the window
    uint64_t last_offset = 0;
    AlignedBuf buf;
  } dedup_window_;
  uint64_t reclaim_gen_ = 0;        // bumped (write_mu_) whenever segments return to the free list
  uint64_t dedup_window_hits_ = 0;  // (write_mu_)

  Encoder pending_;                 // journal records applied but not yet journaled
  uint32_t pending_records_ = 0;
  uint64_t next_seq_ = 1;
  uint64_t journal_pos_ = 0;        // where the next batch goes
  uint64_t journal_head_ = 0;       // oldest batch still needed (superblock head)
  uint64_t journal_used_ = 0;       // bytes between head and pos (incl. wrap waste)
  std::vector<uint32_t> ckpt_segments_;
  bool dirty_ = false;              // data written since the last device flush
  std::atomic<bool> read_only_{false};
  Status fatal_;
  bool closed_ = true;  // until OpenImpl succeeds
  std::atomic<uint64_t> repaired_{0};
  // Chunks already charged as proven bad to their member (segment << 32 | row << 8 | column):
  // a bad chunk counts once however often it is read before its repair. Bounded: cleared when
  // full (a chunk may then count again; the member is noisy anyway).
  static constexpr size_t kChargedChunksMax = 1u << 16;
  std::mutex charged_mu_;
  absl::flat_hash_set<uint64_t> charged_chunks_;

  std::unique_ptr<Readahead> readahead_;  // null when opts_.readahead_bytes is 0
  std::thread bg_;
  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
  bool bg_stop_ = false;
};

}  // namespace astra
