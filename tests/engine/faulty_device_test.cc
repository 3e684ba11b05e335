// Tests for FaultyDevice: each fault is provoked and observed through the bytes read back.
#include "astra/faulty_device.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "astra/device.h"
#include "astra/limits.h"
#include "test_util.h"

namespace astra {
namespace {

constexpr uint64_t kMiB = 1u << 20;
constexpr uint32_t kBlock = 4096;

void FillPattern(uint8_t* buf, size_t len, uint64_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < len; i += 8) {
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    std::memcpy(buf + i, &x, std::min<size_t>(8, len - i));
  }
}

std::vector<uint8_t> Pattern(size_t len, uint64_t seed) {
  std::vector<uint8_t> v(len);
  FillPattern(v.data(), len, seed);
  return v;
}

// A MemDevice wrapped in a FaultyDevice; the inner device stays reachable to check what is
// "durable".
struct Rig {
  explicit Rig(uint64_t size_bytes = 16 * kMiB)
      : inner(NewMemDevice(size_bytes, "mem:0")), dev(std::make_unique<FaultyDevice>(inner)) {}

  Status WritePattern(Device& d, uint64_t off, uint32_t len, uint64_t seed) {
    AlignedBuf b = AllocAligned(len);
    FillPattern(b.get(), len, seed);
    return d.Write(off, b.get(), len);
  }
  // Reads `len` bytes at `off` from `d`; empty on error.
  std::vector<uint8_t> ReadBack(Device& d, uint64_t off, uint32_t len, Status* st = nullptr) {
    AlignedBuf b = AllocAligned(len);
    Status s = d.Read(off, b.get(), len);
    if (st != nullptr) *st = s;
    if (!s.ok()) return {};
    return std::vector<uint8_t>(b.get(), b.get() + len);
  }

