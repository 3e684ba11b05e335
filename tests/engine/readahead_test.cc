// Sequential readahead (engine/src/readahead.h): a sequential reader is served from prefetched
// windows, and a read never returns bytes older than a mutation (write, trim, clone, truncate,
// delete) that returned before the read started, however the two interleave.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "test_util.h"

namespace astra::test {
namespace {

constexpr uint32_t kChunkBlocks = 32;  // 128 KiB reads, as a sequential reader does

std::unique_ptr<Pool> OpenWithReadahead(MemPool& mp, uint64_t readahead_bytes = 512 * 1024) {
  OpenOptions o = TestOpen();
  o.readahead_bytes = readahead_bytes;
  auto r = Pool::Open(mp.Devices(), o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : nullptr;
}

void WriteTags(Pool& p, ObjectId obj, uint64_t first, uint64_t count, uint64_t tag_base) {
  std::vector<uint8_t> buf(kChunkBlocks * 4096);
  for (uint64_t b = first; b < first + count; b += kChunkBlocks) {
    uint32_t n = uint32_t(std::min<uint64_t>(kChunkBlocks, first + count - b));
    for (uint32_t i = 0; i < n; i++) FillBlock(&buf[i * 4096], tag_base + b + i);
    ASSERT_TRUE(p.Write(obj, b, n, buf.data()).ok());
  }
}

// Reads [first, first + count) in 128 KiB calls and checks block b against tag_of(b).
template <typename TagOf>
void ReadAndCheck(Pool& p, ObjectId obj, uint64_t first, uint64_t count, TagOf tag_of) {
  std::vector<uint8_t> buf(kChunkBlocks * 4096);
  uint8_t want[4096];
  for (uint64_t b = first; b < first + count; b += kChunkBlocks) {
    uint32_t n = uint32_t(std::min<uint64_t>(kChunkBlocks, first + count - b));
    Status s = p.Read(obj, b, n, buf.data());
    ASSERT_TRUE(s.ok()) << s.ToString();
    for (uint32_t i = 0; i < n; i++) {
      FillBlock(want, tag_of(b + i));
      ASSERT_EQ(0, memcmp(want, &buf[i * 4096], 4096)) << "object " << obj << " block " << b + i;
    }
  }
}

// Waits until no prefetch window is queued or being filled (bounded wait).
void WaitSettled(Pool& p) {
  for (int i = 0; i < 5000 && p.GetStatus().readahead_pending_windows > 0; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(0u, p.GetStatus().readahead_pending_windows) << "readahead windows never filled";
}

class ReadaheadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto devs = mp_.Devices();
    ASSERT_TRUE(Pool::Format(devs, SmallFormat()).ok());
    p_ = OpenWithReadahead(mp_);
    ASSERT_TRUE(p_);
    WriteTags(*p_, kObj, 0, kBlocks, 1);
    ASSERT_TRUE(p_->Flush().ok());
  }
  // Reads three chunks from `first`: the third read in a row makes the reader a stream, which
  // queues one 128-block window (512 KiB of readahead) at first + 96; waits until it is filled.
  // Returns the number of blocks prefetched so far.
  uint64_t StartStreamAt(uint64_t first) {
    ReadAndCheck(*p_, kObj, first, 3 * kChunkBlocks, [](uint64_t b) { return 1 + b; });
    WaitSettled(*p_);
    return p_->GetStatus().readahead_filled_blocks;
  }
  static constexpr ObjectId kObj = 7;
  static constexpr uint64_t kBlocks = 1024;  // 4 MiB
  MemPool mp_{6};
  std::unique_ptr<Pool> p_;
};

TEST_F(ReadaheadTest, SequentialReaderIsServedFromPrefetchedWindows) {
  EXPECT_EQ(128u, StartStreamAt(0));
  // Blocks 96..223 are in the window: the next four reads are served from it.
  ReadAndCheck(*p_, kObj, 96, 128, [](uint64_t b) { return 1 + b; });
  EXPECT_EQ(128u, p_->GetStatus().readahead_hit_blocks);
  // The rest reads right whatever the workers manage meanwhile.
  ReadAndCheck(*p_, kObj, 224, kBlocks - 224, [](uint64_t b) { return 1 + b; });
  PoolStatus st = p_->GetStatus();
  EXPECT_GE(st.readahead_filled_blocks, st.readahead_hit_blocks);
}

TEST_F(ReadaheadTest, RandomReaderPrefetchesNothing) {
  std::vector<uint8_t> buf(4096);
  std::mt19937_64 r(5);
  uint64_t prev = kBlocks;
  for (int i = 0; i < 200; i++) {
    uint64_t b = r() % kBlocks;
    if (b == prev + 1) continue;  // two in a row would be a (short) sequential run
    ASSERT_TRUE(p_->Read(kObj, b, 1, buf.data()).ok());
    prev = b;
  }
  EXPECT_EQ(0u, p_->GetStatus().readahead_filled_blocks);
}

// Each mutation below lands inside a window filled before it; the read after it must see it.
TEST_F(ReadaheadTest, WriteIntoAPrefetchedWindowIsSeenByTheNextRead) {
  StartStreamAt(0);
  WriteTags(*p_, kObj, 100, 40, 5000);
  ReadAndCheck(*p_, kObj, 96, 128, [](uint64_t b) { return b >= 100 && b < 140 ? 5000 + b : 1 + b; });
}

TEST_F(ReadaheadTest, WriteBatchIntoAPrefetchedWindowIsSeenByTheNextRead) {
  StartStreamAt(0);
  // Two ops of one batch land in the window (another object's op rides along).
  uint8_t a[2 * 4096], b[4096], c[4096];
  FillBlock(a, 7000 + 101);
  FillBlock(a + 4096, 7000 + 102);
  FillBlock(b, 7000 + 200);
  FillBlock(c, 12345);
  std::vector<WriteOp> ops = {{kObj, 101, 2, a, {}}, {9, 0, 1, c, {}}, {kObj, 200, 1, b, {}}};
  ASSERT_TRUE(p_->WriteBatch(ops).ok());
  ReadAndCheck(*p_, kObj, 96, 128,
               [](uint64_t b) { return b == 101 || b == 102 || b == 200 ? 7000 + b : 1 + b; });
}

TEST_F(ReadaheadTest, TrimIntoAPrefetchedWindowIsSeenByTheNextRead) {
  StartStreamAt(0);
  ASSERT_TRUE(p_->Trim(kObj, 96, 8).ok());
  ReadAndCheck(*p_, kObj, 96, 128, [](uint64_t b) { return b < 104 ? 0 : 1 + b; });  // trimmed: zeros
}

TEST_F(ReadaheadTest, CloneIntoAPrefetchedWindowIsSeenByTheNextRead) {
  WriteTags(*p_, 9, 0, 64, 9000);  // the source, written before the window is filled
  StartStreamAt(256);
  ASSERT_TRUE(p_->CloneRange(9, 0, kObj, 352, 64).ok());
  ReadAndCheck(*p_, kObj, 352, 128, [](uint64_t b) { return b < 416 ? 9000 + (b - 352) : 1 + b; });
}

TEST_F(ReadaheadTest, TruncateAndDeleteAreSeenByTheNextRead) {
  StartStreamAt(512);
  CatalogTxn t;
  t.TruncateObject(kObj, 640);
  ASSERT_TRUE(p_->Commit(t).ok());
  ReadAndCheck(*p_, kObj, 608, 128, [](uint64_t b) { return b >= 640 ? 0 : 1 + b; });
  StartStreamAt(256);
  CatalogTxn d;
  d.DeleteObject(kObj);
  ASSERT_TRUE(p_->Commit(d).ok());
  ReadAndCheck(*p_, kObj, 352, 128, [](uint64_t) { return 0; });
}

// A writer overwrites random blocks with new versions while readers read the object
// sequentially over and over. A read must return, for every block, a version at least as new
// as the last one acknowledged before the read started.
TEST_F(ReadaheadTest, ConcurrentOverwritesAreNeverLostBehindPrefetchedBytes) {
  std::vector<std::atomic<uint64_t>> acked(kBlocks);
  for (uint64_t b = 0; b < kBlocks; b++) acked[b] = 0;  // version 0: tag 1 + b (SetUp)
  auto tag = [](uint64_t b, uint64_t v) { return v == 0 ? 1 + b : 1'000'000 * v + b; };
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0};
  std::string failure;
  std::mutex failure_mu;
  std::thread writer([&] {
    std::mt19937_64 r(TestSeed(42));
    uint8_t buf[4096];
    while (!stop) {
      uint64_t b = r() % kBlocks;
      uint64_t v = acked[b] + 1;
      FillBlock(buf, tag(b, v));
      if (!p_->Write(kObj, b, 1, buf).ok()) break;
      acked[b] = v;
    }
  });
  auto reader = [&] {
    std::vector<uint8_t> buf(kChunkBlocks * 4096);
    std::vector<uint64_t> before(kChunkBlocks);
    uint8_t want[4096];
    while (!stop) {
      for (uint64_t c = 0; c < kBlocks && !stop; c += kChunkBlocks) {
        for (uint32_t i = 0; i < kChunkBlocks; i++) before[i] = acked[c + i];
        if (!p_->Read(kObj, c, kChunkBlocks, buf.data()).ok()) return;
        reads++;
        for (uint32_t i = 0; i < kChunkBlocks; i++) {
          // The block holds some version v >= before[i]; versions written so far are <= acked + 1.
          bool ok = false;
          for (uint64_t v = before[i]; v <= acked[c + i] + 1 && !ok; v++) {
            FillBlock(want, tag(c + i, v));
            ok = memcmp(want, &buf[i * 4096], 4096) == 0;
          }
          if (!ok) {
            std::lock_guard<std::mutex> l(failure_mu);
            failure = "block " + std::to_string(c + i) + ": older than version " + std::to_string(before[i]);
            stop = true;
            return;
          }
        }
      }
    }
  };
  std::thread r1(reader), r2(reader);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  stop = true;
  writer.join();
  r1.join();
  r2.join();
  EXPECT_EQ("", failure);
  EXPECT_GT(reads.load(), 100u);
  EXPECT_GT(p_->GetStatus().readahead_hit_blocks, 0u) << "the readers never used readahead: the test shows nothing";
}

TEST(ReadaheadOff, ZeroBytesTurnsItOff) {
  MemPool mp(6);
  auto devs = mp.Devices();
  ASSERT_TRUE(Pool::Format(devs, SmallFormat()).ok());
  auto p = OpenWithReadahead(mp, 0);
  ASSERT_TRUE(p);
  WriteTags(*p, 3, 0, 256, 1);
  ReadAndCheck(*p, 3, 0, 256, [](uint64_t b) { return 1 + b; });
  EXPECT_EQ(0u, p->GetStatus().readahead_filled_blocks);
  EXPECT_EQ(0u, p->GetStatus().readahead_hit_blocks);
}

}  // namespace
}  // namespace astra::test
