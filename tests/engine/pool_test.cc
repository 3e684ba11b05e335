// Engine pool tests on RAM devices: format/open, data and catalogue round trips, persistence,
// data reduction, and errors for bad input.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>

#include "test_util.h"

namespace astra::test {
namespace {

std::unique_ptr<Pool> OpenOk(MemPool& mp, std::vector<uint32_t> skip = {}, OpenOptions o = TestOpen()) {
  auto r = Pool::Open(mp.Devices(skip), o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : nullptr;
}

// Formats `mp` (4+2, SmallFormat) and opens it.
std::unique_ptr<Pool> FormatAndOpen(MemPool& mp) {
  auto devs = mp.Devices();
  EXPECT_TRUE(Pool::Format(devs, SmallFormat()).ok());
  return OpenOk(mp);
}

void ExpectBlock(Pool& p, ObjectId obj, uint64_t block, uint64_t tag, bool comp = false) {
  uint8_t want[4096], got[4096];
  FillBlock(want, tag, comp);
  Status s = p.Read(obj, block, 1, got);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(0, memcmp(want, got, 4096)) << "object " << obj << " block " << block << " tag " << tag;
}

void WriteBlock(Pool& p, ObjectId obj, uint64_t block, uint64_t tag, bool comp = false) {
  uint8_t b[4096];
  FillBlock(b, tag, comp);
  Status s = p.Write(obj, block, 1, b);
  ASSERT_TRUE(s.ok()) << s.ToString();
}

TEST(PoolTest, FormatOpenWriteReadReopen) {
  MemPool mp(6);
  auto devs = mp.Devices();
  ASSERT_TRUE(Pool::Format(devs, SmallFormat()).ok());
  {
    auto p = OpenOk(mp);
    ASSERT_TRUE(p);
    for (uint64_t b = 0; b < 300; b++) WriteBlock(*p, 100, b, b + 1, b % 3 == 0);
    for (uint64_t b = 0; b < 300; b++) ExpectBlock(*p, 100, b, b + 1, b % 3 == 0);
    ASSERT_TRUE(p->Flush().ok());
    for (uint64_t b = 0; b < 300; b += 7) WriteBlock(*p, 100, b, 1000 + b);
    ASSERT_TRUE(p->Close().ok());
  }
  auto p = OpenOk(mp);
  ASSERT_TRUE(p);
  for (uint64_t b = 0; b < 300; b++) ExpectBlock(*p, 100, b, b % 7 == 0 ? 1000 + b : b + 1, b % 7 != 0 && b % 3 == 0);
  auto rep = p->Check(false);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->clean()) << (rep->problems.empty() ? "" : rep->problems[0]);
  EXPECT_GT(rep->stripes_checked, 0u);
}

TEST(PoolTest, MultiBlockWritesHolesTrimClone) {
  MemPool mp(6);
  auto devs = mp.Devices();
  ASSERT_TRUE(Pool::Format(devs, SmallFormat()).ok());
  auto p = OpenOk(mp);
  std::vector<uint8_t> buf(64 * 4096);
  for (int i = 0; i < 64; i++) FillBlock(&buf[i * 4096], i % 5 == 0 ? 0 : 500 + i);
  ASSERT_TRUE(p->Write(7, 10, 64, buf.data()).ok());
  std::vector<uint8_t> got(64 * 4096);
  ASSERT_TRUE(p->Read(7, 10, 64, got.data()).ok());
  EXPECT_EQ(buf, got);
  EXPECT_EQ(p->ObjectMappedBlocks(7), 64u - 13u);  // zero blocks are holes
  ASSERT_TRUE(p->Trim(7, 20, 10).ok());
  ExpectBlock(*p, 7, 20, 0);
  ExpectBlock(*p, 7, 31, 500 + 21);
  ASSERT_TRUE(p->CloneRange(7, 10, 8, 0, 64).ok());
  ASSERT_TRUE(p->Trim(7, 0, 1000).ok());
  ExpectBlock(*p, 8, 1, 501);
  ExpectBlock(*p, 8, 15, 0);
  EXPECT_EQ(p->ObjectBlockEnd(8), 64u);
  EXPECT_EQ(p->ObjectMappedBlocks(7), 0u);
  ASSERT_TRUE(p->Close().ok());
  auto q = OpenOk(mp);
  ExpectBlock(*q, 8, 1, 501);
  ExpectBlock(*q, 7, 1, 0);
  auto rep = q->Check(false);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->clean());
}

// ReadBatch returns, for every op, what Read() of the same range returns: raw and compressed
// blocks, holes, blocks still in the write buffer, ops that overlap and ops in several objects,
// in one batch; a bad op fails alone.
TEST(PoolTest, ReadBatchReadsEveryOpAsReadDoes) {
  MemPool mp(6);
  auto p = FormatAndOpen(mp);
  ASSERT_TRUE(p);
  std::vector<uint8_t> buf(64 * 4096);
  for (ObjectId obj : {1, 2}) {
    for (int i = 0; i < 64; i++) FillBlock(&buf[i * 4096], i % 9 == 0 ? 0 : obj * 1000 + i, i % 3 == 0);
    ASSERT_TRUE(p->Write(obj, 0, 64, buf.data()).ok());
  }
  ASSERT_TRUE(p->Flush().ok());
  // Object 3 stays in the open segment's buffer (a few blocks, no flush).
  for (int i = 0; i < 3; i++) FillBlock(&buf[i * 4096], 3000 + i);
  ASSERT_TRUE(p->Write(3, 5, 3, buf.data()).ok());

  std::mt19937_64 rng(TestSeed(7));
  for (int round = 0; round < 20; round++) {
    std::vector<ReadOp> ops(1 + rng() % 40);
    std::vector<std::vector<uint8_t>> out(ops.size());
    for (size_t i = 0; i < ops.size(); i++) {
      ops[i].obj = 1 + rng() % 3;
      ops[i].block = rng() % 70;  // beyond the end reads zeros
      ops[i].count = 1 + uint32_t(rng() % 8);
      out[i].assign(ops[i].count * 4096ull + 1, 0xEE);
      ops[i].buf = out[i].data() + 1;  // unaligned on purpose
    }
    ASSERT_TRUE(p->ReadBatch(ops).ok());
    for (size_t i = 0; i < ops.size(); i++) {
      ASSERT_TRUE(ops[i].status.ok()) << ops[i].status.ToString();
      std::vector<uint8_t> want(ops[i].count * 4096ull);
      ASSERT_TRUE(p->Read(ops[i].obj, ops[i].block, ops[i].count, want.data()).ok());
      ASSERT_EQ(0, memcmp(want.data(), out[i].data() + 1, want.size()))
          << "round " << round << " op " << i << ": object " << ops[i].obj << " block " << ops[i].block;
    }
  }
  // Spot-check against the written pattern, not only against Read().
  uint8_t want[4096], got[4096];
  std::vector<ReadOp> ops = {{2, 10, 1, got, {}}, {1, 0, 0, buf.data(), {}}, {3, 6, 1, buf.data(), {}}};
  Status s = p->ReadBatch(ops);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_TRUE(ops[0].status.ok());
  EXPECT_TRUE(ops[1].status.IsInvalidArgument()) << ops[1].status.ToString();
  EXPECT_TRUE(ops[2].status.ok());
  FillBlock(want, 2000 + 10, 10 % 3 == 0);
  EXPECT_EQ(0, memcmp(want, got, 4096));
  FillBlock(want, 3001);
  EXPECT_EQ(0, memcmp(want, buf.data(), 4096));
  EXPECT_TRUE(p->ReadBatch({}).ok());
}

// WriteBatch applies every op as Write() would, in order: random batches of overlapping ops in
// several objects, with zero blocks (holes), compressible blocks and repeated blocks (dedup),
// checked block by block against a model after every batch, after a reopen, and by fsck; bad ops
// fail alone; four threads batch into their own objects at once.
TEST(PoolTest, WriteBatchAppliesEveryOpAsWriteDoes) {
  MemPool mp(6);
  auto p = FormatAndOpen(mp);
  ASSERT_TRUE(p);
  std::map<std::pair<ObjectId, uint64_t>, uint64_t> model;  // block -> tag (absent: zeros)
  auto expect_all = [&](Pool& pool, const char* when) {
    for (ObjectId obj = 1; obj <= 3; obj++)
      for (uint64_t b = 0; b < 80; b++) {
        auto it = model.find({obj, b});
        uint8_t want[4096], got[4096];
        FillBlock(want, it == model.end() ? 0 : it->second, it != model.end() && it->second % 3 == 0);
        ASSERT_TRUE(pool.Read(obj, b, 1, got).ok());
        ASSERT_EQ(0, memcmp(want, got, 4096)) << when << ": object " << obj << " block " << b;
      }
  };
  std::mt19937_64 rng(TestSeed(11));
  for (int round = 0; round < 30; round++) {
    std::vector<WriteOp> ops(1 + rng() % 32);
    std::vector<std::vector<uint8_t>> bufs(ops.size());
    for (size_t i = 0; i < ops.size(); i++) {
      ops[i].obj = 1 + rng() % 3;
      ops[i].block = rng() % 72;
      ops[i].count = 1 + uint32_t(rng() % 8);
      bufs[i].assign(ops[i].count * 4096ull + 1, 0);
      for (uint32_t j = 0; j < ops[i].count; j++) {
        // Tags from a small range repeat (dedup candidates); tag 0 is a zero block (a hole).
        const uint64_t tag = rng() % 5 == 0 ? 0 : 1 + rng() % 200;
        FillBlock(bufs[i].data() + 1 + j * 4096ull, tag, tag % 3 == 0);
        if (tag) model[{ops[i].obj, ops[i].block + j}] = tag;
        else model.erase({ops[i].obj, ops[i].block + j});
      }
      ops[i].buf = bufs[i].data() + 1;  // unaligned on purpose
    }
    Status s = p->WriteBatch(ops);
    ASSERT_TRUE(s.ok()) << s.ToString();
    for (const WriteOp& op : ops) ASSERT_TRUE(op.status.ok()) << op.status.ToString();
    expect_all(*p, "after a batch");
    if (round % 10 == 9) {
      ASSERT_TRUE(p->Flush().ok());
    }
  }
  // Bad ops fail alone; the good ones around them are applied.
  uint8_t b1[4096], b2[4096];
  FillBlock(b1, 901);
  FillBlock(b2, 902);
  std::vector<uint8_t> big(257 * 4096ull, 1);
  std::vector<WriteOp> ops = {{1, 0, 1, b1, {}}, {1, 1, 257, big.data(), {}}, {2, UINT64_MAX - 1, 1, b1, {}},
                              {2, 0, 1, nullptr, {}}, {3, 0, 1, b2, {}}, {3, 1, 0, nullptr, {}}};
  Status s = p->WriteBatch(ops);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_TRUE(ops[0].status.ok()) << ops[0].status.ToString();
  EXPECT_TRUE(ops[1].status.IsInvalidArgument()) << ops[1].status.ToString();
  EXPECT_TRUE(ops[2].status.IsInvalidArgument()) << ops[2].status.ToString();
  EXPECT_TRUE(ops[3].status.IsInvalidArgument()) << ops[3].status.ToString();
  EXPECT_TRUE(ops[4].status.ok()) << ops[4].status.ToString();
  EXPECT_TRUE(ops[5].status.ok()) << ops[5].status.ToString();  // an empty op is nothing to do
  model[{1, 0}] = 901;
  model[{3, 0}] = 902;
  expect_all(*p, "after a batch with bad ops");
  EXPECT_TRUE(p->WriteBatch({}).ok());

  // Four threads, each batching into its own object (10 + t), at once.
  std::vector<std::thread> th;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; t++)
    th.emplace_back([&, t] {
      std::vector<uint8_t> data(16 * 4096);
      for (int round = 0; round < 20; round++) {
        std::vector<WriteOp> ops;
        for (uint32_t j = 0; j < 16; j++) {
          FillBlock(data.data() + j * 4096ull, 100000 + t * 10000 + round * 100 + j);
          ops.push_back({ObjectId(10 + t), (round * 7 + j * 5) % 64, 1, data.data() + j * 4096ull, {}});
        }
        if (!p->WriteBatch(ops).ok()) bad++;
      }
    });
  for (auto& x : th) x.join();
  ASSERT_EQ(bad.load(), 0);
  // Each thread's batches in order, each batch's ops in order: the last write of a block wins.
  std::map<std::pair<ObjectId, uint64_t>, uint64_t> threads_model;
  for (int t = 0; t < 4; t++)
    for (int round = 0; round < 20; round++)
      for (uint32_t j = 0; j < 16; j++)
        threads_model[{ObjectId(10 + t), (round * 7 + j * 5) % 64}] = 100000 + t * 10000 + round * 100 + j;
  auto expect_threads = [&](Pool& pool) {
    for (auto& [k, tag] : threads_model) {
      uint8_t want[4096], got[4096];
      FillBlock(want, tag);
      ASSERT_TRUE(pool.Read(k.first, k.second, 1, got).ok());
      ASSERT_EQ(0, memcmp(want, got, 4096)) << "object " << k.first << " block " << k.second;
    }
  };
  expect_threads(*p);
  ASSERT_TRUE(p->Flush().ok());
  ASSERT_TRUE(p->Close().ok());
  auto q = OpenOk(mp);
  ASSERT_TRUE(q);
  expect_all(*q, "after a reopen");
  expect_threads(*q);
  auto rep = q->Check(false);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->clean()) << (rep->problems.empty() ? "" : rep->problems[0]);
}

