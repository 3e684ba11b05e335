// Shared helpers for engine tests: pools on MemDevice / FaultyDevice, seeded data patterns.
//
// Real members (ASTRA_TEST_MEMBERS): tests that opt in (MemPool(..., Disks::kFromEnv),
// NewTestDisk(..., Disks::kFromEnv); today crash_sim_test and device_loss_test) put their disks
// on real devices instead of MemDevice when the environment names them:
//
//   ASTRA_TEST_MEMBERS=/dev/vmh/ng0n1,/dev/vmh/ng1n1,/dev/vmh/ng2n1,...   (comma-separated)
//
// Each path is opened once per process with astra::OpenDevice (so /dev/ngXnY gets an
// NvmeDevice, /dev/nvmeXnY passthrough or the block path, files and block devices a
// UringDevice) and kept open (its exclusive lock held) until the process exits. Disk i of a pool
// is a region (RegionDevice) of member i: the first free range of the disk's size, 1 MiB
// aligned, so a pool's geometry is the same as on MemDevice and a replacement disk can live on
// the same member next to the pool's. A region is trimmed when handed out, so it starts as a
// fresh MemDevice does (all zeros on drives that zero deallocated blocks, such as qemu's NVMe
// with discard=unmap; on others it holds old bytes, which a pool must cope with anyway). A
// member too small, fewer members than disks, or a path that does not open end the process with
// a message naming the problem: a test never silently falls back to RAM.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <utility>
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

// Where a test's disks live: always RAM, or the devices named by ASTRA_TEST_MEMBERS when set.
enum class Disks { kMem, kFromEnv };

// Ends the test process with a message about ASTRA_TEST_MEMBERS (a misconfigured run must not
// pass on RAM disks or on half its members).
[[noreturn]] inline void MembersFatal(const std::string& msg) {
  std::fprintf(stderr, "ASTRA_TEST_MEMBERS: %s\n", msg.c_str());
  std::fflush(stderr);
  std::exit(2);
}

// A window [offset, offset + size) of another device, seen as a device of its own: offsets are
// shifted, requests beyond the window fail with kInvalidArgument like on any device. Submit()
// waits for the inner device (it is meant to sit under FaultyDevice, which serves requests
// synchronously anyway). `on_close` runs at destruction (returns the range to its allocator).
// Thread safety: as the inner device.
class RegionDevice final : public Device {
 public:
  RegionDevice(std::shared_ptr<Device> inner, uint64_t offset_bytes, uint64_t size_bytes,
               std::function<void()> on_close)
      : inner_(std::move(inner)), offset_(offset_bytes), on_close_(std::move(on_close)) {
    info_ = inner_->info();
    info_.path += "@" + std::to_string(offset_bytes >> 20) + "MiB";
    info_.size_bytes = size_bytes;
  }
  ~RegionDevice() override {
    if (on_close_) on_close_();
  }
  const DeviceInfo& info() const override { return info_; }
  void Submit(IoRequest* const* reqs, size_t n) override {
    std::vector<IoRequest> in(n);
    std::vector<IoRequest*> ptrs;
    IoWaiter w;
    for (size_t i = 0; i < n; i++) {
      reqs[i]->status = CheckRequest(info_, *reqs[i]);
      if (!reqs[i]->status.ok()) continue;
      in[i] = *reqs[i];
      if (in[i].op != IoOp::kFlush) in[i].offset_bytes += offset_;
      in[i].waiter = &w;
      ptrs.push_back(&in[i]);
    }
    w.Add(static_cast<uint32_t>(ptrs.size()));
    if (!ptrs.empty()) inner_->Submit(ptrs.data(), ptrs.size());
    w.Wait();
    for (size_t i = 0; i < n; i++) {
      if (in[i].waiter == &w) reqs[i]->status = in[i].status;
    }
    for (size_t i = 0; i < n; i++) reqs[i]->waiter->Done();  // last touch of reqs[i]
  }

 private:
  std::shared_ptr<Device> inner_;
  uint64_t offset_;
  DeviceInfo info_;
  std::function<void()> on_close_;
};

// The devices named by ASTRA_TEST_MEMBERS, opened on first use, and the regions handed out on
// each. One per process. Thread safety: all methods may be called from any thread.
class TestMembers {
 public:
  static TestMembers& Get() {
    static TestMembers m;
    return m;
  }
  // True when ASTRA_TEST_MEMBERS names at least one device.
  bool real() const { return !paths_.empty(); }
  size_t count() const { return paths_.size(); }