  std::shared_ptr<Device> inner;
  std::unique_ptr<FaultyDevice> dev;
};

TEST(FaultyDeviceTest, PassesThroughAndCounts) {
  Rig rig;
  EXPECT_EQ(rig.dev->info().backend, "faulty(mem)");
  EXPECT_EQ(rig.dev->info().size_bytes, 16 * kMiB);
  ASSERT_TRUE(rig.WritePattern(*rig.dev, 8192, 3 * kBlock, 1).ok());
  ASSERT_TRUE(rig.dev->Flush().ok());
  EXPECT_EQ(rig.ReadBack(*rig.dev, 8192, 3 * kBlock), Pattern(3 * kBlock, 1));
  EXPECT_EQ(rig.ReadBack(*rig.inner, 8192, 3 * kBlock), Pattern(3 * kBlock, 1));
  ASSERT_TRUE(rig.dev->Trim(8192, kBlock).ok());
  EXPECT_EQ(rig.ReadBack(*rig.dev, 8192, kBlock), std::vector<uint8_t>(kBlock, 0));
  AlignedBuf b = AllocAligned(kBlock);
  EXPECT_TRUE(rig.dev->Read(100, b.get(), kBlock).IsInvalidArgument());
  const FaultStats s = rig.dev->stats();
  EXPECT_EQ(s.writes, 1u);
  EXPECT_EQ(s.reads, 3u);
  EXPECT_EQ(s.flushes, 1u);
  EXPECT_EQ(s.trims, 1u);
  EXPECT_EQ(s.injected_errors, 0u);
}

TEST(FaultyDeviceTest, ErrorRulesMatchOpAndRange) {
  Rig rig;
  ASSERT_TRUE(rig.WritePattern(*rig.dev, 0, 16 * kBlock, 2).ok());
  const auto full = Pattern(16 * kBlock, 2);
  auto blocks = [&](uint64_t first, uint64_t n) {
    return std::vector<uint8_t>(full.begin() + first * kBlock, full.begin() + (first + n) * kBlock);
  };
  rig.dev->AddErrorRule({IoOp::kRead, 4 * kBlock, 6 * kBlock, 1.0});
  Status s;
  // Overlapping reads fail, with an error that says it was injected.
  rig.ReadBack(*rig.dev, 5 * kBlock, kBlock, &s);
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_NE(s.message().find("injected"), std::string::npos) << s.ToString();
  rig.ReadBack(*rig.dev, 0, 5 * kBlock, &s);  // touches block 4
  EXPECT_TRUE(s.IsIOError());
  // Adjacent ranges and other ops are unaffected.
  EXPECT_EQ(rig.ReadBack(*rig.dev, 0, 4 * kBlock, &s), blocks(0, 4));
  EXPECT_TRUE(s.ok());
  rig.ReadBack(*rig.dev, 6 * kBlock, kBlock, &s);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(rig.WritePattern(*rig.dev, 4 * kBlock, kBlock, 3).ok());
  EXPECT_EQ(rig.dev->stats().injected_errors, 2u);

  // Write and flush rules.
  rig.dev->AddErrorRule({IoOp::kWrite, 0, UINT64_MAX, 1.0});
  rig.dev->AddErrorRule({IoOp::kFlush, 0, 0, 1.0});  // flushes match regardless of range
  EXPECT_TRUE(rig.WritePattern(*rig.dev, 10 * kBlock, kBlock, 4).IsIOError());
  EXPECT_EQ(rig.ReadBack(*rig.inner, 10 * kBlock, kBlock), blocks(10, 1));  // not written
  EXPECT_TRUE(rig.dev->Flush().IsIOError());

  rig.dev->ClearErrorRules();
  EXPECT_TRUE(rig.dev->Flush().ok());
  rig.ReadBack(*rig.dev, 5 * kBlock, kBlock, &s);
  EXPECT_TRUE(s.ok());
}

TEST(FaultyDeviceTest, ErrorRuleProbability) {
  Rig rig;
  rig.dev->SetSeed(42);
  rig.dev->AddErrorRule({IoOp::kRead, 0, UINT64_MAX, 0.3});
  AlignedBuf b = AllocAligned(kBlock);
  int failed = 0;
  for (int i = 0; i < 2000; ++i) failed += rig.dev->Read(0, b.get(), kBlock).IsIOError() ? 1 : 0;
  EXPECT_GT(failed, 450);
  EXPECT_LT(failed, 750);
  EXPECT_EQ(rig.dev->stats().injected_errors, static_cast<uint64_t>(failed));
}

TEST(FaultyDeviceTest, DeadDeviceFailsEverythingUntilRevived) {
  Rig rig;
  ASSERT_TRUE(rig.WritePattern(*rig.dev, 0, kBlock, 5).ok());
  rig.dev->SetDead(true);
  Status s;
  rig.ReadBack(*rig.dev, 0, kBlock, &s);
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_TRUE(rig.WritePattern(*rig.dev, 0, kBlock, 6).IsIOError());
  EXPECT_TRUE(rig.dev->Flush().IsIOError());
  EXPECT_TRUE(rig.dev->Trim(0, kBlock).IsIOError());
  rig.dev->SetDead(false);
  EXPECT_EQ(rig.ReadBack(*rig.dev, 0, kBlock), Pattern(kBlock, 5));  // nothing changed
}

TEST(FaultyDeviceTest, ZeroedReadsZerosAndDropsWrites) {
  Rig rig;
  ASSERT_TRUE(rig.WritePattern(*rig.dev, 0, 2 * kBlock, 7).ok());
  rig.dev->SetZeroed(true);
  EXPECT_EQ(rig.ReadBack(*rig.dev, 0, 2 * kBlock), std::vector<uint8_t>(2 * kBlock, 0));
  EXPECT_TRUE(rig.WritePattern(*rig.dev, 0, 2 * kBlock, 8).ok());  // accepted...
  rig.dev->SetZeroed(false);
  EXPECT_EQ(rig.ReadBack(*rig.dev, 0, 2 * kBlock), Pattern(2 * kBlock, 7));  // ...and lost
}

int DifferingBits(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  int bits = 0;
  for (size_t i = 0; i < a.size(); ++i) bits += __builtin_popcount(a[i] ^ b[i]);
  return bits;
}

TEST(FaultyDeviceTest, BitRotIsDetectedByComparison) {
  Rig rig;
  ASSERT_TRUE(rig.WritePattern(*rig.dev, 0, 8 * kBlock, 9).ok());
  const auto want = Pattern(8 * kBlock, 9);
  rig.dev->SetBitRotProbability(1.0);
  auto got = rig.ReadBack(*rig.dev, 0, 8 * kBlock);
  EXPECT_EQ(DifferingBits(got, want), 1);
  EXPECT_EQ(rig.ReadBack(*rig.inner, 0, 8 * kBlock), want);  // the media is intact

  rig.dev->SetBitRotProbability(0.2);
  int corrupted = 0;
  for (int i = 0; i < 500; ++i) {
    const int bits = DifferingBits(rig.ReadBack(*rig.dev, 0, 8 * kBlock), want);
    ASSERT_LE(bits, 1);
    corrupted += bits;
  }
  EXPECT_GT(corrupted, 50);
  EXPECT_LT(corrupted, 150);
  EXPECT_EQ(rig.dev->stats().bitrot_flips, static_cast<uint64_t>(corrupted + 1));
  rig.dev->SetBitRotProbability(0);
  EXPECT_EQ(rig.ReadBack(*rig.dev, 0, 8 * kBlock), want);
}

TEST(FaultyDeviceTest, MisdirectedWritesLandElsewhereSilently) {
  Rig rig;
  rig.dev->SetMisdirectProbability(1.0, 8 * kBlock);
  ASSERT_TRUE(rig.WritePattern(*rig.dev, 2 * kBlock, kBlock, 10).ok());  // reports success
  EXPECT_EQ(rig.ReadBack(*rig.dev, 2 * kBlock, kBlock), std::vector<uint8_t>(kBlock, 0));
  EXPECT_EQ(rig.ReadBack(*rig.dev, 10 * kBlock, kBlock), Pattern(kBlock, 10));
  EXPECT_EQ(rig.dev->stats().misdirected, 1u);
  // A target outside the device: the write lands where it was aimed.
  const uint64_t last = rig.dev->info().size_bytes - kBlock;
  ASSERT_TRUE(rig.WritePattern(*rig.dev, last, kBlock, 11).ok());
  EXPECT_EQ(rig.ReadBack(*rig.dev, last, kBlock), Pattern(kBlock, 11));
  EXPECT_EQ(rig.dev->stats().misdirected, 1u);
}

TEST(FaultyDeviceTest, UnflushedWritesAreVisibleButNotDurable) {
  Rig rig;
  rig.dev->SetTrackUnflushed(true);
  ASSERT_TRUE(rig.WritePattern(*rig.dev, 0, 4 * kBlock, 20).ok());
  ASSERT_TRUE(rig.WritePattern(*rig.dev, kBlock, kBlock, 21).ok());  // overwrites block 1
  EXPECT_EQ(rig.dev->UnflushedWrites(), 2u);
  auto want = Pattern(4 * kBlock, 20);
  const auto b1 = Pattern(kBlock, 21);
  std::copy(b1.begin(), b1.end(), want.begin() + kBlock);
  EXPECT_EQ(rig.ReadBack(*rig.dev, 0, 4 * kBlock), want);  // later writes win
  EXPECT_EQ(rig.ReadBack(*rig.inner, 0, 4 * kBlock), std::vector<uint8_t>(4 * kBlock, 0));
  ASSERT_TRUE(rig.dev->Flush().ok());
  EXPECT_EQ(rig.dev->UnflushedWrites(), 0u);
  EXPECT_EQ(rig.ReadBack(*rig.inner, 0, 4 * kBlock), want);
}

TEST(FaultyDeviceTest, PowerLossKeepsFlushedDataAndASubsetOfTheRest) {
  Rig rig;
  rig.dev->SetSeed(7);
  rig.dev->SetTrackUnflushed(true);
  // Blocks 0..9 flushed; blocks 10..209 written one by one, not flushed.
  for (uint64_t i = 0; i < 10; ++i)
    ASSERT_TRUE(rig.WritePattern(*rig.dev, i * kBlock, kBlock, i).ok());
  ASSERT_TRUE(rig.dev->Flush().ok());
  for (uint64_t i = 10; i < 210; ++i) {
    ASSERT_TRUE(rig.WritePattern(*rig.dev, i * kBlock, kBlock, i).ok());
  }
  EXPECT_EQ(rig.dev->UnflushedWrites(), 200u);
  rig.dev->PowerLoss(0.5, 0.0);
  EXPECT_EQ(rig.dev->UnflushedWrites(), 0u);
  Status s;
  rig.ReadBack(*rig.dev, 0, kBlock, &s);
  EXPECT_TRUE(s.IsIOError()) << "dead after power loss";
  EXPECT_TRUE(rig.WritePattern(*rig.dev, 0, kBlock, 99).IsIOError());
  rig.dev->Revive();
  for (uint64_t i = 0; i < 10; ++i)
    EXPECT_EQ(rig.ReadBack(*rig.dev, i * kBlock, kBlock), Pattern(kBlock, i));
  uint64_t kept = 0;
  for (uint64_t i = 10; i < 210; ++i) {
    const auto got = rig.ReadBack(*rig.dev, i * kBlock, kBlock);
    if (got == Pattern(kBlock, i)) {
      ++kept;
    } else {
      EXPECT_EQ(got, std::vector<uint8_t>(kBlock, 0)) << "block " << i << " neither old nor new";
    }
  }
  const FaultStats st = rig.dev->stats();
  EXPECT_EQ(st.writes_dropped, 200 - kept);
  EXPECT_EQ(st.writes_torn, 0u);
  EXPECT_GT(kept, 60u);
  EXPECT_LT(kept, 140u);
}

TEST(FaultyDeviceTest, TornWriteLeavesASectorAlignedPrefix) {
  constexpr uint32_t kLen = 64 * 1024;  // 128 sectors
  std::set<uint64_t> prefixes;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    Rig rig;
    rig.dev->SetSeed(seed);
    rig.dev->SetTrackUnflushed(true);
    ASSERT_TRUE(rig.WritePattern(*rig.dev, 3 * kBlock, kLen, 1000).ok());  // old
    ASSERT_TRUE(rig.dev->Flush().ok());
    ASSERT_TRUE(rig.WritePattern(*rig.dev, 3 * kBlock, kLen, 2000).ok());  // new, unflushed
    rig.dev->PowerLoss(1.0, 1.0);
    rig.dev->Revive();
    EXPECT_EQ(rig.dev->stats().writes_torn, 1u);
    const auto got = rig.ReadBack(*rig.dev, 3 * kBlock, kLen);
    const auto old_bytes = Pattern(kLen, 1000), new_bytes = Pattern(kLen, 2000);
    size_t prefix = 0;
    while (prefix < kLen && got[prefix] == new_bytes[prefix]) ++prefix;
    // Random bytes may agree by chance for a few bytes past the tear: round down to sectors.
    prefix = prefix / kSectorBytes * kSectorBytes;
    ASSERT_LT(prefix, kLen) << "a torn write never lands whole";
    EXPECT_TRUE(std::equal(got.begin(), got.begin() + prefix, new_bytes.begin()));
    EXPECT_TRUE(std::equal(got.begin() + prefix, got.end(), old_bytes.begin() + prefix))
        << "seed " << seed << ": bytes after the " << prefix << "-byte prefix are not the old ones";
    prefixes.insert(prefix);
  }
  EXPECT_GT(prefixes.size(), 10u);  // the tear point varies, including within 4 KiB blocks
  bool unaligned_to_block = false;
  for (uint64_t p : prefixes) unaligned_to_block |= p % kBlock != 0;
  EXPECT_TRUE(unaligned_to_block);
}

