#include "volume_exports.h"

#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <thread>

#include "blockdev/device_record.h"
#include "blockdev/ublk_queue.h"
#include "blockdev/volume_format.h"

namespace astra::mount {

namespace {

std::string BlockPath(uint32_t dev_id) { return "/dev/ublkb" + std::to_string(dev_id); }

// Blocks the stop signals in the calling thread while the BlockServer starts its queue and worker
// threads (they inherit the mask), so SIGTERM always reaches the FUSE loop, never a ublk thread.
class StopSignalsBlocked {
 public:
  StopSignalsBlocked() {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGTERM);
    sigaddset(&s, SIGINT);
    sigaddset(&s, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &s, &old_);
  }
  ~StopSignalsBlocked() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }

 private:
  sigset_t old_;
};

}  // namespace

VolumeExports::VolumeExports(Pool &pool, std::vector<std::string> members)
    : pool_(pool), members_(std::move(members)) {
  assert(!members_.empty());
}

VolumeExports::~VolumeExports() {
  Status s = RemoveAll();
  if (!s.ok()) spdlog::error("volumes: {}", s.ToString());
}

Result<uint32_t> VolumeExports::Export(const blockdev::ExportOptions &opts) {
  if (pool_.GetStatus().read_only) {
    return Status::ReadOnly("the pool is mounted read-only: its volumes cannot be exported");
  }
  ASTRA_RETURN_IF_ERROR(blockdev::CheckVolumeName(opts.volume));
  if (opts.size_bytes != 0) ASTRA_RETURN_IF_ERROR(blockdev::CheckVolumeSize(opts.size_bytes));
  if (opts.queues < 1 || opts.queues > ublk::kQueuesMax) {
    return Status::InvalidArgument("queues must be 1.." + std::to_string(ublk::kQueuesMax));
  }
  if (opts.depth < 1 || opts.depth > ublk::kQueueDepthMax) {
    return Status::InvalidArgument("depth must be 1.." + std::to_string(ublk::kQueueDepthMax));
  }
  if (opts.workers_per_queue < 1 || opts.workers_per_queue > ublk::kWorkersPerQueueMax) {
    return Status::InvalidArgument("workers must be 1.." +
                                   std::to_string(ublk::kWorkersPerQueueMax));
  }
  ASTRA_RETURN_IF_ERROR(blockdev::CheckLogicalBlockSize(opts.logical_block_bytes));
  std::lock_guard<std::mutex> l(mu_);
  StopSignalsBlocked blocked;
  ASTRA_RETURN_IF_ERROR(EnsureServer());
  ASTRA_ASSIGN_OR_RETURN(uint32_t id, server_->Export(opts));
  Remember(id);
  // Usable = the node exists (devtmpfs/udev create it after START_DEV).
  const std::string path = BlockPath(id);
  struct stat st;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kNodeWaitMs);
  while (::stat(path.c_str(), &st) != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  spdlog::info("volumes: volume '{}' exported as {}", opts.volume, path);
  return id;
}

Status VolumeExports::EnsureServer() {
  if (server_) return Status::Ok();
  // First use: only now is ublk needed (a mount that exports nothing works without it).
  ASTRA_RETURN_IF_ERROR(blockdev::EnsureRunDir());
  auto srv =
      std::make_unique<blockdev::BlockServer>(&pool_, members_, blockdev::ServerKind::kMount);
  ASTRA_RETURN_IF_ERROR(srv->OpenControl());
  server_ = std::move(srv);
  return Status::Ok();
}

void VolumeExports::Remember(uint32_t dev_id) {
  auto rec = blockdev::LoadDeviceRecord(dev_id);  // written by Export / Recover
  Exported e;
  if (rec.ok()) {
    e.volume = rec->volume;
    e.object = rec->object;
    e.size_bytes = rec->size_bytes;
    e.logical_block_bytes = rec->block_bytes;
  }
  exports_[dev_id] = e;
}

