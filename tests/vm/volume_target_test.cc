// Host-side tests of VolumeTarget (blockdev/volume_target.h) on a real engine pool of
// MemDevices: the read-modify-write of 4 KiB engine blocks behind 512-byte logical blocks.
//   - random 512-aligned reads, writes, discards and write-zeroes against a reference model;
//   - concurrent writes by several threads to interleaved 512-byte runs of the same 4 KiB
//     blocks (head, tail and whole blocks at once), verified byte for byte afterwards: without
//     the per-block locks (BlockLocks) the RMWs lose each other's bytes;
//   - what a 4096-byte device refuses, and the lock table on its own.
// Seeded: ASTRA_SEED reruns a failure.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "astra/device.h"
#include "astra/pool.h"
#include "blockdev/block_locks.h"
#include "blockdev/volume_target.h"

namespace astra {
namespace {

using blockdev::BlockLocks;
using blockdev::VolumeTarget;
using ublk::BlockOp;
using ublk::BlockRequest;

uint64_t Seed(uint64_t fallback) {
  const char* e = std::getenv("ASTRA_SEED");
  const uint64_t s = e ? std::strtoull(e, nullptr, 0) : fallback;
  std::printf("seed: %llu (rerun with ASTRA_SEED=%llu)\n", (unsigned long long)s,
              (unsigned long long)s);
  return s;
}

constexpr uint64_t kVolumeBytes = 8ull << 20;  // 2048 engine blocks: 2 x BlockLocks::kStripes
constexpr ObjectId kObject = 4242;

class VolumeTargetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<std::unique_ptr<Device>> devs;
    for (int i = 0; i < 6; i++) {
      devs.push_back(NewMemDevice(64ull << 20, "mem" + std::to_string(i)));
    }
    FormatOptions f;
    f.data_shards = 4;
    f.parity_shards = 2;
    f.segment_column_bytes = 256 * 1024;
    f.journal_bytes = 2u << 20;
    ASSERT_TRUE(Pool::Format(devs, f).ok());
    auto p = Pool::Open(std::move(devs));
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    pool_ = std::move(*p);
  }
  void TearDown() override {
    if (pool_) {
      EXPECT_TRUE(pool_->Close().ok());
    }
  }

  static int Do(VolumeTarget& t, BlockOp op, uint64_t off, uint64_t len, uint8_t* buf,
                uint32_t flags = 0) {
    BlockRequest r;
    r.op = op;
    r.flags = flags;
    r.offset_bytes = off;
    r.length_bytes = len;
    return t.Serve(r, buf);
  }
  // Reads the whole volume through `t` and compares it with `model`; names the first bad byte.
  static void ExpectVolume(VolumeTarget& t, const std::vector<uint8_t>& model) {
    std::vector<uint8_t> got(kVolumeBytes);
    for (uint64_t off = 0; off < kVolumeBytes; off += 512 * 1024) {
      ASSERT_EQ(Do(t, BlockOp::kRead, off, 512 * 1024, got.data() + off), 0);
    }
    for (uint64_t i = 0; i < kVolumeBytes; i++) {
      ASSERT_EQ(got[i], model[i]) << "byte " << i << " (sector " << i / 512 << ", engine block "
                                  << i / 4096 << ")";
    }
  }

  std::unique_ptr<Pool> pool_;
};

void Fill(uint8_t* p, size_t n, std::mt19937_64& rng) {
  for (size_t i = 0; i < n; i++) p[i] = static_cast<uint8_t>(rng());
}

