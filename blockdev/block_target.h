// BlockTarget: what a ublk device's requests are served by (ublksrv's "target").
//
// The generic machinery (UblkControl, UblkQueue, UblkDevice) knows nothing about storage: it
// fetches requests, moves the data between the kernel and a per-tag buffer, and calls Serve().
//
// Thread safety: Serve() is called concurrently from every queue's worker threads, for different
// tags (never twice at once for one tag).
#pragma once

#include <cstdint>
#include <span>

namespace astra::ublk {

enum class BlockOp : uint8_t {  // UBLK_IO_OP_* values
  kRead = 0,
  kWrite = 1,
  kFlush = 2,
  kDiscard = 3,
  kWriteSame = 4,  // never advertised, never expected
  kWriteZeroes = 5,
};

inline constexpr uint32_t kBlockFlagFua = 1u << 13 >> 8;      // UBLK_IO_F_FUA, after >> 8
inline constexpr uint32_t kBlockFlagNoUnmap = 1u << 15 >> 8;  // UBLK_IO_F_NOUNMAP, after >> 8

struct BlockRequest {
  BlockOp op = BlockOp::kRead;
  uint32_t flags = 0;          // UBLK_IO_F_* >> 8
  uint64_t offset_bytes = 0;   // a multiple of the logical block size
  uint64_t length_bytes = 0;   // 0 for kFlush; <= max I/O bytes for kRead / kWrite
};

class BlockTarget {
 public:
  virtual ~BlockTarget() = default;
  // Serves one request. kRead fills buf[0, length); kWrite consumes it; the others ignore it.
  // Returns 0 or -errno (EIO only when the data really cannot be returned or stored).
  virtual int Serve(const BlockRequest& req, uint8_t* buf) = 0;
  // Serves a batch of kRead requests at once (the queue's pending reads): results[i] as Serve()
  // would return for reqs[i] into bufs[i]. The default serves them one by one; a target that can
  // put them all in flight at once overrides it. Same thread-safety rules as Serve().
  virtual void ServeReads(std::span<const BlockRequest> reqs, uint8_t* const* bufs, int* results) {
    for (size_t i = 0; i < reqs.size(); i++) results[i] = Serve(reqs[i], bufs[i]);
  }
  // Serves a batch of kWrite requests at once (the queue's pending writes, which the kernel had
  // in flight together, so their order among themselves is free): results[i] as Serve() would
  // return for reqs[i] from bufs[i]. The default serves them one by one, in order. Same
  // thread-safety rules as Serve().
  virtual void ServeWrites(std::span<const BlockRequest> reqs, uint8_t* const* bufs, int* results) {
    for (size_t i = 0; i < reqs.size(); i++) results[i] = Serve(reqs[i], bufs[i]);
  }
};

}  // namespace astra::ublk
