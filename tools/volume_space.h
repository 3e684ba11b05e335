// Per-volume space figures for `astrafs status` (offline and through a mount's control socket):
// the block volumes' catalogue records (blockdev/volume_format.h, doc/format/volumes.md) joined
// with the engine's per-object accounting (Pool::GetObjectSpace). Written as JSON by the same
// function for the tool's --json output and the control protocol's status result, so both
// paths carry the same keys (doc/tools.md, doc/control.md).
//
// Thread safety: ListVolumes calls only thread-safe Pool methods; call it from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "astra/pool.h"
#include "astra/result.h"
#include "cli_common.h"

namespace astra::tools {

// At most this many volumes are listed (the rest are counted in VolumeList::not_listed): keeps
// a status result line far below control::kResponseLineBytesMax (an entry is ~450 bytes).
inline constexpr size_t kVolumesListedMax = 4096;

struct VolumeSpace {
  std::string name;
  // Not empty when the record does not decode (kCorruption's message); the figures are then 0.
  std::string error;
  ObjectId object = 0;
  uint64_t size_bytes = 0;
  uint32_t block_bytes = 0;
  ObjectSpaceStats space;         // logical, stored (shared extents divided), exclusive, ...
  uint64_t raw_bytes = 0;         // space.stored_bytes x (k+m)/k, as the pool's raw_bytes
  uint64_t zero_saved_bytes = 0;  // size_bytes - logical_bytes: holes (thin, trimmed, zeros)
};

struct VolumeList {
  std::vector<VolumeSpace> volumes;  // in name order (the catalogue's key order)
  uint64_t not_listed = 0;           // volumes beyond kVolumesListedMax
};

// stored x (k+m)/k without overflowing for any stored < 2^64 / (k+m). k > 0.
uint64_t RawBytes(uint64_t stored_bytes, uint32_t data_shards, uint32_t parity_shards);

// Every volume record of `pool` ("V" keys), with its object's figures. Records that do not
// decode are listed with `error` set. Errors: the catalogue scan's (kIOError, kCorruption).
Result<VolumeList> ListVolumes(Pool& pool, uint32_t data_shards, uint32_t parity_shards);

// As fields of the current JSON object: "volumes": [{name, object, size_bytes, block_bytes,
// logical_bytes, stored_bytes, exclusive_stored_bytes, raw_bytes, zero_saved_bytes,
// dedup_saved_bytes, compression_saved_bytes, data_reduction_ratio}, ...] (an entry whose
// record is bad: {name, error}), and "volumes_not_listed": N.
void WriteVolumeList(JsonWriter& j, const VolumeList& list);

}  // namespace astra::tools
