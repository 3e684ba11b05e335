// astra_bench: throughput, IOPS and metadata-RAM benchmark of the AstraFS engine (astra::Pool).
//
// Formats a k+m pool (default 4+2) on 6 sparse member files in --dir, opens it through
// astra::OpenDevice (io_uring + O_DIRECT, the production path) and measures, for each thread
// count T in --threads (default 1,2):
//   seqwrite  128 KiB per Write call (32 blocks), T threads, each on its own object;
//             --seq-mib of user data in total; one Flush at the end, counted in the time.
//   seqread   the same data back, 128 KiB per Read call, --seq-read-passes times over (default 4,
//             so the phase lasts long enough to measure); every block's stamp is checked and
//             every 16th block is compared byte for byte.
//   randread  4 KiB Reads at random blocks of that data set, time-limited (--rand-seconds).
//   randwrite 4 KiB Writes (overwrites) at random blocks of that data set, time-limited and capped
//             at one data set's worth of blocks; one Flush at the end, counted in the time.
// The engine API is synchronous per call, so "queue depth" here is the number of threads with one
// call in flight each. Random phases therefore run twice: with T threads (QD = T) and with
// --qd-threads * T threads (default 32 * T: the honest counterpart of fio iodepth=32, numjobs=T).
//
// Data: incompressible (xoshiro256** bytes) and unique per (object, block, generation) thanks to a
// 16-byte stamp at the head of every block, so neither compression nor dedup can inflate numbers.
// Compression and dedup are set with --compression / --dedup (default: none / off = raw path).
//
// Before the phases, --warmup-mib (default 64) of sequential writes go to a scratch object,
// unreported: the first sequential phase in a fresh pool is otherwise slower whatever its T.
//
// Metadata RAM (--meta-mib, measured first, in a fresh pool, before anything was freed so malloc
// cannot recycle memory): VmRSS delta over writing N unique blocks after a warm-up, divided by N.
// VmRSS is read after malloc_trim(0), so memory malloc merely keeps cached after a free (old
// vector buffers, checkpoint images) is not counted as metadata. Measured twice: sequential
// 128 KiB writes (the engine's block map keeps them as runs) and, in a second fresh pool, N
// 1-block writes at distinct random blocks of a 4N-block object (the worst case: one map entry
// per block).
//
// Output: a table on stdout; --json-out FILE (or --json for stdout) gives the same numbers as JSON.
//
// --devices P0,P1,... instead of --dir: the pool's members are these existing devices (block
// devices, /dev/ngXnY NVMe generic devices, files), opened with astra::OpenDevice as the tools do
// (so /dev/ngXnY gets NvmeDevice, /dev/nvmeXnY NvmeDevice unless ASTRA_FORCE_BLOCK_PATH=1), and
// used whole. THEIR CONTENTS ARE DESTROYED. The backend of each member is printed. The member
// count is the number of paths (k + m of them, or more).
#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "astra/device.h"
#include "astra/limits.h"
#include "astra/pool.h"

namespace {

using astra::kBlockBytes;
using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "astra_bench: %s\n", msg.c_str());
  std::exit(1);
}

void Check(const astra::Status& s, const std::string& what) {
  if (!s.ok()) Die(what + ": " + s.ToString());
}

struct Config {
  std::string dir;
  std::vector<std::string> devices;  // --devices: existing members instead of files in dir
  std::string backends;              // of the members, as OpenDevice chose (filled at open)
  uint32_t members = 6, k = 4, m = 2;
  uint64_t file_mib = 1024;
  uint64_t seq_mib = 256;
  uint32_t seq_read_passes = 4;
  uint32_t seq_qd = 6;  // 128 KiB reads in flight per thread in the second seqread phase (fio's iodepth)
  double rand_seconds = 3.0;
  std::vector<uint32_t> threads = {1, 2};
  uint32_t qd_threads = 32;
  astra::Compression compression = astra::Compression::kNone;
  bool dedup = false;
  uint64_t meta_mib = 256;
  uint64_t warmup_mib = 64;
  bool json_stdout = false;
  std::string json_out;
  bool keep = false;
  bool background_checkpoints = true;
  int64_t readahead_kib = -1;  // -1: the engine's default
  int64_t read_poll_us = -1;   // -1: the engine's default (OpenOptions::read_poll_us)
};

// ---- deterministic data ----