// With a member failed, a batch still returns every block (rebuilt from the other chunks).
TEST(PoolTest, ReadBatchRebuildsThroughAFailedMember) {
  MemPool mp(6);
  auto p = FormatAndOpen(mp);
  ASSERT_TRUE(p);
  std::vector<uint8_t> buf(128 * 4096);
  for (int i = 0; i < 128; i++) FillBlock(&buf[i * 4096], 70000 + i);
  ASSERT_TRUE(p->Write(9, 0, 128, buf.data()).ok());
  ASSERT_TRUE(p->Flush().ok());
  ASSERT_TRUE(p->FailMember(2).ok());
  std::vector<uint8_t> got(128 * 4096, 0);
  std::vector<ReadOp> ops;
  for (uint32_t b = 0; b < 128; b++) ops.push_back({9, 127 - b, 1, got.data() + (127 - b) * 4096ull, {}});
  Status s = p->ReadBatch(ops);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(buf, got);
}

// Segments larger than the write buffer (4 MiB columns: 16 MiB of data per segment, the ring
// holds ~4 MiB): rows on the devices give up their ring slots only when an append needs the room
// (CompactLocked), and the ring wraps several times per segment. Blocks still buffered are read
// back after every write, everything after the writes, after a flush and after a reopen; a wrong
// compaction, or a stripe batch written across the ring's end, returns wrong bytes or a checksum
// error here.
TEST(PoolTest, WriteBufferCompactionKeepsBufferedAndWrittenBlocks) {
  MemPool mp(6, 128ull << 20);
  auto devs = mp.Devices();
  FormatOptions f = SmallFormat();
  f.segment_column_bytes = 4u << 20;
  f.compression = Compression::kNone;
  ASSERT_TRUE(Pool::Format(devs, f).ok());
  constexpr uint32_t kPerWrite = 32, kBlocks = 12 * 256;  // 12 MiB: three buffers' worth
  auto check = [](Pool& p, uint64_t first, uint64_t n) {
    std::vector<uint8_t> got(n * 4096), want(4096);
    ASSERT_TRUE(p.Read(5, first, uint32_t(n), got.data()).ok());
    for (uint64_t b = 0; b < n; b++) {
      FillBlock(want.data(), 900000 + first + b);
      ASSERT_EQ(0, memcmp(want.data(), got.data() + b * 4096, 4096)) << "block " << first + b;
    }
  };
  {
    auto p = OpenOk(mp);
    ASSERT_TRUE(p);
    std::vector<uint8_t> buf(kPerWrite * 4096);
    for (uint64_t b = 0; b < kBlocks; b += kPerWrite) {
      for (uint32_t i = 0; i < kPerWrite; i++) FillBlock(&buf[i * 4096ull], 900000 + b + i);
      ASSERT_TRUE(p->Write(5, b, kPerWrite, buf.data()).ok());
      check(*p, b, kPerWrite);                          // still in the buffer
      if (b >= 1024) check(*p, b - 1024, kPerWrite);    // 4 MiB back: on the devices
    }
    for (uint64_t b = 0; b < kBlocks; b += 256) check(*p, b, 256);
    ASSERT_TRUE(p->Flush().ok());
    for (uint64_t b = 0; b < kBlocks; b += 256) check(*p, b, 256);
    ASSERT_TRUE(p->Close().ok());
  }
  auto p = OpenOk(mp);
  ASSERT_TRUE(p);
  for (uint64_t b = 0; b < kBlocks; b += 256) check(*p, b, 256);
  auto rep = p->Check(false);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->clean()) << (rep->problems.empty() ? "" : rep->problems[0]);
}