TEST_F(VolumeTargetTest, RandomSubBlockOpsMatchAModel) {
  std::mt19937_64 rng(Seed(1));
  VolumeTarget t(pool_.get(), kObject, kVolumeBytes, 512);
  std::vector<uint8_t> model(kVolumeBytes, 0);
  std::vector<uint8_t> buf(512 * 1024);
  for (int i = 0; i < 600; i++) {
    const uint64_t sectors = kVolumeBytes / 512;
    // Lengths 512 B .. 64 KiB, mostly unaligned to 4 KiB; sometimes up to the 512 KiB maximum.
    uint64_t len = 512 * (1 + rng() % (i % 10 == 0 ? 1024 : 128));
    const uint64_t off = 512 * (rng() % (sectors - len / 512 + 1));
    const int kind = static_cast<int>(rng() % 10);
    if (kind < 5) {
      Fill(buf.data(), len, rng);
      const uint32_t flags = rng() % 8 == 0 ? ublk::kBlockFlagFua : 0;
      ASSERT_EQ(Do(t, BlockOp::kWrite, off, len, buf.data(), flags), 0) << off << "+" << len;
      memcpy(model.data() + off, buf.data(), len);
    } else if (kind < 7) {
      ASSERT_EQ(Do(t, kind == 5 ? BlockOp::kDiscard : BlockOp::kWriteZeroes, off, len, nullptr), 0);
      memset(model.data() + off, 0, len);
    } else {
      ASSERT_EQ(Do(t, BlockOp::kRead, off, len, buf.data()), 0);
      ASSERT_EQ(memcmp(buf.data(), model.data() + off, len), 0) << "read " << off << "+" << len;
    }
  }
  ASSERT_EQ(Do(t, BlockOp::kFlush, 0, 0, nullptr), 0);
  ExpectVolume(t, model);
  EXPECT_GT(t.stats().rmw_blocks.load(), 0u);
  EXPECT_EQ(t.errors(), 0u);
  // The same object seen through a 4096-byte device: the same bytes (one engine object).
  VolumeTarget whole(pool_.get(), kObject, kVolumeBytes, 4096);
  ExpectVolume(whole, model);
}

// ServeReads (the ublk queue's batch of pending reads): every request gets what Serve() of it
// returns, bytes and result alike, whether it is a whole-block read (one engine batch), a
// 512-byte-aligned edge, or out of range.
TEST_F(VolumeTargetTest, ServeReadsMatchesServeOfEachRequest) {
  std::mt19937_64 rng(Seed(3));
  VolumeTarget t(pool_.get(), kObject, kVolumeBytes, 512);
  std::vector<uint8_t> model(kVolumeBytes, 0);
  std::vector<uint8_t> buf(256 * 1024);
  for (uint64_t off = 0; off < kVolumeBytes / 2; off += buf.size()) {  // the second half: holes
    Fill(buf.data(), buf.size(), rng);
    ASSERT_EQ(Do(t, BlockOp::kWrite, off, buf.size(), buf.data()), 0);
    memcpy(model.data() + off, buf.data(), buf.size());
  }
  for (int round = 0; round < 30; round++) {
    const size_t n = 1 + rng() % 32;
    std::vector<BlockRequest> reqs(n);
    std::vector<std::vector<uint8_t>> out(n);
    std::vector<uint8_t*> bufs(n);
    for (size_t i = 0; i < n; i++) {
      reqs[i].op = BlockOp::kRead;
      const bool aligned = rng() % 3 != 0;
      const uint64_t unit = aligned ? 4096 : 512;
      reqs[i].length_bytes = unit * (1 + rng() % 16);
      reqs[i].offset_bytes = unit * (rng() % ((kVolumeBytes - reqs[i].length_bytes) / unit + 1));
      if (rng() % 16 == 0) reqs[i].offset_bytes = kVolumeBytes;  // out of range
      out[i].assign(reqs[i].length_bytes, 0xEE);
      bufs[i] = out[i].data();
    }
    std::vector<int> results(n, 1);
    t.ServeReads(reqs, bufs.data(), results.data());
    for (size_t i = 0; i < n; i++) {
      std::vector<uint8_t> one(reqs[i].length_bytes);
      const int want = t.Serve(reqs[i], one.data());
      ASSERT_EQ(results[i], want) << "round " << round << " request " << i << " at " << reqs[i].offset_bytes;
      if (want != 0) continue;
      ASSERT_EQ(0, memcmp(out[i].data(), model.data() + reqs[i].offset_bytes, reqs[i].length_bytes))
          << "round " << round << " request " << i << " at " << reqs[i].offset_bytes << "+" << reqs[i].length_bytes;
    }
  }
}

