// NvmeDevice (io_uring NVMe passthrough) against a real or emulated NVMe namespace.
//
// Needs /dev/vmh/ng0n1 and /dev/vmh/nvme0n1 (the VM harness's stable names; override with
// ASTRA_NVME_TEST_NG / ASTRA_NVME_TEST_BLOCK): the suite tests/vm/suites/nvme_passthrough.sh runs
// it inside the qemu guest. On a machine without them the device tests report "skipped"; the
// tests of pure logic (status mapping, refusing non-NVMe devices) run anywhere.
// ASTRA_NVME_EXPECT_LBA (512 or 4096) makes the test check the namespace's LBA size.
// ASTRA_NVME_IOPOLL=1 makes every device polled (IORING_SETUP_IOPOLL) when the namespace has poll
// queues; ASTRA_NVME_EXPECT_IOPOLL=1 makes the test fail if a device is not (suite nvme_iopoll).
// THE NAMESPACE'S CONTENTS ARE DESTROYED.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <cstring>
#include <future>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "astra/device.h"
#include "astra/limits.h"
#include "astra/pool.h"
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

// Writes `len` bytes from `src` at `off`, flushes, reads them back into `dst` and compares;
// returns the (fixed, plain) command counts the write and the read added.
void RoundTrip(NvmeDevice& d, uint64_t off, uint8_t* src, uint8_t* dst, uint32_t len,
               uint64_t seed, uint64_t* fixed, uint64_t* plain) {
  Fill(src, len, seed);
  std::memset(dst, 0xee, len);
  const NvmeDevice::BufferStats before = d.buffer_stats();
  Status s = d.Write(off, src, len);
  ASSERT_TRUE(s.ok()) << off << "+" << len << ": " << s.ToString();
  ASSERT_TRUE(d.Flush().ok());
  s = d.Read(off, dst, len);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(std::memcmp(src, dst, len), 0) << "mismatch at " << off << "+" << len;
  const NvmeDevice::BufferStats after = d.buffer_stats();
  *fixed = after.fixed_commands - before.fixed_commands;
  *plain = after.plain_commands - before.plain_commands;
}

uint64_t CommandsFor(const NvmeDevice& d, uint32_t len) {
  return (len + d.max_transfer_bytes() - 1) / d.max_transfer_bytes();
}

// 1 when the namespace's block queue has poll queues (/sys/block/nvmeXnY/queue/io_poll), 0 when
// not, -1 when unknown.
int IoPollOfNamespace() {
  char target[256];
  const ssize_t n = ::readlink(BlockPath().c_str(), target, sizeof(target) - 1);
  std::string name = BlockPath();
  if (n > 0) name.assign(target, static_cast<size_t>(n));
  name = name.substr(name.rfind('/') + 1);
  std::FILE* f = std::fopen(("/sys/block/" + name + "/queue/io_poll").c_str(), "r");
  if (f == nullptr) return -1;
  int v = -1;
  if (std::fscanf(f, "%d", &v) != 1) v = -1;
  std::fclose(f);
  return v;
}

double ProcessCpuSeconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