Result<uint32_t> VolumeExports::Recover(uint32_t dev_id) {
  if (pool_.GetStatus().read_only) {
    return Status::ReadOnly("the pool is mounted read-only: its volumes cannot be served");
  }
  std::lock_guard<std::mutex> l(mu_);
  StopSignalsBlocked blocked;
  ASTRA_RETURN_IF_ERROR(EnsureServer());
  ASTRA_ASSIGN_OR_RETURN(uint32_t id, server_->Recover(dev_id));
  Remember(id);
  spdlog::info("volumes: {} (volume '{}') recovered: served by this mount again", BlockPath(id),
               exports_[id].volume);
  return id;
}

Status VolumeExports::Remove(uint32_t dev_id) {
  std::lock_guard<std::mutex> l(mu_);
  if (!server_ || exports_.count(dev_id) == 0) {
    return Status::NotFound(BlockPath(dev_id) + " is not served by this mount");
  }
  Status s = server_->Remove(dev_id);
  spdlog::info("volumes: {} (volume '{}') deleted{}", BlockPath(dev_id), exports_[dev_id].volume,
               s.ok() ? "" : ": " + s.ToString());
  exports_.erase(dev_id);
  return s;
}

Status VolumeExports::RemoveAll() {
  std::lock_guard<std::mutex> l(mu_);
  if (!server_) return Status::Ok();
  if (!exports_.empty()) spdlog::info("volumes: deleting {} device(s)", exports_.size());
  Status s = server_->RemoveAll();
  exports_.clear();
  server_.reset();
  return s;
}

void VolumeExports::WriteExports(tools::JsonWriter &j) {
  j.BeginArray("exports");
  for (const auto &[id, e] : exports_) {
    j.BeginObject()
        .Uint("device", id)
        .String("path", BlockPath(id))
        .String("volume", e.volume)
        .Uint("object", e.object)
        .Uint("size_bytes", e.size_bytes)
        .Uint("mapped_bytes", pool_.ObjectMappedBlocks(e.object) * 4096)
        .Uint("logical_block_size", e.logical_block_bytes)
        .EndObject();
  }
  j.EndArray();
}

Status VolumeExports::Handle(const control::Request &r, tools::JsonWriter &j) {
  assert(control::IsVolumeCommand(r.command));
  if (r.command == "export") {
    blockdev::ExportOptions o;
    o.volume = r.volume;
    o.size_bytes = r.size_bytes;
    o.queues = uint16_t(std::min<uint32_t>(r.queues, 0xffff));
    o.depth = uint16_t(std::min<uint32_t>(r.depth, 0xffff));
    o.workers_per_queue = r.workers;
    o.user_copy = !r.buffer_copy;
    o.logical_block_bytes = r.logical_block_bytes;
    auto id = Export(o);
    if (!id.ok()) {
      spdlog::warn("volumes: export of '{}' refused: {}", r.volume, id.status().ToString());
      return id.status();
    }
    j.Uint("device", *id).String("path", BlockPath(*id)).String("volume", r.volume);
  } else if (r.command == "recover") {
    auto id = Recover(r.device);
    if (!id.ok()) {
      spdlog::warn("volumes: recovery of {} refused: {}", BlockPath(r.device),
                   id.status().ToString());
      return id.status();
    }
    std::string volume;
    {
      std::lock_guard<std::mutex> l(mu_);
      volume = exports_[*id].volume;
    }
    j.Uint("device", *id).String("path", BlockPath(*id)).String("volume", volume);
  } else if (r.command == "unexport") {
    std::string volume;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = exports_.find(r.device);
      if (it != exports_.end()) volume = it->second.volume;
    }
    ASTRA_RETURN_IF_ERROR(Remove(r.device));
    j.Uint("device", r.device).String("path", BlockPath(r.device)).String("volume", volume);
  }
  std::lock_guard<std::mutex> l(mu_);
  WriteExports(j);
  return Status::Ok();
}

}  // namespace astra::mount