TEST(PoolTest, CatalogueTransactions) {
  MemPool mp(3);
  auto devs = mp.Devices();
  ASSERT_TRUE(Pool::Format(devs, SmallFormat(2, 1)).ok());
  auto p = OpenOk(mp);
  CatalogTxn t;
  t.Put("a/1", "one");
  t.Put("a/2", "two");
  t.Put("b/1", std::string(60000, 'x'));
  ASSERT_TRUE(p->Commit(t).ok());
  CatalogTxn t2;
  t2.expect_absent.push_back("a/1");
  t2.Put("a/3", "three");
  EXPECT_EQ(p->Commit(t2).code(), Status::Code::kAborted);
  EXPECT_TRUE(p->Get("a/3").status().IsNotFound());
  auto id1 = p->AllocateId(), id2 = p->AllocateId();
  ASSERT_TRUE(id1.ok() && id2.ok());
  EXPECT_NE(*id1, *id2);
  ASSERT_TRUE(p->Flush().ok());
  p.reset();  // no Close(): the journal must carry everything flushed
  auto q = OpenOk(mp);
  EXPECT_EQ(*q->Get("a/2"), "two");
  EXPECT_EQ(q->Get("b/1")->size(), 60000u);
  std::vector<std::string> keys;
  ASSERT_TRUE(q->Scan("a/", "a0", [&](std::string_view k, std::string_view) { keys.emplace_back(k); return true; }).ok());
  EXPECT_EQ(keys, (std::vector<std::string>{"a/1", "a/2"}));
  auto id3 = q->AllocateId();
  EXPECT_GT(*id3, *id2);
}

