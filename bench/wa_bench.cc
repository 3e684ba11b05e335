// wa_bench: write amplification of the segment cleaner (issue 7; doc/space.md, doc/benchmarks.md).
//
// For each (fill F, workload, cleaner policy) it formats a fresh k+m pool (default 4+2) on N RAM
// members (astra::NewMemDevice, default 6 x 128 MiB; compression off, dedup off), each member
// wrapped in a CountingDevice that counts every byte written to it, classified by member offset:
//   superblocks  [0, 1 MiB)            (copies A at 0 and B at 256 KiB)
//   journal      [1 MiB, data_offset)  (replicated on every member)
//   data area    [data_offset, end)    (segment columns: user data, cleaner relocations and
//                                       checkpoint images, each with its parity columns)
// Then:
//   fill      one object, blocks [0, L), L = F% of PoolStatus.space.capacity_bytes / 4096,
//             sequential 1 MiB writes of random (incompressible, unique) data;
//   warm-up   --warmup-x * L random 4 KiB overwrites (unmeasured: the pool reaches steady state);
//   measure   --measure-x * L random 4 KiB overwrites; the counters are snapshotted after a Flush
//             at both ends of this phase.
// Workloads: "uniform" (every block equally likely) and "hot" (fio random_distribution=zoned:80/20:
// 80% of the writes go to the first 20% of the blocks, 20% to the other 80%). The trace (block
// sequence) and the data depend only on --seed, F and the workload, so both policies see exactly
// the same writes. A Flush every --flush-mib of user writes stands in for fsync / the background
// flush; with --background the engine's own background thread (flush, checkpoint, background
// cleaning every 5 s) also runs, which makes runs timing-dependent (default: off, deterministic).
//
// Write amplification (WA) = device bytes / user bytes over the measured phase:
//   wa_data_excl  = data-area bytes * k/(k+m) / user bytes  (parity excluded; the floor)
//   wa_total_incl = every byte written to every member / user bytes (parity, journal, superblocks)
// and the pieces: relocated (CleanerStats.bytes_relocated / user), checkpoint+padding (the rest of
// the data area beyond user + relocated), journal and superblocks (all copies) per user byte.
// At the end every block of the object is read back and compared (--no-verify skips it).
//
// Output: a table on stdout; --json (stdout) / --json-out FILE gives the same numbers as JSON.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "astra/device.h"
#include "astra/limits.h"
#include "astra/pool.h"

namespace {

using astra::kBlockBytes;
using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "wa_bench: %s\n", msg.c_str());
  std::exit(1);
}

void Check(const astra::Status& s, const std::string& what) {
  if (!s.ok()) Die(what + ": " + s.ToString());
}

double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string x;
  while (std::getline(ss, x, ','))
    if (!x.empty()) out.push_back(x);
  return out;
}

// ---- counting device ----

struct Counts {
  uint64_t sb = 0, journal = 0, data = 0, trim = 0, read = 0, flushes = 0;
  uint64_t Total() const { return sb + journal + data; }
  Counts operator-(const Counts& o) const {
    return {sb - o.sb, journal - o.journal, data - o.data, trim - o.trim, read - o.read, flushes - o.flushes};
  }
  Counts& operator+=(const Counts& o) {
    sb += o.sb, journal += o.journal, data += o.data, trim += o.trim, read += o.read, flushes += o.flushes;
    return *this;
  }
};

