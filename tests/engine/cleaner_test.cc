// Space reclamation (issue 7): the segment cleaner keeps a pool writable forever under
// overwrites, a full pool returns kNoSpace without damage, and relocated shared extents stay
// shared and correct.
#include <gtest/gtest.h>

#include <map>

#include "test_util.h"

namespace astra::test {
namespace {

std::unique_ptr<Pool> FormatAndOpen(MemPool& mp, FormatOptions fo, OpenOptions oo = TestOpen()) {
  auto devs = mp.Devices();
  Status s = Pool::Format(devs, fo);
  EXPECT_TRUE(s.ok()) << s.ToString();
  auto r = Pool::Open(mp.Devices(), oo);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : nullptr;
}

// Overwrites a 512 MiB object on a ~1 GiB pool (6 x 256 MiB, 4+2) with random 4 KiB and 128 KiB
// writes totalling ASTRA_SOAK_GIB (default 10) GiB; nothing fails, everything verifies, the
// check is clean, and the cleaner did the work.
TEST(CleanerTest, OverwriteTenTimesTheCapacity) {
  const uint64_t seed = TestSeed(7);
  const char* env = std::getenv("ASTRA_SOAK_GIB");
  const uint64_t total_bytes = (env ? std::strtoull(env, nullptr, 0) : 10) << 30;
  std::mt19937_64 rng(seed);
  MemPool mp(6, 256ull << 20);
  FormatOptions fo = SmallFormat();
  fo.segment_column_bytes = 1u << 20;
  fo.compression = Compression::kNone;  // random data: keep the test about space, not zstd
  fo.dedup = false;
  auto p = FormatAndOpen(mp, fo);
  ASSERT_TRUE(p);
  const uint64_t blocks = (512ull << 20) / 4096;
  std::vector<uint64_t> tag(blocks, 0);
  uint64_t next_tag = 1, written = 0;
  std::vector<uint8_t> buf(32 * 4096), got(32 * 4096);
  while (written < total_bytes) {
    const uint32_t n = rng() % 4 == 0 ? 32 : 1;
    const uint64_t b = rng() % (blocks - n + 1);
    for (uint32_t i = 0; i < n; i++) {
      tag[b + i] = next_tag++;
      FillBlock(&buf[i * 4096ull], tag[b + i]);
    }
    Status s = p->Write(1, b, n, buf.data());
    ASSERT_TRUE(s.ok()) << "after " << (written >> 20) << " MiB: " << s.ToString();
    written += n * 4096ull;
    if (rng() % 64 == 0) {
      ASSERT_TRUE(p->Flush().ok());
    }
    if (rng() % 512 == 0) {  // spot check
      const uint64_t c = rng() % (blocks - 32);
      ASSERT_TRUE(p->Read(1, c, 32, got.data()).ok());
      for (uint32_t i = 0; i < 32; i++) {
        FillBlock(&buf[i * 4096ull], tag[c + i]);
        ASSERT_EQ(0, memcmp(&buf[i * 4096ull], &got[i * 4096ull], 4096)) << "block " << c + i;
      }
    }
  }
  ASSERT_TRUE(p->Flush().ok());
  for (uint64_t b = 0; b < blocks; b += 32) {
    ASSERT_TRUE(p->Read(1, b, 32, got.data()).ok());
    for (uint32_t i = 0; i < 32; i++) {
      FillBlock(&buf[i * 4096ull], tag[b + i]);
      ASSERT_EQ(0, memcmp(&buf[i * 4096ull], &got[i * 4096ull], 4096)) << "block " << b + i;
    }
  }
  auto st = p->GetStatus();
  std::printf("written %llu MiB, cleaned %llu segments, relocated %llu MiB, trimmed %llu segments\n",
              (unsigned long long)(written >> 20), (unsigned long long)st.cleaner.segments_cleaned,
              (unsigned long long)(st.cleaner.bytes_relocated >> 20), (unsigned long long)st.cleaner.segments_trimmed);
  EXPECT_GT(st.cleaner.segments_cleaned, 0u);
  auto rep = p->Check(false);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->clean()) << rep->problems[0];
  ASSERT_TRUE(p->Close().ok());
}

TEST(CleanerTest, FullPoolReturnsNoSpaceAndRecovers) {
  MemPool mp(6, 24ull << 20);
  FormatOptions fo = SmallFormat();
  fo.compression = Compression::kNone;
  auto p = FormatAndOpen(mp, fo);
  ASSERT_TRUE(p);
  std::vector<uint8_t> buf(16 * 4096), got(4096);
  uint64_t b = 0;
  Status s;
  for (;; b += 16) {
    for (uint32_t i = 0; i < 16; i++) FillBlock(&buf[i * 4096ull], 1 + b + i);
    s = p->Write(1, b, 16, buf.data());
    if (!s.ok()) break;
  }
  EXPECT_TRUE(s.IsNoSpace()) << s.ToString();
  EXPECT_EQ(s.ToErrno(), ENOSPC);
  const uint64_t stored = b;
  ASSERT_GT(stored, 1000u);
  // Nothing already stored was damaged, and the pool still flushes and checks clean.
  ASSERT_TRUE(p->Flush().ok());
  uint8_t want[4096];
  for (uint64_t i = 0; i < stored; i += 7) {
    ASSERT_TRUE(p->Read(1, i, 1, got.data()).ok());
    FillBlock(want, 1 + i);
    ASSERT_EQ(0, memcmp(want, got.data(), 4096)) << "block " << i;
  }
  EXPECT_TRUE(p->Check(false)->clean());
  // Delete every other 16-block run: the space comes back (cleaner + checkpoint), writes succeed.
  for (uint64_t i = 0; i < stored; i += 32) ASSERT_TRUE(p->Trim(1, i, 16).ok());
  for (uint64_t i = 0; i < stored / 4; i += 16) {
    for (uint32_t j = 0; j < 16; j++) FillBlock(&buf[j * 4096ull], 5000000 + i + j);
    s = p->Write(2, i, 16, buf.data());
    ASSERT_TRUE(s.ok()) << "rewrite after delete at " << i << ": " << s.ToString();
  }
  ASSERT_TRUE(p->Flush().ok());
  for (uint64_t i = 16; i < stored; i += 32) {
    ASSERT_TRUE(p->Read(1, i, 1, got.data()).ok());
    FillBlock(want, 1 + i);
    ASSERT_EQ(0, memcmp(want, got.data(), 4096)) << "kept block " << i;
  }
  for (uint64_t i = 0; i < stored / 4; i++) {
    ASSERT_TRUE(p->Read(2, i, 1, got.data()).ok());
    FillBlock(want, 5000000 + i);
    ASSERT_EQ(0, memcmp(want, got.data(), 4096)) << "new block " << i;
  }
  EXPECT_TRUE(p->Check(false)->clean());
}

TEST(CleanerTest, RelocatedSharedExtentsStayShared) {
  MemPool mp(6, 32ull << 20);
  auto p = FormatAndOpen(mp, SmallFormat());
  ASSERT_TRUE(p);
  std::vector<uint8_t> buf(64 * 4096);
  for (int i = 0; i < 64; i++) FillBlock(&buf[i * 4096ull], 100 + i);
  ASSERT_TRUE(p->Write(1, 0, 64, buf.data()).ok());  // object 1 ...
  ASSERT_TRUE(p->Write(2, 0, 64, buf.data()).ok());  // ... and 2 share these extents (dedup)
  ASSERT_TRUE(p->CloneRange(1, 0, 3, 10, 64).ok());  // and 3 (clone)
  // Garbage in the same segments, then dropped: they become cheap victims.
  std::vector<uint8_t> junk(64 * 4096);
  for (int r = 0; r < 8; r++) {
    for (int i = 0; i < 64; i++) FillBlock(&junk[i * 4096ull], 10000 + r * 64 + i);
    ASSERT_TRUE(p->Write(9, r * 64, 64, junk.data()).ok());
  }
  ASSERT_TRUE(p->Trim(9, 0, 1000).ok());
  const uint64_t shared_before = p->GetStatus().space.dedup_saved_bytes;
  auto gc = p->CollectGarbage();
  ASSERT_TRUE(gc.ok()) << gc.status().ToString();
  EXPECT_GT(gc->segments_cleaned, 0u);
  EXPECT_GT(gc->bytes_relocated, 0u);
  EXPECT_EQ(p->GetStatus().space.dedup_saved_bytes, shared_before);  // sharing kept
  std::vector<uint8_t> got(64 * 4096);
  for (uint64_t obj : {1, 2}) {
    ASSERT_TRUE(p->Read(obj, 0, 64, got.data()).ok());
    EXPECT_EQ(got, buf) << "object " << obj;
  }
  ASSERT_TRUE(p->Read(3, 10, 64, got.data()).ok());
  EXPECT_EQ(got, buf);
  ASSERT_TRUE(p->Close().ok());
  auto q = Pool::Open(mp.Devices(), TestOpen());
  ASSERT_TRUE(q.ok());
  ASSERT_TRUE((*q)->Read(2, 0, 64, got.data()).ok());
  EXPECT_EQ(got, buf);
  EXPECT_TRUE((*q)->Check(false)->clean());
}

}  // namespace
}  // namespace astra::test

