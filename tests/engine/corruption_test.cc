// Corruption (DESIGN invariants 2, 5, 6): bytes flipped in each kind of on-disk structure —
// superblock copies, journal batches, checkpoint, extents, parity — are detected; redundancy
// repairs them; beyond redundancy the error is clear and the rest of the pool stays readable.
#include <gtest/gtest.h>

#include <map>

#include "superblock_format.h"
#include "test_util.h"

namespace astra::test {
namespace {

struct Fixture {
  MemPool mp{6, 16ull << 20};
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> tags;
  Fixture() {
    auto devs = mp.Devices();
    EXPECT_TRUE(Pool::Format(devs, SmallFormat()).ok());
  }
  std::unique_ptr<Pool> Open() {
    auto r = Pool::Open(mp.Devices(), TestOpen());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }
  void Fill(Pool& p, uint64_t obj, uint32_t n, uint64_t tag0) {
    std::vector<uint8_t> buf(n * 4096ull);
    for (uint32_t i = 0; i < n; i++) {
      FillBlock(&buf[i * 4096ull], tag0 + i, (tag0 + i) % 2 == 0);
      tags[{obj, i}] = tag0 + i;
    }
    ASSERT_TRUE(p.Write(obj, 0, n, buf.data()).ok());
  }
  // Power fails: the pool is dropped without a clean close (its close fails on dead devices).
  void Crash(std::unique_ptr<Pool>& p) {
    for (auto& d : mp.faulty) d->SetDead(true);
    p.reset();
    for (auto& d : mp.faulty) d->SetDead(false);
  }
  void Verify(Pool& p) {
    uint8_t got[4096], want[4096];
    for (auto& [k, t] : tags) {
      Status s = p.Read(k.first, k.second, 1, got);
      ASSERT_TRUE(s.ok()) << "object " << k.first << " block " << k.second << ": " << s.ToString();
      FillBlock(want, t, t % 2 == 0);
      ASSERT_EQ(0, memcmp(want, got, 4096)) << "object " << k.first << " block " << k.second;
    }
  }
  Superblock Sb(uint32_t member) {
    AlignedBuf b = AllocAligned(4096);
    EXPECT_TRUE(mp.mem[member]->Read(0, b.get(), 4096).ok());
    Superblock sb;
    Status s = DecodeSuperblock(b.get(), &sb);
    if (!s.ok()) {
      EXPECT_TRUE(mp.mem[member]->Read(kSuperblockBOffset, b.get(), 4096).ok());
      EXPECT_TRUE(DecodeSuperblock(b.get(), &sb).ok());
    }
    return sb;
  }
  // XORs `mask` into the byte at `offset` of member `member` (bypassing the pool).
  void Flip(uint32_t member, uint64_t offset, uint8_t mask = 0x5A) {
    AlignedBuf b = AllocAligned(4096);
    uint64_t base = offset / 4096 * 4096;
    ASSERT_TRUE(mp.mem[member]->Read(base, b.get(), 4096).ok());
    b[offset - base] ^= mask;
    ASSERT_TRUE(mp.mem[member]->Write(base, b.get(), 4096).ok());
  }
  // Device location of a data-space byte of a segment.
  std::pair<uint32_t, uint64_t> Locate(uint32_t seg, uint64_t data_off, uint32_t* column = nullptr) {
    Superblock sb = Sb(0);
    Placement pl{sb.members, sb.data_shards + sb.parity_shards, sb.data_offset_bytes, sb.segment_column_bytes};
    uint64_t sdb = uint64_t(sb.data_shards) * sb.chunk_bytes;
    uint32_t col = uint32_t((data_off % sdb) / sb.chunk_bytes);
    if (column) *column = col;
    return {pl.MemberOf(seg, col), pl.ColumnOffset(seg, col) + (data_off / sdb) * sb.chunk_bytes + data_off % sb.chunk_bytes};
  }
  // Finds where the stored (raw) bytes of block `tag` lie: (member, device offset, segment).
  struct Where { uint32_t member; uint64_t offset; uint32_t seg; uint32_t row; };
  Where Find(uint64_t tag) {
    uint8_t want[4096];
    FillBlock(want, tag, false);
    Superblock sb = Sb(0);
    AlignedBuf b = AllocAligned(4096);
    for (uint32_t m = 0; m < sb.members; m++)
      for (uint64_t off = sb.data_offset_bytes; off + 4096 <= sb.member_size_bytes; off += 4096) {
        EXPECT_TRUE(mp.mem[m]->Read(off, b.get(), 4096).ok());
        for (uint32_t i = 0; i + 32 <= 4096; i++)  // extents are packed at byte granularity
          if (b[i] == want[0] && memcmp(b.get() + i, want, 32) == 0) {
            uint64_t slot = (off - sb.data_offset_bytes) / sb.segment_column_bytes;
            uint32_t w = sb.data_shards + sb.parity_shards, c = uint32_t(slot % w);
            uint32_t seg = uint32_t((slot / w) * sb.members + (m + sb.members - c) % sb.members);
            uint32_t row = uint32_t(((off - sb.data_offset_bytes) % sb.segment_column_bytes) / sb.chunk_bytes);
            return {m, off + i, seg, row};
          }
      }
    return {UINT32_MAX, 0, 0, 0};  // straddles a chunk boundary: the caller picks another
  }
  std::pair<uint32_t, uint64_t> LocateParity(uint32_t seg, uint32_t row, uint32_t parity_index) {
    Superblock sb = Sb(0);
    Placement pl{sb.members, sb.data_shards + sb.parity_shards, sb.data_offset_bytes, sb.segment_column_bytes};
    uint32_t col = sb.data_shards + parity_index;
    return {pl.MemberOf(seg, col), pl.ColumnOffset(seg, col) + uint64_t(row) * sb.chunk_bytes};
  }
};

TEST(CorruptionTest, SuperblockCopies) {
  Fixture f;
  {
    auto p = f.Open();
    f.Fill(*p, 1, 32, 100);
    ASSERT_TRUE(p->Close().ok());
  }
  f.Flip(0, 100);                          // copy A of member 0
  f.Flip(3, kSuperblockBOffset + 7);       // copy B of member 3
  {
    OpenOptions ro = TestOpen();
    ro.read_only = true;  // fsck -n: detect, change nothing
    auto r = Pool::Open(f.mp.Devices(), ro);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    f.Verify(**r);
    auto rep = (*r)->Check(false);
    ASSERT_TRUE(rep.ok());
    EXPECT_EQ(rep->other_errors, 2u) << (rep->problems.empty() ? "" : rep->problems[0]);
  }
  {
    auto p = f.Open();  // a writable open rewrites both copies on every member
    ASSERT_TRUE(p);
    ASSERT_TRUE(p->Scrub().ok());
    ASSERT_TRUE(p->Close().ok());
  }
  {
    auto p = f.Open();
    auto rep = p->Check(false);
    EXPECT_TRUE(rep->clean()) << (rep->problems.empty() ? "" : rep->problems[0]);
    ASSERT_TRUE(p->Close().ok());
  }
  // Both copies of one member destroyed: the member counts as missing; the pool opens degraded.
  f.Flip(2, 0);
  f.Flip(2, kSuperblockBOffset);
  auto p = f.Open();
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->GetStatus().degraded);
  f.Verify(*p);
}

TEST(CorruptionTest, JournalBatches) {
  Fixture f;
  Superblock sb = f.Sb(0);
  {
    auto p = f.Open();
    f.Fill(*p, 1, 16, 200);
    ASSERT_TRUE(p->Flush().ok());  // batch 1 after the open checkpoint
    f.Crash(p);                    // no close: the journal carries the data
  }
  sb = f.Sb(0);
  uint64_t head = sb.journal_offset_bytes + sb.journal_head_offset;
  f.Flip(0, head + 200);  // payload of the first batch on member 0 only
  f.Flip(1, head + 10);   // header of the first batch on member 1 only
  {
    auto p = f.Open();
    ASSERT_TRUE(p);
    f.Verify(*p);  // the other members' copies of the journal carry it
    f.Fill(*p, 2, 8, 300);
    ASSERT_TRUE(p->Flush().ok());
    f.Fill(*p, 3, 8, 400);
    ASSERT_TRUE(p->Flush().ok());
    f.Crash(p);
  }
  // The same batch corrupt on every member while a later batch is intact: not a torn tail,
  // so opening must refuse with a clear error rather than silently drop acknowledged writes.
  sb = f.Sb(0);
  head = sb.journal_offset_bytes + sb.journal_head_offset;
  for (uint32_t i = 0; i < 6; i++) f.Flip(i, head + 300);
  auto r = Pool::Open(f.mp.Devices(), TestOpen());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("journal"), std::string::npos) << r.status().ToString();
}