// Group commit under pressure writes batches of up to 3/4 of the largest batch the journal takes
// (384 KiB with a 2 MiB journal region): such batches, and the one Flush() writes after them,
// must replay after a crash exactly.
TEST(PoolTest, LargeJournalBatchesReplayAfterACrash) {
  MemPool mp(3);
  auto devs = mp.Devices();
  ASSERT_TRUE(Pool::Format(devs, SmallFormat(2, 1)).ok());
  auto p = OpenOk(mp, {}, [] { OpenOptions o = TestOpen(); o.background_checkpoints = false; return o; }());
  ASSERT_NE(p, nullptr);
  auto value = [](int i) { return std::string(2500, char('a' + i % 26)) + std::to_string(i); };
  for (int i = 0; i < 300; i++) {  // ~760 KB of records: one batch written under pressure, one by Flush()
    CatalogTxn t;
    t.Put("k/" + std::to_string(i), value(i));
    ASSERT_TRUE(p->Commit(t).ok());
  }
  ASSERT_TRUE(p->Flush().ok());
  p.reset();  // no Close(), and the journal is not half full: no checkpoint, replay only
  auto q = OpenOk(mp);
  ASSERT_NE(q, nullptr);
  for (int i = 0; i < 300; i++) {
    auto v = q->Get("k/" + std::to_string(i));
    ASSERT_TRUE(v.ok()) << "key " << i << ": " << v.status().ToString();
    ASSERT_EQ(*v, value(i)) << "key " << i;
  }
}