// Forwards everything to the wrapped device; counts bytes of writes by member region, trims, reads.
class CountingDevice final : public astra::Device {
 public:
  explicit CountingDevice(std::unique_ptr<astra::Device> inner) : inner_(std::move(inner)) {}
  const astra::DeviceInfo& info() const override { return inner_->info(); }
  void Submit(astra::IoRequest* const* reqs, size_t n) override {
    for (size_t i = 0; i < n; i++) {
      const astra::IoRequest& r = *reqs[i];
      switch (r.op) {
        case astra::IoOp::kWrite:
          if (r.offset_bytes < kJournalOffset) sb_.fetch_add(r.length_bytes, std::memory_order_relaxed);
          else if (r.offset_bytes < data_offset_) journal_.fetch_add(r.length_bytes, std::memory_order_relaxed);
          else data_.fetch_add(r.length_bytes, std::memory_order_relaxed);
          break;
        case astra::IoOp::kTrim: trim_.fetch_add(r.length_bytes, std::memory_order_relaxed); break;
        case astra::IoOp::kRead: read_.fetch_add(r.length_bytes, std::memory_order_relaxed); break;
        case astra::IoOp::kFlush: flushes_.fetch_add(1, std::memory_order_relaxed); break;
      }
    }
    inner_->Submit(reqs, n);
  }
  // Reads data_offset from superblock copy A (u64 at byte 104, doc/format/superblock.md).
  void LearnLayout() {
    astra::AlignedBuf b = astra::AllocAligned(kBlockBytes);
    Check(inner_->Read(0, b.get(), kBlockBytes), "read superblock");
    uint64_t off = 0;
    std::memcpy(&off, b.get() + 104, 8);
    if (off < kJournalOffset || off >= info().size_bytes) Die("implausible data offset " + std::to_string(off));
    data_offset_ = off;
  }
  uint64_t data_offset() const { return data_offset_; }
  Counts Get() const {
    return {sb_.load(), journal_.load(), data_.load(), trim_.load(), read_.load(), flushes_.load()};
  }

 private:
  static constexpr uint64_t kJournalOffset = 1u << 20;
  std::unique_ptr<astra::Device> inner_;
  uint64_t data_offset_ = UINT64_MAX;  // until LearnLayout: everything past 1 MiB is "journal"
  std::atomic<uint64_t> sb_{0}, journal_{0}, data_{0}, trim_{0}, read_{0}, flushes_{0};
};

// ---- deterministic trace and data ----

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

// Block `b` at generation `gen`: 4 KiB of xoshiro output seeded by (seed, b, gen); incompressible
// and unique, and regenerated for verification.
void FillBlock(uint8_t* out, uint64_t seed, uint64_t b, uint32_t gen) {
  Rng r(seed ^ (b * 0xD1B54A32D192ED03ull) ^ (uint64_t(gen) << 40) ^ 0x5741424E43484D4Bull);
  for (uint32_t i = 0; i < kBlockBytes; i += 8) {
    uint64_t v = r.Next();
    std::memcpy(out + i, &v, 8);
  }
}

// ---- one run ----

struct Config {
  uint32_t members = 6, k = 4, m = 2;
  uint64_t member_mib = 128;
  uint64_t column_kib = 1024;  // FormatOptions.segment_column_bytes (default 1 MiB)
  std::vector<double> fills = {50, 80, 90};
  std::vector<std::string> workloads = {"uniform", "hot"};
  std::vector<std::string> policies = {"cost-benefit", "greedy"};
  double warmup_x = 1.0, measure_x = 2.0;
  double flush_mib = 4;
  bool background = false;
  bool verify = true;
  uint64_t seed = 7;
  bool json_stdout = false;
  std::string json_out;
};

struct Run {
  double fill_pct = 0;
  std::string workload, policy;
  uint64_t capacity_bytes = 0, free_bytes_empty = 0, live_bytes = 0, segment_data_bytes = 0;
  uint64_t segments_total = 0, data_offset = 0;
  // measured phase
  uint64_t user_bytes = 0, user_ops = 0;
  Counts dev;
  astra::CleanerStats cleaner;  // delta over the measured phase
  uint64_t checkpoints = 0;     // superblock writes / (2 copies * members)
  double seconds_fill = 0, seconds_warmup = 0, seconds_measure = 0, seconds_verify = 0;
  // whole run
  uint64_t nospace_errors = 0;
  std::string first_error;
  uint64_t verified_blocks = 0, verify_errors = 0;
  bool completed = false;
  astra::PoolStatus end_status;
};

struct Derived {
  double wa_data_excl = 0, wa_data_incl = 0, wa_total_incl = 0, wa_excl_one_meta = 0;
  double relocated = 0, ckpt_pad = 0, journal = 0, sb = 0, victim_u = 0, write_iops = 0;
};

