// On-disk format v1: member layout and superblock. Prose spec: doc/format/superblock.md.
//
// Member layout (byte offsets from the start of every member device):
//   [0, 4 KiB)                      superblock copy A
//   [kSuperblockBOffset, +4 KiB)    superblock copy B (256 KiB away from A: separate places)
//   [kJournalOffset, +journal)      this member's journal region (a circular log of batches)
//   [data_offset, ...)              segment columns, segment_column_bytes each
// All integers little-endian. A superblock is valid when magic, version and CRC-32C match and its
// geometry passes ValidateGeometry(). Recovery uses the valid copy with the highest generation;
// A and B are written one after the other with a flush between, so a torn write never loses both.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "astra/limits.h"
#include "astra/pool.h"
#include "astra/status.h"

namespace astra {

inline constexpr uint64_t kSuperblockMagic = 0x31534641'52545341ull;  // "ASTRAFS1" little-endian
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr uint32_t kSuperblockBytes = 4096;
inline constexpr uint64_t kSuperblockAOffset = 0;
inline constexpr uint64_t kSuperblockBOffset = 256 * 1024;
inline constexpr uint64_t kJournalOffset = 1u << 20;
inline constexpr uint32_t kUuidBytes = 16;

using Uuid = std::array<uint8_t, kUuidBytes>;
std::string UuidToString(const Uuid& u);
Uuid NewUuid();

// Location of a stored byte range in a segment's data space.
struct ExtentLoc {
  uint32_t segment = 0;
  uint32_t offset = 0;   // bytes into the segment's data space
  uint32_t length = 0;   // stored bytes
  uint32_t crc = 0;      // CRC-32C of the stored bytes
};

struct Superblock {
  Uuid pool_uuid{};
  Uuid member_uuid{};
  uint32_t member_index = 0;
  uint32_t members = 0;
  uint32_t data_shards = 0;
  uint32_t parity_shards = 0;
  uint32_t block_bytes = kBlockBytes;
  uint32_t chunk_bytes = 0;
  uint64_t segment_column_bytes = 0;
  uint64_t member_size_bytes = 0;   // usable bytes every member must have
  uint64_t journal_offset_bytes = kJournalOffset;
  uint64_t journal_bytes = 0;
  uint64_t data_offset_bytes = 0;
  uint64_t segments = 0;
  uint64_t generation = 0;
  // Newest checkpoint: covers every journal batch with seq < journal_head_seq.
  ExtentLoc checkpoint_root;        // segment == kNoSegment: no checkpoint yet (empty pool)
  uint64_t journal_head_offset = 0; // where batch journal_head_seq starts, within the region
  uint64_t journal_head_seq = 1;
  uint8_t compression = 0;          // Compression enum
  uint8_t compression_level = 0;
  uint8_t dedup = 0;
  uint64_t failed_members = 0;      // bit i: member i is failed (stale until replaced)
  uint64_t rebuilding_members = 0;  // bit i: member i is being rebuilt
  uint64_t created_unix_ns = 0;
  std::array<Uuid, kMembersMax> member_uuids{};
};

inline constexpr uint32_t kNoSegment = 0xFFFFFFFFu;

// Serialises into exactly kSuperblockBytes bytes (CRC in the last 4 bytes).
void EncodeSuperblock(const Superblock& sb, uint8_t* out);
// Validates and decodes; kCorruption naming the failed check.
Status DecodeSuperblock(const uint8_t* in, Superblock* sb);
// Checks k, m, members, sizes and region placement; kInvalidArgument/kCorruption naming the field.
Status ValidateGeometry(const Superblock& sb);

// Deterministic, declustered placement of segment columns on members (doc/format/layout.md).
// Segments are grouped in rounds of N (members); in round b, segment b*N + j puts its column c
// (c < k: data, c >= k: parity) on member (j + c) mod N, in that member's slot b*(k+m) + c.
// Over one round every member holds exactly k+m columns, so parity rotates and a rebuild reads
// from all members.
struct Placement {
  uint32_t members = 0, width = 0;  // width = k + m
  uint64_t data_offset = 0, column_bytes = 0;
  uint32_t MemberOf(uint64_t segment, uint32_t column) const {
    return uint32_t((segment % members + column) % members);
  }
  uint64_t ColumnOffset(uint64_t segment, uint32_t column) const {
    uint64_t slot = (segment / members) * width + column;
    return data_offset + slot * column_bytes;
  }
  // Column of `segment` stored on `member`, or -1 if the segment has none there.
  int ColumnOn(uint64_t segment, uint32_t member) const {
    uint32_t c = uint32_t((member + members - segment % members) % members);
    return c < width ? int(c) : -1;
  }
};

}  // namespace astra