uint64_t SplitMix(uint64_t* s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

struct Rng {  // xoshiro256**
  uint64_t s[4];
  explicit Rng(uint64_t seed) {
    for (auto& x : s) x = SplitMix(&seed);
  }
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t Next() {
    uint64_t r = Rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = Rotl(s[3], 45);
    return r;
  }
  uint64_t Below(uint64_t n) { return Next() % n; }
};

// The random pool: kSlots blocks of random bytes. A block's body (bytes 16..4095) comes from a
// slot; its first 16 bytes are a stamp naming (object, block, generation).
constexpr uint64_t kSlots = 4096;  // 16 MiB
constexpr uint64_t kSeqSlotsPerObject = 1024;
constexpr uint32_t kStampBytes = 16;
constexpr uint64_t kStampMagic = 0xA57AFB3E7C0FFEE5ull;
uint8_t* g_pool = nullptr;

uint8_t* Slot(uint64_t s) { return g_pool + (s % kSlots) * kBlockBytes; }
// Sequentially written blocks: object index o (0..T-1) uses its own 1024 slots, so the writer can
// stamp the pool in place (no copy) and hand 32 contiguous slots to one Write call.
uint64_t SeqSlot(uint32_t o, uint64_t block) { return uint64_t(o) * kSeqSlotsPerObject + block % kSeqSlotsPerObject; }
uint64_t RandSlot(uint64_t flat, uint32_t gen) {
  uint64_t x = flat * 0x9E3779B97F4A7C15ull + gen;
  return SplitMix(&x) % kSlots;
}
void Stamp(uint8_t* b, astra::ObjectId obj, uint64_t block, uint32_t gen) {
  uint64_t a = obj ^ kStampMagic, c = (block << 16) | (gen & 0xFFFF);
  std::memcpy(b, &a, 8);
  std::memcpy(b + 8, &c, 8);
}
bool StampIs(const uint8_t* b, astra::ObjectId obj, uint64_t block, uint32_t gen) {
  uint8_t want[kStampBytes];
  Stamp(want, obj, block, gen);
  return std::memcmp(b, want, kStampBytes) == 0;
}

// ---- measurements ----

uint64_t RssBytes() {
  malloc_trim(0);  // hand freed heap memory back first: count what is in use, not malloc's cache
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

struct Phase {
  std::string name;
  uint32_t threads = 0;
  uint32_t qd = 1;  // reads in flight per thread: ops per ReadBatch (1 = one Read per call)
  uint64_t ops = 0, bytes = 0;
  double seconds = 0, flush_seconds = 0;
  double p50_us = 0, p99_us = 0;
  uint64_t verified_blocks = 0, verified_full = 0, verify_errors = 0;
  double MiBps() const { return seconds > 0 ? double(bytes) / (1 << 20) / seconds : 0; }
  double Iops() const { return seconds > 0 ? double(ops) / seconds : 0; }
};

struct MetaResult {
  uint64_t blocks = 0, rss_before = 0, rss_after = 0;
  double seconds = 0;
  std::vector<std::pair<uint64_t, uint64_t>> curve;  // (blocks written, rss)
  uint64_t rand_rss_before = 0, rand_rss_after = 0;  // the same count of 1-block random writes
  double BytesPerBlock() const { return blocks ? double(int64_t(rss_after) - int64_t(rss_before)) / blocks : 0; }
  double RandBytesPerBlock() const {
    return blocks ? double(int64_t(rand_rss_after) - int64_t(rand_rss_before)) / blocks : 0;
  }
};

void Percentiles(std::vector<uint32_t>& lat_ns, Phase* p) {
  if (lat_ns.empty()) return;
  std::sort(lat_ns.begin(), lat_ns.end());
  p->p50_us = lat_ns[lat_ns.size() / 2] / 1000.0;
  p->p99_us = lat_ns[std::min(lat_ns.size() - 1, lat_ns.size() * 99 / 100)] / 1000.0;
}

double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// ---- pool setup ----

std::string MemberPath(const Config& c, uint32_t i) {
  if (!c.devices.empty()) return c.devices[i];
  return c.dir + "/astra-member-" + std::to_string(i) + ".img";
}

void RemoveMembers(const Config& c) {
  if (!c.devices.empty()) return;  // devices are the user's: reformatted, never removed
  for (uint32_t i = 0; i < c.members; i++) ::unlink(MemberPath(c, i).c_str());
}

std::unique_ptr<astra::Pool> FreshPool(Config& c) {
  RemoveMembers(c);
  std::vector<std::unique_ptr<astra::Device>> devs;
  std::string backends;
  for (uint32_t i = 0; i < c.members; i++) {
    auto d = astra::OpenDevice(MemberPath(c, i), c.devices.empty() ? c.file_mib << 20 : 0);
    if (!d.ok()) Die("open " + MemberPath(c, i) + ": " + d.status().ToString());
    const std::string& b = (*d)->info().backend;
    if (backends.find(b) == std::string::npos) backends += (backends.empty() ? "" : "+") + b;
    devs.push_back(std::move(d).value());
  }
  c.backends = backends;
  astra::FormatOptions fo;
  fo.data_shards = c.k;
  fo.parity_shards = c.m;
  fo.compression = c.compression;
  fo.dedup = c.dedup;
  fo.force = true;
  Check(astra::Pool::Format(devs, fo), "format");
  astra::OpenOptions oo;
  oo.background_checkpoints = c.background_checkpoints;
  if (c.readahead_kib >= 0) oo.readahead_bytes = uint64_t(c.readahead_kib) << 10;
  if (c.read_poll_us >= 0) oo.read_poll_us = uint32_t(c.read_poll_us);
  auto p = astra::Pool::Open(std::move(devs), oo);
  if (!p.ok()) Die("open pool: " + p.status().ToString());
  return std::move(p).value();
}

// ---- metadata RAM ----

MetaResult MeasureMeta(Config& c) {
  MetaResult r;
  auto pool = FreshPool(c);
  const astra::ObjectId obj = 9000;
  std::vector<uint8_t> buf(astra::kBlocksPerIoMax * kBlockBytes);
  auto write_run = [&](uint64_t first, uint64_t n) {
    for (uint64_t b = first; b < first + n; b += astra::kBlocksPerIoMax) {
      uint32_t cnt = uint32_t(std::min<uint64_t>(astra::kBlocksPerIoMax, first + n - b));
      for (uint32_t i = 0; i < cnt; i++) {
        std::memcpy(buf.data() + uint64_t(i) * kBlockBytes, Slot(RandSlot(b + i, 7)), kBlockBytes);
        Stamp(buf.data() + uint64_t(i) * kBlockBytes, obj, b + i, 7);
      }
      Check(pool->Write(obj, b, cnt, buf.data()), "meta write");
    }
  };
  // Warm-up: every buffer the engine allocates once (segment buffer, rings, journal) exists.
  const uint64_t warm = 8192;
  write_run(0, warm);
  Check(pool->Flush(), "meta flush");
  r.blocks = (c.meta_mib << 20) / kBlockBytes;
  r.rss_before = RssBytes();
  r.curve.emplace_back(0, r.rss_before);
  auto t0 = Clock::now();
  const uint64_t step = std::max<uint64_t>(r.blocks / 8, astra::kBlocksPerIoMax);
  for (uint64_t done = 0; done < r.blocks; done += step) {
    uint64_t n = std::min(step, r.blocks - done);
    write_run(warm + done, n);
    r.curve.emplace_back(done + n, RssBytes());
  }
  Check(pool->Flush(), "meta flush");
  r.seconds = Since(t0);
  r.rss_after = RssBytes();
  Check(pool->Close(), "close");
  pool.reset();

  // Worst case for the block map: every block its own run (1-block writes at random blocks).
  pool = FreshPool(c);
  std::vector<uint64_t> order(4 * (r.blocks + warm));
  for (uint64_t i = 0; i < order.size(); i++) order[i] = i;
  uint64_t rng = 0x243F6A8885A308D3ull;
  for (uint64_t i = order.size() - 1; i > 0; i--) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    std::swap(order[i], order[(rng >> 11) % (i + 1)]);
  }
  auto write_one = [&](uint64_t b) {
    std::memcpy(buf.data(), Slot(RandSlot(b, 9)), kBlockBytes);
    Stamp(buf.data(), obj, b, 9);
    Check(pool->Write(obj, b, 1, buf.data()), "meta random write");
  };
  for (uint64_t i = 0; i < warm; i++) write_one(order[i]);
  Check(pool->Flush(), "meta flush");
  r.rand_rss_before = RssBytes();
  for (uint64_t i = warm; i < warm + r.blocks; i++) write_one(order[i]);
  Check(pool->Flush(), "meta flush");
  r.rand_rss_after = RssBytes();
  Check(pool->Close(), "close");
  pool.reset();
  return r;
}

// ---- phases ----

struct DataSet {  // T objects of `blocks_per_obj` blocks, written sequentially
  std::vector<astra::ObjectId> objs;
  uint64_t blocks_per_obj = 0;
  uint64_t Total() const { return objs.size() * blocks_per_obj; }
  // generation of each flat block (0 = the sequential write); each random writer owns i % R == r.
  std::vector<uint32_t> gen;
};

constexpr uint32_t kSeqBlocks = 32;  // 128 KiB per call

Phase SeqWrite(astra::Pool& pool, DataSet& ds, uint32_t T) {
  Phase p{"seqwrite-128k", T};
  auto t0 = Clock::now();
  std::vector<std::thread> th;
  for (uint32_t t = 0; t < T; t++)
    th.emplace_back([&, t] {
      for (uint64_t b = 0; b < ds.blocks_per_obj; b += kSeqBlocks) {
        uint8_t* src = Slot(SeqSlot(t, b));
        for (uint32_t i = 0; i < kSeqBlocks; i++) Stamp(src + uint64_t(i) * kBlockBytes, ds.objs[t], b + i, 0);
        Check(pool.Write(ds.objs[t], b, kSeqBlocks, src), "seq write");
      }
    });
  for (auto& x : th) x.join();
  auto tf = Clock::now();
  Check(pool.Flush(), "flush");
  p.seconds = Since(t0);
  p.flush_seconds = Since(tf);
  p.ops = ds.Total() / kSeqBlocks;
  p.bytes = ds.Total() * kBlockBytes;
  return p;
}

// Checks one block read back from flat index i. Full byte comparison when `full`.
bool VerifyBlock(const DataSet& ds, uint64_t flat, const uint8_t* b, bool full) {
  uint32_t o = uint32_t(flat / ds.blocks_per_obj);
  uint64_t blk = flat % ds.blocks_per_obj;
  uint32_t g = ds.gen[flat];
  if (!StampIs(b, ds.objs[o], blk, g)) return false;
  if (!full) return true;
  const uint8_t* want = Slot(g == 0 ? SeqSlot(o, blk) : RandSlot(flat, g));
  return std::memcmp(b + kStampBytes, want + kStampBytes, kBlockBytes - kStampBytes) == 0;
}

// T threads reading their objects sequentially, 128 KiB per op, `passes` times over. qd = 1: one
// Read per op (the engine's readahead keeps the pipeline full); qd > 1: ReadBatch of qd
// consecutive 128 KiB ops per call (qd reads in flight, as fio's iodepth).
Phase SeqRead(astra::Pool& pool, const DataSet& ds, uint32_t T, uint32_t passes, uint32_t qd = 1) {
  Phase p{"seqread-128k", T};
  p.qd = qd;
  std::atomic<uint64_t> vb{0}, vf{0}, ve{0};
  auto t0 = Clock::now();
  std::vector<std::thread> th;
  for (uint32_t t = 0; t < T; t++)
    th.emplace_back([&, t] {
      const uint64_t op_bytes = uint64_t(kSeqBlocks) * kBlockBytes;
      auto buf = astra::AllocAligned(op_bytes * qd);
      std::vector<astra::ReadOp> batch;
      uint64_t nb = 0, nf = 0, ne = 0;
      for (uint32_t pass = 0; pass < passes; pass++)
        for (uint64_t b = 0; b < ds.blocks_per_obj; b += uint64_t(kSeqBlocks) * qd) {
          const uint32_t n = uint32_t(std::min<uint64_t>(qd, (ds.blocks_per_obj - b) / kSeqBlocks));
          if (qd == 1) {
            Check(pool.Read(ds.objs[t], b, kSeqBlocks, buf.get()), "seq read");
          } else {
            batch.clear();
            for (uint32_t i = 0; i < n; i++)
              batch.push_back({ds.objs[t], b + uint64_t(i) * kSeqBlocks, kSeqBlocks, buf.get() + i * op_bytes, {}});
            Check(pool.ReadBatch(batch), "seq read batch");
          }
          for (uint32_t i = 0; i < n * kSeqBlocks; i++) {
            bool full = ((b + i + pass) % 16) == 0;
            if (!VerifyBlock(ds, t * ds.blocks_per_obj + b + i, buf.get() + uint64_t(i) * kBlockBytes, full)) ne++;
            nb++;
            nf += full;
          }
        }
      vb += nb;
      vf += nf;
      ve += ne;
    });
  for (auto& x : th) x.join();
  p.seconds = Since(t0);
  p.ops = ds.Total() / kSeqBlocks * passes;
  p.bytes = ds.Total() * kBlockBytes * passes;
  p.verified_blocks = vb;
  p.verified_full = vf;
  p.verify_errors = ve;
  return p;
}

// R threads reading random blocks; each thread keeps `qd` reads in flight as one ReadBatch of
// `qd` one-block ops per call (qd = 1: plain Read calls). Latency is per call.
Phase RandRead(astra::Pool& pool, const DataSet& ds, uint32_t R, double seconds, uint32_t qd = 1) {
  Phase p{"randread-4k", R};
  p.qd = qd;
  std::atomic<uint64_t> ops{0}, vb{0}, vf{0}, ve{0};
  std::vector<std::vector<uint32_t>> lat(R);
  std::atomic<bool> stop{false};
  auto t0 = Clock::now();
  auto deadline = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> th;
  for (uint32_t r = 0; r < R; r++)
    th.emplace_back([&, r] {
      Rng rng(1000 + r + 7919 * (qd - 1));
      auto buf = astra::AllocAligned(uint64_t(qd) * kBlockBytes);
      std::vector<astra::ReadOp> batch(qd);
      std::vector<uint64_t> flats(qd);
      uint64_t n = 0, nf = 0, ne = 0;
      lat[r].reserve(1 << 16);
      while (!stop.load(std::memory_order_relaxed)) {
        for (uint32_t i = 0; i < qd; i++) {
          flats[i] = rng.Below(ds.Total());
          batch[i] = {ds.objs[flats[i] / ds.blocks_per_obj], flats[i] % ds.blocks_per_obj, 1,
                      buf.get() + uint64_t(i) * kBlockBytes, {}};
        }
        auto a = Clock::now();
        if (qd == 1)
          Check(pool.Read(batch[0].obj, batch[0].block, 1, buf.get()), "rand read");
        else
          Check(pool.ReadBatch(batch), "rand read batch");
        auto z = Clock::now();
        lat[r].push_back(uint32_t(std::min<int64_t>(UINT32_MAX, (z - a).count())));
        for (uint32_t i = 0; i < qd; i++) {
          bool full = (n % 16) == 0;
          if (!VerifyBlock(ds, flats[i], buf.get() + uint64_t(i) * kBlockBytes, full)) ne++;
          nf += full;
          n++;
        }
        if (z >= deadline) stop = true;
      }
      ops += n;
      vb += n;
      vf += nf;
      ve += ne;
    });
  for (auto& x : th) x.join();
  p.seconds = Since(t0);
  p.ops = ops;
  p.bytes = p.ops * kBlockBytes;
  p.verified_blocks = vb;
  p.verified_full = vf;
  p.verify_errors = ve;
  std::vector<uint32_t> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  Percentiles(all, &p);
  return p;
}

// R threads overwriting random blocks; each thread keeps `qd` writes in flight as one WriteBatch
// of `qd` one-block ops per call (qd = 1: plain Write calls). Latency is per call.
// At most `cap_blocks` blocks are written (bounds the log space a phase consumes).
Phase RandWrite(astra::Pool& pool, DataSet& ds, uint32_t R, double seconds, uint64_t cap_blocks, uint32_t qd = 1) {
  Phase p{"randwrite-4k", R};
  p.qd = qd;
  std::atomic<uint64_t> ops{0};
  std::vector<std::vector<uint32_t>> lat(R);
  std::atomic<bool> stop{false};
  const uint64_t cap = cap_blocks;
  std::atomic<uint64_t> issued{0};
  auto t0 = Clock::now();
  auto deadline = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> th;
  for (uint32_t r = 0; r < R; r++)
    th.emplace_back([&, r] {
      Rng rng(5000 + r + 77 * R + 7919 * (qd - 1));
      auto buf = astra::AllocAligned(uint64_t(qd) * kBlockBytes);
      std::vector<astra::WriteOp> batch(qd);
      uint64_t n = 0;
      const uint64_t owned = (ds.Total() - r + R - 1) / R;  // flat indexes i with i % R == r
      lat[r].reserve(1 << 16);
      while (!stop.load(std::memory_order_relaxed)) {
        if (issued.fetch_add(qd, std::memory_order_relaxed) >= cap) break;
        for (uint32_t i = 0; i < qd; i++) {
          uint64_t flat = r + R * rng.Below(owned);
          // A block picked twice in one batch: the later op (the newer generation) wins.
          uint32_t g = ds.gen[flat] + 1;
          uint8_t* b = buf.get() + uint64_t(i) * kBlockBytes;
          std::memcpy(b, Slot(RandSlot(flat, g)), kBlockBytes);
          astra::ObjectId obj = ds.objs[flat / ds.blocks_per_obj];
          uint64_t blk = flat % ds.blocks_per_obj;
          Stamp(b, obj, blk, g);
          ds.gen[flat] = g;
          batch[i] = {obj, blk, 1, b, {}};
        }
        auto a = Clock::now();
        if (qd == 1)
          Check(pool.Write(batch[0].obj, batch[0].block, 1, batch[0].buf), "rand write");
        else
          Check(pool.WriteBatch(batch), "rand write batch");
        auto z = Clock::now();
        lat[r].push_back(uint32_t(std::min<int64_t>(UINT32_MAX, (z - a).count())));
        n += qd;
        if (z >= deadline) stop = true;
      }
      ops += n;
    });
  for (auto& x : th) x.join();
  auto tf = Clock::now();
  Check(pool.Flush(), "flush");
  p.seconds = Since(t0);
  p.flush_seconds = Since(tf);
  p.ops = ops;
  p.bytes = p.ops * kBlockBytes;
  std::vector<uint32_t> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  Percentiles(all, &p);
  return p;
}

// Reads a random sample of the data set (after the random overwrites) and compares every byte.
Phase VerifySample(astra::Pool& pool, const DataSet& ds, uint32_t T, uint64_t n) {
  Phase p{"verify-sample", T};
  Rng rng(424242 + T);
  auto buf = astra::AllocAligned(kBlockBytes);
  auto t0 = Clock::now();
  for (uint64_t i = 0; i < n; i++) {
    uint64_t flat = rng.Below(ds.Total());
    Check(pool.Read(ds.objs[flat / ds.blocks_per_obj], flat % ds.blocks_per_obj, 1, buf.get()), "verify read");
    if (!VerifyBlock(ds, flat, buf.get(), true)) p.verify_errors++;
    p.verified_blocks++;
    p.verified_full++;
  }
  p.seconds = Since(t0);
  p.ops = n;
  p.bytes = n * kBlockBytes;
  return p;
}

// ---- output ----

std::string Json(const Config& c, const MetaResult* meta, const std::vector<Phase>& ps, const std::string& host) {
  std::ostringstream o;
  char b[512];
  std::string devices;
  for (const auto& d : c.devices) devices += (devices.empty() ? "\"" : ", \"") + d + "\"";
  o << "{\n  \"config\": {\"dir\": \"" << c.dir << "\", \"devices\": [" << devices << "], \"backends\": \""
    << c.backends << "\", \"members\": " << c.members << ", \"k\": " << c.k
    << ", \"m\": " << c.m << ", \"file_mib\": " << c.file_mib << ", \"seq_mib\": " << c.seq_mib << ", \"seq_read_passes\": " << c.seq_read_passes
    << ", \"rand_seconds\": " << c.rand_seconds << ", \"qd_threads\": " << c.qd_threads
    << ", \"compression\": \"" << (c.compression == astra::Compression::kZstd ? "zstd" : "none")
    << "\", \"dedup\": " << (c.dedup ? "true" : "false") << ", \"host\": \"" << host << "\"},\n";
  if (meta) {
    double bpb = meta->BytesPerBlock();
    std::snprintf(b, sizeof b,
                  "  \"meta\": {\"blocks\": %" PRIu64 ", \"rss_before\": %" PRIu64 ", \"rss_after\": %" PRIu64
                  ", \"bytes_per_block\": %.2f, \"bytes_per_tib\": %.0f, \"gib_per_tib\": %.3f, \"seconds\": %.3f, "
                  "\"random_rss_before\": %" PRIu64 ", \"random_rss_after\": %" PRIu64
                  ", \"random_bytes_per_block\": %.2f, \"curve\": [",
                  meta->blocks, meta->rss_before, meta->rss_after, bpb, bpb * (double(1ull << 40) / kBlockBytes),
                  bpb * (double(1ull << 40) / kBlockBytes) / double(1ull << 30), meta->seconds,
                  meta->rand_rss_before, meta->rand_rss_after, meta->RandBytesPerBlock());
    o << b;
    for (size_t i = 0; i < meta->curve.size(); i++)
      o << (i ? ", " : "") << "[" << meta->curve[i].first << ", " << meta->curve[i].second << "]";
    o << "]},\n";
  }
  o << "  \"results\": [\n";
  for (size_t i = 0; i < ps.size(); i++) {
    const Phase& p = ps[i];
    std::snprintf(b, sizeof b,
                  "    {\"phase\": \"%s\", \"threads\": %u, \"qd\": %u, \"ops\": %" PRIu64 ", \"bytes\": %" PRIu64
                  ", \"seconds\": %.4f, \"flush_seconds\": %.4f, \"mib_s\": %.2f, \"iops\": %.0f, \"p50_us\": %.1f, "
                  "\"p99_us\": %.1f, \"verified_blocks\": %" PRIu64 ", \"verified_full\": %" PRIu64
                  ", \"verify_errors\": %" PRIu64 "}%s\n",
                  p.name.c_str(), p.threads, p.qd, p.ops, p.bytes, p.seconds, p.flush_seconds, p.MiBps(), p.Iops(), p.p50_us,
                  p.p99_us, p.verified_blocks, p.verified_full, p.verify_errors, i + 1 < ps.size() ? "," : "");
    o << b;
  }
  o << "  ]\n}\n";
  return o.str();
}

void PrintTable(FILE* f, const Config& c, const MetaResult* meta, const std::vector<Phase>& ps) {
  if (c.devices.empty()) {
    std::fprintf(f, "astra_bench: %u+%u on %u files of %" PRIu64 " MiB in %s (%s); compression=%s dedup=%s\n", c.k,
                 c.m, c.members, c.file_mib, c.dir.c_str(), c.backends.c_str(),
                 c.compression == astra::Compression::kZstd ? "zstd" : "none", c.dedup ? "on" : "off");
  } else {
    std::string list;
    for (const auto& d : c.devices) list += (list.empty() ? "" : ",") + d;
    std::fprintf(f, "astra_bench: %u+%u on %u devices %s (%s); compression=%s dedup=%s\n", c.k, c.m, c.members,
                 list.c_str(), c.backends.c_str(), c.compression == astra::Compression::kZstd ? "zstd" : "none",
                 c.dedup ? "on" : "off");
  }
  std::fprintf(f, "%-14s %7s %4s %10s %10s %9s %9s %8s %8s %9s %6s\n", "phase", "threads", "qd", "MiB/s", "IOPS",
               "p50_us", "p99_us", "secs", "flush_s", "verified", "errors");
  for (const Phase& p : ps)
    std::fprintf(f, "%-14s %7u %4u %10.1f %10.0f %9.1f %9.1f %8.3f %8.3f %9" PRIu64 " %6" PRIu64 "\n", p.name.c_str(),
                 p.threads, p.qd, p.MiBps(), p.Iops(), p.p50_us, p.p99_us, p.seconds, p.flush_seconds, p.verified_blocks,
                 p.verify_errors);
  if (meta) {
    double bpb = meta->BytesPerBlock();
    std::fprintf(f,
                 "metadata RAM: %" PRIu64 " blocks written, VmRSS %" PRIu64 " -> %" PRIu64
                 " bytes: %.1f bytes/block = %.2f GiB per TiB stored\n",
                 meta->blocks, meta->rss_before, meta->rss_after, bpb,
                 bpb * (double(1ull << 40) / kBlockBytes) / double(1ull << 30));
    const double rbpb = meta->RandBytesPerBlock();
    std::fprintf(f,
                 "metadata RAM, 1-block writes at random blocks: VmRSS %" PRIu64 " -> %" PRIu64
                 " bytes: %.1f bytes/block = %.2f GiB per TiB stored\n",
                 meta->rand_rss_before, meta->rand_rss_after, rbpb,
                 rbpb * (double(1ull << 40) / kBlockBytes) / double(1ull << 30));
  }
}

std::vector<uint32_t> ParseList(const std::string& s) {
  std::vector<uint32_t> v;
  std::stringstream ss(s);
  std::string x;
  while (std::getline(ss, x, ','))
    if (!x.empty()) v.push_back(uint32_t(std::stoul(x)));
  return v;
}

void Usage() {
  std::fprintf(stderr,
               "usage: astra_bench (--dir DIR [--file-mib 1024] | --devices PATH,PATH,...) [--seq-mib 256]\n"
               "       [--seq-read-passes 4] [--seq-qd 6 (1: off)] [--readahead-kib N (0: off; default: the engine's)] [--read-poll-us N (0: off; default: the engine's, 50)]"
               "       [--rand-seconds 3] [--k 4 --m 2 (with --devices)]\n"
               "       [--threads 1,2] [--qd-threads 32 (0: off)] [--compression none|zstd] [--dedup on|off]\n"
               "       [--meta-mib 256 (0: off)] [--warmup-mib 64] [--no-bg-checkpoints] [--json] [--json-out FILE] [--keep]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Usage();
      return argv[++i];
    };
    if (a == "--dir") c.dir = next();
    else if (a == "--devices") {
      std::stringstream ss(next());
      std::string p;
      while (std::getline(ss, p, ','))
        if (!p.empty()) c.devices.push_back(p);
    } else if (a == "--k") c.k = uint32_t(std::stoul(next()));
    else if (a == "--m") c.m = uint32_t(std::stoul(next()));
    else if (a == "--file-mib") c.file_mib = std::stoull(next());
    else if (a == "--seq-mib") c.seq_mib = std::stoull(next());
    else if (a == "--seq-qd") c.seq_qd = uint32_t(std::stoul(next()));
    else if (a == "--seq-read-passes") c.seq_read_passes = std::max(1u, uint32_t(std::stoul(next())));
    else if (a == "--rand-seconds") c.rand_seconds = std::stod(next());
    else if (a == "--threads") c.threads = ParseList(next());
    else if (a == "--qd-threads") c.qd_threads = uint32_t(std::stoul(next()));
    else if (a == "--compression") {
      std::string v = next();
      if (v == "none") c.compression = astra::Compression::kNone;
      else if (v == "zstd") c.compression = astra::Compression::kZstd;
      else Usage();
    } else if (a == "--dedup") {
      std::string v = next();
      if (v != "on" && v != "off") Usage();
      c.dedup = v == "on";
    } else if (a == "--meta-mib") c.meta_mib = std::stoull(next());
    else if (a == "--warmup-mib") c.warmup_mib = std::stoull(next());
    else if (a == "--no-bg-checkpoints") c.background_checkpoints = false;
    else if (a == "--readahead-kib") c.readahead_kib = std::stoll(next());
    else if (a == "--read-poll-us") c.read_poll_us = std::stoll(next());
    else if (a == "--json") c.json_stdout = true;
    else if (a == "--json-out") c.json_out = next();
    else if (a == "--keep") c.keep = true;
    else Usage();
  }
  if (c.dir.empty() == c.devices.empty() || c.threads.empty()) {
    if (!c.dir.empty()) std::fprintf(stderr, "astra_bench: give --dir or --devices, not both\n");
    Usage();
  }
  if (!c.devices.empty()) {
    c.members = uint32_t(c.devices.size());
    if (c.k == 0 || c.m == 0 || c.members < c.k + c.m)
      Die("--devices: " + std::to_string(c.members) + " devices for a " + std::to_string(c.k) + "+" +
          std::to_string(c.m) + " pool (at least k + m needed)");
  }
  for (uint32_t T : c.threads)
    if (T == 0 || T * kSeqSlotsPerObject > kSlots) Die("--threads: each count must be 1..4");
  if (!c.dir.empty()) std::filesystem::create_directories(c.dir);

  // Random pool (incompressible), 16 MiB.
  g_pool = static_cast<uint8_t*>(std::aligned_alloc(kBlockBytes, kSlots * kBlockBytes));
  {
    Rng rng(20240601);
    auto* w = reinterpret_cast<uint64_t*>(g_pool);
    for (uint64_t i = 0; i < kSlots * kBlockBytes / 8; i++) w[i] = rng.Next();
  }

  std::string host;
  {
    char hn[256] = {};
    gethostname(hn, sizeof hn - 1);
    host = hn;
  }

  MetaResult meta;
  bool have_meta = false;
  if (c.meta_mib) {
    meta = MeasureMeta(c);  // first: nothing freed yet, so RSS growth is the engine's own
    have_meta = true;
  }

  std::vector<Phase> phases;
  auto pool = FreshPool(c);
  if (c.warmup_mib) {
    // Warm-up (not reported): the first sequential phase in a fresh pool is consistently slower
    // than later ones, whatever its thread count; this keeps that out of the T=1 numbers.
    DataSet w;
    w.objs.push_back(999);
    w.blocks_per_obj = std::max<uint64_t>(kSeqBlocks, (c.warmup_mib << 20) / kBlockBytes / kSeqBlocks * kSeqBlocks);
    w.gen.assign(w.Total(), 0);
    SeqWrite(*pool, w, 1);
  }
  astra::ObjectId next_obj = 1;
  for (uint32_t T : c.threads) {
    DataSet ds;
    for (uint32_t t = 0; t < T; t++) ds.objs.push_back(next_obj++);
    ds.blocks_per_obj = std::max<uint64_t>(kSeqBlocks, ((c.seq_mib << 20) / kBlockBytes / T) / kSeqBlocks * kSeqBlocks);
    ds.gen.assign(ds.Total(), 0);
    phases.push_back(SeqWrite(*pool, ds, T));
    phases.push_back(SeqRead(*pool, ds, T, c.seq_read_passes));
    if (c.seq_qd > 1) phases.push_back(SeqRead(*pool, ds, T, c.seq_read_passes, c.seq_qd));
    std::vector<uint32_t> rs = {T};
    if (c.qd_threads > 1) rs.push_back(c.qd_threads * T);
    for (uint32_t R : rs) phases.push_back(RandRead(*pool, ds, R, c.rand_seconds));
    // Queue depth from one thread per T: ReadBatch of qd_threads ops (fio's iodepth=32, numjobs=T).
    if (c.qd_threads > 1) phases.push_back(RandRead(*pool, ds, T, c.rand_seconds, c.qd_threads));
    // Random writes: T threads at QD 1 (a quarter of the data set at most), 32 x T threads, and
    // T threads each with WriteBatch calls of qd_threads ops (fio's iodepth=32, numjobs=T). The
    // caps keep the log space written by the whole run within the pool (no cleaning measured).
    phases.push_back(RandWrite(*pool, ds, T, c.rand_seconds, ds.Total() / 4));
    if (c.qd_threads > 1) {
      phases.push_back(RandWrite(*pool, ds, c.qd_threads * T, c.rand_seconds, ds.Total()));
      phases.push_back(RandWrite(*pool, ds, T, c.rand_seconds, ds.Total(), c.qd_threads));
    }
    phases.push_back(VerifySample(*pool, ds, T, 4096));
    std::fprintf(stderr, "astra_bench: threads=%u done\n", T);
  }
  auto st = pool->GetStatus();
  Check(pool->Close(), "close");
  pool.reset();
  if (!c.keep) RemoveMembers(c);

  uint64_t errors = 0;
  for (auto& p : phases) errors += p.verify_errors;
  PrintTable(c.json_stdout ? stderr : stdout, c, have_meta ? &meta : nullptr, phases);
  std::fprintf(c.json_stdout ? stderr : stdout,
               "pool: logical %.1f MiB, stored %.1f MiB, raw %.1f MiB, free %.1f MiB, reclaimable %.1f MiB\n",
               st.space.logical_bytes / 1048576.0, st.space.stored_bytes / 1048576.0, st.space.raw_bytes / 1048576.0,
               st.space.free_bytes / 1048576.0, st.space.reclaimable_bytes / 1048576.0);
  std::string js = Json(c, have_meta ? &meta : nullptr, phases, host);
  if (c.json_stdout) std::fputs(js.c_str(), stdout);
  if (!c.json_out.empty()) {
    std::ofstream f(c.json_out);
    f << js;
    if (!f) Die("cannot write " + c.json_out);
  }
  if (errors) {
    std::fprintf(stderr, "astra_bench: %" PRIu64 " blocks read back wrong\n", errors);
    return 1;
  }
  return 0;
}
