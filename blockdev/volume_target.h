// VolumeTarget: serves one block volume's ublk requests from an engine object.
//
// READ -> Pool::Read, WRITE -> Pool::Write (+ Pool::Flush when the kernel sets FUA),
// FLUSH -> Pool::Flush, DISCARD and WRITE_ZEROES -> Pool::Trim (dropped blocks read as zeros and
// give their space back). Requests are split at kBlocksPerIoMax blocks per engine call.
//
// Logical block size 4096 (the engine's block): every request is whole engine blocks.
// Logical block size 512: a request may start or end inside a 4 KiB engine block. READ reads the
// covering blocks and copies out the part asked for; WRITE, DISCARD and WRITE_ZEROES patch the
// partly covered head and tail blocks by read-modify-write (zeros for DISCARD / WRITE_ZEROES:
// an all-zero block becomes a hole) and write / trim whole blocks directly. BlockLocks
// serialises the RMW of a block against every other write touching it (block_locks.h), so
// concurrent requests on different queues or tags never lose each other's bytes. Flush
// semantics are the same for both sizes (an RMW is an ordinary engine write).
//
// Thread safety: Serve() from any number of threads (the Pool is thread-safe).
#pragma once

#include <atomic>
#include <cstdint>

#include "astra/pool.h"
#include "blockdev/block_locks.h"
#include "blockdev/block_target.h"

namespace astra::blockdev {

struct VolumeTargetStats {
  std::atomic<uint64_t> rmw_blocks{0};  // partial engine blocks read, patched and written back
};

class VolumeTarget final : public ublk::BlockTarget {
 public:
  // `logical_block_bytes`: 512 or 4096 (what the device announces); `size_bytes` a multiple of
  // 4096 (volume_format.h).
  VolumeTarget(Pool* pool, ObjectId object, uint64_t size_bytes,
               uint32_t logical_block_bytes = 4096);
  int Serve(const ublk::BlockRequest& req, uint8_t* buf) override;
  // Reads of whole 4 KiB blocks inside the volume go to the engine as one Pool::ReadBatch (all
  // in flight at once); the others (512-byte-aligned edges, out of range) through Serve().
  void ServeReads(std::span<const ublk::BlockRequest> reqs, uint8_t* const* bufs, int* results) override;
  // On a 4096-byte device, writes of whole blocks inside the volume go to the engine as one
  // Pool::WriteBatch (one writer-lock acquisition), with one Flush after it when any of them is
  // FUA; the others (out of range, and every write of a 512-byte device, whose partial blocks
  // are read-modify-written under range locks) through Serve().
  void ServeWrites(std::span<const ublk::BlockRequest> reqs, uint8_t* const* bufs, int* results) override;
  uint64_t errors() const { return errors_.load(); }
  uint32_t logical_block_bytes() const { return logical_block_bytes_; }
  const VolumeTargetStats& stats() const { return stats_; }

 private:
  int Fail(const char* op, const ublk::BlockRequest& req, const Status& st);
  // A request of whole engine blocks (1..kBlocksPerIoMax), inside the volume: one engine op.
  bool WholeBlocksInside(const ublk::BlockRequest& r) const;
  // Whole engine blocks [first, first + count) from / to buf (or trimmed when buf is null).
  Status ReadBlocks(uint64_t first, uint64_t count, uint8_t* buf);
  Status WriteBlocks(uint64_t first, uint64_t count, const uint8_t* buf);
  // Bytes [offset, offset + length) of one engine block: read, patch with src (zeros when src
  // is null), write back. The caller holds the block's stripe exclusively.
  Status PatchBlock(uint64_t offset, uint64_t length, const uint8_t* src);
  // WRITE (src != null) or DISCARD / WRITE_ZEROES (src == null) of any 512-aligned range.
  Status WriteRange(uint64_t offset, uint64_t length, const uint8_t* src);
  Status ReadRange(uint64_t offset, uint64_t length, uint8_t* dst);

  Pool* const pool_;
  const ObjectId object_;
  const uint64_t size_bytes_;
  const uint32_t logical_block_bytes_;
  std::atomic<uint64_t> errors_{0};
  VolumeTargetStats stats_;
  BlockLocks locks_;  // used only with 512-byte logical blocks
};

}  // namespace astra::blockdev
