// Tests for the Device layer: request validation, MemDevice, and UringDevice on files in /tmp.
// Every test that reads verifies the bytes it reads against what it wrote.
#include "astra/device.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "astra/limits.h"
#include "uring_device.h"

namespace astra {
namespace {

constexpr uint64_t kMiB = 1u << 20;

// Deterministic bytes for (seed, position): any misplaced or stale block shows up.
void FillPattern(uint8_t* buf, size_t len, uint64_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < len; i += 8) {
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    const size_t n = std::min<size_t>(8, len - i);
    std::memcpy(buf + i, &x, n);
  }
}

bool MatchesPattern(const uint8_t* buf, size_t len, uint64_t seed) {
  std::vector<uint8_t> want(len);
  FillPattern(want.data(), len, seed);
  return std::memcmp(buf, want.data(), len) == 0;
}

bool AllZero(const uint8_t* buf, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    if (buf[i] != 0) return false;
  }
  return true;
}

// A fresh path in /tmp, removed at the end of the test.
class TempFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    path_ = "/tmp/astra_device_test_" + std::to_string(::getpid()) + "_" +
            std::to_string(counter++) + ".img";
    ::unlink(path_.c_str());
  }
  void TearDown() override { ::unlink(path_.c_str()); }

  std::unique_ptr<Device> MustOpen(uint64_t create_size_bytes) {
    auto r = OpenDevice(path_, create_size_bytes);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return nullptr;
    return std::move(r).value();
  }

  // The test's file and a MemDevice, both `bytes` long (a multiple of 1 MiB), both holding
  // FillPattern(seed) from offset 0; `pattern` is those bytes, or nullptr (with a test failure)
  // when a device could not be opened or written.
  struct FileAndMem {
    std::unique_ptr<Device> file, mem;
    AlignedBuf pattern;
  };
  FileAndMem OpenFileAndMemWithPattern(uint64_t bytes, uint32_t seed);

  std::string path_;
};

// ---------------------------------------------------------------- CheckRequest / AllocAligned

TEST(CheckRequestTest, RejectsMisalignedOutOfRangeAndOversized) {
  DeviceInfo info;
  info.path = "dev0";
  info.size_bytes = 16 * kMiB;
  info.logical_block_bytes = 4096;
  AlignedBuf buf = AllocAligned(2 * kMiB);
  IoWaiter w;
  auto req = [&](IoOp op, uint64_t off, uint32_t len, void* b) {
    IoRequest r;
    r.op = op;
    r.offset_bytes = off;
    r.length_bytes = len;
    r.buf = b;
    r.waiter = &w;
    return CheckRequest(info, r);
  };
  EXPECT_TRUE(req(IoOp::kRead, 0, 4096, buf.get()).ok());
  EXPECT_TRUE(req(IoOp::kWrite, 16 * kMiB - 4096, 4096, buf.get()).ok());
  EXPECT_TRUE(req(IoOp::kRead, 0, kDeviceIoBytesMax, buf.get()).ok());
  EXPECT_TRUE(req(IoOp::kFlush, 12345, 7, nullptr).ok());
  EXPECT_TRUE(req(IoOp::kTrim, 0, 16 * kMiB, nullptr).ok());  // trims may exceed the I/O max

  Status s = req(IoOp::kRead, 512, 4096, buf.get());
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.message().find("dev0"), std::string::npos) << s.ToString();
  EXPECT_TRUE(req(IoOp::kRead, 0, 100, buf.get()).IsInvalidArgument());
  EXPECT_TRUE(req(IoOp::kRead, 0, 0, buf.get()).IsInvalidArgument());
  EXPECT_TRUE(req(IoOp::kRead, 0, 4096, buf.get() + 512).IsInvalidArgument());
  EXPECT_TRUE(req(IoOp::kWrite, 0, 4096, nullptr).IsInvalidArgument());
  EXPECT_TRUE(req(IoOp::kRead, 16 * kMiB, 4096, buf.get()).IsInvalidArgument());
  EXPECT_TRUE(req(IoOp::kRead, 16 * kMiB - 4096, 8192, buf.get()).IsInvalidArgument());
  EXPECT_TRUE(req(IoOp::kRead, UINT64_MAX - 4095, 4096, buf.get()).IsInvalidArgument());
  EXPECT_TRUE(req(IoOp::kRead, 0, kDeviceIoBytesMax + 4096, buf.get()).IsInvalidArgument());
  EXPECT_TRUE(req(IoOp::kTrim, 4096, 512, nullptr).IsInvalidArgument());
  EXPECT_TRUE(req(IoOp::kTrim, 16 * kMiB - 4096, 8192, nullptr).IsInvalidArgument());

  info.logical_block_bytes = 512;  // a 512-byte device accepts sector-aligned ranges
  EXPECT_TRUE(req(IoOp::kRead, 512, 1024, buf.get()).ok());
  EXPECT_TRUE(req(IoOp::kRead, 512, 1024, buf.get() + 512).IsInvalidArgument());
}

TEST(AllocAlignedTest, AlignedAndWritable) {
  for (size_t n : {size_t{1}, size_t{4096}, size_t{5000}, size_t{3 * kMiB}}) {
    AlignedBuf b = AllocAligned(n);
    ASSERT_NE(b.get(), nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b.get()) % kIoAlignBytes, 0u);
    std::memset(b.get(), 0xAB, n);
  }
}

