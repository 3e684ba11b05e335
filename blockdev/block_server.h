// BlockServer: exports volumes of one open pool as /dev/ublkbN devices, several at once.
//
// It owns the ublk control device and one UblkDevice + VolumeTarget per export, and keeps the
// per-device records (device_record.h) that `astrafs-ublk recover` needs. It does not own the
// pool: astrafs-ublk's daemon opens one, and a file-system server (astrafs-mount) may embed a
// BlockServer on the pool it already serves, so both front ends share space, dedup and journal.
//
// Thread safety: every public method may be called from any thread; they are serialised.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "astra/pool.h"
#include "astra/result.h"
#include "astra/status.h"
#include "blockdev/device_record.h"
#include "blockdev/ublk_control.h"
#include "blockdev/ublk_device.h"
#include "blockdev/volume_format.h"
#include "blockdev/volume_target.h"

namespace astra::blockdev {

struct ExportOptions {
  std::string volume = "vol0";
  uint64_t size_bytes = 0;  // 0: the volume must exist; else created thin at this size if missing
  uint16_t queues = 1;
  uint16_t depth = 64;
  uint32_t workers_per_queue = 2;
  bool user_copy = true;    // when the kernel offers it
  // 512 or 4096; 0: the volume's own (a new volume: 4096). Fixed when the volume is created
  // (a file system on it depends on it): a different value for an existing volume is refused.
  uint32_t logical_block_bytes = 0;
};

// Who serves the devices: recorded in each device record, so `astrafs-ublk recover N` knows
// whether to start an astrafs-ublk server or to ask the pool's astrafs-mount.
enum class ServerKind : uint8_t { kUblkDaemon = 0, kMount = 1 };

class BlockServer {
 public:
  // `members`: the pool's member paths, recorded so a restarted server can reopen the pool.
  BlockServer(Pool* pool, std::vector<std::string> members,
              ServerKind kind = ServerKind::kUblkDaemon);
  ~BlockServer();  // stops every device without deleting it (they stay recoverable)

  // Errors: kNotFound "ublk_drv not loaded: run modprobe ublk_drv".
  Status OpenControl();
  // Creates the volume when missing (needs size_bytes), then ADD_DEV + START_DEV.
  // Returns the device id N (/dev/ublkbN). kInvalidArgument for a missing volume without a size,
  // a size beyond the limits or differing from the stored one; kExists if already exported.
  Result<uint32_t> Export(const ExportOptions& opts);
  // Re-attaches device `dev_id` (its previous server died) using its record: same volume, same
  // logical block size. kNotFound without a record; kInvalidArgument when the record does not
  // match the pool's volume or the kernel's device; kBusy while a live process serves it.
  Result<uint32_t> Recover(uint32_t dev_id);
  // Flushes, STOP_DEV, DEL_DEV, forgets the record.
  Status Remove(uint32_t dev_id);
  Status RemoveAll();
  size_t exports() const;
  // One line per export and a pool space summary (for `astrafs-ublk status`), then one `stages`
  // line per export: requests served and nanoseconds summed per stage (QueueStats, ublk_queue.h).
  std::string Describe();

 private:
  struct Entry {
    std::string volume;
    VolumeRecord rec;
    uint32_t workers = 2;
    std::unique_ptr<VolumeTarget> target;
    std::unique_ptr<ublk::UblkDevice> dev;
  };
  Result<VolumeRecord> FindOrCreateVolume(const ExportOptions& opts);
  Status SaveRecord(uint32_t dev_id, const Entry& e);

  Pool* const pool_;
  const std::vector<std::string> members_;
  const ServerKind kind_;
  mutable std::mutex mu_;
  std::unique_ptr<ublk::UblkControl> ctrl_;
  std::map<uint32_t, Entry> exports_;
};

}  // namespace astra::blockdev
