// VolumeTarget: serves one block volume's ublk requests from an engine object.
//
// READ -> Pool::Read, WRITE -> Pool::Write (+ Pool::Flush when the kernel sets FUA),
// FLUSH -> Pool::Flush, DISCARD and WRITE_ZEROES -> Pool::Trim (dropped blocks read as zeros and
// give their space back). Requests are split at kBlocksPerIoMax blocks per engine call.
// The exported logical block size is 4096, so every request is whole engine blocks.
//
// Thread safety: Serve() from any number of threads (the Pool is thread-safe).
#pragma once

#include <atomic>
#include <cstdint>

#include "astra/pool.h"
#include "blockdev/block_target.h"

namespace astra::blockdev {

class VolumeTarget final : public ublk::BlockTarget {
 public:
  VolumeTarget(Pool* pool, ObjectId object, uint64_t size_bytes)
      : pool_(pool), object_(object), size_bytes_(size_bytes) {}
  int Serve(const ublk::BlockRequest& req, uint8_t* buf) override;
  uint64_t errors() const { return errors_.load(); }

 private:
  int Fail(const char* op, const ublk::BlockRequest& req, const Status& st);

  Pool* const pool_;
  const ObjectId object_;
  const uint64_t size_bytes_;
  std::atomic<uint64_t> errors_{0};
};

}  // namespace astra::blockdev
