// MemDevice: a sparse RAM device for unit tests (the role of LevelDB's memenv).
//
// Storage is a map from 4 KiB page index to page; a missing page reads as zeros, a trim erases
// pages, and a full-page write of zeros erases the page too, so a large device costs only what is
// written. Requests are served synchronously inside Submit(), under one mutex: every request is
// atomic with respect to every other. Flush is a no-op (RAM is this device's "stable media").
#include <cassert>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "astra/device.h"
#include "astra/limits.h"

namespace astra {

namespace {

constexpr uint32_t kPageBytes = 4096;

class MemDevice final : public Device {
 public:
  MemDevice(uint64_t size_bytes, std::string name) {
    info_.path = std::move(name);
    info_.backend = "mem";
    info_.size_bytes = size_bytes / kPageBytes * kPageBytes;
    info_.logical_block_bytes = kPageBytes;
    info_.supports_trim = true;
  }

  const DeviceInfo& info() const override { return info_; }

  // Thread safety: callable from any thread; requests complete before Submit() returns.
  void Submit(IoRequest* const* reqs, size_t n) override {
    for (size_t i = 0; i < n; ++i) {
      IoRequest* r = reqs[i];
      assert(r != nullptr && r->waiter != nullptr);
      Status s = CheckRequest(info_, *r);
      if (s.ok()) {
        std::lock_guard<std::mutex> l(mu_);
        Serve(*r);
      }
      r->status = std::move(s);
      r->waiter->Done();  // Last touch of *r: the owner may free it now.
    }
  }

 private:
  // Serves a validated request. Requires mu_ held.
  void Serve(const IoRequest& r) {
    static_assert(kPageBytes == kIoAlignBytes);
    assert(r.offset_bytes % kPageBytes == 0 && r.length_bytes % kPageBytes == 0);
    const uint64_t first = r.offset_bytes / kPageBytes;
    const uint64_t count = r.length_bytes / kPageBytes;
    auto* bytes = static_cast<uint8_t*>(r.buf);
    switch (r.op) {
      case IoOp::kRead:
        for (uint64_t p = 0; p < count; ++p) {
          auto it = pages_.find(first + p);
          uint8_t* dst = bytes + p * kPageBytes;
          if (it == pages_.end()) {
            std::memset(dst, 0, kPageBytes);
          } else {
            std::memcpy(dst, it->second.get(), kPageBytes);
          }
        }
        break;
      case IoOp::kWrite:
        for (uint64_t p = 0; p < count; ++p) {
          const uint8_t* src = bytes + p * kPageBytes;
          if (IsZero(src)) {
            pages_.erase(first + p);
            continue;
          }
          auto& page = pages_[first + p];
          if (!page) page = std::make_unique<uint8_t[]>(kPageBytes);
          std::memcpy(page.get(), src, kPageBytes);
        }
        break;
      case IoOp::kTrim:
        for (uint64_t p = 0; p < count; ++p) pages_.erase(first + p);
        break;
      case IoOp::kFlush:
        break;
    }
  }

  static bool IsZero(const uint8_t* page) {
    static const uint8_t kZeros[kPageBytes] = {};
    return std::memcmp(page, kZeros, kPageBytes) == 0;
  }

  DeviceInfo info_;
  std::mutex mu_;
  std::unordered_map<uint64_t, std::unique_ptr<uint8_t[]>> pages_;  // guarded by mu_
};

}  // namespace

std::unique_ptr<Device> NewMemDevice(uint64_t size_bytes, std::string name) {
  return std::make_unique<MemDevice>(size_bytes, std::move(name));
}

}  // namespace astra
