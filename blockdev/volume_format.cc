#include "blockdev/volume_format.h"

#include <cstring>

namespace astra::blockdev {
namespace {

void Put32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; i++) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void Put64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; i++) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t Get(std::string_view s, size_t off, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) v |= static_cast<uint64_t>(static_cast<uint8_t>(s[off + i])) << (8 * i);
  return v;
}

std::string HumanBytes(uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (b >= 1024 && b % 1024 == 0 && u < 6) {
    b /= 1024;
    u++;
  }
  return std::to_string(b) + " " + units[u];
}

}  // namespace

std::string VolumeKey(std::string_view name) {
  std::string k(1, kVolumeKeyPrefix);
  k.append(name);
  return k;
}

std::string EncodeVolumeRecord(const VolumeRecord& r) {
  std::string s;
  s.reserve(kVolumeRecordBytes);
  Put32(s, kVolumeRecordVersion);
  Put32(s, r.block_bytes);
  Put64(s, r.object);
  Put64(s, r.size_bytes);
  Put64(s, 0);
  return s;
}

Result<VolumeRecord> DecodeVolumeRecord(std::string_view name, std::string_view bytes) {
  const std::string what = "volume record of '" + std::string(name) + "': ";
  if (bytes.size() != kVolumeRecordBytes) {
    return Status::Corruption(what + "length " + std::to_string(bytes.size()) + ", expected " +
                              std::to_string(kVolumeRecordBytes));
  }
  if (Get(bytes, 0, 4) != kVolumeRecordVersion) {
    return Status::Corruption(what + "unknown version " + std::to_string(Get(bytes, 0, 4)));
  }
  VolumeRecord r;
  r.block_bytes = static_cast<uint32_t>(Get(bytes, 4, 4));
  r.object = Get(bytes, 8, 8);
  r.size_bytes = Get(bytes, 16, 8);
  if (r.block_bytes != 4096 && r.block_bytes != 512) {
    return Status::Corruption(what + "bad block size " + std::to_string(r.block_bytes));
  }
  if (!CheckVolumeSize(r.size_bytes).ok()) {
    return Status::Corruption(what + "bad size " + std::to_string(r.size_bytes));
  }
  return r;
}

Status CheckVolumeName(std::string_view name) {
  if (name.empty() || name.size() > kVolumeNameBytesMax) {
    return Status::InvalidArgument("volume name must be 1.." +
                                   std::to_string(kVolumeNameBytesMax) + " characters");
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) {
      return Status::InvalidArgument("volume name '" + std::string(name) +
                                     "' may only hold letters, digits, '.', '_' and '-'");
    }
  }
  return Status::Ok();
}

Status CheckVolumeSize(uint64_t size_bytes) {
  if (size_bytes < kVolumeSizeBytesMin) {
    return Status::InvalidArgument("volume size " + std::to_string(size_bytes) +
                                   " is below the minimum of " + HumanBytes(kVolumeSizeBytesMin));
  }
  if (size_bytes > kVolumeSizeBytesMax) {
    return Status::InvalidArgument("volume size " + std::to_string(size_bytes) +
                                   " bytes is beyond the limit of " +
                                   HumanBytes(kVolumeSizeBytesMax));
  }
  if (size_bytes % 4096 != 0) {
    return Status::InvalidArgument("volume size " + std::to_string(size_bytes) +
                                   " is not a multiple of 4096 bytes");
  }
  return Status::Ok();
}

Status CheckLogicalBlockSize(uint32_t logical_block_bytes) {
  if (logical_block_bytes == 0 || logical_block_bytes == 512 || logical_block_bytes == 4096) {
    return Status::Ok();
  }
  return Status::InvalidArgument("logical block size " + std::to_string(logical_block_bytes) +
                                 " is not supported: use 512 or 4096");
}

}  // namespace astra::blockdev