// Polled completions are used exactly when asked for and the namespace has poll queues; I/O
// works either way, and an idle polled device does not spin.
TEST(NvmeDevice, PolledOnlyWithPollQueues) {
  REQUIRE_NVME();
  const int io_poll = IoPollOfNamespace();
  ASSERT_GE(io_poll, 0) << "cannot read io_poll of " << BlockPath();
  if (EnvOr("ASTRA_NVME_EXPECT_IOPOLL", "") == "1") {
    ASSERT_EQ(io_poll, 1) << "the VM was to boot with nvme.poll_queues";
  }
  {
    // The environment's choice (kFromEnv): what the rest of this binary runs with.
    auto d = NvmeDevice::Open(NgPath());
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    std::printf("%s: io_poll %d, completions %s\n", NgPath().c_str(), io_poll,
                (*d)->polled() ? "polled (IORING_SETUP_IOPOLL)" : "by interrupt");
    if (EnvOr("ASTRA_NVME_EXPECT_IOPOLL", "") == "1") {
      EXPECT_TRUE((*d)->polled());
    }
  }
  {
    NvmeOpenOptions off;
    off.poll = NvmeOpenOptions::Poll::kOff;
    auto d = NvmeDevice::Open(NgPath(), off);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_FALSE((*d)->polled());
  }
  NvmeOpenOptions on;
  on.poll = NvmeOpenOptions::Poll::kOn;
  auto opened = NvmeDevice::Open(NgPath(), on);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  NvmeDevice& d = **opened;
  EXPECT_EQ(d.polled(), io_poll == 1);
  // Reads, writes (split and not), flush and trim, 32 at once, bytes checked.
  constexpr int kReqs = 32;
  constexpr uint32_t kLen = 192 * 1024;
  std::vector<AlignedBuf> wb, rb;
  IoRequest reqs[kReqs];
  IoRequest* ptrs[kReqs];
  IoWaiter w;
  for (int i = 0; i < kReqs; ++i) {
    wb.push_back(AllocAligned(kLen));
    rb.push_back(AllocAligned(kLen));
    Fill(wb.back().get(), kLen, 300 + i);
    reqs[i] = IoRequest{IoOp::kWrite, (20u << 20) + uint64_t(i) * kLen, kLen, wb.back().get(), {},
                        &w};
    ptrs[i] = &reqs[i];
  }
  w.Add(kReqs);
  d.Submit(ptrs, kReqs);
  w.Wait();
  for (auto& r : reqs) ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  ASSERT_TRUE(d.Flush().ok());
  for (int i = 0; i < kReqs; ++i) {
    reqs[i].op = IoOp::kRead;
    reqs[i].buf = rb[i].get();
  }
  w.Add(kReqs);
  d.Submit(ptrs, kReqs);
  w.Wait();
  for (int i = 0; i < kReqs; ++i) {
    ASSERT_TRUE(reqs[i].status.ok()) << reqs[i].status.ToString();
    ASSERT_EQ(std::memcmp(wb[i].get(), rb[i].get(), kLen), 0) << "request " << i;
  }
  ASSERT_TRUE(d.Trim(20u << 20, kLen).ok());
  ASSERT_TRUE(d.Read(20u << 20, rb[0].get(), kLen).ok());
  AlignedBuf zero = AllocAligned(kLen);
  std::memset(zero.get(), 0, kLen);
  EXPECT_EQ(std::memcmp(rb[0].get(), zero.get(), kLen), 0) << "trimmed range not zeros";
  // Idle: the polled reaper must sleep, not spin (a spinning one burns ~1 CPU second here).
  const double cpu0 = ProcessCpuSeconds();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const double idle_cpu = ProcessCpuSeconds() - cpu0;
  std::printf("idle for 1 s with the device open: %.3f CPU seconds\n", idle_cpu);
  EXPECT_LT(idle_cpu, 0.25);
}