Derived Derive(const Run& r, const Config& c) {
  Derived d;
  if (r.user_bytes == 0) return d;
  const double u = double(r.user_bytes);
  const double kw = double(c.k) / double(c.k + c.m);
  d.wa_data_excl = double(r.dev.data) * kw / u;
  d.wa_data_incl = double(r.dev.data) / u;
  d.wa_total_incl = double(r.dev.Total()) / u;
  d.wa_excl_one_meta = (double(r.dev.data) * kw + double(r.dev.journal + r.dev.sb) / c.members) / u;
  d.relocated = double(r.cleaner.bytes_relocated) / u;
  d.ckpt_pad = d.wa_data_excl - 1.0 - d.relocated;
  d.journal = double(r.dev.journal) / u;
  d.sb = double(r.dev.sb) / u;
  d.victim_u = r.cleaner.segments_cleaned
                   ? double(r.cleaner.bytes_relocated) / (double(r.cleaner.segments_cleaned) * double(r.segment_data_bytes))
                   : 0;
  d.write_iops = r.seconds_measure > 0 ? double(r.user_ops) / r.seconds_measure : 0;
  return d;
}

Run RunOne(const Config& c, double fill, const std::string& workload, const std::string& policy) {
  Run r;
  r.fill_pct = fill;
  r.workload = workload;
  r.policy = policy;
  std::vector<std::unique_ptr<astra::Device>> devs;
  std::vector<CountingDevice*> cdev;
  for (uint32_t i = 0; i < c.members; i++) {
    auto d = std::make_unique<CountingDevice>(astra::NewMemDevice(c.member_mib << 20, "mem:" + std::to_string(i)));
    cdev.push_back(d.get());
    devs.push_back(std::move(d));
  }
  astra::FormatOptions fo;
  fo.data_shards = c.k;
  fo.parity_shards = c.m;
  fo.compression = astra::Compression::kNone;
  fo.dedup = false;
  fo.segment_column_bytes = c.column_kib << 10;
  Check(astra::Pool::Format(devs, fo), "format");
  for (auto* d : cdev) d->LearnLayout();
  r.data_offset = cdev[0]->data_offset();
  astra::OpenOptions oo;
  oo.background_checkpoints = c.background;
  oo.cleaner_policy = policy == "greedy" ? astra::CleanerPolicy::kGreedy : astra::CleanerPolicy::kCostBenefit;
  auto po = astra::Pool::Open(std::move(devs), oo);
  if (!po.ok()) Die("open: " + po.status().ToString());
  std::unique_ptr<astra::Pool> pool = std::move(po).value();
  auto counts = [&] {
    Counts t;
    for (auto* d : cdev) t += d->Get();
    return t;
  };

  astra::PoolStatus st0 = pool->GetStatus();
  r.capacity_bytes = st0.space.capacity_bytes;
  r.free_bytes_empty = st0.space.free_bytes;
  r.segments_total = st0.segments_total;
  r.segment_data_bytes = st0.segments_total ? st0.space.capacity_bytes / st0.segments_total : 0;
  const uint64_t L = uint64_t(double(r.capacity_bytes) * fill / 100.0) / kBlockBytes;
  r.live_bytes = L * kBlockBytes;
  const astra::ObjectId obj = 1;
  std::vector<uint32_t> gen(L, 0);
  const uint64_t seed = c.seed * 1000003 + uint64_t(fill * 10) * 31 + (workload == "hot" ? 17 : 0);
  const uint64_t flush_every = std::max<uint64_t>(1, uint64_t(c.flush_mib * 1048576.0) / kBlockBytes);
  auto note_error = [&](const astra::Status& s, const std::string& where) {
    if (s.IsNoSpace()) r.nospace_errors++;
    if (r.first_error.empty()) r.first_error = where + ": " + s.ToString();
  };

  // Fill: sequential 1 MiB writes.
  auto t0 = Clock::now();
  uint64_t filled = 0;  // blocks the fill wrote (all of them unless it failed)
  {
    std::vector<uint8_t> buf(astra::kBlocksPerIoMax * kBlockBytes);
    for (uint64_t b = 0; b < L; b += astra::kBlocksPerIoMax) {
      uint32_t n = uint32_t(std::min<uint64_t>(astra::kBlocksPerIoMax, L - b));
      for (uint32_t i = 0; i < n; i++) FillBlock(buf.data() + uint64_t(i) * kBlockBytes, seed, b + i, 0);
      astra::Status s = pool->Write(obj, b, n, buf.data());
      if (!s.ok()) {
        note_error(s, "fill at block " + std::to_string(b));
        break;
      }
      filled = b + n;
    }
    astra::Status s = pool->Flush();
    if (!s.ok()) note_error(s, "fill flush");
  }
  r.seconds_fill = Since(t0);

  // Overwrites.
  Rng trace(seed ^ 0x7472616365ull);
  const uint64_t hot_n = std::max<uint64_t>(1, L / 5);
  auto next_block = [&]() -> uint64_t {
    if (workload == "hot") {
      if (trace.Below(100) < 80) return trace.Below(hot_n);
      return hot_n + trace.Below(L - hot_n);
    }
    return trace.Below(L);
  };
  uint8_t* blk = nullptr;
  astra::AlignedBuf blk_buf = astra::AllocAligned(kBlockBytes);
  blk = blk_buf.get();
  auto overwrite = [&](uint64_t ops, const char* phase) -> uint64_t {
    uint64_t done = 0;
    for (uint64_t i = 0; i < ops && r.first_error.empty(); i++) {
      uint64_t b = next_block();
      FillBlock(blk, seed, b, gen[b] + 1);
      astra::Status s = pool->Write(obj, b, 1, blk);
      if (!s.ok()) {
        note_error(s, std::string(phase) + " write " + std::to_string(i) + " (block " + std::to_string(b) + ")");
        break;
      }
      gen[b]++;
      done++;
      if ((i + 1) % flush_every == 0) {
        s = pool->Flush();
        if (!s.ok()) note_error(s, std::string(phase) + " flush");
      }
    }
    return done;
  };
  if (r.first_error.empty()) {
    t0 = Clock::now();
    overwrite(uint64_t(double(L) * c.warmup_x), "warm-up");
    astra::Status s = pool->Flush();
    if (!s.ok()) note_error(s, "warm-up flush");
    r.seconds_warmup = Since(t0);
  }
  if (r.first_error.empty()) {
    Counts c0 = counts();
    astra::CleanerStats k0 = pool->GetStatus().cleaner;
    t0 = Clock::now();
    r.user_ops = overwrite(uint64_t(double(L) * c.measure_x), "measure");
    astra::Status s = pool->Flush();
    if (!s.ok()) note_error(s, "measure flush");
    r.seconds_measure = Since(t0);
    r.dev = counts() - c0;
    astra::CleanerStats k1 = pool->GetStatus().cleaner;
    r.cleaner.passes = k1.passes - k0.passes;
    r.cleaner.segments_cleaned = k1.segments_cleaned - k0.segments_cleaned;
    r.cleaner.bytes_relocated = k1.bytes_relocated - k0.bytes_relocated;
    r.cleaner.segments_trimmed = k1.segments_trimmed - k0.segments_trimmed;
    r.user_bytes = r.user_ops * kBlockBytes;
    r.checkpoints = r.dev.sb / (2ull * c.members * kBlockBytes);
    r.completed = r.first_error.empty();
  }
  r.end_status = pool->GetStatus();

  // Verify every block (whatever happened above: ENOSPC must never damage stored data).
  if (c.verify) {
    t0 = Clock::now();
    std::vector<uint8_t> got(astra::kBlocksPerIoMax * kBlockBytes), want(kBlockBytes);
    for (uint64_t b = 0; b < L; b += astra::kBlocksPerIoMax) {
      uint32_t n = uint32_t(std::min<uint64_t>(astra::kBlocksPerIoMax, L - b));
      astra::Status s = pool->Read(obj, b, n, got.data());
      if (!s.ok()) {
        r.verify_errors += n;
        if (r.first_error.empty()) r.first_error = "verify read: " + s.ToString();
        continue;
      }
      for (uint32_t i = 0; i < n; i++) {
        // Blocks past a failed fill were never written: they must read as zeros.
        if (b + i < filled) FillBlock(want.data(), seed, b + i, gen[b + i]);
        else std::memset(want.data(), 0, kBlockBytes);
        if (std::memcmp(got.data() + uint64_t(i) * kBlockBytes, want.data(), kBlockBytes) != 0) r.verify_errors++;
      }
      r.verified_blocks += n;
    }
    r.seconds_verify = Since(t0);
  }
  astra::Status s = pool->Close();
  if (!s.ok() && r.first_error.empty()) r.first_error = "close: " + s.ToString();
  return r;
}