TEST(CorruptionTest, CheckpointImage) {
  Fixture f;
  {
    auto p = f.Open();
    f.Fill(*p, 1, 64, 500);
    CatalogTxn t;
    t.Put("inode/1", std::string(3000, 'i'));
    ASSERT_TRUE(p->Commit(t).ok());
    ASSERT_TRUE(p->Close().ok());
  }
  Superblock sb = f.Sb(0);
  ASSERT_NE(sb.checkpoint_root.segment, kNoSegment);
  auto [m1, o1] = f.Locate(sb.checkpoint_root.segment, sb.checkpoint_root.offset + 5);
  f.Flip(m1, o1);  // the root record
  auto [m2, o2] = f.Locate(sb.checkpoint_root.segment, 40);
  if (m2 != m1) f.Flip(m2, o2);  // the image body (on another member: still within parity)
  auto p = f.Open();
  ASSERT_TRUE(p);
  f.Verify(*p);
  EXPECT_EQ(p->Get("inode/1")->size(), 3000u);
}

TEST(CorruptionTest, ExtentsAndParityAreRepairedByScrub) {
  Fixture f;
  {
    auto p = f.Open();
    f.Fill(*p, 1, 96, 600);
    ASSERT_TRUE(p->Close().ok());
  }
  // Bit rot in three stored blocks (incompressible: odd tags), and in one parity chunk.
  Fixture::Where w0{UINT32_MAX, 0, 0, 0};
  int flipped = 0;
  for (uint64_t tag = 601; tag < 690 && flipped < 3; tag += 10) {
    auto w = f.Find(tag);
    if (w.member == UINT32_MAX) continue;
    if (w0.member == UINT32_MAX) w0 = w;
    f.Flip(w.member, w.offset + 17);
    flipped++;
  }
  ASSERT_EQ(flipped, 3);
  auto [pm, po] = f.LocateParity(w0.seg, w0.row + 3, 1);
  f.Flip(pm, po + 64);
  auto p = f.Open();
  ASSERT_TRUE(p);
  auto rep = p->Check(false);
  ASSERT_TRUE(rep.ok());
  EXPECT_GE(rep->checksum_errors, 1u);
  EXPECT_GE(rep->parity_errors, 1u);
  f.Verify(*p);  // reads rebuild and repair
  auto scrub = p->Scrub();
  ASSERT_TRUE(scrub.ok());
  auto after = p->Check(false);
  EXPECT_TRUE(after->clean()) << (after->problems.empty() ? "" : after->problems[0]);
  f.Verify(*p);
}

