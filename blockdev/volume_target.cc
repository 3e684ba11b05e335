#include "blockdev/volume_target.h"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdio>

#include "astra/limits.h"

namespace astra::blockdev {

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

int VolumeTarget::Serve(const ublk::BlockRequest& req, uint8_t* buf) {
  using ublk::BlockOp;
  if (req.op == BlockOp::kFlush) {
    Status st = pool_->Flush();
    return st.ok() ? 0 : Fail("flush", req, st);
  }
  if (req.offset_bytes % kBlockBytes != 0 || req.length_bytes % kBlockBytes != 0 ||
      req.offset_bytes > size_bytes_ || req.length_bytes > size_bytes_ - req.offset_bytes) {
    return -EINVAL;  // the kernel honours our block size and device size; never expected
  }
  const uint64_t first = req.offset_bytes / kBlockBytes;
  const uint64_t count = req.length_bytes / kBlockBytes;
  switch (req.op) {
    case BlockOp::kRead:
      for (uint64_t done = 0; done < count;) {
        const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(count - done, kBlocksPerIoMax));
        Status st = pool_->Read(object_, first + done, n, buf + done * kBlockBytes);
        if (!st.ok()) return Fail("read", req, st);
        done += n;
      }
      return 0;
    case BlockOp::kWrite: {
      for (uint64_t done = 0; done < count;) {
        const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(count - done, kBlocksPerIoMax));
        Status st = pool_->Write(object_, first + done, n, buf + done * kBlockBytes);
        if (!st.ok()) return Fail("write", req, st);
        done += n;
      }
      if (req.flags & ublk::kBlockFlagFua) {
        Status st = pool_->Flush();
        if (!st.ok()) return Fail("FUA flush", req, st);
      }
      return 0;
    }
    case BlockOp::kDiscard:
    case BlockOp::kWriteZeroes: {
      // Both leave the range reading as zeros; trimming also returns the space to the pool.
      if (count == 0) return 0;
      Status st = pool_->Trim(object_, first, count);
      if (!st.ok()) return Fail(req.op == BlockOp::kDiscard ? "discard" : "write-zeroes", req, st);
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