// Runs a fixed workload with every fault enabled and returns a digest of everything observed.
std::string Scenario(uint64_t seed) {
  Rig rig(4 * kMiB);
  rig.dev->SetSeed(seed);
  rig.dev->SetTrackUnflushed(true);
  rig.dev->AddErrorRule({IoOp::kRead, 0, UINT64_MAX, 0.1});
  rig.dev->AddErrorRule({IoOp::kWrite, 0, UINT64_MAX, 0.1});
  rig.dev->SetBitRotProbability(0.2);
  rig.dev->SetMisdirectProbability(0.1, kBlock);
  std::string out;
  for (uint64_t i = 0; i < 200; ++i) {
    const uint64_t off = (i * 7 % 64) * kBlock;
    out += rig.WritePattern(*rig.dev, off, 2 * kBlock, i).ok() ? 'w' : 'W';
    if (i % 25 == 24) out += rig.dev->Flush().ok() ? 'f' : 'F';
    Status s;
    auto got = rig.ReadBack(*rig.dev, off, 2 * kBlock, &s);
    out += s.ok() ? std::to_string(got[i % got.size()]) : "E";
  }
  rig.dev->PowerLoss(0.5, 0.5);
  rig.dev->Revive();
  rig.dev->SetBitRotProbability(0);
  rig.dev->ClearErrorRules();
  out += '|';
  auto all = rig.ReadBack(*rig.dev, 0, 66 * kBlock);
  uint64_t h = 1469598103934665603ull;
  for (uint8_t c : all) h = (h ^ c) * 1099511628211ull;
  out += std::to_string(h);
  const FaultStats st = rig.dev->stats();
  out += "|" + std::to_string(st.injected_errors) + "," + std::to_string(st.bitrot_flips) + "," +
         std::to_string(st.misdirected) + "," + std::to_string(st.writes_dropped) + "," +
         std::to_string(st.writes_torn);
  return out;
}

