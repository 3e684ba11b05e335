// RegisteredBufferTable: which io_uring registered buffer (if any) holds an I/O buffer.
//
// io_uring numbers registered buffers by their position in the iovec array given to
// io_uring_register_buffers (liburing io_uring_register_buffers(3)); a READ_FIXED / WRITE_FIXED
// SQE or an IORING_URING_CMD_FIXED command names that index in sqe->buf_index and must lie
// entirely inside the buffer. UringDevice and NvmeDevice keep one table each, mirroring what they
// registered with their ring.
//
// Thread safety: none; the owning device guards it with its own mutex.
#pragma once

#include <sys/uio.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

namespace astra {

class RegisteredBufferTable {
 public:
  // Replaces the table with `bufs`, buffer i getting index i (as the kernel numbers them).
  void Assign(std::span<const iovec> bufs) {
    ranges_.clear();
    ranges_.reserve(bufs.size());
    for (size_t i = 0; i < bufs.size(); ++i) {
      const auto b = reinterpret_cast<uintptr_t>(bufs[i].iov_base);
      ranges_.push_back(Range{b, b + bufs[i].iov_len, static_cast<int>(i)});
    }
    std::sort(ranges_.begin(), ranges_.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
  }
  void Clear() { ranges_.clear(); }
  bool empty() const { return ranges_.empty(); }

  // Index of the registered buffer that contains all of [buf, buf + len) bytes, or -1.
  int Find(const void* buf, uint64_t len) const {
    if (ranges_.empty()) return -1;
    const auto b = reinterpret_cast<uintptr_t>(buf);
    auto it = std::upper_bound(ranges_.begin(), ranges_.end(), b,
                               [](uintptr_t v, const Range& r) { return v < r.begin; });
    if (it == ranges_.begin()) return -1;
    --it;  // starts at or before buf; the whole request must also end inside it
    return (b < it->end && len <= it->end - b) ? it->index : -1;
  }

 private:
  struct Range {
    uintptr_t begin = 0, end = 0;  // [begin, end) of one registered iovec
    int index = 0;
  };
  std::vector<Range> ranges_;  // sorted by begin
};

}  // namespace astra