TEST(CorruptionTest, BeyondRedundancyIsAClearErrorAndTheRestStaysReadable) {
  Fixture f;
  {
    auto p = f.Open();
    f.Fill(*p, 1, 64, 900);
    ASSERT_TRUE(p->Close().ok());
  }
  // The row holding block 901: corrupt three of its six chunks (more than m = 2).
  auto w = f.Find(901);
  if (w.member == UINT32_MAX) w = f.Find(903);
  ASSERT_NE(w.member, UINT32_MAX);
  Superblock sb = f.Sb(0);
  Placement pl{sb.members, sb.data_shards + sb.parity_shards, sb.data_offset_bytes, sb.segment_column_bytes};
  for (uint32_t c = 0; c < 3; c++) {
    uint64_t o = pl.ColumnOffset(w.seg, c) + uint64_t(w.row) * sb.chunk_bytes;
    for (uint64_t x = 0; x < 4096; x += 512) f.Flip(pl.MemberOf(w.seg, c), o + x);
  }
  auto p = f.Open();
  ASSERT_TRUE(p);
  uint8_t got[4096];
  int bad = 0, good = 0;
  for (uint64_t b = 0; b < 64; b++) {
    Status s = p->Read(1, b, 1, got);
    if (!s.ok()) {
      EXPECT_TRUE(s.IsCorruption()) << s.ToString();
      EXPECT_NE(s.message().find("object 1 block"), std::string::npos) << s.ToString();
      bad++;
    } else {
      uint8_t want[4096];
      FillBlock(want, 900 + b, (900 + b) % 2 == 0);
      EXPECT_EQ(0, memcmp(want, got, 4096)) << "block " << b << " returned wrong bytes silently";
      good++;
    }
  }
  EXPECT_GT(bad, 0);
  EXPECT_GT(good, 50);
  // One batch of the same 64 reads: the same blocks fail, with the same clear error, and every
  // other op returns its bytes.
  std::vector<uint8_t> all(64 * 4096);
  std::vector<ReadOp> ops;
  for (uint64_t b = 0; b < 64; b++) ops.push_back({1, b, 1, all.data() + b * 4096, {}});
  Status s = p->ReadBatch(ops);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  int batch_bad = 0;
  for (uint64_t b = 0; b < 64; b++) {
    Status single = p->Read(1, b, 1, got);
    ASSERT_EQ(single.ok(), ops[b].status.ok()) << "block " << b << ": " << ops[b].status.ToString();
    if (!ops[b].status.ok()) {
      EXPECT_NE(ops[b].status.message().find("object 1 block " + std::to_string(b)), std::string::npos)
          << ops[b].status.ToString();
      batch_bad++;
      continue;
    }
    uint8_t want[4096];
    FillBlock(want, 900 + b, (900 + b) % 2 == 0);
    EXPECT_EQ(0, memcmp(want, all.data() + b * 4096, 4096)) << "block " << b;
  }
  EXPECT_EQ(bad, batch_bad);
}

}  // namespace
}  // namespace astra::test
