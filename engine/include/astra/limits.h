// Limits: every bound the engine relies on, named once, units last in the name (TIGER_STYLE).
#pragma once

#include <cstddef>
#include <cstdint>

namespace astra {

// The logical block: the unit of mapping, dedup, compression and of the engine I/O API.
inline constexpr uint32_t kBlockBytes = 4096;
// Every device I/O is aligned to this (O_DIRECT, NVMe LBA formats of 512 and 4096 bytes).
inline constexpr uint32_t kSectorBytes = 512;
inline constexpr uint32_t kIoAlignBytes = 4096;

// Erasure-code geometry (issue 2): 1 <= k <= 16, 0 <= m <= 4, k + m <= members.
inline constexpr uint32_t kDataShardsMax = 16;
inline constexpr uint32_t kParityShardsMax = 4;
inline constexpr uint32_t kMembersMax = 64;
inline constexpr uint32_t kStripeWidthMax = kDataShardsMax + kParityShardsMax;

// One io_uring per device; this many I/Os in flight on it at most.
inline constexpr uint32_t kDeviceQueueDepth = 64;
// Largest single device I/O the engine issues.
inline constexpr uint32_t kDeviceIoBytesMax = 1u << 20;

// Chunk (one column of one stripe on one member) and segment column sizes.
inline constexpr uint32_t kChunkBytesMin = 4096;
inline constexpr uint32_t kChunkBytesMax = 1u << 20;
inline constexpr uint64_t kSegmentColumnBytesMin = 64 * 1024;
inline constexpr uint64_t kSegmentColumnBytesMax = 256ull << 20;

// Journal: one region per member. A batch (one group commit) is at most this large.
inline constexpr uint64_t kJournalBytesMin = 1u << 20;
inline constexpr uint32_t kJournalBatchBytesMax = 256 * 1024;
static_assert(kJournalBatchBytesMax * 4 <= kJournalBytesMin,
              "a journal region must hold several batches");
// No batch is larger than this (a larger commit becomes a checkpoint), so recovery can tell a
// torn last batch from a damaged one with later batches behind it by reading this far ahead.
inline constexpr uint32_t kJournalProbeBytes = 2 * kJournalBatchBytesMax;

// Extents are addressed by a 32-bit id: 2^32 stored blocks (16 TiB of 4 KiB blocks).
inline constexpr uint64_t kExtentsMax = 0xFFFFFFF0ull;
// Blocks per engine read/write call.
inline constexpr uint32_t kBlocksPerIoMax = 256;
static_assert(kBlocksPerIoMax * kBlockBytes <= 1u << 20);

// Catalogue keys and values (file-system inodes, directory entries, xattrs).
inline constexpr uint32_t kCatalogKeyBytesMax = 1024;
inline constexpr uint32_t kCatalogValueBytesMax = 64 * 1024 + 256;

}  // namespace astra
