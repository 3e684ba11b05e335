#include "blockdev/volume_target.h"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <vector>

#include "astra/limits.h"

namespace astra::blockdev {

VolumeTarget::VolumeTarget(Pool* pool, ObjectId object, uint64_t size_bytes,
                           uint32_t logical_block_bytes)
    : pool_(pool),
      object_(object),
      size_bytes_(size_bytes),
      logical_block_bytes_(logical_block_bytes) {
  assert(pool_ != nullptr);
  assert(logical_block_bytes == 512 || logical_block_bytes == kBlockBytes);
  assert(size_bytes % kBlockBytes == 0);
}

int VolumeTarget::Fail(const char* op, const ublk::BlockRequest& req, const Status& st) {
  // Log the first errors with what failed; then only count (a dying member would flood the log).
  if (errors_.fetch_add(1) < 20) {
    fprintf(stderr, "astrafs-ublk: %s of object %llu at byte %llu (+%llu): %s\n", op,
            static_cast<unsigned long long>(object_),
            static_cast<unsigned long long>(req.offset_bytes),
            static_cast<unsigned long long>(req.length_bytes), st.ToString().c_str());
  }
  int e = st.ToErrno();
  return -(e > 0 ? e : EIO);
}

Status VolumeTarget::ReadBlocks(uint64_t first, uint64_t count, uint8_t* buf) {
  for (uint64_t done = 0; done < count;) {
    const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(count - done, kBlocksPerIoMax));
    ASTRA_RETURN_IF_ERROR(pool_->Read(object_, first + done, n, buf + done * kBlockBytes));
    done += n;
  }
  return Status::Ok();
}

Status VolumeTarget::WriteBlocks(uint64_t first, uint64_t count, const uint8_t* buf) {
  if (count == 0) return Status::Ok();
  if (buf == nullptr) return pool_->Trim(object_, first, count);
  for (uint64_t done = 0; done < count;) {
    const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(count - done, kBlocksPerIoMax));
    ASTRA_RETURN_IF_ERROR(pool_->Write(object_, first + done, n, buf + done * kBlockBytes));
    done += n;
  }
  return Status::Ok();
}

Status VolumeTarget::PatchBlock(uint64_t offset, uint64_t length, const uint8_t* src) {
  const uint64_t block = offset / kBlockBytes;
  const uint64_t in = offset % kBlockBytes;
  assert(length > 0 && in + length <= kBlockBytes);
  assert(length < kBlockBytes && "whole blocks are written directly");
  alignas(64) uint8_t scratch[kBlockBytes];
  ASTRA_RETURN_IF_ERROR(pool_->Read(object_, block, 1, scratch));
  if (src != nullptr) {
    memcpy(scratch + in, src, length);
  } else {
    memset(scratch + in, 0, length);
  }
  stats_.rmw_blocks.fetch_add(1, std::memory_order_relaxed);
  return pool_->Write(object_, block, 1, scratch);  // all zeros: the engine stores a hole
}

Status VolumeTarget::WriteRange(uint64_t offset, uint64_t length, const uint8_t* src) {
  assert(length > 0);
  const uint64_t end = offset + length;
  const uint64_t first = offset / kBlockBytes;
  const uint64_t last = (end - 1) / kBlockBytes;  // inclusive
  const bool head_partial = offset % kBlockBytes != 0 || end < (first + 1) * kBlockBytes;
  const bool tail_partial = last != first && end % kBlockBytes != 0;
  std::optional<BlockLocks::RangeLock> held;
  if (logical_block_bytes_ != kBlockBytes) {  // 4096-byte devices never see a partial block
    held.emplace(locks_.Lock(first, last - first + 1,
                             head_partial ? first : BlockLocks::kNoBlock,
                             tail_partial ? last : BlockLocks::kNoBlock));
  } else {
    assert(!head_partial && !tail_partial);
  }
  uint64_t pos = offset;
  if (head_partial) {
    const uint64_t n = std::min<uint64_t>(kBlockBytes - offset % kBlockBytes, length);
    ASTRA_RETURN_IF_ERROR(PatchBlock(pos, n, src));
    pos += n;
  }
  const uint64_t whole = (end - pos) / kBlockBytes;
  ASTRA_RETURN_IF_ERROR(
      WriteBlocks(pos / kBlockBytes, whole, src ? src + (pos - offset) : nullptr));
  pos += whole * kBlockBytes;
  if (pos < end) {
    assert(tail_partial);
    ASTRA_RETURN_IF_ERROR(PatchBlock(pos, end - pos, src ? src + (pos - offset) : nullptr));
  }
  return Status::Ok();
}

Status VolumeTarget::ReadRange(uint64_t offset, uint64_t length, uint8_t* dst) {
  assert(length > 0);
  const uint64_t end = offset + length;
  uint64_t pos = offset;
  alignas(64) uint8_t scratch[kBlockBytes];
  // Partly covered blocks through a scratch block; whole blocks straight into dst.
  if (pos % kBlockBytes != 0 || end - pos < kBlockBytes) {
    const uint64_t in = pos % kBlockBytes;
    const uint64_t n = std::min<uint64_t>(kBlockBytes - in, end - pos);
    ASTRA_RETURN_IF_ERROR(pool_->Read(object_, pos / kBlockBytes, 1, scratch));
    memcpy(dst, scratch + in, n);
    pos += n;
  }
  const uint64_t whole = (end - pos) / kBlockBytes;
  ASTRA_RETURN_IF_ERROR(ReadBlocks(pos / kBlockBytes, whole, dst + (pos - offset)));
  pos += whole * kBlockBytes;
  if (pos < end) {
    ASTRA_RETURN_IF_ERROR(pool_->Read(object_, pos / kBlockBytes, 1, scratch));
    memcpy(dst + (pos - offset), scratch, end - pos);
  }
  return Status::Ok();
}

