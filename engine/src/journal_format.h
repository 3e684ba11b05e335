// On-disk format v1: journal batches and metadata records. Prose spec: doc/format/journal.md.
//
// Each member has a journal region (superblock: journal_offset_bytes, journal_bytes) used as a
// circular log of *batches*. A batch is one group commit: a 64-byte header, then records, padded
// to a multiple of 4 KiB. It is valid only as a whole (header CRC and payload CRC), so a torn
// batch is ignored entirely and recovery yields exactly the state of some completed flush.
// Batches carry consecutive sequence numbers; recovery starts at the superblock's
// (journal_head_offset, journal_head_seq) and follows the chain while the next batch is valid and
// has the expected seq. A batch that does not fit before the region's end is written at offset 0.
// The same batch is written at the same offset on every online member.
//
// Batch header (little-endian):
//   0 u64 magic "ASTRAJNL"   8 u64 pool tag (first 8 bytes of the pool UUID)
//  16 u64 seq               24 u32 payload_bytes   28 u32 batch_bytes (padded, multiple of 4096)
//  32 u32 payload CRC-32C   36 u32 record count    40..59 reserved (0)   60 u32 header CRC-32C
// Record: u8 type, u32 body_bytes, body. Types are stored values: do not change.
#pragma once

#include <cstdint>

namespace astra {

inline constexpr uint64_t kJournalMagic = 0x4C4E4A4152545341ull;  // "ASTRAJNL"
inline constexpr uint32_t kJournalHeaderBytes = 64;

enum class RecordType : uint8_t {
  kNewExtent = 1,     // u32 id, u32 seg, u32 off, u32 len, u8 flags, u32 crc, u64 fingerprint
  kMapBlocks = 2,     // u64 obj, u64 block, u32 count, count x u32 extent id (kHoleId = hole)
  kTrimBlocks = 3,    // u64 obj, u64 block, u64 count
  kCatalogTxn = 4,    // u32 n, n x (u8 kind, str key, str value, u64 obj, u64 block)
  kSegmentOpen = 5,   // u32 seg, u8 kind
  kSegmentAdvance = 6,// u32 seg, u32 written stripes
  kSegmentSeal = 7,   // u32 seg
  kNextId = 8,        // u64 next id handed out by AllocateId
  kCloneRange = 9,    // u64 src, u64 src_block, u64 dst, u64 dst_block, u64 count
  kExtentMove = 10,   // u32 id, u32 seg, u32 off
  kZeroBlocks = 11,   // u64 count: zero blocks recorded as holes (accounting)
  kExtentRelocate = 12,  // u32 id, u32 seg, u32 off, u32 len, u8 flags, u32 crc: re-encoded copy
};

inline constexpr uint32_t kHoleId = 0xFFFFFFFFu;

// Extent flags (stored): bits 0-1 compression of the stored bytes; bits 2-4 the block's index
// in its compression frame; bits 5-7 the frame's block count - 1. A frame is up to
// kFrameBlocksMax consecutive blocks of one write compressed together as one zstd frame; each
// block is its own extent (own fingerprint, own references), all pointing at the same stored
// bytes. A plain extent is a frame of one block (bits 2-7 zero), so pools written before frames
// existed read unchanged. Frames are always compressed (a raw frame would gain nothing).
inline constexpr uint8_t kExtentCompressionMask = 0x3;
inline constexpr uint8_t kExtentRaw = 0;
inline constexpr uint8_t kExtentZstd = 1;
inline constexpr uint32_t kFrameBlocksMax = 8;
inline constexpr uint8_t FrameFlags(uint8_t compression, uint32_t index, uint32_t blocks) {
  return uint8_t(compression | (index << 2) | ((blocks - 1) << 5));
}
inline constexpr uint32_t FlagsFrameIndex(uint8_t flags) { return (flags >> 2) & 7u; }
inline constexpr uint32_t FlagsFrameBlocks(uint8_t flags) { return ((flags >> 5) & 7u) + 1; }

}  // namespace astra
