// Bounded random-input test of every decoder of on-disk bytes (invariant 5: never crash or
// assert on bytes read from a device). Each decoder gets valid inputs with random bit flips,
// truncations and splices, and pure random bytes; it must return an error or a value, never
// crash (run under the asan-ubsan preset for memory errors). ASTRA_SEED replays.
#include <gtest/gtest.h>

#include <random>

#include "journal.h"
#include "meta_state.h"
#include "superblock_format.h"
#include "test_util.h"

namespace astra::test {
namespace {

constexpr int kRounds = 20000;

void Mutate(std::vector<uint8_t>& v, std::mt19937_64& rng) {
  if (v.empty()) return;
  switch (rng() % 4) {
    case 0: v[rng() % v.size()] ^= uint8_t(1u << (rng() % 8)); break;
    case 1: for (int i = 0; i < 8; i++) v[rng() % v.size()] = uint8_t(rng()); break;
    case 2: v.resize(rng() % v.size()); break;
    default: {  // a plausible-looking huge length somewhere
      size_t at = rng() % v.size();
      for (size_t i = at; i < std::min(v.size(), at + 4); i++) v[i] = 0xFF;
    }
  }
}

TEST(DecoderFuzzTest, Superblock) {
  std::mt19937_64 rng(TestSeed(1));
  Superblock sb;
  sb.members = 6; sb.data_shards = 4; sb.parity_shards = 2; sb.chunk_bytes = 4096;
  sb.segment_column_bytes = 1 << 20; sb.member_size_bytes = 1ull << 30; sb.journal_bytes = 4 << 20;
  sb.data_offset_bytes = 8 << 20; sb.segments = 6; sb.checkpoint_root.segment = kNoSegment;
  std::vector<uint8_t> good(4096);
  EncodeSuperblock(sb, good.data());
  Superblock out;
  ASSERT_TRUE(DecodeSuperblock(good.data(), &out).ok());
  int accepted = 0;
  for (int i = 0; i < kRounds; i++) {
    std::vector<uint8_t> v = good;
    Mutate(v, rng);
    v.resize(4096, 0);
    if (DecodeSuperblock(v.data(), &out).ok() && v != good) accepted++;
  }
  // Any change outside the CRC'd bytes is impossible; every mutation must be rejected.
  EXPECT_EQ(accepted, 0);
  // Geometry that passes the CRC but not validation (a buggy writer): rejected by name.
  sb.data_shards = 40;
  EncodeSuperblock(sb, good.data());
  Status s = DecodeSuperblock(good.data(), &out);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
}

TEST(DecoderFuzzTest, JournalBatch) {
  std::mt19937_64 rng(TestSeed(2));
  Encoder recs;
  MetaState::RecSegOpen(&recs, 3, SegKind::kData);
  Extent x{3, 0, 0x1234, 0, 4096, 0};  // segment, offset, crc, refs, length, flags
  MetaState::RecNewExtent(&recs, 0, x, 77);
  uint32_t ids[2] = {0, kHoleId};
  MetaState::RecMap(&recs, 9, 100, ids, 2);
  std::vector<uint8_t> good(BatchBytes(uint32_t(recs.size())));
  EncodeBatch(42, 7, recs.buf().data(), uint32_t(recs.size()), 3, good.data());
  BatchHeader h;
  ASSERT_TRUE(DecodeBatchHeader(good.data(), 42, 7, 1 << 20, &h));
  ASSERT_TRUE(VerifyBatchPayload(h, good.data()));
  int accepted = 0;
  for (int i = 0; i < kRounds; i++) {
    std::vector<uint8_t> v = good;
    Mutate(v, rng);
    v.resize(good.size(), 0);
    // Only header + payload are covered; the zero padding after them carries no meaning.
    const size_t covered = kJournalHeaderBytes + recs.size();
    if (DecodeBatchHeader(v.data(), 42, 7, 1 << 20, &h) && VerifyBatchPayload(h, v.data()) &&
        !std::equal(v.begin(), v.begin() + covered, good.begin()))
      accepted++;
  }
  EXPECT_EQ(accepted, 0);
}

TEST(DecoderFuzzTest, RecordsApplyNeverCrash) {
  std::mt19937_64 rng(TestSeed(3));
  Encoder recs;
  MetaState::RecSegOpen(&recs, 3, SegKind::kData);
  Extent x{3, 0, 0x1234, 0, 4096, 0};  // segment, offset, crc, refs, length, flags
  MetaState::RecNewExtent(&recs, 0, x, 77);
  uint32_t ids[2] = {0, kHoleId};
  MetaState::RecMap(&recs, 9, 100, ids, 2);
  CatalogTxn t;
  t.Put("key", "value");
  t.TruncateObject(9, 1);
  MetaState::RecCatalog(&recs, t);
  MetaState::RecClone(&recs, 9, 0, 10, 0, 5);
  MetaState::RecTrim(&recs, 9, 0, 1000);
  const std::vector<uint8_t> good = recs.buf();
  int applied = 0;
  for (int i = 0; i < kRounds; i++) {
    MetaState st;
    st.Init(16, true, 16ull << 20);
    std::vector<uint8_t> v = good;
    Mutate(v, rng);
    if (rng() % 10 == 0)
      for (auto& b : v) b = uint8_t(rng());  // pure noise
    if (st.ApplyAll(v.data(), v.size(), 6).ok()) applied++;
    // Whatever was applied, derived state must stay self-consistent.
    std::vector<std::string> problems;
    EXPECT_EQ(st.VerifyDerived(&problems), 0u) << (problems.empty() ? "" : problems[0]);
  }
  EXPECT_GT(applied, 0);  // the harness is not rejecting everything
}

TEST(DecoderFuzzTest, CheckpointImageNeverCrash) {
  std::mt19937_64 rng(TestSeed(4));
  MetaState src;
  src.Init(16, true, 16ull << 20);
  Encoder recs;
  MetaState::RecSegOpen(&recs, 2, SegKind::kData);
  for (uint32_t i = 0; i < 20; i++) {
    Extent x{2, i * 4096, i, 0, 4096, 0};  // segment, offset, crc, refs, length, flags
    MetaState::RecNewExtent(&recs, i, x, 1000 + i);
    uint32_t id = i;
    MetaState::RecMap(&recs, 5, i, &id, 1);
  }
  CatalogTxn t;
  t.Put("a", "b");
  MetaState::RecCatalog(&recs, t);
  ASSERT_TRUE(src.ApplyAll(recs.buf().data(), recs.size(), 42).ok());
  Encoder img;
  src.Serialize(&img);
  const std::vector<uint8_t> good = img.buf();
  {
    MetaState st;
    st.Init(16, true, 16ull << 20);
    ASSERT_TRUE(st.Deserialize(good.data(), good.size()).ok());
    EXPECT_EQ(st.mapped_blocks(), 20u);
  }
  for (int i = 0; i < kRounds; i++) {
    MetaState st;
    st.Init(16, true, 16ull << 20);
    std::vector<uint8_t> v = good;
    Mutate(v, rng);
    if (st.Deserialize(v.data(), v.size()).ok()) {
      std::vector<std::string> problems;
      EXPECT_EQ(st.VerifyDerived(&problems), 0u) << (problems.empty() ? "" : problems[0]);
    }
  }
}

}  // namespace
}  // namespace astra::test
