#include "blockdev/block_server.h"

#include <unistd.h>

#include <cassert>
#include <cstdio>
#include <sstream>

namespace astra::blockdev {

BlockServer::BlockServer(Pool* pool, std::vector<std::string> members, ServerKind kind)
    : pool_(pool), members_(std::move(members)), kind_(kind) {
  assert(pool_ != nullptr);
}

BlockServer::~BlockServer() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, e] : exports_) e.dev->Stop().IgnoreError();
  exports_.clear();
}

Status BlockServer::OpenControl() {
  std::lock_guard<std::mutex> lock(mu_);
  if (ctrl_) return Status::Ok();
  ASTRA_ASSIGN_OR_RETURN(ctrl_, ublk::UblkControl::Open());
  fprintf(stderr, "astrafs-ublk: kernel ublk features %s\n", ctrl_->FeatureString().c_str());
  return Status::Ok();
}

size_t BlockServer::exports() const {
  std::lock_guard<std::mutex> lock(mu_);
  return exports_.size();
}

Result<VolumeRecord> BlockServer::FindOrCreateVolume(const ExportOptions& opts) {
  ASTRA_RETURN_IF_ERROR(CheckVolumeName(opts.volume));
  if (opts.size_bytes != 0) ASTRA_RETURN_IF_ERROR(CheckVolumeSize(opts.size_bytes));
  ASTRA_RETURN_IF_ERROR(CheckLogicalBlockSize(opts.logical_block_bytes));
  const std::string key = VolumeKey(opts.volume);
  Result<std::string> got = pool_->Get(key);
  if (got.ok()) {
    ASTRA_ASSIGN_OR_RETURN(VolumeRecord rec, DecodeVolumeRecord(opts.volume, got.value()));
    if (opts.size_bytes != 0 && opts.size_bytes != rec.size_bytes) {
      return Status::InvalidArgument("volume '" + opts.volume + "' exists with size " +
                                     std::to_string(rec.size_bytes) + " bytes, not " +
                                     std::to_string(opts.size_bytes) +
                                     " (resizing is not supported)");
    }
    if (opts.logical_block_bytes != 0 && opts.logical_block_bytes != rec.block_bytes) {
      return Status::InvalidArgument(
          "volume '" + opts.volume + "' has " + std::to_string(rec.block_bytes) +
          "-byte logical blocks, not " + std::to_string(opts.logical_block_bytes) +
          " (fixed when the volume was created: a file system on it depends on it)");
    }
    return rec;
  }
  if (!got.status().IsNotFound()) return got.status().Annotate("volume '" + opts.volume + "'");
  if (opts.size_bytes == 0) {
    return Status::InvalidArgument("volume '" + opts.volume +
                                   "' does not exist: give --size to create it");
  }
  ASTRA_ASSIGN_OR_RETURN(uint64_t object, pool_->AllocateId());
  VolumeRecord rec;
  rec.object = object;
  rec.size_bytes = opts.size_bytes;
  rec.block_bytes = opts.logical_block_bytes != 0 ? opts.logical_block_bytes : 4096;
  CatalogTxn txn;
  txn.expect_absent.push_back(key);
  txn.Put(key, EncodeVolumeRecord(rec));
  Status st = pool_->Commit(txn);
  if (st.code() == Status::Code::kAborted) {
    return Status::Exists("volume '" + opts.volume + "' was created concurrently; retry");
  }
  ASTRA_RETURN_IF_ERROR(st);
  ASTRA_RETURN_IF_ERROR(pool_->Flush());  // the record is durable before the device appears
  return rec;
}

Status BlockServer::SaveRecord(uint32_t dev_id, const Entry& e) {
  DeviceRecord r;
  r.dev_id = dev_id;
  r.volume = e.volume;
  r.object = e.rec.object;
  r.size_bytes = e.rec.size_bytes;
  r.block_bytes = e.dev->logical_block_bytes();
  r.queues = e.dev->queues();
  r.depth = e.dev->depth();
  r.workers = e.workers;
  r.pid = getpid();
  r.by_mount = kind_ == ServerKind::kMount;
  r.members = members_;
  return SaveDeviceRecord(r);
}

Result<uint32_t> BlockServer::Export(const ExportOptions& opts) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!ctrl_) return Status::InvalidArgument("OpenControl() first");
  ASTRA_ASSIGN_OR_RETURN(VolumeRecord rec, FindOrCreateVolume(opts));
  for (const auto& [id, e] : exports_) {
    if (e.volume == opts.volume) {
      return Status::Exists("volume '" + opts.volume + "' is already exported as /dev/ublkb" +
                            std::to_string(id));
    }
  }
  Entry e;
  e.volume = opts.volume;
  e.rec = rec;
  e.workers = opts.workers_per_queue;
  e.target = std::make_unique<VolumeTarget>(pool_, rec.object, rec.size_bytes, rec.block_bytes);
  ublk::DeviceOptions dopts;
  dopts.size_bytes = rec.size_bytes;
  dopts.queues = opts.queues;
  dopts.depth = opts.depth;
  dopts.workers_per_queue = opts.workers_per_queue;
  dopts.logical_block_bytes = rec.block_bytes;
  dopts.user_copy = opts.user_copy;
  ASTRA_ASSIGN_OR_RETURN(e.dev, ublk::UblkDevice::Create(ctrl_.get(), dopts, e.target.get()));
  const uint32_t id = e.dev->id();
  Status st = SaveRecord(id, e);
  if (!st.ok()) {
    e.dev->Stop().IgnoreError();
    e.dev->Delete().IgnoreError();
    return st.Annotate("device record");
  }
  fprintf(stderr,
          "astrafs-ublk: volume '%s' (object %llu, %llu bytes) is %s (%s, %u queues x %u, "
          "%u-byte logical blocks)\n",
          e.volume.c_str(), static_cast<unsigned long long>(rec.object),
          static_cast<unsigned long long>(rec.size_bytes), e.dev->block_path().c_str(),
          e.dev->user_copy() ? "user-copy" : "buffer-copy", e.dev->queues(), e.dev->depth(),
          rec.block_bytes);
  exports_.emplace(id, std::move(e));
  return id;
}