// ---- output ----

std::string Json(const Config& c, const std::vector<Run>& runs) {
  std::ostringstream o;
  char tmp[256];
  o << "{\n  \"bench\": \"wa_bench\",\n";
  o << "  \"config\": {\"members\": " << c.members << ", \"k\": " << c.k << ", \"m\": " << c.m
    << ", \"member_mib\": " << c.member_mib << ", \"segment_column_kib\": " << c.column_kib << ", \"warmup_x\": " << c.warmup_x << ", \"measure_x\": " << c.measure_x
    << ", \"flush_mib\": " << c.flush_mib << ", \"background\": " << (c.background ? "true" : "false")
    << ", \"seed\": " << c.seed << ", \"compression\": \"none\", \"dedup\": false},\n";
  o << "  \"runs\": [";
  for (size_t i = 0; i < runs.size(); i++) {
    const Run& r = runs[i];
    Derived d = Derive(r, c);
    o << (i ? ",\n" : "\n") << "    {";
    o << "\"fill_pct\": " << r.fill_pct << ", \"workload\": \"" << r.workload << "\", \"policy\": \"" << r.policy << "\"";
    o << ", \"completed\": " << (r.completed ? "true" : "false");
    o << ", \"capacity_bytes\": " << r.capacity_bytes << ", \"free_bytes_empty\": " << r.free_bytes_empty
      << ", \"live_bytes\": " << r.live_bytes << ", \"segments\": " << r.segments_total
      << ", \"segment_data_bytes\": " << r.segment_data_bytes << ", \"data_offset\": " << r.data_offset;
    o << ", \"user_bytes\": " << r.user_bytes << ", \"device\": {\"superblock\": " << r.dev.sb
      << ", \"journal\": " << r.dev.journal << ", \"data_area\": " << r.dev.data << ", \"trim\": " << r.dev.trim
      << ", \"read\": " << r.dev.read << ", \"flushes\": " << r.dev.flushes << "}";
    o << ", \"cleaner\": {\"passes\": " << r.cleaner.passes << ", \"segments_cleaned\": " << r.cleaner.segments_cleaned
      << ", \"bytes_relocated\": " << r.cleaner.bytes_relocated << ", \"segments_trimmed\": " << r.cleaner.segments_trimmed
      << "}, \"checkpoints\": " << r.checkpoints;
    std::snprintf(tmp, sizeof tmp,
                  ", \"wa_data_excl_parity\": %.4f, \"wa_data_incl_parity\": %.4f, \"wa_total_incl_parity\": %.4f"
                  ", \"wa_excl_parity_one_meta_copy\": %.4f",
                  d.wa_data_excl, d.wa_data_incl, d.wa_total_incl, d.wa_excl_one_meta);
    o << tmp;
    std::snprintf(tmp, sizeof tmp,
                  ", \"per_user_byte\": {\"relocated\": %.4f, \"checkpoint_and_padding\": %.4f, \"journal_all_copies\": %.4f"
                  ", \"superblock_all_copies\": %.4f}, \"victim_utilization\": %.4f, \"write_iops\": %.0f",
                  d.relocated, d.ckpt_pad, d.journal, d.sb, d.victim_u, d.write_iops);
    o << tmp;
    std::snprintf(tmp, sizeof tmp,
                  ", \"seconds\": {\"fill\": %.2f, \"warmup\": %.2f, \"measure\": %.2f, \"verify\": %.2f}",
                  r.seconds_fill, r.seconds_warmup, r.seconds_measure, r.seconds_verify);
    o << tmp;
    o << ", \"nospace_errors\": " << r.nospace_errors << ", \"verified_blocks\": " << r.verified_blocks
      << ", \"verify_errors\": " << r.verify_errors;
    std::string err;
    for (char ch : r.first_error) err += (ch == '"' || ch == '\\') ? '\'' : ch;
    o << ", \"error\": \"" << err << "\"";
    o << ", \"end_free_bytes\": " << r.end_status.space.free_bytes
      << ", \"end_reclaimable_bytes\": " << r.end_status.space.reclaimable_bytes
      << ", \"end_segments_free\": " << r.end_status.segments_free << "}";
  }
  o << "\n  ]\n}\n";
  return o.str();
}