TEST(PoolTest, DedupAndCompressionAccounting) {
  MemPool mp(6);
  auto devs = mp.Devices();
  ASSERT_TRUE(Pool::Format(devs, SmallFormat()).ok());
  auto p = OpenOk(mp);
  for (int i = 0; i < 50; i++) WriteBlock(*p, 1, i, 9000 + i);       // random: stored raw
  for (int i = 0; i < 50; i++) WriteBlock(*p, 2, i + 3, 9000 + i);   // same bytes: shared
  for (int i = 0; i < 50; i++) WriteBlock(*p, 3, i, 7000 + i, true); // compressible
  auto st = p->GetStatus();
  EXPECT_EQ(st.space.logical_bytes, 150u * 4096);
  EXPECT_EQ(st.space.dedup_saved_bytes, 50u * 4096);
  EXPECT_GT(st.space.compression_saved_bytes, 40u * 4096);
  EXPECT_LE(st.space.stored_bytes, 50u * 4096 + 10u * 4096);
  for (int i = 0; i < 50; i++) ExpectBlock(*p, 2, i + 3, 9000 + i);
  ASSERT_TRUE(p->Trim(1, 0, 50).ok());
  for (int i = 0; i < 50; i++) ExpectBlock(*p, 2, i + 3, 9000 + i);
  EXPECT_EQ(p->GetStatus().space.dedup_saved_bytes, 0u);
  auto rep = p->Check(false);
  EXPECT_TRUE(rep->clean());
}