TEST(NvmeDevice, FixedBuffersReadBackAndCount) {
  REQUIRE_NVME();
  auto opened = NvmeDevice::Open(NgPath());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  NvmeDevice& d = **opened;
  // Debian's 6.12 kernel takes IORING_URING_CMD_FIXED (since 6.1): a failed probe is a bug here.
  ASSERT_TRUE(d.fixed_buffers_supported());
  const uint32_t lb = d.info().logical_block_bytes;
  // 4 MiB of memory; the first 2 MiB are registered (two iovecs of 1 MiB each, so a request may
  // also straddle two registered buffers, which must go plain), the rest is not.
  constexpr uint32_t kMiB = 1u << 20;
  AlignedBuf mem = AllocAligned(4 * kMiB);
  uint8_t* reg = mem.get();
  const iovec iov[2] = {{reg, kMiB}, {reg + kMiB, kMiB}};
  Status s = d.RegisterBuffers(iov);
  ASSERT_TRUE(s.ok()) << s.ToString();
  AlignedBuf plain_src = AllocAligned(kDeviceIoBytesMax);
  AlignedBuf plain_dst = AllocAligned(kDeviceIoBytesMax);
  uint64_t fixed = 0, plain = 0;

  // One LBA, inside the first buffer; read back into the second one. Both fixed.
  RoundTrip(d, 5 * lb, reg, reg + kMiB, lb, 11, &fixed, &plain);
  EXPECT_EQ(fixed, 2u);
  EXPECT_EQ(plain, 0u);
  // 64 KiB at an odd LBA offset, from the middle of a buffer.
  RoundTrip(d, (2u << 20) + 3 * lb, reg + 256 * 1024, reg + kMiB + 4096, 64 * 1024, 12, &fixed,
            &plain);
  EXPECT_EQ(fixed, 2u);
  EXPECT_EQ(plain, 0u);
  // A whole 1 MiB buffer: split into max-transfer commands, each issued fixed.
  const uint64_t split = CommandsFor(d, kMiB);
  RoundTrip(d, 4u << 20, reg, reg + kMiB, kMiB, 13, &fixed, &plain);
  EXPECT_EQ(fixed, 2 * split);
  EXPECT_EQ(plain, 0u);
  // A max-transfer + 1 LBA request (two commands of unequal length).
  const uint32_t odd = d.max_transfer_bytes() + lb;
  ASSERT_LE(odd, kMiB);
  RoundTrip(d, 6u << 20, reg, reg + kMiB, odd, 14, &fixed, &plain);
  EXPECT_EQ(fixed, 2 * CommandsFor(d, odd));
  EXPECT_EQ(plain, 0u);

  // Buffers outside the registered ranges go plain; so does one that straddles two registered
  // buffers or the end of the registration.
  RoundTrip(d, 8u << 20, plain_src.get(), plain_dst.get(), 128 * 1024, 15, &fixed, &plain);
  EXPECT_EQ(fixed, 0u);
  EXPECT_EQ(plain, 2 * CommandsFor(d, 128 * 1024));
  RoundTrip(d, 9u << 20, reg + kMiB - 64 * 1024, plain_dst.get(), 128 * 1024, 16, &fixed,
            &plain);
  EXPECT_EQ(fixed, 0u);
  EXPECT_EQ(plain, 2 * CommandsFor(d, 128 * 1024));
  RoundTrip(d, 10u << 20, reg + 2 * kMiB - 64 * 1024, plain_dst.get(), 128 * 1024, 17, &fixed,
            &plain);
  EXPECT_EQ(fixed, 0u);
  // Mixed in one Submit: fixed writes and a plain one, many in flight; all bytes verified.
  {
    constexpr int kReqs = 16;
    constexpr uint32_t kLen = 64 * 1024;
    IoRequest reqs[kReqs + 1];
    IoRequest* ptrs[kReqs + 1];
    IoWaiter w;
    for (int i = 0; i < kReqs; ++i) {
      Fill(reg + i * kLen, kLen, 100 + i);
      reqs[i] = IoRequest{IoOp::kWrite, (12u << 20) + uint64_t(i) * kLen, kLen, reg + i * kLen,
                          {}, &w};
      ptrs[i] = &reqs[i];
    }
    Fill(plain_src.get(), kLen, 99);
    reqs[kReqs] = IoRequest{IoOp::kWrite, 11u << 20, kLen, plain_src.get(), {}, &w};
    ptrs[kReqs] = &reqs[kReqs];
    const NvmeDevice::BufferStats before = d.buffer_stats();
    w.Add(kReqs + 1);
    d.Submit(ptrs, kReqs + 1);
    w.Wait();
    for (auto& r : reqs) ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    const NvmeDevice::BufferStats after = d.buffer_stats();
    EXPECT_EQ(after.fixed_commands - before.fixed_commands, kReqs * CommandsFor(d, kLen));
    EXPECT_EQ(after.plain_commands - before.plain_commands, CommandsFor(d, kLen));
    AlignedBuf check = AllocAligned(kReqs * kLen), want = AllocAligned(kLen);
    ASSERT_TRUE(d.Read(12u << 20, check.get(), kReqs * kLen).ok());
    for (int i = 0; i < kReqs; ++i) {
      Fill(want.get(), kLen, 100 + i);
      ASSERT_EQ(std::memcmp(check.get() + i * kLen, want.get(), kLen), 0) << "request " << i;
    }
    ASSERT_TRUE(d.Read(11u << 20, check.get(), kLen).ok());
    Fill(want.get(), kLen, 99);
    ASSERT_EQ(std::memcmp(check.get(), want.get(), kLen), 0) << "the plain request";
  }

  // Dropping the registration: the same memory now goes plain.
  ASSERT_TRUE(d.RegisterBuffers({}).ok());
  RoundTrip(d, 13u << 20, reg, reg + kMiB, 64 * 1024, 18, &fixed, &plain);
  EXPECT_EQ(fixed, 0u);
  EXPECT_EQ(plain, 2 * CommandsFor(d, 64 * 1024));
  // Bad input is refused by name.
  const iovec bad[1] = {{nullptr, 4096}};
  s = d.RegisterBuffers(bad);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.message().find(d.info().path), std::string::npos) << s.message();
}