bool VolumeTarget::WholeBlocksInside(const ublk::BlockRequest& r) const {
  return r.length_bytes > 0 && r.offset_bytes % kBlockBytes == 0 && r.length_bytes % kBlockBytes == 0 &&
         r.length_bytes <= uint64_t(kBlocksPerIoMax) * kBlockBytes && r.offset_bytes <= size_bytes_ &&
         r.length_bytes <= size_bytes_ - r.offset_bytes;
}

void VolumeTarget::ServeReads(std::span<const ublk::BlockRequest> reqs, uint8_t* const* bufs,
                              int* results) {
  std::vector<ReadOp> ops;
  std::vector<size_t> op_of;  // request index of each op
  ops.reserve(reqs.size());
  for (size_t i = 0; i < reqs.size(); i++) {
    const ublk::BlockRequest& r = reqs[i];
    if (r.op != ublk::BlockOp::kRead || !WholeBlocksInside(r)) {
      results[i] = Serve(r, bufs[i]);  // its own checks and errors
      continue;
    }
    ops.push_back({object_, r.offset_bytes / kBlockBytes, uint32_t(r.length_bytes / kBlockBytes), bufs[i], {}});
    op_of.push_back(i);
  }
  if (ops.empty()) return;
  (void)pool_->ReadBatch(ops);  // every op's own status below
  for (size_t j = 0; j < ops.size(); j++)
    results[op_of[j]] = ops[j].status.ok() ? 0 : Fail("read", reqs[op_of[j]], ops[j].status);
}

void VolumeTarget::ServeWrites(std::span<const ublk::BlockRequest> reqs, uint8_t* const* bufs,
                               int* results) {
  std::vector<WriteOp> ops;
  std::vector<size_t> op_of;  // request index of each op
  ops.reserve(reqs.size());
  bool fua = false;
  for (size_t i = 0; i < reqs.size(); i++) {
    const ublk::BlockRequest& r = reqs[i];
    if (logical_block_bytes_ != kBlockBytes || r.op != ublk::BlockOp::kWrite || !WholeBlocksInside(r)) {
      results[i] = Serve(r, bufs[i]);  // its own checks, locks and errors
      continue;
    }
    ops.push_back({object_, r.offset_bytes / kBlockBytes, uint32_t(r.length_bytes / kBlockBytes), bufs[i], {}});
    op_of.push_back(i);
    fua = fua || (r.flags & ublk::kBlockFlagFua);
  }
  if (ops.empty()) return;
  (void)pool_->WriteBatch(ops);  // every op's own status below
  Status flushed;
  if (fua) flushed = pool_->Flush();  // one flush makes every FUA write of the batch durable
  for (size_t j = 0; j < ops.size(); j++) {
    const ublk::BlockRequest& r = reqs[op_of[j]];
    if (!ops[j].status.ok()) {
      results[op_of[j]] = Fail("write", r, ops[j].status);
    } else if ((r.flags & ublk::kBlockFlagFua) && !flushed.ok()) {
      results[op_of[j]] = Fail("FUA flush", r, flushed);
    } else {
      results[op_of[j]] = 0;
    }
  }
}

int VolumeTarget::Serve(const ublk::BlockRequest& req, uint8_t* buf) {
  using ublk::BlockOp;
  if (req.op == BlockOp::kFlush) {
    Status st = pool_->Flush();
    return st.ok() ? 0 : Fail("flush", req, st);
  }
  if (req.offset_bytes % logical_block_bytes_ != 0 ||
      req.length_bytes % logical_block_bytes_ != 0 || req.offset_bytes > size_bytes_ ||
      req.length_bytes > size_bytes_ - req.offset_bytes) {
    return -EINVAL;  // the kernel honours our block size and device size; never expected
  }
  if (req.length_bytes == 0) return 0;
  switch (req.op) {
    case BlockOp::kRead: {
      Status st = ReadRange(req.offset_bytes, req.length_bytes, buf);
      return st.ok() ? 0 : Fail("read", req, st);
    }
    case BlockOp::kWrite:
    case BlockOp::kDiscard:
    case BlockOp::kWriteZeroes: {
      // DISCARD and WRITE_ZEROES both leave the range reading as zeros; whole blocks are
      // trimmed (their space goes back to the pool), partial ones patched with zeros.
      const bool write = req.op == BlockOp::kWrite;
      Status st = WriteRange(req.offset_bytes, req.length_bytes, write ? buf : nullptr);
      if (!st.ok()) {
        return Fail(write ? "write" : req.op == BlockOp::kDiscard ? "discard" : "write-zeroes",
                    req, st);
      }
      if (req.flags & ublk::kBlockFlagFua) {
        st = pool_->Flush();
        if (!st.ok()) return Fail("FUA flush", req, st);
      }
      return 0;
    }
    default:
      return -EOPNOTSUPP;
  }
}

}  // namespace astra::blockdev