TEST(PoolTest, ForcedFingerprintCollisionStoresSeparately) {
  MemPool mp(6);
  auto devs = mp.Devices();
  ASSERT_TRUE(Pool::Format(devs, SmallFormat()).ok());
  OpenOptions o = TestOpen();
  o.force_fingerprint = 42;  // every block collides with every other
  auto p = OpenOk(mp, {}, o);
  for (int i = 0; i < 20; i++) WriteBlock(*p, 5, i, 300 + i);
  for (int i = 0; i < 20; i++) ExpectBlock(*p, 5, i, 300 + i);
  WriteBlock(*p, 6, 0, 300);  // a true duplicate of the first block is still found
  EXPECT_EQ(p->GetStatus().space.dedup_saved_bytes, 4096u);
  ExpectBlock(*p, 6, 0, 300);
}

// Writes blocks [first, first + count) of `obj` in calls of `per_call` blocks, block b with tag
// tag_base + b (every third 8-block run compressible, so frames and raw blocks mix).
void WriteRun(Pool& p, ObjectId obj, uint64_t first, uint64_t count, uint64_t tag_base, uint32_t per_call) {
  std::vector<uint8_t> buf(per_call * 4096);
  for (uint64_t b = first; b < first + count; b += per_call) {
    uint32_t n = uint32_t(std::min<uint64_t>(per_call, first + count - b));
    for (uint32_t i = 0; i < n; i++) FillBlock(&buf[i * 4096], tag_base + b + i, (b + i) / 8 % 3 == 0);
    Status s = p.Write(obj, b, n, buf.data());
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
}

void ExpectRun(Pool& p, ObjectId obj, uint64_t first, uint64_t count, uint64_t tag_base) {
  for (uint64_t b = first; b < first + count; b++) ExpectBlock(p, obj, b, tag_base + b, b / 8 % 3 == 0);
}

void ExpectNoRepairs(Pool& p) {
  PoolStatus st = p.GetStatus();
  EXPECT_EQ(0u, st.repaired_blocks);
  for (const auto& m : st.member_status) EXPECT_EQ(0u, m.checksum_errors) << "member " << m.index;
}

// Duplicates of data stored in order (a second copy of a tree or an image) are verified through
// the dedup read window (stored bytes read a window at a time): every one is found, none is
// mistaken for a bad checksum (which would rebuild it and charge a member), reads are exact.
// Then the segments are freed and reused: a window of their old bytes must not be used.
TEST(PoolTest, SequentialDuplicatesAreVerifiedThroughTheReadWindow) {
  MemPool mp(6);
  auto devs = mp.Devices();
  ASSERT_TRUE(Pool::Format(devs, SmallFormat()).ok());
  auto p = OpenOk(mp);
  constexpr uint64_t n = 1024;  // 4 MiB: several 1 MiB segments
  WriteRun(*p, 1, 0, n, 20000, 32);
  WriteRun(*p, 2, 0, 256, 90000, 32);  // pushes object 1 out of the write buffer
  ASSERT_TRUE(p->Flush().ok());
  const uint64_t stored = p->GetStatus().space.stored_bytes;
  WriteRun(*p, 3, 0, n, 20000, 3);  // the same bytes, in calls that cut across frames
  PoolStatus st = p->GetStatus();
  EXPECT_EQ(n * 4096, st.space.dedup_saved_bytes);
  // One candidate per call at least; all but the first of each window come from the window.
  EXPECT_GE(st.dedup_window_hits, n / 3 * 3 / 4);
  EXPECT_EQ(stored, st.space.stored_bytes);
  ExpectNoRepairs(*p);
  ExpectRun(*p, 3, 0, n, 20000);
  ExpectRun(*p, 1, 0, n, 20000);

  // Free every segment, clean, and fill the same segments with other bytes; duplicate them.
  for (ObjectId o : {1, 2, 3}) {
    CatalogTxn t;
    t.DeleteObject(o);
    ASSERT_TRUE(p->Commit(t).ok());
  }
  ASSERT_TRUE(p->Flush().ok());
  ASSERT_TRUE(p->CollectGarbage(nullptr).ok());
  WriteRun(*p, 4, 0, n, 50000, 32);
  WriteRun(*p, 2, 0, 256, 90000, 32);
  ASSERT_TRUE(p->Flush().ok());
  const uint64_t hits = p->GetStatus().dedup_window_hits;
  WriteRun(*p, 5, 0, n, 50000, 3);
  EXPECT_EQ(n * 4096, p->GetStatus().space.dedup_saved_bytes);
  EXPECT_GE(p->GetStatus().dedup_window_hits - hits, n / 3 * 3 / 4);
  ExpectNoRepairs(*p);
  ExpectRun(*p, 5, 0, n, 50000);
  auto rep = p->Check(false);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->clean()) << (rep->problems.empty() ? "" : rep->problems[0]);
}