// ---------------------------------------------------------------- MemDevice

TEST(MemDeviceTest, GeometryAndSparseZeros) {
  auto dev = NewMemDevice(10 * kMiB + 100, "mem:7");
  EXPECT_EQ(dev->info().path, "mem:7");
  EXPECT_EQ(dev->info().backend, "mem");
  EXPECT_EQ(dev->info().size_bytes, 10 * kMiB);
  EXPECT_EQ(dev->info().logical_block_bytes, 4096u);
  EXPECT_TRUE(dev->info().supports_trim);
  AlignedBuf buf = AllocAligned(kMiB);
  std::memset(buf.get(), 0xFF, kMiB);
  ASSERT_TRUE(dev->Read(9 * kMiB, buf.get(), kMiB).ok());
  EXPECT_TRUE(AllZero(buf.get(), kMiB));
}

TEST(MemDeviceTest, WriteReadTrimRoundTrip) {
  auto dev = NewMemDevice(64 * kMiB);
  AlignedBuf w = AllocAligned(256 * 1024), r = AllocAligned(256 * 1024);
  for (uint64_t i = 0; i < 32; ++i) {
    FillPattern(w.get(), 256 * 1024, i);
    ASSERT_TRUE(dev->Write(i * 256 * 1024, w.get(), 256 * 1024).ok());
  }
  ASSERT_TRUE(dev->Flush().ok());
  for (uint64_t i = 0; i < 32; ++i) {
    ASSERT_TRUE(dev->Read(i * 256 * 1024, r.get(), 256 * 1024).ok());
    EXPECT_TRUE(MatchesPattern(r.get(), 256 * 1024, i)) << "chunk " << i;
  }
  // Trim the middle 3 pages of chunk 5: zeros there, the rest intact.
  const uint64_t base = 5 * 256 * 1024;
  ASSERT_TRUE(dev->Trim(base + 4096, 3 * 4096).ok());
  ASSERT_TRUE(dev->Read(base, r.get(), 256 * 1024).ok());
  FillPattern(w.get(), 256 * 1024, 5);
  EXPECT_EQ(std::memcmp(r.get(), w.get(), 4096), 0);
  EXPECT_TRUE(AllZero(r.get() + 4096, 3 * 4096));
  EXPECT_EQ(std::memcmp(r.get() + 4 * 4096, w.get() + 4 * 4096, 256 * 1024 - 4 * 4096), 0);
}

TEST(MemDeviceTest, InvalidRequestsCompleteWithInvalidArgument) {
  auto dev = NewMemDevice(kMiB);
  AlignedBuf buf = AllocAligned(8192);
  EXPECT_TRUE(dev->Read(512, buf.get(), 4096).IsInvalidArgument());
  EXPECT_TRUE(dev->Write(kMiB, buf.get(), 4096).IsInvalidArgument());
  EXPECT_TRUE(dev->Trim(0, 2 * kMiB).IsInvalidArgument());
  // Asynchronous: the waiter still gets its Done().
  IoWaiter w;
  IoRequest a, b;
  a.op = IoOp::kRead, a.offset_bytes = 3, a.length_bytes = 4096, a.buf = buf.get(), a.waiter = &w;
  b.op = IoOp::kWrite, b.offset_bytes = 0, b.length_bytes = 4096, b.buf = buf.get(), b.waiter = &w;
  IoRequest* reqs[] = {&a, &b};
  w.Add(2);
  dev->Submit(reqs, 2);
  w.Wait();
  EXPECT_TRUE(a.status.IsInvalidArgument());
  EXPECT_TRUE(b.status.ok());
}

// ---------------------------------------------------------------- OpenDevice

TEST_F(TempFileTest, CreatesSparseFileAndRoundsSizeDown) {
  auto dev = MustOpen(64 * kMiB + 1000);
  ASSERT_NE(dev, nullptr);
  EXPECT_EQ(dev->info().backend, "uring");
  EXPECT_EQ(dev->info().path, path_);
  EXPECT_EQ(dev->info().size_bytes, 64 * kMiB);
  EXPECT_EQ(dev->info().logical_block_bytes, 4096u);
  EXPECT_TRUE(dev->info().supports_trim);
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), 64 * kMiB + 1000);
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, kMiB);  // sparse
  AlignedBuf buf = AllocAligned(kMiB);
  ASSERT_TRUE(dev->Read(63 * kMiB, buf.get(), kMiB).ok());
  EXPECT_TRUE(AllZero(buf.get(), kMiB));
}

TEST_F(TempFileTest, OpenErrors) {
  auto missing = OpenDevice(path_);
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.status().IsNotFound()) << missing.status().ToString();
  EXPECT_NE(missing.status().message().find(path_), std::string::npos);

  auto tiny = OpenDevice(path_, 100);
  ASSERT_FALSE(tiny.ok());
  EXPECT_TRUE(tiny.status().IsInvalidArgument()) << tiny.status().ToString();

  for (const char* p : {"/tmp", "/dev/null"}) {
    auto r = OpenDevice(p);
    ASSERT_FALSE(r.ok()) << p;
    EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
    EXPECT_NE(r.status().message().find(p), std::string::npos) << r.status().ToString();
  }
  auto empty = OpenDevice("");
  EXPECT_TRUE(!empty.ok() && empty.status().IsInvalidArgument());

  // An existing file smaller than one block.
  {
    const int fd = ::open(path_.c_str(), O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "abc", 3), 3);
    ::close(fd);
  }
  auto small = OpenDevice(path_);
  ASSERT_FALSE(small.ok());
  EXPECT_TRUE(small.status().IsInvalidArgument()) << small.status().ToString();
}

