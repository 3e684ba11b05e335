// volume_format.h: the catalogue record of a block volume (spec: doc/format/volumes.md).
//
// Key:   "V" + volume name (1..kVolumeNameBytesMax bytes of [A-Za-z0-9._-]).
// Value: 32 bytes, little-endian:
//   0  u32 version        (kVolumeRecordVersion)
//   4  u32 block_bytes    (logical block size exported to the kernel: 4096, or 512)
//   8  u64 object         (engine object holding the volume's blocks, block i = bytes [4096i, +4096))
//  16  u64 size_bytes     (logical, thin: a multiple of 4096)
//  24  u64 flags          (reserved, 0)
// The catalogue checksums its records; the version lets a newer layout be told apart.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "astra/pool.h"
#include "astra/result.h"
#include "astra/status.h"

namespace astra::blockdev {

inline constexpr char kVolumeKeyPrefix = 'V';  // stored: do not change
inline constexpr uint32_t kVolumeRecordVersion = 1;  // stored: do not change
inline constexpr uint32_t kVolumeRecordBytes = 32;
inline constexpr uint32_t kVolumeNameBytesMax = 64;
// Thin volumes up to 64 TiB: 2^34 blocks of 4 KiB, well inside the engine's u64 block index.
inline constexpr uint64_t kVolumeSizeBytesMax = 64ull << 40;
inline constexpr uint64_t kVolumeSizeBytesMin = 1ull << 20;

struct VolumeRecord {
  uint32_t block_bytes = 4096;
  ObjectId object = 0;
  uint64_t size_bytes = 0;
};

std::string VolumeKey(std::string_view name);
std::string EncodeVolumeRecord(const VolumeRecord& r);
// kCorruption naming the volume when the bytes are not a valid record.
Result<VolumeRecord> DecodeVolumeRecord(std::string_view name, std::string_view bytes);
// kInvalidArgument naming the problem when the name cannot be a volume name.
Status CheckVolumeName(std::string_view name);
// kInvalidArgument when the size is 0, not a multiple of 4096, or beyond the limits.
Status CheckVolumeSize(uint64_t size_bytes);
// kInvalidArgument unless 0 (the default), 512 or 4096: the logical block sizes a volume offers.
Status CheckLogicalBlockSize(uint32_t logical_block_bytes);

}  // namespace astra::blockdev