TEST(PoolTest, BadInputIsRefusedWithClearErrors) {
  MemPool mp(3, 8ull << 20);
  {
    auto devs = mp.Devices();
    FormatOptions o = SmallFormat(4, 2);
    Status s = Pool::Format(devs, o);
    EXPECT_TRUE(s.IsInvalidArgument());
    EXPECT_NE(s.message().find("larger than the number of members"), std::string::npos) << s.ToString();
  }
  {
    MemPool tiny(3, 2ull << 20);
    auto devs = tiny.Devices();
    Status s = Pool::Format(devs, SmallFormat(2, 1));
    EXPECT_TRUE(s.IsInvalidArgument());
    EXPECT_NE(s.message().find("too small"), std::string::npos) << s.ToString();
  }
  auto devs = mp.Devices();
  ASSERT_TRUE(Pool::Format(devs, SmallFormat(2, 1)).ok());
  devs = mp.Devices();
  Status s = Pool::Format(devs, SmallFormat(2, 1));
  EXPECT_EQ(s.code(), Status::Code::kExists) << s.ToString();
  // A blank device is not a member.
  MemPool other(1, 8ull << 20);
  auto v = mp.Devices();
  v.push_back(std::move(other.Devices()[0]));
  auto r = Pool::Open(std::move(v), TestOpen());
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not an AstraFS pool member"), std::string::npos) << r.status().ToString();
  // Members of two pools.
  MemPool second(3, 8ull << 20);
  auto d2 = second.Devices();
  ASSERT_TRUE(Pool::Format(d2, SmallFormat(2, 1)).ok());
  auto mix = mp.Devices({2});
  mix[2] = std::move(second.Devices()[2]);
  r = Pool::Open(std::move(mix), TestOpen());
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("different pools"), std::string::npos) << r.status().ToString();
}

}  // namespace
}  // namespace astra::test

namespace astra::test {
namespace {
// Regression: a write whose block 1 dedups against the extent that block 0 is overwriting.
TEST(PoolTest, DedupAgainstExtentDroppedInSameWrite) {
  MemPool mp(6);
  auto devs = mp.Devices();
  ASSERT_TRUE(Pool::Format(devs, SmallFormat()).ok());
  auto p = OpenOk(mp);
  WriteBlock(*p, 1, 0, 77);
  std::vector<uint8_t> buf(2 * 4096);
  FillBlock(&buf[0], 78);
  FillBlock(&buf[4096], 77);  // the bytes block 0 held until this very write
  ASSERT_TRUE(p->Write(1, 0, 2, buf.data()).ok());
  for (int i = 0; i < 20; i++) WriteBlock(*p, 2, i, 1000 + i);  // would reuse a wrongly freed id
  ExpectBlock(*p, 1, 0, 78);
  ExpectBlock(*p, 1, 1, 77);
  auto rep = p->Check(false);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->clean()) << rep->problems[0];
}
}  // namespace
}  // namespace astra::test