void PrintRow(const Run& r, const Config& c, FILE* f) {
  Derived d = Derive(r, c);
  std::fprintf(f, "%4.0f%% %-7s %-12s %6.3f %6.3f %6.3f | %5.3f %6.3f %5.3f %5.3f | %5.3f %6" PRIu64 " %5" PRIu64
                  " %7.0f %5.0fs %s\n",
               r.fill_pct, r.workload.c_str(), r.policy.c_str(), d.wa_data_excl, d.wa_data_incl, d.wa_total_incl,
               d.relocated, d.ckpt_pad, d.journal, d.sb, d.victim_u, r.cleaner.segments_cleaned, r.checkpoints,
               d.write_iops, r.seconds_fill + r.seconds_warmup + r.seconds_measure + r.seconds_verify,
               !r.first_error.empty() ? ("ERROR " + r.first_error).c_str()
               : r.verify_errors       ? "VERIFY FAILED"
                                       : "ok");
  std::fflush(f);
}

void PrintHeader(FILE* f) {
  std::fprintf(f,
               "fill  load    policy       WA:data  data   total | reloc ckpt+pad jrnl  sb    | "
               "victim  segs  ckpts    IOPS  time status\n"
               "                          -parity +parity +parity| per user byte (pieces of WA)  | "
               "u       cleaned\n");
}