  // A trimmed region of `size_bytes` (rounded up to 1 MiB) on member `member`; returned to the
  // free ranges when the device is destroyed. Fatal (MembersFatal) when there is no such member,
  // it does not open, or it has no free range that large.
  std::shared_ptr<Device> Region(uint32_t member, uint64_t size_bytes) {
    constexpr uint64_t kAlign = 1ull << 20;
    const uint64_t size = (size_bytes + kAlign - 1) / kAlign * kAlign;
    std::shared_ptr<Device> dev;
    uint64_t off = 0;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (member >= paths_.size()) {
        MembersFatal("names " + std::to_string(paths_.size()) + " devices; this test needs disk " +
                     std::to_string(member) + " (at least " + std::to_string(member + 1) + ")");
      }
      if (devs_[member] == nullptr) {
        auto opened = OpenDevice(paths_[member]);
        if (!opened.ok()) {
          MembersFatal("cannot open " + paths_[member] + ": " + opened.status().ToString());
        }
        devs_[member] = std::shared_ptr<Device>(std::move(opened).value());
        std::printf("test member %u: %s (%s, %llu MiB, %u-byte blocks)\n", member,
                    paths_[member].c_str(), devs_[member]->info().backend.c_str(),
                    (unsigned long long)(devs_[member]->info().size_bytes >> 20),
                    devs_[member]->info().logical_block_bytes);
      }
      dev = devs_[member];
      // First fit among the ranges in use (kept sorted by offset).
      auto& used = used_[member];
      auto it = used.begin();
      for (; it != used.end() && it->first < off + size; ++it) {
        off = std::max(off, it->first + it->second);
      }
      if (off + size > dev->info().size_bytes) {
        MembersFatal(paths_[member] + " (" + std::to_string(dev->info().size_bytes >> 20) +
                     " MiB) has no free " + std::to_string(size >> 20) + " MiB region (" +
                     std::to_string(used.size()) + " regions in use); use larger devices");
      }
      used.insert(it, {off, size});
    }
    Status s = dev->info().supports_trim ? dev->Trim(off, size) : ZeroFill(*dev, off, size);
    if (!s.ok()) MembersFatal("clearing a region of " + paths_[member] + ": " + s.ToString());
    return std::make_shared<RegionDevice>(dev, off, size,
                                          [this, member, off] { Release(member, off); });
  }

 private:
  TestMembers() {
    const char* e = std::getenv("ASTRA_TEST_MEMBERS");
    if (e == nullptr) return;
    std::stringstream ss(e);
    std::string p;
    while (std::getline(ss, p, ',')) {
      if (!p.empty()) paths_.push_back(p);
    }
    devs_.resize(paths_.size());
    used_.resize(paths_.size());
  }
  void Release(uint32_t member, uint64_t off) {
    std::lock_guard<std::mutex> l(mu_);
    auto& used = used_[member];
    used.erase(std::remove_if(used.begin(), used.end(), [&](auto& r) { return r.first == off; }),
               used.end());
  }
  // For devices without trim: writes zeros, 1 MiB at a time.
  static Status ZeroFill(Device& d, uint64_t off, uint64_t len) {
    constexpr uint32_t kChunk = 1u << 20;
    AlignedBuf z = AllocAligned(kChunk);
    std::memset(z.get(), 0, kChunk);
    for (uint64_t done = 0; done < len; done += kChunk) {
      const auto n = static_cast<uint32_t>(std::min<uint64_t>(kChunk, len - done));
      Status s = d.Write(off + done, z.get(), n);
      if (!s.ok()) return s;
    }
    return d.Flush();
  }

  std::vector<std::string> paths_;
  std::mutex mu_;
  std::vector<std::shared_ptr<Device>> devs_;                      // guarded by mu_
  std::vector<std::vector<std::pair<uint64_t, uint64_t>>> used_;  // (offset, size); by mu_
};

// A blank disk of `size` bytes for slot `member` of a pool: a MemDevice named `name`, or with
// Disks::kFromEnv and ASTRA_TEST_MEMBERS set, a trimmed region of that member.
inline std::shared_ptr<Device> NewTestDisk(uint32_t member, uint64_t size, const std::string& name,
                                           Disks from) {
  if (from == Disks::kFromEnv && TestMembers::Get().real()) {
    return TestMembers::Get().Region(member, size);
  }
  return std::shared_ptr<Device>(NewMemDevice(size, name));
}

// Owns shared disks (MemDevices, or regions of real members with Disks::kFromEnv, see above),
// each wrapped in a FaultyDevice, so a pool can be dropped and reopened on the same bytes.
struct MemPool {
  std::vector<std::shared_ptr<Device>> mem;
  std::vector<std::shared_ptr<FaultyDevice>> faulty;
  explicit MemPool(uint32_t n, uint64_t size = 64ull << 20, Disks from = Disks::kMem) {
    for (uint32_t i = 0; i < n; i++) {
      mem.push_back(NewTestDisk(i, size, "mem:" + std::to_string(i), from));
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
