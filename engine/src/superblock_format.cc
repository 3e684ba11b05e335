#include "superblock_format.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>

#include "coding.h"
#include "crc.h"

namespace astra {

std::string UuidToString(const Uuid& u) {
  char s[40];
  std::snprintf(s, sizeof s,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
                u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
                u[15]);
  return s;
}

Uuid NewUuid() {
  Uuid u{};
  int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  bool got = fd >= 0 && ::read(fd, u.data(), u.size()) == ssize_t(u.size());
  if (fd >= 0) ::close(fd);
  if (!got) {
    std::random_device rd;
    for (auto& b : u) b = uint8_t(rd());
  }
  u[6] = (u[6] & 0x0F) | 0x40;  // RFC 4122 version 4
  u[8] = (u[8] & 0x3F) | 0x80;
  return u;
}

// Field offsets (do not change: format v1).
namespace sbo {
constexpr size_t kMagic = 0, kVersion = 8, kHeaderBytes = 12, kPoolUuid = 16, kMemberUuid = 32,
                 kMemberIndex = 48, kMembers = 52, kK = 56, kM = 60, kBlockBytes = 64,
                 kChunkBytes = 68, kSegColBytes = 72, kMemberSize = 80, kJournalOff = 88,
                 kJournalBytes = 96, kDataOff = 104, kSegments = 112, kGeneration = 120,
                 kCkptSeg = 128, kCkptOff = 132, kCkptLen = 136, kCkptCrc = 140,
                 kJournalHeadOff = 144, kJournalHeadSeq = 152, kCompression = 160,
                 kCompressionLevel = 161, kDedup = 162, kFailed = 168, kRebuilding = 176,
                 kCreated = 184, kMemberUuids = 192, kCrc = kSuperblockBytes - 4;
static_assert(kMemberUuids + kMembersMax * kUuidBytes <= kCrc, "member table fits");
}  // namespace sbo

void EncodeSuperblock(const Superblock& sb, uint8_t* out) {
  std::memset(out, 0, kSuperblockBytes);
  PutU64(out + sbo::kMagic, kSuperblockMagic);
  PutU32(out + sbo::kVersion, kFormatVersion);
  PutU32(out + sbo::kHeaderBytes, kSuperblockBytes);
  std::memcpy(out + sbo::kPoolUuid, sb.pool_uuid.data(), kUuidBytes);
  std::memcpy(out + sbo::kMemberUuid, sb.member_uuid.data(), kUuidBytes);
  PutU32(out + sbo::kMemberIndex, sb.member_index);
  PutU32(out + sbo::kMembers, sb.members);
  PutU32(out + sbo::kK, sb.data_shards);
  PutU32(out + sbo::kM, sb.parity_shards);
  PutU32(out + sbo::kBlockBytes, sb.block_bytes);
  PutU32(out + sbo::kChunkBytes, sb.chunk_bytes);
  PutU64(out + sbo::kSegColBytes, sb.segment_column_bytes);
  PutU64(out + sbo::kMemberSize, sb.member_size_bytes);
  PutU64(out + sbo::kJournalOff, sb.journal_offset_bytes);
  PutU64(out + sbo::kJournalBytes, sb.journal_bytes);
  PutU64(out + sbo::kDataOff, sb.data_offset_bytes);
  PutU64(out + sbo::kSegments, sb.segments);
  PutU64(out + sbo::kGeneration, sb.generation);
  PutU32(out + sbo::kCkptSeg, sb.checkpoint_root.segment);
  PutU32(out + sbo::kCkptOff, sb.checkpoint_root.offset);
  PutU32(out + sbo::kCkptLen, sb.checkpoint_root.length);
  PutU32(out + sbo::kCkptCrc, sb.checkpoint_root.crc);
  PutU64(out + sbo::kJournalHeadOff, sb.journal_head_offset);
  PutU64(out + sbo::kJournalHeadSeq, sb.journal_head_seq);
  out[sbo::kCompression] = sb.compression;
  out[sbo::kCompressionLevel] = sb.compression_level;
  out[sbo::kDedup] = sb.dedup;
  PutU64(out + sbo::kFailed, sb.failed_members);
  PutU64(out + sbo::kRebuilding, sb.rebuilding_members);
  PutU64(out + sbo::kCreated, sb.created_unix_ns);
  for (uint32_t i = 0; i < kMembersMax; i++)
    std::memcpy(out + sbo::kMemberUuids + i * kUuidBytes, sb.member_uuids[i].data(), kUuidBytes);
  PutU32(out + sbo::kCrc, Crc32c(out, sbo::kCrc));
}

Status DecodeSuperblock(const uint8_t* in, Superblock* sb) {
  if (GetU64(in + sbo::kMagic) != kSuperblockMagic) return Status::Corruption("no AstraFS superblock (bad magic)");
  if (GetU32(in + sbo::kCrc) != Crc32c(in, sbo::kCrc)) return Status::Corruption("superblock checksum mismatch");
  uint32_t version = GetU32(in + sbo::kVersion);
  if (version != kFormatVersion)
    return Status::NotSupported("superblock format version " + std::to_string(version) +
                                " (this build reads version 1)");
  if (GetU32(in + sbo::kHeaderBytes) != kSuperblockBytes) return Status::Corruption("superblock size field");
  std::memcpy(sb->pool_uuid.data(), in + sbo::kPoolUuid, kUuidBytes);
  std::memcpy(sb->member_uuid.data(), in + sbo::kMemberUuid, kUuidBytes);
  sb->member_index = GetU32(in + sbo::kMemberIndex);
  sb->members = GetU32(in + sbo::kMembers);
  sb->data_shards = GetU32(in + sbo::kK);
  sb->parity_shards = GetU32(in + sbo::kM);
  sb->block_bytes = GetU32(in + sbo::kBlockBytes);
  sb->chunk_bytes = GetU32(in + sbo::kChunkBytes);
  sb->segment_column_bytes = GetU64(in + sbo::kSegColBytes);
  sb->member_size_bytes = GetU64(in + sbo::kMemberSize);
  sb->journal_offset_bytes = GetU64(in + sbo::kJournalOff);
  sb->journal_bytes = GetU64(in + sbo::kJournalBytes);
  sb->data_offset_bytes = GetU64(in + sbo::kDataOff);
  sb->segments = GetU64(in + sbo::kSegments);
  sb->generation = GetU64(in + sbo::kGeneration);
  sb->checkpoint_root.segment = GetU32(in + sbo::kCkptSeg);
  sb->checkpoint_root.offset = GetU32(in + sbo::kCkptOff);
  sb->checkpoint_root.length = GetU32(in + sbo::kCkptLen);
  sb->checkpoint_root.crc = GetU32(in + sbo::kCkptCrc);
  sb->journal_head_offset = GetU64(in + sbo::kJournalHeadOff);
  sb->journal_head_seq = GetU64(in + sbo::kJournalHeadSeq);
  sb->compression = in[sbo::kCompression];
  sb->compression_level = in[sbo::kCompressionLevel];
  sb->dedup = in[sbo::kDedup];
  sb->failed_members = GetU64(in + sbo::kFailed);
  sb->rebuilding_members = GetU64(in + sbo::kRebuilding);
  sb->created_unix_ns = GetU64(in + sbo::kCreated);
  for (uint32_t i = 0; i < kMembersMax; i++)
    std::memcpy(sb->member_uuids[i].data(), in + sbo::kMemberUuids + i * kUuidBytes, kUuidBytes);
  return ValidateGeometry(*sb);
}

Status ValidateGeometry(const Superblock& sb) {
  auto bad = [](const std::string& m) { return Status::InvalidArgument(m); };
  if (sb.data_shards < 1 || sb.data_shards > kDataShardsMax)
    return bad("data shards (k) must be 1.." + std::to_string(kDataShardsMax) + ", got " + std::to_string(sb.data_shards));
  if (sb.parity_shards > kParityShardsMax)
    return bad("parity shards (m) must be 0.." + std::to_string(kParityShardsMax) + ", got " + std::to_string(sb.parity_shards));
  if (sb.members < sb.data_shards + sb.parity_shards || sb.members > kMembersMax)
    return bad("k+m = " + std::to_string(sb.data_shards + sb.parity_shards) + " needs at least that many members (have " +
               std::to_string(sb.members) + ", at most " + std::to_string(kMembersMax) + ")");
  if (sb.member_index >= sb.members) return bad("member index out of range");
  if (sb.block_bytes != kBlockBytes) return bad("block size must be 4096");
  if (sb.chunk_bytes < kChunkBytesMin || sb.chunk_bytes > kChunkBytesMax || sb.chunk_bytes % kBlockBytes)
    return bad("chunk size must be a multiple of 4096 in [4 KiB, 1 MiB]");
  if (sb.segment_column_bytes < kSegmentColumnBytesMin || sb.segment_column_bytes > kSegmentColumnBytesMax ||
      sb.segment_column_bytes % sb.chunk_bytes)
    return bad("segment column size must be a multiple of the chunk size in [64 KiB, 256 MiB]");
  if (uint64_t(sb.data_shards) * sb.segment_column_bytes > 0xFFFFFFFFull)
    return bad("segment data size must stay below 4 GiB");
  if (sb.journal_offset_bytes != kJournalOffset || sb.journal_bytes < kJournalBytesMin ||
      sb.journal_bytes % kBlockBytes)
    return bad("journal region out of range");
  if (sb.data_offset_bytes < sb.journal_offset_bytes + sb.journal_bytes || sb.data_offset_bytes % kBlockBytes)
    return bad("data area overlaps the journal");
  if (sb.segments == 0 || sb.segments >= kNoSegment) return bad("segment count out of range");
  uint64_t slots = (sb.member_size_bytes - std::min(sb.member_size_bytes, sb.data_offset_bytes)) / sb.segment_column_bytes;
  uint64_t rounds = slots / (sb.data_shards + sb.parity_shards);
  if (sb.segments > rounds * sb.members) return bad("segment count exceeds member size");
  if (sb.compression > 1 || sb.compression_level > 22) return bad("compression setting out of range");
  if (sb.checkpoint_root.segment != kNoSegment && sb.checkpoint_root.segment >= sb.segments)
    return bad("checkpoint location out of range");
  if (sb.journal_head_offset >= sb.journal_bytes || sb.journal_head_offset % kBlockBytes)
    return bad("journal head out of range");
  return Status::Ok();
}

}  // namespace astra