void Usage() {
  std::fprintf(stderr,
               "usage: wa_bench [--member-mib N=128] [--column-kib 1024] [--members N=6] [--k 4] [--m 2] [--fills 50,80,90]\n"
               "                [--workloads uniform,hot] [--policies cost-benefit,greedy] [--warmup-x 1]\n"
               "                [--measure-x 2] [--flush-mib 4] [--background] [--no-verify] [--seed 7]\n"
               "                [--json] [--json-out FILE]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) Usage();
      return argv[++i];
    };
    if (a == "--member-mib") c.member_mib = std::stoull(val());
    else if (a == "--column-kib") c.column_kib = std::stoull(val());
    else if (a == "--members") c.members = uint32_t(std::stoul(val()));
    else if (a == "--k") c.k = uint32_t(std::stoul(val()));
    else if (a == "--m") c.m = uint32_t(std::stoul(val()));
    else if (a == "--fills") {
      c.fills.clear();
      for (auto& s : SplitList(val())) c.fills.push_back(std::stod(s));
    } else if (a == "--workloads") c.workloads = SplitList(val());
    else if (a == "--policies") c.policies = SplitList(val());
    else if (a == "--warmup-x") c.warmup_x = std::stod(val());
    else if (a == "--measure-x") c.measure_x = std::stod(val());
    else if (a == "--flush-mib") c.flush_mib = std::stod(val());
    else if (a == "--background") c.background = true;
    else if (a == "--no-verify") c.verify = false;
    else if (a == "--seed") c.seed = std::stoull(val());
    else if (a == "--json") c.json_stdout = true;
    else if (a == "--json-out") c.json_out = val();
    else Usage();
  }
  for (auto& w : c.workloads)
    if (w != "uniform" && w != "hot") Die("unknown workload " + w);
  for (auto& p : c.policies)
    if (p != "cost-benefit" && p != "greedy") Die("unknown policy " + p);

  FILE* table = c.json_stdout ? stderr : stdout;
  std::fprintf(table, "wa_bench: %u x %" PRIu64 " MiB RAM members, %u+%u, %" PRIu64 " KiB segment columns, compression off, dedup off, warm-up %.1fx, "
                      "measured %.1fx of live data, flush every %.1f MiB%s\n",
               c.members, c.member_mib, c.k, c.m, c.column_kib, c.warmup_x, c.measure_x, c.flush_mib,
               c.background ? ", background thread on" : "");
  PrintHeader(table);
  std::vector<Run> runs;
  auto t0 = Clock::now();
  for (double f : c.fills)
    for (auto& w : c.workloads)
      for (auto& p : c.policies) {
        runs.push_back(RunOne(c, f, w, p));
        PrintRow(runs.back(), c, table);
      }
  std::fprintf(table, "total %.0f s\n", Since(t0));
  std::string js = Json(c, runs);
  if (c.json_stdout) std::fputs(js.c_str(), stdout);
  if (!c.json_out.empty()) {
    std::ofstream f(c.json_out);
    f << js;
    if (!f) Die("cannot write " + c.json_out);
  }
  bool bad = false;
  for (auto& r : runs) bad |= r.verify_errors != 0;
  return bad ? 1 : 0;
}
