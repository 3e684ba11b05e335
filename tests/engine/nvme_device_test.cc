// NvmeDevice (io_uring NVMe passthrough) against a real or emulated NVMe namespace.
//
// Needs /dev/vmh/ng0n1 and /dev/vmh/nvme0n1 (the VM harness's stable names; override with
// ASTRA_NVME_TEST_NG / ASTRA_NVME_TEST_BLOCK): the suite tests/vm/suites/nvme_passthrough.sh runs
// it inside the qemu guest. On a machine without them the device tests report "skipped"; the
// tests of pure logic (status mapping, refusing non-NVMe devices) run anywhere.
// ASTRA_NVME_EXPECT_LBA (512 or 4096) makes the test check the namespace's LBA size.
// THE NAMESPACE'S CONTENTS ARE DESTROYED.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <future>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "astra/device.h"
#include "astra/limits.h"
#include "nvme_device.h"

namespace astra {
namespace {

std::string EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}
std::string NgPath() { return EnvOr("ASTRA_NVME_TEST_NG", "/dev/vmh/ng0n1"); }
std::string BlockPath() { return EnvOr("ASTRA_NVME_TEST_BLOCK", "/dev/vmh/nvme0n1"); }

bool IsCharDevice(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISCHR(st.st_mode);
}

#define REQUIRE_NVME()                                                                 \
  do {                                                                                 \
    if (!IsCharDevice(NgPath())) GTEST_SKIP() << "no NVMe generic device " << NgPath(); \
  } while (0)

// Sets ASTRA_FORCE_BLOCK_PATH for one scope.
class ForceBlockPath {
 public:
  ForceBlockPath() { ::setenv("ASTRA_FORCE_BLOCK_PATH", "1", 1); }
  ~ForceBlockPath() { ::unsetenv("ASTRA_FORCE_BLOCK_PATH"); }
};

void Fill(uint8_t* p, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t v = rng();
    std::memcpy(p + i, &v, std::min<size_t>(8, n - i));
  }
}

std::unique_ptr<Device> MustOpen(const std::string& path) {
  auto d = OpenDevice(path);
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return d.ok() ? std::move(d.value()) : nullptr;
}

