// Compression frames (issue 3, "a run of consecutive blocks written together"): up to 8 new
// blocks of one write are compressed as one zstd frame, each block its own extent. These tests
// check what users see: every block reads back alone and in any range, frames survive reopen
// and checkpoints, dedup shares single blocks of a frame, and the cleaner re-packs frames whose
// blocks were partly overwritten without losing a byte or a reference.
#include <gtest/gtest.h>

#include <map>

#include "test_util.h"

namespace astra::test {
namespace {

std::unique_ptr<Pool> OpenPool(MemPool& mp, OpenOptions o = TestOpen()) {
  auto r = Pool::Open(mp.Devices(), o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : nullptr;
}

// A text-like block: compressible, but different from every other tag's (so no dedup).
void TextBlock(uint8_t* b, uint64_t tag) {
  std::mt19937_64 r(tag);
  static const char* words[] = {"extent ", "stripe ", "segment ", "journal ", "parity ", "chunk ",
                                "block ", "scrub ", "rebuild ", "cleaner ", "\n", "frame "};
  size_t at = 0;
  while (at < 4096) {
    char w[32];
    int n = std::snprintf(w, sizeof w, "%s%llu ", words[r() % 12], (unsigned long long)(r() % 1000));
    for (int i = 0; i < n && at < 4096; i++) b[at++] = uint8_t(w[i]);
  }
}

void Expect(Pool& p, ObjectId obj, uint64_t block, uint32_t count, const std::map<uint64_t, uint64_t>& tags) {
  std::vector<uint8_t> got(count * 4096ull);
  Status s = p.Read(obj, block, count, got.data());
  ASSERT_TRUE(s.ok()) << s.ToString();
  uint8_t want[4096];
  for (uint32_t i = 0; i < count; i++) {
    auto it = tags.find(block + i);
    if (it == tags.end()) std::memset(want, 0, 4096);
    else if (it->second & (1ull << 62)) FillBlock(want, it->second & ~(1ull << 62), false);
    else TextBlock(want, it->second);
    ASSERT_EQ(0, memcmp(want, &got[i * 4096ull], 4096)) << "object " << obj << " block " << block + i;
  }
}

TEST(FrameTest, FramesCompressBetterAndEveryBlockReadsBackAloneAndInRanges) {
  uint64_t stored[2];
  for (int unit : {1, 0}) {  // one block per frame, then the default (8)
    MemPool mp(6);
    auto devs = mp.Devices();
    ASSERT_TRUE(Pool::Format(devs, SmallFormat()).ok());
    OpenOptions o = TestOpen();
    o.compression_unit_blocks = uint32_t(unit);
    auto p = OpenPool(mp, o);
    ASSERT_TRUE(p);
    std::map<uint64_t, uint64_t> tags;
    std::vector<uint8_t> buf(64 * 4096);
    for (uint32_t i = 0; i < 64; i++) {
      TextBlock(&buf[i * 4096ull], 1000 + i);
      tags[i] = 1000 + i;
    }
    ASSERT_TRUE(p->Write(1, 0, 64, buf.data()).ok());
    stored[unit ? 0 : 1] = p->GetStatus().space.stored_bytes;
    // Buffered (not yet on the devices), then flushed, then after reopen (journal replay),
    // then after a checkpoint: single blocks and ranges that cross frame boundaries.
    for (int phase = 0; phase < 4; phase++) {
      for (uint64_t b = 0; b < 64; b++) Expect(*p, 1, b, 1, tags);
      Expect(*p, 1, 5, 20, tags);
      Expect(*p, 1, 0, 64, tags);
      if (phase == 0) {
        ASSERT_TRUE(p->Flush().ok());
      }
      if (phase == 1) {
        p.reset();  // no clean close: the journal is all there is
        p = OpenPool(mp, o);
        ASSERT_TRUE(p);
      }
      if (phase == 2) {
        ASSERT_TRUE(p->Close().ok());
        p = OpenPool(mp, o);
        ASSERT_TRUE(p);
      }
    }
    auto rep = p->Check(false);
    ASSERT_TRUE(rep.ok());
    EXPECT_TRUE(rep->clean()) << rep->problems[0];
    EXPECT_EQ(p->GetStatus().space.logical_bytes, 64u * 4096);
  }
  std::printf("stored bytes: unit 1 block %llu, unit 8 blocks %llu\n", (unsigned long long)stored[0],
              (unsigned long long)stored[1]);
  EXPECT_LT(stored[1], stored[0]) << "8-block frames must store less than single blocks";
}

// Frames of ~24 KiB (3/4 random bytes per block) are longer than a stripe of a 4+2 pool with
// 4 KiB chunks (16 KiB): one straddling the devices' write pointer starts more than a stripe
// before it, and reads of it served from the write buffer must still find all of its bytes.
TEST(FrameTest, LongFramesStraddlingTheWritePointerReadBackBeforeAndAfterFlush) {
  MemPool mp(6);
  auto devs = mp.Devices();
  FormatOptions fo = SmallFormat();
  fo.segment_column_bytes = 1u << 20;  // 4 MiB segments: stripe batches are written before a segment fills
  ASSERT_TRUE(Pool::Format(devs, fo).ok());
  auto p = OpenPool(mp);
  ASSERT_TRUE(p);
  const uint32_t blocks = 1024;  // 4 MiB logical, ~3 MiB stored: several write-outs
  std::vector<uint8_t> data(blocks * 4096ull);
  std::mt19937_64 r(77);
  for (uint32_t i = 0; i < blocks; i++) {
    uint8_t* b = &data[i * 4096ull];
    for (int j = 0; j < 3072; j += 8) {
      uint64_t v = r();
      std::memcpy(b + j, &v, 8);
    }
    std::memset(b + 3072, int(i & 0xff), 1024);
  }
  std::vector<uint8_t> got(blocks * 4096ull);
  for (uint32_t b = 0; b < blocks; b += 32) {
    ASSERT_TRUE(p->Write(1, b, 32, &data[b * 4096ull]).ok());
    // Right after each write: whatever straddles the write pointer is read from the buffer.
    for (uint32_t from = b >= 480 ? b - 480 : 0; from < b + 32; from += 128) {
      const uint32_t n = std::min<uint32_t>(128, b + 32 - from);
      Status s = p->Read(1, from, n, got.data());
      ASSERT_TRUE(s.ok()) << "after writing block " << b << ": " << s.ToString();
      ASSERT_EQ(0, memcmp(got.data(), &data[from * 4096ull], n * 4096ull)) << "blocks from " << from;
    }
  }
  ASSERT_TRUE(p->Flush().ok());
  for (uint32_t b = 0; b < blocks; b += 256) {
    ASSERT_TRUE(p->Read(1, b, 256, &got[b * 4096ull]).ok());
  }
  ASSERT_EQ(0, memcmp(got.data(), data.data(), data.size()));
  auto st = p->GetStatus();
  EXPECT_LT(st.space.stored_bytes, uint64_t(blocks) * 4096 * 7 / 8) << "frames were not compressed";
  auto rep = p->Check(false);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->clean()) << rep->problems[0];
}

TEST(FrameTest, DedupSharesOneBlockOfAFrameAndKeepsItWhenTheFrameIsOverwritten) {
  MemPool mp(6);
  auto devs = mp.Devices();
  ASSERT_TRUE(Pool::Format(devs, SmallFormat()).ok());
  auto p = OpenPool(mp);
  ASSERT_TRUE(p);
  std::map<uint64_t, uint64_t> a, b;
  std::vector<uint8_t> buf(16 * 4096);
  for (uint32_t i = 0; i < 16; i++) {
    TextBlock(&buf[i * 4096ull], 2000 + i);
    a[i] = 2000 + i;
  }
  ASSERT_TRUE(p->Write(1, 0, 16, buf.data()).ok());
  ASSERT_TRUE(p->Flush().ok());
  // Block 5 of object 1's first frame, written again to object 2: shared, not stored again.
  const uint64_t stored0 = p->GetStatus().space.stored_bytes;
  ASSERT_TRUE(p->Write(2, 7, 1, &buf[5 * 4096ull]).ok());
  b[7] = 2005;
  auto st = p->GetStatus();
  EXPECT_EQ(st.space.dedup_saved_bytes, 4096u);
  EXPECT_EQ(st.space.stored_bytes, stored0);
  // Object 1 overwritten entirely (random data): object 2's block still reads right, before
  // and after the cleaner moves (re-packs) what is left of the frame.
  std::vector<uint8_t> rnd(16 * 4096);
  for (uint32_t i = 0; i < 16; i++) {
    FillBlock(&rnd[i * 4096ull], 5000 + i);
    a[i] = (1ull << 62) | (5000 + i);
  }
  ASSERT_TRUE(p->Write(1, 0, 16, rnd.data()).ok());
  Expect(*p, 2, 7, 1, b);
  Expect(*p, 1, 0, 16, a);
  ASSERT_TRUE(p->Flush().ok());
  ASSERT_TRUE(p->CollectGarbage().ok());
  Expect(*p, 2, 7, 1, b);
  Expect(*p, 1, 0, 16, a);
  auto rep = p->Check(false);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->clean()) << rep->problems[0];
  p.reset();
  p = OpenPool(mp);
  ASSERT_TRUE(p);
  Expect(*p, 2, 7, 1, b);
  Expect(*p, 1, 0, 16, a);
  rep = p->Check(false);
  EXPECT_TRUE(rep->clean()) << rep->problems[0];
}

// Frames whose blocks are mostly dead: the cleaner must reclaim the dead blocks' bytes (re-pack
// the survivors) instead of carrying whole frames along, and every block and reference must stay
// right through the relocations, a crash and a checkpoint.
TEST(FrameTest, CleanerRepacksPartlyDeadFrames) {
  const uint64_t seed = TestSeed(11);
  std::mt19937_64 rng(seed);
  MemPool mp(6);
  auto devs = mp.Devices();
  ASSERT_TRUE(Pool::Format(devs, SmallFormat()).ok());
  auto p = OpenPool(mp);
  ASSERT_TRUE(p);
  const uint64_t blocks = 12288;  // 48 MiB of text, which compresses ~3x
  std::map<uint64_t, uint64_t> tags;
  std::vector<uint8_t> buf(32 * 4096);
  uint64_t next = 100000;
  for (uint64_t b = 0; b < blocks; b += 32) {
    for (uint32_t i = 0; i < 32; i++) {
      tags[b + i] = next;
      TextBlock(&buf[i * 4096ull], next++);
    }
    ASSERT_TRUE(p->Write(1, b, 32, buf.data()).ok());
  }
  ASSERT_TRUE(p->Flush().ok());
  const uint64_t stored_full = p->GetStatus().space.stored_bytes;
  // 7 of every 8 blocks die (trimmed or overwritten by a later single-block write that is
  // trimmed in turn): one live block is left in every frame.
  for (uint64_t b = 0; b < blocks; b++) {
    if (b % 8 == rng() % 8 && b % 8 != 0) {
      tags[b] = next;
      TextBlock(buf.data(), next++);
      ASSERT_TRUE(p->Write(1, b, 1, buf.data()).ok());
    }
    if (b % 8 != 0) {
      ASSERT_TRUE(p->Trim(1, b, 1).ok());
      tags.erase(b);
    }
  }
  ASSERT_TRUE(p->Flush().ok());
  ASSERT_TRUE(p->CollectGarbage().ok());
  auto st = p->GetStatus();
  const uint64_t seg_bytes = 4ull * SmallFormat().segment_column_bytes;
  const uint64_t used_bytes = (st.segments_total - st.segments_free) * seg_bytes;
  std::printf("stored %llu B with every block live, %llu B live after trimming 7/8; segments in use "
              "after cleaning: %llu (%llu B); cleaned %llu, relocated %llu B\n",
              (unsigned long long)stored_full, (unsigned long long)st.space.stored_bytes,
              (unsigned long long)(st.segments_total - st.segments_free), (unsigned long long)used_bytes,
              (unsigned long long)st.cleaner.segments_cleaned, (unsigned long long)st.cleaner.bytes_relocated);
  EXPECT_GT(st.cleaner.segments_cleaned, 0u);
  // Whole frames carried along would keep ~all of stored_full in use.
  EXPECT_LT(used_bytes, stored_full / 2) << "the dead blocks of frames were not reclaimed";
  for (uint64_t b = 0; b < blocks; b += 256) Expect(*p, 1, b, 256, tags);
  auto rep = p->Check(false);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->clean()) << rep->problems[0];
  p.reset();  // crash: the relocations are in the journal only
  p = OpenPool(mp);
  ASSERT_TRUE(p);
  for (uint64_t b = 0; b < blocks; b += 256) Expect(*p, 1, b, 256, tags);
  rep = p->Check(false);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->clean()) << rep->problems[0];
  ASSERT_TRUE(p->Close().ok());
  p = OpenPool(mp);
  ASSERT_TRUE(p);
  for (uint64_t b = 0; b < blocks; b += 256) Expect(*p, 1, b, 256, tags);
}

}  // namespace
}  // namespace astra::test