// ServeWrites (a queue's pending writes as one engine batch) on 4096- and 512-byte devices:
// batches of non-overlapping writes (the kernel has them in flight together), whole blocks and
// sub-block edges, some FUA, some out of range; every result is what Serve() returns for such a
// request, and afterwards every byte of the volume matches a model.
TEST_F(VolumeTargetTest, ServeWritesMatchesAModel) {
  for (uint32_t lbs : {4096u, 512u}) {
    std::mt19937_64 rng(Seed(5) + lbs);
    VolumeTarget t(pool_.get(), kObject, kVolumeBytes, lbs);
    std::vector<uint8_t> model(kVolumeBytes, 0);
    // Start from a known state: the whole volume discarded.
    ASSERT_EQ(Do(t, BlockOp::kDiscard, 0, kVolumeBytes, nullptr), 0);
    for (int round = 0; round < 40; round++) {
      const size_t n = 1 + rng() % 32;
      std::vector<BlockRequest> reqs;
      std::vector<std::vector<uint8_t>> data;
      std::vector<std::pair<uint64_t, uint64_t>> taken;  // [begin, end) of this batch's writes
      std::vector<int> want;
      while (reqs.size() < n) {
        BlockRequest r;
        r.op = BlockOp::kWrite;
        const uint64_t unit = (lbs == 512 && rng() % 3 == 0) ? 512 : 4096;
        r.length_bytes = unit * (1 + rng() % 64);
        r.offset_bytes = unit * (rng() % ((kVolumeBytes - r.length_bytes) / unit + 1));
        if (rng() % 8 == 0) r.flags |= ublk::kBlockFlagFua;
        const bool out_of_range = rng() % 16 == 0;
        if (out_of_range) r.offset_bytes = kVolumeBytes;
        bool overlaps = false;
        for (auto& [b, e] : taken) overlaps = overlaps || (r.offset_bytes < e && b < r.offset_bytes + r.length_bytes);
        if (overlaps && !out_of_range) continue;
        if (!out_of_range) taken.push_back({r.offset_bytes, r.offset_bytes + r.length_bytes});
        data.emplace_back(r.length_bytes);
        Fill(data.back().data(), r.length_bytes, rng);
        want.push_back(out_of_range ? -EINVAL : 0);
        reqs.push_back(r);
      }
      std::vector<uint8_t*> bufs;
      for (auto& d : data) bufs.push_back(d.data());
      std::vector<int> results(n, 1);
      ASSERT_TRUE(pool_->Flush().ok());  // nothing pending: a journal batch now means a flush
      const uint64_t seq_before = pool_->GetStatus().journal_seq;
      t.ServeWrites(reqs, bufs.data(), results.data());
      bool fua = false;
      for (size_t i = 0; i < n; i++) {
        ASSERT_EQ(results[i], want[i]) << "lbs " << lbs << " round " << round << " request " << i;
        if (want[i] == 0) memcpy(model.data() + reqs[i].offset_bytes, data[i].data(), reqs[i].length_bytes);
        fua = fua || (want[i] == 0 && (reqs[i].flags & ublk::kBlockFlagFua));
      }
      // A FUA write completes durable: its batch's journal records were flushed before it did.
      if (fua) {
        EXPECT_GT(pool_->GetStatus().journal_seq, seq_before) << "lbs " << lbs << " round " << round;
      }
      if (round % 10 == 9) ExpectVolume(t, model);
    }
    ExpectVolume(t, model);
    EXPECT_EQ(t.errors(), 0u);
  }
}

TEST_F(VolumeTargetTest, PartialDiscardKeepsNeighboursAndWholeBlocksGoBack) {
  VolumeTarget t(pool_.get(), kObject, kVolumeBytes, 512);
  std::vector<uint8_t> model(kVolumeBytes, 0), buf(64 * 1024);
  std::mt19937_64 rng(7);
  Fill(buf.data(), buf.size(), rng);
  ASSERT_EQ(Do(t, BlockOp::kWrite, 0, buf.size(), buf.data()), 0);
  memcpy(model.data(), buf.data(), buf.size());
  ASSERT_EQ(pool_->ObjectMappedBlocks(kObject), 16u);
  // Sectors 3 .. 3 + 8 * 4 + 2: a partial head, 3 whole blocks (trimmed), a partial tail.
  const uint64_t off = 3 * 512, len = (5 + 8 * 3 + 2) * 512;
  ASSERT_EQ(Do(t, BlockOp::kDiscard, off, len, nullptr), 0);
  memset(model.data() + off, 0, len);
  ExpectVolume(t, model);
  EXPECT_EQ(pool_->ObjectMappedBlocks(kObject), 13u) << "the 3 whole blocks give their space back";
  // Zeroing the rest of a partial block leaves it all zeros: the engine makes it a hole.
  ASSERT_EQ(Do(t, BlockOp::kWriteZeroes, 0, 3 * 512, nullptr), 0);
  memset(model.data(), 0, 3 * 512);
  ExpectVolume(t, model);
  EXPECT_EQ(pool_->ObjectMappedBlocks(kObject), 12u);
}