#include <sys/stat.h>
#include <unistd.h>

namespace astra::test {
namespace {

uint64_t AllocatedBytes(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(0, ::stat(path.c_str(), &st)) << path;
  return uint64_t(st.st_blocks) * 512;
}

// Trim reaches the devices: after deleting data and a cleaning pass, sparse member files give
// their blocks back to the host file system (fallocate PUNCH_HOLE).
TEST(CleanerTest, FreedSegmentsArePunchedOutOfMemberFiles) {
  char tmpl[] = "/tmp/astra-trim-XXXXXX";
  ASSERT_NE(nullptr, ::mkdtemp(tmpl));
  const std::string dir = tmpl;
  std::vector<std::string> paths;
  for (int i = 0; i < 6; i++) paths.push_back(dir + "/m" + std::to_string(i) + ".img");
  auto open_all = [&] {
    std::vector<std::unique_ptr<Device>> v;
    for (auto& p : paths) {
      auto d = OpenDevice(p, 64ull << 20);
      EXPECT_TRUE(d.ok()) << d.status().ToString();
      v.push_back(std::move(d).value());
    }
    return v;
  };
  {
    auto devs = open_all();
    FormatOptions fo = SmallFormat();
    fo.compression = Compression::kNone;
    ASSERT_TRUE(Pool::Format(devs, fo).ok());
  }
  auto r = Pool::Open(open_all(), TestOpen());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto p = std::move(r).value();
  std::vector<uint8_t> buf(64 * 4096);
  for (int run = 0; run < 16; run++) {
    for (int i = 0; i < 64; i++) FillBlock(&buf[i * 4096ull], 1 + run * 64 + i);
    ASSERT_TRUE(p->Write(1, run * 64, 64, buf.data()).ok());
  }
  ASSERT_TRUE(p->Flush().ok());
  uint64_t before = 0;
  for (auto& path : paths) before += AllocatedBytes(path);
  ASSERT_TRUE(p->Trim(1, 0, 16 * 64).ok());
  auto gc = p->CollectGarbage();
  ASSERT_TRUE(gc.ok()) << gc.status().ToString();
  EXPECT_GT(gc->segments_trimmed, 0u);
  uint64_t after = 0;
  for (auto& path : paths) after += AllocatedBytes(path);
  EXPECT_LT(after + (3ull << 20), before) << "member files did not shrink: " << before << " -> " << after;
  ASSERT_TRUE(p->Close().ok());
  for (auto& path : paths) ::unlink(path.c_str());
  ::rmdir(dir.c_str());
}

}  // namespace
}  // namespace astra::test
