#include "volume_space.h"

#include <cassert>
#include <string_view>
#include <utility>

#include "blockdev/volume_format.h"

namespace astra::tools {

uint64_t RawBytes(uint64_t stored_bytes, uint32_t data_shards, uint32_t parity_shards) {
  assert(data_shards > 0);
  const uint64_t k = data_shards, w = uint64_t(data_shards) + parity_shards;
  // (q k + r) w / k = q w + r w / k: no overflow of stored x w.
  return stored_bytes / k * w + stored_bytes % k * w / k;
}

Result<VolumeList> ListVolumes(Pool& pool, uint32_t data_shards, uint32_t parity_shards) {
  assert(data_shards > 0);
  // The records first, the figures after: GetObjectSpace takes the engine's metadata lock, which
  // must not be taken again inside the Scan callback.
  std::vector<std::pair<std::string, std::string>> records;
  VolumeList list;
  const std::string begin(1, blockdev::kVolumeKeyPrefix);
  const std::string end(1, char(blockdev::kVolumeKeyPrefix + 1));
  ASTRA_RETURN_IF_ERROR(pool.Scan(begin, end, [&](std::string_view key, std::string_view value) {
    if (records.size() == kVolumesListedMax) {
      ++list.not_listed;
    } else {
      records.emplace_back(std::string(key.substr(1)), std::string(value));
    }
    return true;
  }));
  list.volumes.reserve(records.size());
  for (const auto& [name, value] : records) {
    VolumeSpace v;
    v.name = name;
    auto rec = blockdev::DecodeVolumeRecord(name, value);
    if (!rec.ok()) {
      v.error = rec.status().message();
      list.volumes.push_back(std::move(v));
      continue;
    }
    v.object = rec->object;
    v.size_bytes = rec->size_bytes;
    v.block_bytes = rec->block_bytes;
    v.space = pool.GetObjectSpace(rec->object);
    v.raw_bytes = RawBytes(v.space.stored_bytes, data_shards, parity_shards);
    // Blocks past the size cannot be written through the volume; should any be mapped, the
    // thin part is 0, not a wrapped-around count.
    v.zero_saved_bytes =
        v.size_bytes > v.space.logical_bytes ? v.size_bytes - v.space.logical_bytes : 0;
    list.volumes.push_back(std::move(v));
  }
  assert(list.volumes.size() <= kVolumesListedMax);
  return list;
}

void WriteVolumeList(JsonWriter& j, const VolumeList& list) {
  j.BeginArray("volumes");
  for (const VolumeSpace& v : list.volumes) {
    j.BeginObject().String("name", v.name);
    if (!v.error.empty()) {
      j.String("error", v.error).EndObject();
      continue;
    }
    j.Uint("object", v.object)
        .Uint("size_bytes", v.size_bytes)
        .Uint("block_bytes", v.block_bytes)
        .Uint("logical_bytes", v.space.logical_bytes)
        .Uint("stored_bytes", v.space.stored_bytes)
        .Uint("exclusive_stored_bytes", v.space.exclusive_stored_bytes)
        .Uint("raw_bytes", v.raw_bytes)
        .Uint("zero_saved_bytes", v.zero_saved_bytes)
        .Uint("dedup_saved_bytes", v.space.dedup_saved_bytes)
        .Uint("compression_saved_bytes", v.space.compression_saved_bytes)
        .Double("data_reduction_ratio", v.space.data_reduction_ratio)
        .EndObject();
  }
  j.EndArray();
  j.Uint("volumes_not_listed", list.not_listed);
}

}  // namespace astra::tools