TEST(NvmeStatus, MapsDnrAndMediaErrors) {
  // LBA out of range with DNR: not retryable, no data loss.
  Status s = NvmeDevice::StatusFromNvme(0x4080, "read x at offset 0");
  EXPECT_TRUE(s.IsIOError());
  EXPECT_FALSE(s.retryable());
  EXPECT_FALSE(s.data_loss());
  EXPECT_NE(s.message().find("LBA out of range"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("do not retry"), std::string::npos) << s.message();
  // Unrecovered read error without DNR: retryable, and data is lost if it persists.
  s = NvmeDevice::StatusFromNvme(0x0281, "read x");
  EXPECT_TRUE(s.retryable());
  EXPECT_TRUE(s.data_loss());
  EXPECT_NE(s.message().find("unrecovered read error"), std::string::npos) << s.message();
}

TEST(NvmeOpen, RefusesNonNvmeCharDevice) {
  auto d = NvmeDevice::Open("/dev/null");
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(d.status().IsInvalidArgument()) << d.status().ToString();
  EXPECT_NE(d.status().message().find("/dev/null"), std::string::npos);
  auto o = OpenDevice("/dev/null");
  ASSERT_FALSE(o.ok());
  EXPECT_TRUE(o.status().IsInvalidArgument()) << o.status().ToString();
  EXPECT_NE(o.status().message().find("/dev/null"), std::string::npos);
}

TEST(NvmeOpen, RefusesMissingAndNonCharPaths) {
  auto d = NvmeDevice::Open("/dev/ng-does-not-exist");
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(d.status().IsNotFound()) << d.status().ToString();
  d = NvmeDevice::Open("/proc/self/exe");
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(d.status().IsInvalidArgument()) << d.status().ToString();
}

TEST(NvmeDevice, GeometryMatchesBlockDevice) {
  REQUIRE_NVME();
  uint64_t block_size = 0;
  int sector = 0;
  {
    const int fd = ::open(BlockPath().c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << BlockPath();
    ASSERT_EQ(::ioctl(fd, BLKGETSIZE64, &block_size), 0);
    ASSERT_EQ(::ioctl(fd, BLKSSZGET, &sector), 0);
    ::close(fd);
  }
  auto d = NvmeDevice::Open(NgPath());
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  const DeviceInfo& info = (*d)->info();
  EXPECT_EQ(info.backend, "nvme-passthrough");
  EXPECT_EQ(info.path, NgPath());
  EXPECT_EQ(info.logical_block_bytes, static_cast<uint32_t>(sector));
  EXPECT_EQ(info.size_bytes, block_size / kIoAlignBytes * kIoAlignBytes);
  EXPECT_GT((*d)->nsid(), 0u);
  EXPECT_GE((*d)->max_transfer_bytes(), kIoAlignBytes);
  EXPECT_EQ((*d)->max_transfer_bytes() % info.logical_block_bytes, 0u);
  const std::string expect = EnvOr("ASTRA_NVME_EXPECT_LBA", "");
  if (!expect.empty()) {
    EXPECT_EQ(info.logical_block_bytes, std::stoul(expect));
  }
  std::printf("%s: nsid %u, %llu bytes, LBA %u, max transfer %u, trim %d\n", NgPath().c_str(),
              (*d)->nsid(), static_cast<unsigned long long>(info.size_bytes),
              info.logical_block_bytes, (*d)->max_transfer_bytes(), info.supports_trim);
}

TEST(NvmeDevice, OpenDeviceChoosesPassthrough) {
  REQUIRE_NVME();
  {
    auto d = MustOpen(NgPath());
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(d->info().backend, "nvme-passthrough");
  }
  {
    // The block device's name leads to its generic device; the path reported stays the user's.
    auto d = MustOpen(BlockPath());
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(d->info().backend, "nvme-passthrough");
    EXPECT_EQ(d->info().path, BlockPath());
  }
  {
    ForceBlockPath force;
    auto d = MustOpen(BlockPath());
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(d->info().backend, "uring");
  }
}

TEST(NvmeDevice, ExclusiveWithItselfAndTheBlockPath) {
  REQUIRE_NVME();
  auto d = MustOpen(NgPath());
  ASSERT_NE(d, nullptr);
  auto again = OpenDevice(NgPath());
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Status::Code::kBusy) << again.status().ToString();
  auto via_block = OpenDevice(BlockPath());
  ASSERT_FALSE(via_block.ok());
  EXPECT_EQ(via_block.status().code(), Status::Code::kBusy) << via_block.status().ToString();
  ForceBlockPath force;
  auto block = OpenDevice(BlockPath());
  ASSERT_FALSE(block.ok());
  EXPECT_EQ(block.status().code(), Status::Code::kBusy) << block.status().ToString();
}

TEST(NvmeDevice, ReadWriteFlushVerify) {
  REQUIRE_NVME();
  auto opened = NvmeDevice::Open(NgPath());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  NvmeDevice& d = **opened;
  const uint32_t lb = d.info().logical_block_bytes;
  // One logical block, odd multiples, exactly the max transfer, and 1 MiB (split in commands).
  const std::vector<std::pair<uint64_t, uint32_t>> cases = {
      {0, lb},
      {lb * 7, lb * 3},
      {1u << 20, d.max_transfer_bytes()},
      {3u << 20, d.max_transfer_bytes() + lb},
      {8u << 20, kDeviceIoBytesMax},
      {d.info().size_bytes - kDeviceIoBytesMax, kDeviceIoBytesMax},  // the namespace's end
  };
  uint64_t seed = 1;
  for (const auto& [off, len] : cases) {
    AlignedBuf w = AllocAligned(len), r = AllocAligned(len);
    Fill(w.get(), len, seed++);
    std::memset(r.get(), 0xee, len);
    const uint64_t before = d.commands_issued();
    ASSERT_TRUE(d.Write(off, w.get(), len).ok()) << off << "+" << len;
    EXPECT_EQ(d.commands_issued() - before,
              (len + d.max_transfer_bytes() - 1) / d.max_transfer_bytes());
    ASSERT_TRUE(d.Flush().ok());
    Status s = d.Read(off, r.get(), len);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_EQ(std::memcmp(w.get(), r.get(), len), 0) << "mismatch at " << off << "+" << len;
  }
}

TEST(NvmeDevice, ManyConcurrentRequestsVerify) {
  REQUIRE_NVME();
  auto opened = NvmeDevice::Open(NgPath());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  NvmeDevice& d = **opened;
  // 300 requests (more than the queue depth) of 4..256 KiB at distinct places, in one Submit.
  constexpr int kRequests = 300;
  constexpr uint64_t kStride = 256 * 1024;
  ASSERT_LE(kStride * kRequests + (16u << 20), d.info().size_bytes);
  std::mt19937 rng(42);
  std::vector<IoRequest> reqs(kRequests);
  std::vector<AlignedBuf> wbufs, rbufs;
  std::vector<IoRequest*> ptrs;
  IoWaiter w;
  for (int i = 0; i < kRequests; ++i) {
    const uint32_t len = (1 + rng() % 64) * 4096;
    wbufs.push_back(AllocAligned(len));
    rbufs.push_back(AllocAligned(len));
    Fill(wbufs.back().get(), len, 1000 + i);
    reqs[i].op = IoOp::kWrite;
    reqs[i].offset_bytes = (16u << 20) + kStride * i;
    reqs[i].length_bytes = len;
    reqs[i].buf = wbufs.back().get();
    reqs[i].waiter = &w;
    ptrs.push_back(&reqs[i]);
  }
  w.Add(kRequests);
  d.Submit(ptrs.data(), ptrs.size());
  w.Wait();
  for (auto& r : reqs) ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  for (int i = 0; i < kRequests; ++i) {
    reqs[i].op = IoOp::kRead;
    reqs[i].buf = rbufs[i].get();
  }
  w.Add(kRequests);
  d.Submit(ptrs.data(), ptrs.size());
  w.Wait();
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(reqs[i].status.ok()) << reqs[i].status.ToString();
    ASSERT_EQ(std::memcmp(wbufs[i].get(), rbufs[i].get(), reqs[i].length_bytes), 0) << i;
  }
}