TEST(FaultyDeviceTest, SameSeedSameRun) {
  const std::string a = Scenario(1234), b = Scenario(1234), c = Scenario(4321);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(FaultyDeviceTest, TrimWithTrackingIsAnUnflushedZeroWrite) {
  Rig rig;
  rig.dev->SetTrackUnflushed(true);
  ASSERT_TRUE(rig.WritePattern(*rig.dev, 0, 4 * kBlock, 30).ok());
  ASSERT_TRUE(rig.dev->Flush().ok());
  ASSERT_TRUE(rig.dev->Trim(kBlock, 2 * kBlock).ok());
  EXPECT_EQ(rig.ReadBack(*rig.dev, kBlock, 2 * kBlock), std::vector<uint8_t>(2 * kBlock, 0));
  rig.dev->PowerLoss(0.0, 0.0);  // the trim is lost
  rig.dev->Revive();
  EXPECT_EQ(rig.ReadBack(*rig.dev, 0, 4 * kBlock), Pattern(4 * kBlock, 30));
  // A large trim applies the pending writes first, then trims the inner device.
  ASSERT_TRUE(rig.WritePattern(*rig.dev, 0, kBlock, 31).ok());
  ASSERT_TRUE(rig.dev->Trim(kBlock, 8 * kMiB).ok());
  EXPECT_EQ(rig.dev->UnflushedWrites(), 0u);
  EXPECT_EQ(rig.ReadBack(*rig.inner, 0, kBlock), Pattern(kBlock, 31));
  EXPECT_EQ(rig.ReadBack(*rig.inner, kBlock, 3 * kBlock), std::vector<uint8_t>(3 * kBlock, 0));
}

TEST(FaultyDeviceTest, DestructionAndUntrackingApplyPendingWrites) {
  Rig rig;
  rig.dev->SetTrackUnflushed(true);
  ASSERT_TRUE(rig.WritePattern(*rig.dev, 0, kBlock, 40).ok());
  rig.dev->SetTrackUnflushed(false);
  EXPECT_EQ(rig.ReadBack(*rig.inner, 0, kBlock), Pattern(kBlock, 40));
  rig.dev->SetTrackUnflushed(true);
  ASSERT_TRUE(rig.WritePattern(*rig.dev, kBlock, kBlock, 41).ok());
  rig.dev.reset();
  EXPECT_EQ(rig.ReadBack(*rig.inner, kBlock, kBlock), Pattern(kBlock, 41));
}

TEST(FaultyDeviceTest, AsyncBatchCompletesEveryRequest) {
  Rig rig;
  rig.dev->AddErrorRule({IoOp::kWrite, 8 * kBlock, 9 * kBlock, 1.0});
  AlignedBuf buf = AllocAligned(16 * kBlock);
  FillPattern(buf.get(), 16 * kBlock, 50);
  IoWaiter w;
  std::vector<IoRequest> reqs(16);
  std::vector<IoRequest*> ptrs;
  for (uint32_t i = 0; i < 16; ++i) {
    reqs[i].op = IoOp::kWrite;
    reqs[i].offset_bytes = uint64_t{i} * kBlock;
    reqs[i].length_bytes = kBlock;
    reqs[i].buf = buf.get() + size_t{i} * kBlock;
    reqs[i].waiter = &w;
    ptrs.push_back(&reqs[i]);
  }
  w.Add(16);
  rig.dev->Submit(ptrs.data(), ptrs.size());
  w.Wait();
  for (uint32_t i = 0; i < 16; ++i) EXPECT_EQ(reqs[i].status.ok(), i != 8) << i;
}

// The wrapper over a real UringDevice: power loss through the same path as with MemDevice.
TEST(FaultyDeviceTest, WrapsUringDevice) {
  const std::string path = "/tmp/astra_faulty_test_" + std::to_string(::getpid()) + ".img";
  ::unlink(path.c_str());
  {
    auto opened = OpenDevice(path, 8 * kMiB);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    Rig rig;
    rig.inner = std::shared_ptr<Device>(std::move(opened).value());
    rig.dev = std::make_unique<FaultyDevice>(rig.inner);
    EXPECT_EQ(rig.dev->info().backend, "faulty(uring)");
    rig.dev->SetTrackUnflushed(true);
    ASSERT_TRUE(rig.WritePattern(*rig.dev, 0, 8 * kBlock, 60).ok());
    ASSERT_TRUE(rig.dev->Flush().ok());
    ASSERT_TRUE(rig.WritePattern(*rig.dev, 0, 8 * kBlock, 61).ok());
    rig.dev->PowerLoss(0.0, 0.0);
    rig.dev->Revive();
    EXPECT_EQ(rig.ReadBack(*rig.dev, 0, 8 * kBlock), Pattern(8 * kBlock, 60));
  }
  ::unlink(path.c_str());
}

// Power loss on top of a real device named by ASTRA_TEST_MEMBERS (the VM suite
// nvme_engine_suites: an NvmeDevice, 512- or 4096-byte LBAs); skipped when it is not set. What
// lands is checked on the drive itself, read through the inner device: a dropped write leaves the
// old bytes, a kept one lands whole, a torn one lands a 512-byte-sector prefix (on a 4096-byte
// LBA drive the rest of the prefix's last block keeps the drive's old bytes).
TEST(FaultyDeviceTest, PowerLossOnATestMember) {
  if (!test::TestMembers::Get().real()) GTEST_SKIP() << "ASTRA_TEST_MEMBERS is not set";
  constexpr uint32_t kLen = 64 * 1024;  // 128 sectors
  Rig rig;
  rig.inner = test::TestMembers::Get().Region(0, 4 * kMiB);
  std::printf("inner: %s, %s, %u-byte blocks\n", rig.inner->info().path.c_str(),
              rig.inner->info().backend.c_str(), rig.inner->info().logical_block_bytes);
  const auto old_bytes = Pattern(kLen, 3000), new_bytes = Pattern(kLen, 4000);
  std::set<uint64_t> prefixes;
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    rig.dev = std::make_unique<FaultyDevice>(rig.inner);
    rig.dev->SetSeed(seed);
    rig.dev->SetTrackUnflushed(true);
    const uint64_t off = seed * kLen;
    ASSERT_TRUE(rig.WritePattern(*rig.dev, off, kLen, 3000).ok());
    ASSERT_TRUE(rig.dev->Flush().ok());
    EXPECT_EQ(rig.ReadBack(*rig.inner, off, kLen), old_bytes) << "a flushed write is on the drive";
    ASSERT_TRUE(rig.WritePattern(*rig.dev, off, kLen, 4000).ok());
    EXPECT_EQ(rig.ReadBack(*rig.dev, off, kLen), new_bytes) << "reads see unflushed writes";
    EXPECT_EQ(rig.ReadBack(*rig.inner, off, kLen), old_bytes) << "unflushed: not on the drive yet";
    // Seed 1: the write is dropped; seed 2: it lands whole; the others: torn.
    rig.dev->PowerLoss(seed == 1 ? 0.0 : 1.0, seed <= 2 ? 0.0 : 1.0);
    const auto got = rig.ReadBack(*rig.inner, off, kLen);
    ASSERT_EQ(got.size(), kLen);
    if (seed == 1) {
      EXPECT_EQ(got, old_bytes) << "a dropped write changed the drive";
    } else if (seed == 2) {
      EXPECT_EQ(got, new_bytes) << "a kept write did not land whole";
    } else {
      size_t prefix = 0;
      while (prefix < kLen && got[prefix] == new_bytes[prefix]) ++prefix;
      prefix = prefix / kSectorBytes * kSectorBytes;
      ASSERT_LT(prefix, kLen) << "a torn write never lands whole";
      EXPECT_TRUE(std::equal(got.begin(), got.begin() + prefix, new_bytes.begin()));
      EXPECT_TRUE(std::equal(got.begin() + prefix, got.end(), old_bytes.begin() + prefix))
          << "seed " << seed << ": bytes after the " << prefix
          << "-byte prefix are not the old ones";
      prefixes.insert(prefix);
    }
    Status s;
    rig.ReadBack(*rig.dev, off, kLen, &s);
    EXPECT_TRUE(s.IsIOError()) << "dead after power loss";
    rig.dev->Revive();
    EXPECT_EQ(rig.ReadBack(*rig.dev, off, kLen), got) << "after Revive the drive's bytes are read";
  }
  EXPECT_GT(prefixes.size(), 5u) << "the tear point does not vary";
}

}  // namespace
}  // namespace astra