// Several threads own interleaved runs of sectors (runs of 1..20 sectors, so most 4 KiB blocks
// hold runs of 2 or more threads) and write them, round after round, as requests of random
// lengths that start and end anywhere: partial heads and tails by RMW, whole blocks directly,
// all at the same time as the neighbours' RMWs of the same blocks. Every sector's final bytes
// are its owner's last round: any lost update shows.
TEST_F(VolumeTargetTest, ConcurrentOverlappingSubBlockWritesLoseNothing) {
  const uint64_t seed = Seed(11);
  constexpr int kThreads = 8, kRounds = 4;
  constexpr uint64_t kSpanBytes = 1ull << 20;  // the first MiB: 256 blocks, heavily shared
  VolumeTarget t(pool_.get(), kObject, kVolumeBytes, 512);
  struct Run {
    uint64_t sector, count;
  };
  std::vector<std::vector<Run>> runs(kThreads);
  std::vector<int> owner(kSpanBytes / 512);
  std::mt19937_64 rng(seed);
  for (uint64_t s = 0; s < kSpanBytes / 512;) {
    const uint64_t n = std::min<uint64_t>(1 + rng() % 20, kSpanBytes / 512 - s);
    const int who = static_cast<int>(rng() % kThreads);
    runs[who].push_back({s, n});
    for (uint64_t i = 0; i < n; i++) owner[s + i] = who;
    s += n;
  }
  // Sector contents: (thread, round, sector) -> 512 bytes, so any stale byte is identifiable.
  auto pattern = [](int who, int round, uint64_t sector, uint8_t* out) {
    std::mt19937_64 r(sector * 1000003ull + static_cast<uint64_t>(who) * 131 + round + 1);
    for (int i = 0; i < 512; i += 8) {
      const uint64_t v = r();
      memcpy(out + i, &v, 8);
    }
  };
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int who = 0; who < kThreads; who++) {
    threads.emplace_back([&, who] {
      std::mt19937_64 r(seed * 31 + who);
      std::vector<uint8_t> buf(20 * 512);
      for (int round = 0; round < kRounds; round++) {
        for (const Run& run : runs[who]) {
          // Each run as 1..3 requests cut at random sectors.
          uint64_t s = run.sector;
          const uint64_t end = run.sector + run.count;
          while (s < end) {
            const uint64_t n = std::min<uint64_t>(end - s, 1 + r() % run.count);
            for (uint64_t i = 0; i < n; i++) pattern(who, round, s + i, buf.data() + i * 512);
            if (Do(t, BlockOp::kWrite, s * 512, n * 512, buf.data()) != 0) failures++;
            s += n;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  std::vector<uint8_t> model(kVolumeBytes, 0);
  for (uint64_t s = 0; s < kSpanBytes / 512; s++) {
    pattern(owner[s], kRounds - 1, s, model.data() + s * 512);
  }
  ExpectVolume(t, model);
  EXPECT_GT(t.stats().rmw_blocks.load(), 0u);
}

// Whole-block writes racing RMWs of the same blocks. Thread W rewrites blocks 0..63 whole,
// generation after generation; threads R0..R3 patch sector 2i+1 of the same blocks, generation
// after generation. In every serial order the even sectors end as W's last generation (an RMW
// writes back what it read), and each odd sector as W's last or its R's last. An RMW that read
// a block, missed W's rewrite and wrote the stale sectors back shows as an old generation.
// (Blocks 1024.. share the lock stripes of 0..: R threads patch those too, for stripe sharing.)
TEST_F(VolumeTargetTest, WholeBlockWritesAndRmwOfTheSameBlocks) {
  const uint64_t seed = Seed(5);
  constexpr int kGens = 16;
  constexpr uint64_t kBlocks = 64;
  VolumeTarget t(pool_.get(), kObject, kVolumeBytes, 512);
  auto fill = [](uint64_t sector, int who, int gen, uint8_t* out) {
    for (int i = 0; i < 512; i++) {
      out[i] = static_cast<uint8_t>(sector * 7 + who * 29 + gen * 13 + i);
    }
  };
  std::atomic<int> failures{0};
  std::vector<std::thread> th;
  th.emplace_back([&] {
    std::vector<uint8_t> blk(4096);
    for (int gen = 0; gen < kGens; gen++) {
      for (uint64_t b = 0; b < kBlocks; b++) {
        for (int s = 0; s < 8; s++) fill(b * 8 + s, 0, gen, blk.data() + s * 512);
        if (Do(t, BlockOp::kWrite, b * 4096, 4096, blk.data()) != 0) failures++;
      }
    }
  });
  for (int w = 0; w < 4; w++) {
    th.emplace_back([&, w] {
      std::mt19937_64 r(seed + w);
      uint8_t sec[512];
      for (int gen = 0; gen < kGens; gen++) {
        const uint64_t rotate = r() % kBlocks;  // every block once per generation
        for (uint64_t base : {uint64_t{0}, uint64_t{BlockLocks::kStripes}}) {
          for (uint64_t i = 0; i < kBlocks; i++) {
            const uint64_t sector = (base + (i + rotate) % kBlocks) * 8 + 2 * w + 1;
            fill(sector, 1 + w, gen, sec);
            if (Do(t, BlockOp::kWrite, sector * 512, 512, sec) != 0) failures++;
          }
        }
      }
    });
  }
  for (auto& x : th) x.join();
  ASSERT_EQ(failures.load(), 0);
  std::vector<uint8_t> got(4096), w_last(512), r_last(512);
  for (uint64_t b = 0; b < kBlocks; b++) {
    ASSERT_EQ(Do(t, BlockOp::kRead, b * 4096, 4096, got.data()), 0);
    for (int s = 0; s < 8; s++) {
      const uint64_t sector = b * 8 + s;
      fill(sector, 0, kGens - 1, w_last.data());
      const bool w_wins = memcmp(got.data() + s * 512, w_last.data(), 512) == 0;
      if (s % 2 == 0) {
        ASSERT_TRUE(w_wins) << "block " << b << " sector " << s
                            << ": not the whole-block writer's last generation (a lost update)";
      } else {
        fill(sector, 1 + s / 2, kGens - 1, r_last.data());
        const bool r_wins = memcmp(got.data() + s * 512, r_last.data(), 512) == 0;
        ASSERT_TRUE(w_wins || r_wins) << "block " << b << " sector " << s
                                      << ": neither writer's last generation";
      }
    }
  }
}

TEST_F(VolumeTargetTest, RefusesWhatTheDeviceNeverAnnounces) {
  VolumeTarget t4(pool_.get(), kObject, kVolumeBytes, 4096);
  std::vector<uint8_t> buf(8192);
  EXPECT_EQ(Do(t4, BlockOp::kWrite, 512, 4096, buf.data()), -EINVAL);  // 512 on a 4096 device
  EXPECT_EQ(Do(t4, BlockOp::kRead, 0, 512, buf.data()), -EINVAL);
  VolumeTarget t5(pool_.get(), kObject, kVolumeBytes, 512);
  EXPECT_EQ(Do(t5, BlockOp::kRead, 100, 512, buf.data()), -EINVAL);  // not sector-aligned
  EXPECT_EQ(Do(t5, BlockOp::kWrite, kVolumeBytes - 512, 1024, buf.data()), -EINVAL);  // past end
  EXPECT_EQ(Do(t5, BlockOp::kRead, kVolumeBytes - 512, 512, buf.data()), 0);  // last sector
  EXPECT_EQ(t5.errors(), 0u);
}

TEST(BlockLocks, ExclusiveExcludesSharedDoesNot) {
  BlockLocks locks;
  auto a = locks.Lock(10, 4, BlockLocks::kNoBlock, BlockLocks::kNoBlock);  // shared 10..13
  std::atomic<bool> got{false};
  // Another shared holder of the same blocks gets in at once.
  std::thread s([&] {
    auto b = locks.Lock(12, 4, BlockLocks::kNoBlock, BlockLocks::kNoBlock);
    got = true;
  });
  s.join();
  EXPECT_TRUE(got.load());
  // An RMW of block 13 (and one of block 13 + kStripes: same stripe) waits for `a`.
  got = false;
  std::thread x([&] {
    auto c = locks.Lock(13 + BlockLocks::kStripes, 1, 13 + BlockLocks::kStripes,
                        BlockLocks::kNoBlock);
    got = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(got.load());
  { auto drop = std::move(a); }
  x.join();
  EXPECT_TRUE(got.load());
  // A range longer than the table takes every stripe once (no self-deadlock).
  auto all = locks.Lock(0, 5 * BlockLocks::kStripes, 0, 5 * BlockLocks::kStripes - 1);
}

}  // namespace
}  // namespace astra