namespace astra::test {
namespace {
// Issue 3: the same bytes written to two volumes and a file (three objects of one pool) are
// stored once; removing copies keeps the others intact.
TEST(PoolTest, SameBytesInThreeObjectsAreStoredOnce) {
  MemPool mp(6);
  auto devs = mp.Devices();
  ASSERT_TRUE(Pool::Format(devs, SmallFormat()).ok());
  auto p = OpenOk(mp);
  std::vector<uint8_t> buf(64 * 4096);
  for (int i = 0; i < 64; i++) FillBlock(&buf[i * 4096ull], 4242 + i);  // incompressible
  ASSERT_TRUE(p->Write(101, 0, 64, buf.data()).ok());
  const uint64_t one_copy = p->GetStatus().space.stored_bytes;
  ASSERT_TRUE(p->Write(102, 1000, 64, buf.data()).ok());  // another volume, another offset
  for (int i = 0; i < 64; i += 8) ASSERT_TRUE(p->Write(103, 7 + i, 8, &buf[i * 4096ull]).ok());
  auto st = p->GetStatus();
  EXPECT_EQ(st.space.stored_bytes, one_copy);
  EXPECT_EQ(st.space.logical_bytes, 3u * 64 * 4096);
  EXPECT_EQ(st.space.dedup_saved_bytes, 2u * 64 * 4096);
  ASSERT_TRUE(p->Trim(101, 0, 64).ok());
  ASSERT_TRUE(p->Flush().ok());
  std::vector<uint8_t> got(64 * 4096);
  ASSERT_TRUE(p->Read(102, 1000, 64, got.data()).ok());
  EXPECT_EQ(got, buf);
  ASSERT_TRUE(p->Trim(102, 0, 2000).ok());
  ASSERT_TRUE(p->Read(103, 7, 64, got.data()).ok());
  EXPECT_EQ(got, buf);
  EXPECT_EQ(p->GetStatus().space.stored_bytes, one_copy);
  ASSERT_TRUE(p->Trim(103, 0, 100).ok());
  EXPECT_EQ(p->GetStatus().space.stored_bytes, 0u);
  EXPECT_TRUE(p->Check(false)->clean());
}

// Per-object (per-volume) accounting: shared bytes divided among their references, so the
// objects' figures add up to the pool's; exclusive bytes are what only one object holds.
TEST(PoolTest, PerObjectSpaceAddsUpToThePool) {
  MemPool mp(6);
  auto devs = mp.Devices();
  ASSERT_TRUE(Pool::Format(devs, SmallFormat()).ok());
  auto p = OpenOk(mp);
  std::vector<uint8_t> buf(64 * 4096);
  for (int i = 0; i < 32; i++) FillBlock(&buf[i * 4096ull], 600 + i);              // incompressible
  for (int i = 32; i < 64; i++) FillBlock(&buf[i * 4096ull], 700 + i, true);        // compressible
  ASSERT_TRUE(p->Write(201, 0, 64, buf.data()).ok());
  ASSERT_TRUE(p->Write(202, 10, 16, buf.data()).ok());  // 16 incompressible blocks shared with 201
  std::vector<uint8_t> own(8 * 4096);
  for (int i = 0; i < 8; i++) FillBlock(&own[i * 4096ull], 900 + i);
  ASSERT_TRUE(p->Write(202, 100, 8, own.data()).ok());  // 8 blocks only 202 has
  const SpaceStats pool = p->GetStatus().space;
  const ObjectSpaceStats a = p->GetObjectSpace(201), b = p->GetObjectSpace(202), none = p->GetObjectSpace(999);
  EXPECT_EQ(a.logical_bytes, 64u * 4096);
  EXPECT_EQ(b.logical_bytes, 24u * 4096);
  EXPECT_EQ(none.logical_bytes, 0u);
  EXPECT_EQ(none.stored_bytes, 0u);
  EXPECT_EQ(a.logical_bytes + b.logical_bytes, pool.logical_bytes);
  EXPECT_NEAR(double(a.stored_bytes + b.stored_bytes), double(pool.stored_bytes), 2.0);
  EXPECT_NEAR(double(a.dedup_saved_bytes + b.dedup_saved_bytes), double(pool.dedup_saved_bytes), 2.0);
  EXPECT_NEAR(double(a.compression_saved_bytes + b.compression_saved_bytes), double(pool.compression_saved_bytes), 2.0);
  EXPECT_EQ(a.dedup_saved_bytes, 8u * 4096);  // 16 shared blocks, half each
  EXPECT_EQ(b.dedup_saved_bytes, 8u * 4096);
  EXPECT_EQ(b.exclusive_stored_bytes, 8u * 4096);  // the shared ones belong to both, not to b alone
  EXPECT_EQ(b.stored_bytes, 8u * 4096 + 8u * 4096);
  EXPECT_GT(a.compression_saved_bytes, 16u * 4096);
  EXPECT_GT(a.data_reduction_ratio, 1.3);
  // Deleting 201 frees its exclusive bytes; 202 then holds the shared blocks alone.
  ASSERT_TRUE(p->Trim(201, 0, 64).ok());
  const ObjectSpaceStats b2 = p->GetObjectSpace(202);
  EXPECT_EQ(p->GetStatus().space.stored_bytes, b2.stored_bytes);
  EXPECT_EQ(pool.stored_bytes - p->GetStatus().space.stored_bytes, a.exclusive_stored_bytes);
  EXPECT_EQ(b2.exclusive_stored_bytes, 24u * 4096);
  EXPECT_EQ(b2.dedup_saved_bytes, 0u);
}
}  // namespace
}  // namespace astra::test