// A character device named like an NVMe generic node but not one is refused, naming it.
TEST_F(TempFileTest, CharDeviceThatIsNotAnNvmeNamespaceIsRefused) {
  const std::string dir = path_ + ".d";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  const std::string ng = dir + "/ng0n1";
  if (::mknod(ng.c_str(), S_IFCHR | 0600, makedev(1, 3)) != 0) {
    ::rmdir(dir.c_str());
    GTEST_SKIP() << "mknod needs CAP_MKNOD";
  }
  auto r = OpenDevice(ng);
  ::unlink(ng.c_str());
  ::rmdir(dir.c_str());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("ng0n1"), std::string::npos);
  EXPECT_NE(r.status().message().find("not an NVMe namespace"), std::string::npos) << r.status().ToString();
}

TEST_F(TempFileTest, SecondOpenInSameProcessIsBusy) {
  auto dev = MustOpen(4 * kMiB);
  ASSERT_NE(dev, nullptr);
  auto again = OpenDevice(path_);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Status::Code::kBusy) << again.status().ToString();
  EXPECT_NE(again.status().message().find(path_), std::string::npos);
  EXPECT_NE(again.status().message().find("this process"), std::string::npos)
      << again.status().ToString();
  dev.reset();  // closing releases the lock
  auto third = OpenDevice(path_);
  EXPECT_TRUE(third.ok()) << third.status().ToString();
}

TEST_F(TempFileTest, OpenHeldByAnotherProcessIsBusyAndNamesThePid) {
  int to_parent[2], to_child[2];
  ASSERT_EQ(::pipe(to_parent), 0);
  ASSERT_EQ(::pipe(to_child), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(to_parent[0]);
    ::close(to_child[1]);
    auto r = OpenDevice(path_, 4 * kMiB);
    const char c = r.ok() ? 'y' : 'n';
    if (::write(to_parent[1], &c, 1) != 1) ::_exit(2);
    char x;
    while (::read(to_child[0], &x, 1) > 0) {
    }  // until the parent closes its end
    ::_exit(r.ok() ? 0 : 1);
  }
  ::close(to_parent[1]);
  ::close(to_child[0]);
  char c = 0;
  ASSERT_EQ(::read(to_parent[0], &c, 1), 1);
  ASSERT_EQ(c, 'y');
  auto r = OpenDevice(path_);
  ::close(to_child[1]);
  int wstatus = 0;
  ::waitpid(child, &wstatus, 0);
  ::close(to_parent[0]);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kBusy) << r.status().ToString();
  EXPECT_NE(r.status().message().find(path_), std::string::npos);
  EXPECT_NE(r.status().message().find("pid " + std::to_string(child)), std::string::npos)
      << r.status().ToString();
  EXPECT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
  auto after = OpenDevice(path_);
  EXPECT_TRUE(after.ok()) << after.status().ToString();
}

// ---------------------------------------------------------------- UringDevice I/O

TEST_F(TempFileTest, MisalignedAndOutOfRangeRequestsFailFast) {
  auto dev = MustOpen(8 * kMiB);
  ASSERT_NE(dev, nullptr);
  AlignedBuf buf = AllocAligned(2 * kMiB);
  EXPECT_TRUE(dev->Read(512, buf.get(), 4096).IsInvalidArgument());
  EXPECT_TRUE(dev->Write(0, buf.get(), 1000).IsInvalidArgument());
  EXPECT_TRUE(dev->Write(0, buf.get() + 512, 4096).IsInvalidArgument());
  EXPECT_TRUE(dev->Read(8 * kMiB, buf.get(), 4096).IsInvalidArgument());
  EXPECT_TRUE(dev->Read(8 * kMiB - 4096, buf.get(), 8192).IsInvalidArgument());
  EXPECT_TRUE(dev->Read(0, buf.get(), kDeviceIoBytesMax + 4096).IsInvalidArgument());
  EXPECT_TRUE(dev->Trim(4096, 8 * kMiB).IsInvalidArgument());
  // The largest I/O works and round-trips.
  FillPattern(buf.get(), kDeviceIoBytesMax, 77);
  ASSERT_TRUE(dev->Write(8 * kMiB - kDeviceIoBytesMax, buf.get(), kDeviceIoBytesMax).ok());
  std::memset(buf.get(), 0, kDeviceIoBytesMax);
  ASSERT_TRUE(dev->Read(8 * kMiB - kDeviceIoBytesMax, buf.get(), kDeviceIoBytesMax).ok());
  EXPECT_TRUE(MatchesPattern(buf.get(), kDeviceIoBytesMax, 77));
}