TEST(NvmeDevice, SameBytesThroughTheBlockPath) {
  REQUIRE_NVME();
  constexpr uint64_t kOff = 40u << 20;
  constexpr uint32_t kLen = 512 * 1024;
  AlignedBuf a = AllocAligned(kLen), b = AllocAligned(kLen), r = AllocAligned(kLen);
  Fill(a.get(), kLen, 77);
  Fill(b.get(), kLen, 78);
  {
    auto d = MustOpen(NgPath());
    ASSERT_NE(d, nullptr);
    ASSERT_TRUE(d->Write(kOff, a.get(), kLen).ok());
    ASSERT_TRUE(d->Flush().ok());
  }
  {
    ForceBlockPath force;
    auto d = MustOpen(BlockPath());
    ASSERT_NE(d, nullptr);
    ASSERT_EQ(d->info().backend, "uring");
    ASSERT_TRUE(d->Read(kOff, r.get(), kLen).ok());
    ASSERT_EQ(std::memcmp(a.get(), r.get(), kLen), 0) << "passthrough write, block read";
    ASSERT_TRUE(d->Write(kOff, b.get(), kLen).ok());
    ASSERT_TRUE(d->Flush().ok());
  }
  auto d = MustOpen(NgPath());
  ASSERT_NE(d, nullptr);
  ASSERT_TRUE(d->Read(kOff, r.get(), kLen).ok());
  ASSERT_EQ(std::memcmp(b.get(), r.get(), kLen), 0) << "block write, passthrough read";
}

TEST(NvmeDevice, TrimReadsBackZeros) {
  REQUIRE_NVME();
  auto opened = NvmeDevice::Open(NgPath());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  NvmeDevice& d = **opened;
  ASSERT_TRUE(d.info().supports_trim) << "the controller does not report Dataset Management";
  constexpr uint64_t kOff = 64u << 20;
  constexpr uint32_t kLen = 1u << 20;
  AlignedBuf w = AllocAligned(kLen), r = AllocAligned(kLen), zero = AllocAligned(kLen);
  Fill(w.get(), kLen, 9);
  std::memset(zero.get(), 0, kLen);
  ASSERT_TRUE(d.Write(kOff, w.get(), kLen).ok());
  ASSERT_TRUE(d.Flush().ok());
  // Trim the middle half; the quarters on both sides must survive.
  Status s = d.Trim(kOff + kLen / 4, kLen / 2);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(d.Read(kOff, r.get(), kLen).ok());
  EXPECT_EQ(std::memcmp(r.get(), w.get(), kLen / 4), 0) << "data before the trimmed range";
  EXPECT_EQ(std::memcmp(r.get() + kLen / 4, zero.get(), kLen / 2), 0)
      << "trimmed range does not read back as zeros";
  EXPECT_EQ(std::memcmp(r.get() + 3 * kLen / 4, w.get() + 3 * kLen / 4, kLen / 4), 0)
      << "data after the trimmed range";
  // One logical block at the very end.
  const uint32_t lb = d.info().logical_block_bytes;
  ASSERT_TRUE(d.Trim(d.info().size_bytes - lb, lb).ok());
}

TEST(NvmeDevice, CommandBeyondTheNamespaceFailsWithoutHanging) {
  REQUIRE_NVME();
  uint64_t real = 0;
  {
    auto probe = NvmeDevice::Open(NgPath());
    ASSERT_TRUE(probe.ok()) << probe.status().ToString();
    real = (*probe)->info().size_bytes;
  }
  NvmeOpenOptions opts;
  opts.test_size_override_bytes = real + (8u << 20);
  auto opened = NvmeDevice::Open(NgPath(), opts);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  NvmeDevice& d = **opened;
  AlignedBuf buf = AllocAligned(1u << 20);
  std::memset(buf.get(), 0x5a, 1u << 20);
  // Each call must return (an NVMe error), not hang: bounded by a watchdog.
  auto bounded = [&](auto fn) {
    auto f = std::async(std::launch::async, fn);
    if (f.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
      std::fprintf(stderr, "FATAL: NVMe command beyond the namespace hangs\n");
      std::_Exit(1);
    }
    return f.get();
  };
  Status s = bounded([&] { return d.Read(real, buf.get(), 4096); });
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_FALSE(s.retryable()) << s.ToString();
  std::printf("read beyond the end: %s\n", s.ToString().c_str());
  // Straddling the end, split into several commands: the failing ones decide the status.
  s = bounded([&] { return d.Write(real - (512u << 10), buf.get(), 1u << 20); });
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  std::printf("write across the end: %s\n", s.ToString().c_str());
  // The device is still usable afterwards.
  s = bounded([&] { return d.Read(0, buf.get(), 4096); });
  EXPECT_TRUE(s.ok()) << s.ToString();
}

}  // namespace
}  // namespace astra