Result<uint32_t> BlockServer::Recover(uint32_t dev_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!ctrl_) return Status::InvalidArgument("OpenControl() first");
  if (exports_.count(dev_id)) {
    return Status::Exists("/dev/ublkb" + std::to_string(dev_id) + " is already served here");
  }
  ASTRA_ASSIGN_OR_RETURN(DeviceRecord dr, LoadDeviceRecord(dev_id));
  ASTRA_ASSIGN_OR_RETURN(std::string bytes, pool_->Get(VolumeKey(dr.volume)));
  ASTRA_ASSIGN_OR_RETURN(VolumeRecord rec, DecodeVolumeRecord(dr.volume, bytes));
  if (rec.object != dr.object || rec.size_bytes != dr.size_bytes) {
    return Status::InvalidArgument("device " + std::to_string(dev_id) + " record names volume '" +
                                   dr.volume + "' with object/size that the pool does not have");
  }
  for (const auto& [id, other] : exports_) {
    if (other.volume == dr.volume) {
      return Status::Exists("volume '" + dr.volume + "' is already exported here as /dev/ublkb" +
                            std::to_string(id));
    }
  }
  Entry e;
  e.volume = dr.volume;
  e.rec = rec;
  e.workers = dr.workers ? dr.workers : 2;
  // The block size the device was created with (the record's; the kernel's must agree).
  e.target = std::make_unique<VolumeTarget>(pool_, rec.object, rec.size_bytes, dr.block_bytes);
  ASTRA_ASSIGN_OR_RETURN(e.dev, ublk::UblkDevice::Recover(ctrl_.get(), dev_id, e.target.get(),
                                                          e.workers, dr.block_bytes));
  SaveRecord(dev_id, e).IgnoreError();  // only the pid changes; the old record stays usable
  fprintf(stderr, "astrafs-ublk: recovered %s (volume '%s', %u-byte logical blocks)\n",
          e.dev->block_path().c_str(), e.volume.c_str(), e.dev->logical_block_bytes());
  exports_.emplace(dev_id, std::move(e));
  return dev_id;
}

Status BlockServer::Remove(uint32_t dev_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = exports_.find(dev_id);
  if (it == exports_.end()) {
    return Status::NotFound("/dev/ublkb" + std::to_string(dev_id) + " is not served here");
  }
  Status st = it->second.dev->Stop();
  Status fl = pool_->Flush();  // whatever the kernel wrote before the stop is durable
  Status del = it->second.dev->Delete();
  exports_.erase(it);
  RemoveDeviceRecord(dev_id);
  if (!fl.ok()) return fl.Annotate("flush");
  if (!st.ok()) return st;
  return del;
}

Status BlockServer::RemoveAll() {
  std::vector<uint32_t> ids;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, e] : exports_) ids.push_back(id);
  }
  Status first;
  for (uint32_t id : ids) {
    Status st = Remove(id);
    if (first.ok() && !st.ok()) first = st;
  }
  return first;
}

std::string BlockServer::Describe() {
  std::lock_guard<std::mutex> lock(mu_);
  std::ostringstream o;
  PoolStatus ps = pool_->GetStatus();
  o << "pool " << ps.pool_uuid << " " << ps.data_shards << "+" << ps.parity_shards << " members "
    << ps.members << (ps.degraded ? " DEGRADED" : "") << "\n";
  o << "space logical_bytes " << ps.space.logical_bytes << " stored_bytes "
    << ps.space.stored_bytes << " free_bytes " << ps.space.free_bytes << " capacity_bytes "
    << ps.space.capacity_bytes << "\n";
  for (const auto& [id, e] : exports_) {
    o << "device " << id << " /dev/ublkb" << id << " volume " << e.volume << " size_bytes "
      << e.rec.size_bytes << " mapped_bytes " << pool_->ObjectMappedBlocks(e.rec.object) * 4096
      << " requests " << e.dev->requests() << " errors " << e.target->errors()
      << " logical_block_bytes " << e.dev->logical_block_bytes() << " rmw_blocks "
      << e.target->stats().rmw_blocks.load() << "\n";
  }
  for (const auto& [id, e] : exports_) {
    const ublk::DeviceTotals t = e.dev->totals();
    o << "stages " << id << " requests " << t.requests << " dispatch_ns " << t.dispatch_ns
      << " copy_ns " << t.copy_ns << " target_ns " << t.target_ns << " complete_ns "
      << t.complete_ns << "\n";
  }
  return o.str();
}

}  // namespace astra::blockdev