TEST_F(TempFileTest, ReadPastTheEndOfAShrunkFileFailsInsteadOfHanging) {
  auto dev = MustOpen(8 * kMiB);
  ASSERT_NE(dev, nullptr);
  ASSERT_EQ(::truncate(path_.c_str(), 4 * kMiB), 0);  // someone shrinks the file underneath
  AlignedBuf buf = AllocAligned(8192);
  Status s = dev->Read(6 * kMiB, buf.get(), 8192);
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_NE(s.message().find(path_), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find(std::to_string(6 * kMiB)), std::string::npos) << s.ToString();
  // A read straddling the new end: the first part transfers, the remainder hits EOF.
  s = dev->Read(4 * kMiB - 4096, buf.get(), 8192);
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
}

// Four threads, each owning a region, keep more than kDeviceQueueDepth requests in flight in
// total (each thread submits batches of 48), write patterns of mixed sizes, read them back in
// other batches and verify every byte; several rounds overwrite earlier data.
TEST_F(TempFileTest, ConcurrentBatchesFromFourThreadsVerifyContent) {
  constexpr int kThreads = 4;
  constexpr int kBatch = 48;
  constexpr uint64_t kRegionBytes = 32 * kMiB;
  constexpr int kRounds = 3;
  auto dev = MustOpen(kThreads * kRegionBytes);
  ASSERT_NE(dev, nullptr);
  std::atomic<int> failures{0};
  auto worker = [&](int t) {
    std::mt19937_64 rng(1000 + t);
    const uint64_t base = t * kRegionBytes;
    // Slots of 64 KiB; each request uses 4..64 KiB of its slot.
    constexpr uint32_t kSlotBytes = 64 * 1024;
    constexpr int kSlots = kRegionBytes / kSlotBytes;
    static_assert(kSlots >= kBatch);
    AlignedBuf wbuf = AllocAligned(size_t{kBatch} * kSlotBytes);
    AlignedBuf rbuf = AllocAligned(size_t{kBatch} * kSlotBytes);
    std::vector<uint32_t> lens(kSlots, 0);
    std::vector<uint64_t> seeds(kSlots, 0);
    for (int round = 0; round < kRounds; ++round) {
      for (int first = 0; first < kSlots; first += kBatch) {
        IoWaiter w;
        std::vector<IoRequest> reqs(kBatch);
        std::vector<IoRequest*> ptrs;
        for (int i = 0; i < kBatch && first + i < kSlots; ++i) {
          const int slot = first + i;
          lens[slot] = 4096 * (1 + static_cast<uint32_t>(rng() % 16));
          seeds[slot] = (uint64_t(t) << 40) ^ (uint64_t(round) << 32) ^ slot;
          uint8_t* p = wbuf.get() + static_cast<size_t>(i) * kSlotBytes;
          FillPattern(p, lens[slot], seeds[slot]);
          IoRequest& r = reqs[i];
          r.op = IoOp::kWrite;
          r.offset_bytes = base + uint64_t(slot) * kSlotBytes;
          r.length_bytes = lens[slot];
          r.buf = p;
          r.waiter = &w;
          ptrs.push_back(&r);
        }
        w.Add(static_cast<uint32_t>(ptrs.size()));
        dev->Submit(ptrs.data(), ptrs.size());
        w.Wait();
        for (IoRequest* r : ptrs) {
          if (!r->status.ok()) {
            ADD_FAILURE() << r->status.ToString();
            ++failures;
          }
        }
      }
      // Read back in a different batching (reverse order) and verify.
      for (int last = kSlots; last > 0; last -= kBatch) {
        IoWaiter w;
        std::vector<IoRequest> reqs(kBatch);
        std::vector<IoRequest*> ptrs;
        std::vector<int> slot_of;
        for (int i = 0; i < kBatch && last - 1 - i >= 0; ++i) {
          const int slot = last - 1 - i;
          IoRequest& r = reqs[i];
          r.op = IoOp::kRead;
          r.offset_bytes = base + uint64_t(slot) * kSlotBytes;
          r.length_bytes = lens[slot];
          r.buf = rbuf.get() + static_cast<size_t>(i) * kSlotBytes;
          r.waiter = &w;
          ptrs.push_back(&r);
          slot_of.push_back(slot);
        }
        w.Add(static_cast<uint32_t>(ptrs.size()));
        dev->Submit(ptrs.data(), ptrs.size());
        w.Wait();
        for (size_t i = 0; i < ptrs.size(); ++i) {
          const int slot = slot_of[i];
          if (!ptrs[i]->status.ok() ||
              !MatchesPattern(static_cast<uint8_t*>(ptrs[i]->buf), lens[slot], seeds[slot])) {
            ADD_FAILURE() << "thread " << t << " round " << round << " slot " << slot << ": "
                          << ptrs[i]->status.ToString();
            ++failures;
          }
        }
      }
      if (!dev->Flush().ok()) ++failures;
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

// Fills `bytes` (a multiple of 1 MiB) with FillPattern(seed) and writes them at offset 0 of each
// device; returns the pattern, or nullptr (with a test failure) when a write fails.
AlignedBuf WritePatternTo(std::initializer_list<Device*> devs, uint64_t bytes, uint32_t seed) {
  AlignedBuf w = AllocAligned(bytes);
  FillPattern(w.get(), bytes, seed);
  for (Device* d : devs)
    for (uint64_t off = 0; off < bytes; off += kMiB) {
      Status s = d->Write(off, w.get() + off, kMiB);
      if (!s.ok()) {
        ADD_FAILURE() << d->info().path << ": " << s.ToString();
        return nullptr;
      }
    }
  return w;
}

TempFileTest::FileAndMem TempFileTest::OpenFileAndMemWithPattern(uint64_t bytes, uint32_t seed) {
  FileAndMem fm;
  fm.file = MustOpen(bytes);
  if (!fm.file) return fm;
  fm.mem = NewMemDevice(bytes);
  fm.pattern = WritePatternTo({fm.file.get(), fm.mem.get()}, bytes, seed);
  return fm;
}

// ReadAll: a batch larger than the thread's ring (128 entries), mixing a file (read on the
// caller's own ring) and a MemDevice (through Submit), from four threads at once (four rings);
// every byte verified. Bad requests fail alone with clear errors.
TEST_F(TempFileTest, ReadAllBatchesAcrossDevicesAndThreadsVerifyContent) {
  FileAndMem fm = OpenFileAndMemWithPattern(16 * kMiB, 5);
  ASSERT_NE(fm.pattern, nullptr);
  // Named references, not a structured binding: the threads below capture them.
  std::unique_ptr<Device>& file = fm.file;
  std::unique_ptr<Device>& mem = fm.mem;
  const AlignedBuf& w = fm.pattern;
  ASSERT_GE(file->InlineReadFd(), 0);
  EXPECT_EQ(mem->InlineReadFd(), -1);
  std::vector<std::thread> th;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; t++)
    th.emplace_back([&, t] {
      std::mt19937_64 rng(100 + t);
      for (int round = 0; round < 20; round++) {
        constexpr int kN = 300;
        AlignedBuf out = AllocAligned(kN * 16384ull);
        std::vector<IoRequest> reqs(kN);
        std::vector<IoRequest*> rp(kN);
        std::vector<Device*> dp(kN);
        for (int i = 0; i < kN; i++) {
          const bool on_file = rng() % 3 != 0;
          const uint32_t len = 4096u * uint32_t(1 + rng() % 4);
          const uint64_t limit = on_file ? 16 * kMiB : 8 * kMiB;
          reqs[i].op = IoOp::kRead;
          reqs[i].offset_bytes = (rng() % ((limit - len) / 4096)) * 4096;
          reqs[i].length_bytes = len;
          reqs[i].buf = out.get() + uint64_t(i) * 16384;
          reqs[i].status = Status::IOError("not run");
          rp[i] = &reqs[i];
          dp[i] = on_file ? file.get() : mem.get();
        }
        ReadAll(dp, rp);
        for (int i = 0; i < kN; i++) {
          if (!reqs[i].status.ok() ||
              std::memcmp(reqs[i].buf, w.get() + reqs[i].offset_bytes, reqs[i].length_bytes) != 0)
            bad++;
        }
      }
    });
  for (auto& x : th) x.join();
  EXPECT_EQ(bad.load(), 0);

  // Out of range and misaligned requests fail alone; the others in the batch still complete.
  AlignedBuf out = AllocAligned(3 * 4096);
  IoRequest a, b, c;
  a.op = b.op = c.op = IoOp::kRead;
  a.offset_bytes = 4096, a.length_bytes = 4096, a.buf = out.get();
  b.offset_bytes = 16 * kMiB, b.length_bytes = 4096, b.buf = out.get() + 4096;
  c.offset_bytes = 512, c.length_bytes = 4096, c.buf = out.get() + 8192;
  Device* d3[] = {file.get(), file.get(), file.get()};
  IoRequest* r3[] = {&a, &b, &c};
  ReadAll(d3, r3);
  EXPECT_TRUE(a.status.ok()) << a.status.ToString();
  EXPECT_EQ(0, std::memcmp(out.get(), w.get() + 4096, 4096));
  EXPECT_TRUE(b.status.IsInvalidArgument()) << b.status.ToString();
  EXPECT_TRUE(c.status.IsInvalidArgument()) << c.status.ToString();
  // A read past the end of a file shrunk underneath: an I/O error naming path and offset.
  ASSERT_EQ(::truncate(path_.c_str(), 4 * kMiB), 0);
  a.offset_bytes = 6 * kMiB;
  Device* d1[] = {file.get()};
  IoRequest* r1[] = {&a};
  ReadAll(d1, r1);
  EXPECT_TRUE(a.status.IsIOError()) << a.status.ToString();
  EXPECT_NE(a.status.message().find(path_), std::string::npos) << a.status.ToString();
  EXPECT_NE(a.status.message().find(std::to_string(6 * kMiB)), std::string::npos) << a.status.ToString();
}

// ReadAllOptions: with and without hybrid polling, on_done is called exactly once per request,
// on the calling thread, and only when the request's status is final and its bytes are in place
// (checked inside the callback, while later requests may still be in flight): batches mixing a
// file (the caller's ring), a MemDevice (Submit) and requests that fail their checks.
TEST_F(TempFileTest, ReadAllOnDoneSeesEachRequestCompleteOnce) {
  auto [file, mem, w] = OpenFileAndMemWithPattern(8 * kMiB, 23);
  ASSERT_NE(w, nullptr);
  struct Ctx {
    std::thread::id caller;
    std::vector<IoRequest>* reqs;
    std::vector<int> calls;
    const uint8_t* expect;
    int wrong = 0;
  };
  std::mt19937_64 rng(7);
  for (uint32_t poll_us : {0u, 20u, 1000u}) {
    for (int round = 0; round < 10; round++) {
      constexpr int kN = 200;  // more than the ring holds
      AlignedBuf out = AllocAligned(kN * 16384ull);
      std::vector<IoRequest> reqs(kN);
      std::vector<IoRequest*> rp(kN);
      std::vector<Device*> dp(kN);
      for (int i = 0; i < kN; i++) {
        const uint32_t len = 4096u * uint32_t(1 + rng() % 4);
        reqs[i].op = IoOp::kRead;
        reqs[i].offset_bytes = (rng() % ((8 * kMiB - len) / 4096)) * 4096;
        if (i % 37 == 5) reqs[i].offset_bytes = 8 * kMiB;  // out of range: fails its check
        reqs[i].length_bytes = len;
        reqs[i].buf = out.get() + uint64_t(i) * 16384;
        reqs[i].status = Status::IOError("not run");
        rp[i] = &reqs[i];
        dp[i] = rng() % 4 == 0 ? mem.get() : file.get();
      }
      Ctx ctx{std::this_thread::get_id(), &reqs, std::vector<int>(kN, 0), w.get()};
      ReadAllOptions o;
      o.poll_us = poll_us;
      o.ctx = &ctx;
      o.on_done = [](void* c, uint32_t i) {
        auto& x = *static_cast<Ctx*>(c);
        const IoRequest& r = (*x.reqs)[i];
        x.calls[i]++;
        if (std::this_thread::get_id() != x.caller) x.wrong++;
        if (r.status.ok() && std::memcmp(r.buf, x.expect + r.offset_bytes, r.length_bytes) != 0) x.wrong++;
        if (r.status.IsIOError() && r.status.message() == "not run") x.wrong++;  // not final yet
      };
      ReadAll(dp, rp, o);
      EXPECT_EQ(ctx.wrong, 0) << "poll_us " << poll_us;
      for (int i = 0; i < kN; i++) {
        EXPECT_EQ(ctx.calls[i], 1) << "request " << i << " poll_us " << poll_us;
        if (i % 37 == 5) {
          EXPECT_TRUE(reqs[i].status.IsInvalidArgument()) << reqs[i].status.ToString();
        } else {
          EXPECT_TRUE(reqs[i].status.ok()) << reqs[i].status.ToString();
          EXPECT_EQ(0, std::memcmp(reqs[i].buf, w.get() + reqs[i].offset_bytes, reqs[i].length_bytes));
        }
      }
    }
  }
}

// Scatter reads (IoRequest::iov) through ReadAll: on a file (one READV on the caller's ring)
// and on a MemDevice (a bounce buffer copied out), into buffers out of order in memory; bad
// scatter lists fail alone; a short scatter read continues with its remainder.
TEST_F(TempFileTest, ReadAllScatterReadsVerifyContent) {
  auto [file, mem, w] = OpenFileAndMemWithPattern(4 * kMiB, 11);
  ASSERT_NE(w, nullptr);
  for (Device* d : {file.get(), mem.get()}) {
    AlignedBuf out = AllocAligned(16 * 4096);
    std::memset(out.get(), 0, 16 * 4096);
    // Device blocks 5..9 (20 KiB) to out blocks 7, 0, 12, 3+4 (two blocks), in that order.
    iovec iov[] = {{out.get() + 7 * 4096, 4096}, {out.get(), 4096}, {out.get() + 12 * 4096, 4096},
                   {out.get() + 3 * 4096, 8192}};
    IoRequest r;
    r.op = IoOp::kRead;
    r.offset_bytes = 5 * 4096;
    r.length_bytes = 5 * 4096;
    r.iov = iov;
    r.iov_count = 4;
    Device* dv[] = {d};
    IoRequest* rv[] = {&r};
    ReadAll(dv, rv);
    ASSERT_TRUE(r.status.ok()) << d->info().backend << ": " << r.status.ToString();
    EXPECT_EQ(0, std::memcmp(out.get() + 7 * 4096, w.get() + 5 * 4096, 4096)) << d->info().backend;
    EXPECT_EQ(0, std::memcmp(out.get(), w.get() + 6 * 4096, 4096)) << d->info().backend;
    EXPECT_EQ(0, std::memcmp(out.get() + 12 * 4096, w.get() + 7 * 4096, 4096)) << d->info().backend;
    EXPECT_EQ(0, std::memcmp(out.get() + 3 * 4096, w.get() + 8 * 4096, 8192)) << d->info().backend;
    EXPECT_TRUE(AllZero(out.get() + 4096, 2 * 4096)) << "bytes outside the scatter list written";
    // Lengths that do not add up, and a misaligned buffer.
    r.length_bytes = 4 * 4096;
    ReadAll(dv, rv);
    EXPECT_TRUE(r.status.IsInvalidArgument()) << r.status.ToString();
    r.length_bytes = 5 * 4096;
    iov[1].iov_base = out.get() + 100;
    ReadAll(dv, rv);
    EXPECT_TRUE(r.status.IsInvalidArgument()) << r.status.ToString();
  }
  // A scatter read straddling the end of a file shrunk underneath: the first buffer fills, the
  // remainder (resubmitted from the second buffer on) hits the end: an I/O error at that offset.
  ASSERT_EQ(::truncate(path_.c_str(), 2 * kMiB), 0);
  AlignedBuf out = AllocAligned(2 * 4096);
  iovec iov[] = {{out.get() + 4096, 4096}, {out.get(), 4096}};
  IoRequest r;
  r.op = IoOp::kRead;
  r.offset_bytes = 2 * kMiB - 4096;
  r.length_bytes = 8192;
  r.iov = iov;
  r.iov_count = 2;
  Device* dv[] = {file.get()};
  IoRequest* rv[] = {&r};
  ReadAll(dv, rv);
  EXPECT_TRUE(r.status.IsIOError()) << r.status.ToString();
  EXPECT_NE(r.status.message().find(std::to_string(2 * kMiB)), std::string::npos) << r.status.ToString();
  EXPECT_EQ(0, std::memcmp(out.get() + 4096, w.get() + 2 * kMiB - 4096, 4096));
}

TEST_F(TempFileTest, DataSurvivesCloseAndReopen) {
  AlignedBuf buf = AllocAligned(kMiB);
  {
    auto dev = MustOpen(16 * kMiB);
    ASSERT_NE(dev, nullptr);
    for (uint64_t i = 0; i < 16; ++i) {
      FillPattern(buf.get(), kMiB, 500 + i);
      ASSERT_TRUE(dev->Write(i * kMiB, buf.get(), kMiB).ok());
    }
    ASSERT_TRUE(dev->Flush().ok());
  }
  auto dev = MustOpen(0);
  ASSERT_NE(dev, nullptr);
  EXPECT_EQ(dev->info().size_bytes, 16 * kMiB);
  for (uint64_t i = 0; i < 16; ++i) {
    ASSERT_TRUE(dev->Read(i * kMiB, buf.get(), kMiB).ok());
    EXPECT_TRUE(MatchesPattern(buf.get(), kMiB, 500 + i)) << i;
  }
}

TEST_F(TempFileTest, TrimPunchesHolesAndReadsZeros) {
  auto dev = MustOpen(16 * kMiB);
  ASSERT_NE(dev, nullptr);
  AlignedBuf buf = AllocAligned(kMiB);
  for (uint64_t i = 0; i < 16; ++i) {
    FillPattern(buf.get(), kMiB, 900 + i);
    ASSERT_TRUE(dev->Write(i * kMiB, buf.get(), kMiB).ok());
  }
  ASSERT_TRUE(dev->Flush().ok());
  struct stat before, after;
  ASSERT_EQ(::stat(path_.c_str(), &before), 0);
  ASSERT_TRUE(dev->Trim(4 * kMiB, 8 * kMiB).ok());
  ASSERT_EQ(::stat(path_.c_str(), &after), 0);
  EXPECT_LE(static_cast<uint64_t>(after.st_blocks) * 512,
            static_cast<uint64_t>(before.st_blocks) * 512 - 8 * kMiB);
  EXPECT_EQ(after.st_size, before.st_size);  // KEEP_SIZE
  for (uint64_t i = 0; i < 16; ++i) {
    ASSERT_TRUE(dev->Read(i * kMiB, buf.get(), kMiB).ok());
    if (i >= 4 && i < 12) {
      EXPECT_TRUE(AllZero(buf.get(), kMiB)) << i;
    } else {
      EXPECT_TRUE(MatchesPattern(buf.get(), kMiB, 900 + i)) << i;
    }
  }
}

TEST_F(TempFileTest, TrimLargerThanOneRequestIsSplit) {
  constexpr uint64_t kSize = 9ull << 30;  // sparse: costs nothing
  auto dev = MustOpen(kSize);
  ASSERT_NE(dev, nullptr);
  AlignedBuf buf = AllocAligned(4096);
  for (uint64_t off : {uint64_t{0}, uint64_t{5} << 30, kSize - 4096}) {
    FillPattern(buf.get(), 4096, off);
    ASSERT_TRUE(dev->Write(off, buf.get(), 4096).ok());
  }
  ASSERT_TRUE(dev->Trim(4096, kSize - 8192).ok());  // > 4 GiB: several requests
  for (uint64_t off : {uint64_t{0}, uint64_t{5} << 30, kSize - 4096}) {
    ASSERT_TRUE(dev->Read(off, buf.get(), 4096).ok());
    if (off == (uint64_t{5} << 30)) {
      EXPECT_TRUE(AllZero(buf.get(), 4096));
    } else {
      EXPECT_TRUE(MatchesPattern(buf.get(), 4096, off)) << off;
    }
  }
}

TEST_F(TempFileTest, FixedBuffersAreUsedAndVerify) {
  auto opened = OpenDevice(path_, 16 * kMiB);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto* dev = dynamic_cast<UringDevice*>(opened.value().get());
  ASSERT_NE(dev, nullptr);
  AlignedBuf arena = AllocAligned(2 * kMiB);
  AlignedBuf other = AllocAligned(kMiB);
  iovec iov[2] = {{arena.get(), kMiB}, {arena.get() + kMiB, kMiB}};
  ASSERT_TRUE(dev->RegisterBuffers(iov).ok());
  EXPECT_EQ(dev->fixed_ios(), 0u);

  // 32 writes from inside the arena in one batch (both registered iovecs), then read back into
  // the arena and into an unregistered buffer.
  IoWaiter w;
  std::vector<IoRequest> reqs(32);
  std::vector<IoRequest*> ptrs;
  for (int i = 0; i < 32; ++i) {
    uint8_t* p = arena.get() + size_t(i) * 65536;
    FillPattern(p, 65536, 3000 + i);
    reqs[i].op = IoOp::kWrite;
    reqs[i].offset_bytes = uint64_t(i) * 65536 * 3;
    reqs[i].length_bytes = 65536;
    reqs[i].buf = p;
    reqs[i].waiter = &w;
    ptrs.push_back(&reqs[i]);
  }
  w.Add(32);
  dev->Submit(ptrs.data(), ptrs.size());
  w.Wait();
  for (auto& r : reqs) ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(dev->fixed_ios(), 32u);

  std::memset(arena.get(), 0, 2 * kMiB);
  for (int i = 0; i < 32; ++i) {
    uint8_t* p = arena.get() + size_t(31 - i) * 65536;  // a different place in the arena
    ASSERT_TRUE(dev->Read(uint64_t(i) * 65536 * 3, p, 65536).ok());
    EXPECT_TRUE(MatchesPattern(p, 65536, 3000 + i)) << i;
    Status rs = dev->Read(uint64_t(i) * 65536 * 3, other.get(), 65536);
    ASSERT_TRUE(rs.ok()) << rs.ToString();
    EXPECT_TRUE(MatchesPattern(other.get(), 65536, 3000 + i)) << i;
  }
  EXPECT_EQ(dev->fixed_ios(), 64u);
  // A request straddling the two iovecs is not inside one: plain I/O, still correct.
  ASSERT_TRUE(dev->Read(0, arena.get() + kMiB - 4096, 8192).ok());
  EXPECT_TRUE(MatchesPattern(arena.get() + kMiB - 4096, 8192, 3000)) << "straddling";
  EXPECT_EQ(dev->fixed_ios(), 64u);

  ASSERT_TRUE(dev->UnregisterBuffers().ok());
  ASSERT_TRUE(dev->Read(0, arena.get(), 65536).ok());
  EXPECT_TRUE(MatchesPattern(arena.get(), 65536, 3000));
  EXPECT_EQ(dev->fixed_ios(), 64u);
}

TEST_F(TempFileTest, DestructorWaitsForInFlightRequests) {
  auto dev = MustOpen(16 * kMiB);
  ASSERT_NE(dev, nullptr);
  AlignedBuf buf = AllocAligned(16 * kMiB);
  IoWaiter w;
  std::vector<IoRequest> reqs(128);
  std::vector<IoRequest*> ptrs;
  for (size_t i = 0; i < reqs.size(); ++i) {
    FillPattern(buf.get() + i * 131072, 131072, i);
    reqs[i].op = IoOp::kWrite;
    reqs[i].offset_bytes = i * 131072;
    reqs[i].length_bytes = 131072;
    reqs[i].buf = buf.get() + i * 131072;
    reqs[i].waiter = &w;
    ptrs.push_back(&reqs[i]);
  }
  w.Add(static_cast<uint32_t>(ptrs.size()));
  dev->Submit(ptrs.data(), ptrs.size());
  dev.reset();
  w.Wait();  // already done
  for (auto& r : reqs) EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  dev = MustOpen(0);
  ASSERT_NE(dev, nullptr);
  std::memset(buf.get(), 0, 16 * kMiB);
  ASSERT_TRUE(dev->Read(0, buf.get(), kMiB).ok());
  for (size_t i = 0; i < 8; ++i) EXPECT_TRUE(MatchesPattern(buf.get() + i * 131072, 131072, i));
}

// A thread may submit and exit before its requests run (io-wq cancels a dead task's queued
// work); every request must still complete, correctly.
TEST_F(TempFileTest, SubmitterThreadMayExitBeforeCompletion) {
  auto dev = MustOpen(16 * kMiB);
  ASSERT_NE(dev, nullptr);
  AlignedBuf buf = AllocAligned(8 * kMiB);
  IoWaiter w;
  std::vector<IoRequest> reqs(65);
  for (size_t i = 0; i < 64; ++i) {
    FillPattern(buf.get() + i * 131072, 131072, 7000 + i);
    reqs[i].op = IoOp::kWrite;
    reqs[i].offset_bytes = i * 131072;
    reqs[i].length_bytes = 131072;
    reqs[i].buf = buf.get() + i * 131072;
    reqs[i].waiter = &w;
  }
  reqs[64].op = IoOp::kFlush;
  reqs[64].waiter = &w;
  std::vector<IoRequest*> ptrs;
  for (auto& r : reqs) ptrs.push_back(&r);
  w.Add(static_cast<uint32_t>(ptrs.size()));
  std::thread([&] { dev->Submit(ptrs.data(), ptrs.size()); }).join();
  w.Wait();
  for (auto& r : reqs) EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  AlignedBuf rb = AllocAligned(8 * kMiB);
  ASSERT_TRUE(dev->Read(0, rb.get(), kMiB).ok());
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_TRUE(MatchesPattern(rb.get() + i * 131072, 131072, 7000 + i)) << i;
  }
}

}  // namespace
}  // namespace astra
