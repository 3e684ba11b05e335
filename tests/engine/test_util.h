// Shared helpers for engine tests: pools on MemDevice / FaultyDevice, seeded data patterns.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "astra/device.h"
#include "astra/faulty_device.h"
#include "astra/pool.h"

namespace astra::test {

// The seed for randomized tests: ASTRA_SEED from the environment, else `fallback`. Printed.
inline uint64_t TestSeed(uint64_t fallback) {
  const char* e = std::getenv("ASTRA_SEED");
  uint64_t s = e ? std::strtoull(e, nullptr, 0) : fallback;
  std::printf("seed: %llu (rerun with ASTRA_SEED=%llu)\n", (unsigned long long)s, (unsigned long long)s);
  return s;
}

// A 4 KiB block whose bytes derive from (tag, compressible); tag 0 is the zero block.
inline void FillBlock(uint8_t* b, uint64_t tag, bool compressible = false) {
  if (tag == 0) {
    std::memset(b, 0, 4096);
    return;
  }
  std::mt19937_64 r(tag * 0x9E3779B97F4A7C15ull + 17);
  for (int i = 0; i < 4096; i += 8) {
    uint64_t v = compressible ? (tag + uint64_t(i / 512)) : r();
    std::memcpy(b + i, &v, 8);
  }
}

// Owns shared MemDevices (the "disks") so a pool can be dropped and reopened on the same bytes.
struct MemPool {
  std::vector<std::shared_ptr<Device>> mem;
  std::vector<std::shared_ptr<FaultyDevice>> faulty;
  explicit MemPool(uint32_t n, uint64_t size = 64ull << 20) {
    for (uint32_t i = 0; i < n; i++) {
      mem.push_back(std::shared_ptr<Device>(NewMemDevice(size, "mem:" + std::to_string(i))));
      faulty.push_back(std::make_shared<FaultyDevice>(mem.back()));
    }
  }
  // Devices for Pool::Format/Open: thin non-owning wrappers around the FaultyDevices.
  std::vector<std::unique_ptr<Device>> Devices(std::vector<uint32_t> skip = {}) const;
};

class SharedDevice final : public Device {
 public:
  explicit SharedDevice(std::shared_ptr<Device> d) : d_(std::move(d)) {}
  const DeviceInfo& info() const override { return d_->info(); }
  void Submit(IoRequest* const* reqs, size_t n) override { d_->Submit(reqs, n); }

 private:
  std::shared_ptr<Device> d_;
};

inline std::vector<std::unique_ptr<Device>> MemPool::Devices(std::vector<uint32_t> skip) const {
  std::vector<std::unique_ptr<Device>> v;
  for (uint32_t i = 0; i < faulty.size(); i++) {
    bool s = false;
    for (auto x : skip) s |= x == i;
    v.push_back(s ? nullptr : std::make_unique<SharedDevice>(faulty[i]));
  }
  return v;
}

inline FormatOptions SmallFormat(uint32_t k = 4, uint32_t m = 2) {
  FormatOptions o;
  o.data_shards = k;
  o.parity_shards = m;
  o.segment_column_bytes = 256 * 1024;
  o.journal_bytes = 2u << 20;
  return o;
}

inline OpenOptions TestOpen() {
  OpenOptions o;
  o.background_checkpoints = false;
  return o;
}

}  // namespace astra::test