// Proof that fixed commands really use the registered pages (not just that they were counted):
// register an anonymous mapping at X, move its pages to Y with mremap (the pinned pages go along)
// and put fresh zero pages at X. A fixed read "into X" must then land in the registered pages,
// now visible at Y, and leave X untouched; a fixed write "from X" must send Y's bytes. Once the
// registration is dropped, the same calls use X's own pages.
TEST(NvmeDevice, FixedCommandsUseTheRegisteredPages) {
  REQUIRE_NVME();
  auto opened = NvmeDevice::Open(NgPath());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  NvmeDevice& d = **opened;
  ASSERT_TRUE(d.fixed_buffers_supported());
  constexpr size_t kLen = 256 * 1024;
  constexpr uint64_t kOff = 17u << 20;
  auto* x = static_cast<uint8_t*>(
      ::mmap(nullptr, kLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  auto* y = static_cast<uint8_t*>(
      ::mmap(nullptr, kLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(x, MAP_FAILED);
  ASSERT_NE(y, MAP_FAILED);
  std::memset(x, 0, kLen);
  const iovec iov[1] = {{x, kLen}};
  Status s = d.RegisterBuffers(iov);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(::mremap(x, kLen, kLen, MREMAP_MAYMOVE | MREMAP_FIXED, y), static_cast<void*>(y));
  ASSERT_EQ(::mmap(x, kLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
                   0),
            static_cast<void*>(x));
  std::memset(x, 0, kLen);
  AlignedBuf want = AllocAligned(kLen), zero = AllocAligned(kLen), got = AllocAligned(kLen);
  std::memset(zero.get(), 0, kLen);
  Fill(want.get(), kLen, 21);
  ASSERT_TRUE(d.Write(kOff, want.get(), kLen).ok());  // plain buffer

  NvmeDevice::BufferStats before = d.buffer_stats();
  ASSERT_TRUE(d.Read(kOff, x, kLen).ok());
  EXPECT_EQ(d.buffer_stats().fixed_commands - before.fixed_commands, CommandsFor(d, kLen));
  EXPECT_EQ(std::memcmp(y, want.get(), kLen), 0) << "fixed read did not fill the registered pages";
  EXPECT_EQ(std::memcmp(x, zero.get(), kLen), 0) << "fixed read wrote to the address's new pages";

  Fill(y, kLen, 22);  // the registered pages
  Fill(x, kLen, 23);  // what the address shows now
  ASSERT_TRUE(d.Write(kOff, x, kLen).ok());
  ASSERT_TRUE(d.Read(kOff, got.get(), kLen).ok());
  Fill(want.get(), kLen, 22);
  EXPECT_EQ(std::memcmp(got.get(), want.get(), kLen), 0) << "fixed write did not send the "
                                                            "registered pages";

  ASSERT_TRUE(d.RegisterBuffers({}).ok());
  std::memset(x, 0, kLen);
  before = d.buffer_stats();
  ASSERT_TRUE(d.Read(kOff, x, kLen).ok());
  EXPECT_EQ(d.buffer_stats().plain_commands - before.plain_commands, CommandsFor(d, kLen));
  EXPECT_EQ(std::memcmp(x, want.get(), kLen), 0) << "plain read after unregistering";
  ::munmap(x, kLen);
  ::munmap(y, kLen);
}

// Without fixed buffers (a kernel refusing IORING_URING_CMD_FIXED, or ASTRA_NVME_FIXED_BUFFERS=0 as
// here) registration is refused by name and every command goes plain, with the right bytes.
TEST(NvmeDevice, PlainBuffersWhenFixedAreUnavailable) {
  REQUIRE_NVME();
  ::setenv("ASTRA_NVME_FIXED_BUFFERS", "0", 1);
  auto opened = NvmeDevice::Open(NgPath());
  ::unsetenv("ASTRA_NVME_FIXED_BUFFERS");
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  NvmeDevice& d = **opened;
  EXPECT_FALSE(d.fixed_buffers_supported());
  AlignedBuf mem = AllocAligned(2u << 20);
  const iovec iov[1] = {{mem.get(), 1u << 20}};
  Status s = d.RegisterBuffers(iov);
  EXPECT_EQ(s.code(), Status::Code::kNotSupported) << s.ToString();
  EXPECT_NE(s.message().find("ASTRA_NVME_FIXED_BUFFERS"), std::string::npos) << s.message();
  uint64_t fixed = 0, plain = 0;
  RoundTrip(d, 15u << 20, mem.get(), mem.get() + (1u << 20), 1u << 20, 19, &fixed, &plain);
  EXPECT_EQ(fixed, 0u);
  EXPECT_EQ(plain, 2 * CommandsFor(d, 1u << 20));
}

// The engine registers its column write buffers with every member at pool open (pool_impl.cc):
// the data a pool writes to an NVMe member must go out as fixed commands and read back intact.
// One NvmeDevice member (pretending to be 128 MiB, so the pool stays small) and five MemDevices.
TEST(NvmeDevice, PoolWritesThroughFixedBuffers) {
  REQUIRE_NVME();
  constexpr uint64_t kMemberBytes = 128u << 20;
  NvmeOpenOptions opts;
  opts.test_size_override_bytes = kMemberBytes;
  auto opened = NvmeDevice::Open(NgPath(), opts);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  NvmeDevice* nvme = opened->get();
  std::vector<std::unique_ptr<Device>> devs;
  devs.push_back(std::move(opened).value());
  for (int i = 1; i < 6; ++i) {
    devs.push_back(NewMemDevice(kMemberBytes, "mem:" + std::to_string(i)));
  }
  FormatOptions fo;
  fo.compression = Compression::kNone;
  fo.dedup = false;
  fo.force = true;
  Status s = Pool::Format(devs, fo);
  ASSERT_TRUE(s.ok()) << s.ToString();
  OpenOptions oo;
  oo.background_checkpoints = false;
  auto pool = Pool::Open(std::move(devs), oo);
  ASSERT_TRUE(pool.ok()) << pool.status().ToString();
  const NvmeDevice::BufferStats before = nvme->buffer_stats();
  // 8 MiB of incompressible data in 128 KiB writes; Flush makes the pool write its stripes.
  constexpr uint32_t kBlocks = 32;
  constexpr uint32_t kWrites = 64;
  std::vector<uint8_t> w(kBlocks * kBlockBytes), r(kBlocks * kBlockBytes);
  for (uint32_t i = 0; i < kWrites; ++i) {
    Fill(w.data(), w.size(), 500 + i);
    s = (*pool)->Write(7, uint64_t(i) * kBlocks, kBlocks, w.data());
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  s = (*pool)->Flush();
  ASSERT_TRUE(s.ok()) << s.ToString();
  const NvmeDevice::BufferStats after = nvme->buffer_stats();
  const uint64_t fixed = after.fixed_commands - before.fixed_commands;
  const uint64_t plain = after.plain_commands - before.plain_commands;
  std::printf("pool on %s + 5 RAM members: %llu fixed, %llu plain commands to the NVMe member\n",
              NgPath().c_str(), static_cast<unsigned long long>(fixed),
              static_cast<unsigned long long>(plain));
  // With 4+2 on six members each member holds one column of every stripe: 8 MiB of data is
  // 2 MiB on this member, written from the registered column buffers in batches of at most
  // 256 KiB, so at least 8 fixed commands. (Journal and superblock writes use short-lived
  // buffers and go plain.)
  EXPECT_GE(fixed, 8u);
  for (uint32_t i = 0; i < kWrites; ++i) {
    Fill(w.data(), w.size(), 500 + i);
    s = (*pool)->Read(7, uint64_t(i) * kBlocks, kBlocks, r.data());
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_EQ(std::memcmp(w.data(), r.data(), w.size()), 0) << "pool read back, write " << i;
  }
  ASSERT_TRUE((*pool)->Close().ok());
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
