// VolumeExports: the block volumes astrafs-mount serves from the pool it has mounted, as
// /dev/ublkbN devices (blockdev/block_server.h), on request through its control socket
// (commands export, unexport, exports: doc/control.md, doc/blockdev.md). File system and volumes
// then share one pool: its space, its dedup index and its journal.
//
// The BlockServer (and with it /dev/ublk-control) is created on the first export only, so a mount
// that never exports needs no ublk_drv. Devices served here are deleted, not left recoverable,
// when the mount ends cleanly: RemoveAll() (flush, STOP_DEV, DEL_DEV each) runs before the pool
// closes. When the daemon dies instead (kill -9), its devices stay in the kernel with I/O
// waiting; a new mount of the pool takes them back on request (command recover, sent by
// `astrafs-ublk recover N`): START_USER_RECOVERY, queues, END_USER_RECOVERY (Recover()).

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
#include "blockdev/block_server.h"
#include "control_protocol.h"

namespace astra::mount {

class VolumeExports {
 public:
  static constexpr int kNodeWaitMs = 5000;  // for /dev/ublkbN to appear after START_DEV

  // `pool` outlives this object; `members`: the pool's member paths (kept in device records).
  VolumeExports(Pool &pool, std::vector<std::string> members);
  ~VolumeExports();  // RemoveAll()
  VolumeExports(const VolumeExports &) = delete;
  VolumeExports &operator=(const VolumeExports &) = delete;

  // Creates the volume when missing (thin, needs a size), exports it and waits for its node.
  // Errors: kReadOnly on a read-only mount; kNotFound without ublk_drv; BlockServer::Export's.
  Result<uint32_t> Export(const blockdev::ExportOptions &opts);
  // Re-attaches /dev/ublkb`dev_id`, whose server (an earlier mount of this pool) died, from
  // its device record. Errors: kReadOnly on a read-only mount; BlockServer::Recover's (kNotFound
  // without a record, kInvalidArgument when the record is not this pool's volume, kBusy while a
  // live process serves it, kExists when served here already).
  Result<uint32_t> Recover(uint32_t dev_id);
  // Flushes, STOP_DEV, DEL_DEV. kNotFound when `dev_id` is not served here.
  Status Remove(uint32_t dev_id);
  // Every device, then the BlockServer itself. First error returned; all are tried.
  Status RemoveAll();

  // The control socket's handler (ControlServer::SetVolumeHandler): export, unexport, exports.
  // Result fields: export/unexport/recover `device` (N), `path` (/dev/ublkbN), `volume`; every
  // command
  // `exports`: [{device, path, volume, object, size_bytes, mapped_bytes, logical_block_size}].
  Status Handle(const control::Request &r, tools::JsonWriter &j);

 private:
  struct Exported {
    std::string volume;
    uint64_t object = 0;
    uint64_t size_bytes = 0;
    uint32_t logical_block_bytes = 4096;
  };
  void WriteExports(tools::JsonWriter &j);  // needs mu_
  Status EnsureServer();                    // needs mu_: the BlockServer, on first use
  void Remember(uint32_t dev_id);           // needs mu_: exports_[dev_id] from its record

  Pool &pool_;
  const std::vector<std::string> members_;
  std::mutex mu_;
  std::unique_ptr<blockdev::BlockServer> server_;  // created by the first export
  std::map<uint32_t, Exported> exports_;
};

}  // namespace astra::mount
