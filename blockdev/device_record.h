// DeviceRecord: what a restarted server needs to recover /dev/ublkbN, persisted while it exists.
//
// One JSON file per device, <run dir>/<N>.json (run dir: $ASTRA_UBLK_RUN_DIR or /run/astrafs/ublk;
// /run is a tmpfs, exactly as long-lived as the kernel's ublk devices). The geometry the kernel
// needs (queues, depth, flags, block size) is also in the kernel (GET_DEV_INFO / GET_PARAMS); the
// record adds what only we know: the pool members, the volume and its engine object.
//   {"dev_id": 0, "volume": "vol0", "object": 17, "size_bytes": 1073741824, "block_bytes": 4096,
//    "queues": 2, "depth": 64, "workers": 2, "pid": 1234, "by_mount": 0,
//    "members": ["/dev/nvme0n1", ...]}
// block_bytes: the logical block size given to the kernel (512 or 4096; absent: 4096).
// by_mount: 1 when astrafs-mount serves the device (recover asks the pool's mount), else 0.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "astra/result.h"
#include "astra/status.h"

namespace astra::blockdev {

struct DeviceRecord {
  uint32_t dev_id = 0;
  std::string volume;
  uint64_t object = 0;
  uint64_t size_bytes = 0;
  uint32_t block_bytes = 4096;
  uint32_t queues = 1, depth = 64, workers = 2;
  int64_t pid = 0;
  bool by_mount = false;
  std::vector<std::string> members;
};

std::string RunDir();                       // created on demand by SaveDeviceRecord
Status EnsureRunDir();                      // mkdir -p RunDir()
std::string DeviceRecordPath(uint32_t dev_id);
Status SaveDeviceRecord(const DeviceRecord& r);  // atomic (write + rename)
Result<DeviceRecord> LoadDeviceRecord(uint32_t dev_id);  // kNotFound when absent
void RemoveDeviceRecord(uint32_t dev_id);
std::vector<uint32_t> ListDeviceRecords();  // ascending
std::string EncodeDeviceRecord(const DeviceRecord& r);
Result<DeviceRecord> DecodeDeviceRecord(const std::string& json, const std::string& origin);

}  // namespace astra::blockdev
