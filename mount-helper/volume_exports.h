// VolumeExports: the block volumes astrafs-mount serves from the pool it has mounted, as
// /dev/ublkbN devices (blockdev/block_server.h), on request through its control socket
// (commands export, unexport, exports: doc/control.md, doc/blockdev.md). File system and volumes
// then share one pool: its space, its dedup index and its journal.
//
// The BlockServer (and with it /dev/ublk-control) is created on the first export only, so a mount
// that never exports needs no ublk_drv. Devices served here are deleted, not left recoverable,
// when the mount ends: RemoveAll() (flush, STOP_DEV, DEL_DEV each) runs before the pool closes.
// `astrafs-ublk recover` does not apply to them.
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
  // Flushes, STOP_DEV, DEL_DEV. kNotFound when `dev_id` is not served here.
  Status Remove(uint32_t dev_id);
  // Every device, then the BlockServer itself. First error returned; all are tried.
  Status RemoveAll();

  // The control socket's handler (ControlServer::SetVolumeHandler): export, unexport, exports.
  // Result fields: export/unexport `device` (N), `path` (/dev/ublkbN), `volume`; every command
  // `exports`: [{device, path, volume, object, size_bytes, mapped_bytes}].
  Status Handle(const control::Request &r, tools::JsonWriter &j);

 private:
  struct Exported {
    std::string volume;
    uint64_t object = 0;
    uint64_t size_bytes = 0;
  };
  void WriteExports(tools::JsonWriter &j);  // needs mu_

  Pool &pool_;
  const std::vector<std::string> members_;
  std::mutex mu_;
  std::unique_ptr<blockdev::BlockServer> server_;  // created by the first export
  std::map<uint32_t, Exported> exports_;
};

}  // namespace astra::mount
