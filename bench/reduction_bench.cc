// reduction_bench: data-reduction benchmark of the AstraFS engine on a real corpus (issue 3).
//
// Formats a k+m pool (default 4+2) on 6 sparse member files in --dir (io_uring + O_DIRECT, the
// production path, like astra_bench), with --compression zstd[:LEVEL]|none and --dedup on|off,
// then ingests --corpus: every regular file (symlinks are not followed, empty files write nothing)
// becomes its own object, written in file order of a sorted tree walk, single thread, in Write
// calls of up to 256 blocks (1 MiB). The tail of each file is padded with zeros to 4 KiB, so the
// last block of most files is partly zero (it is stored like any other block; only all-zero
// blocks become holes). The timed ingest covers reading the files (from the page cache after the
// warm-up read) and every Write, plus one final Flush.
//
// Reports (table on stdout; --json-out FILE for the same as JSON):
//   file_bytes          sum of the file sizes (what tar / borg see as input)
//   logical_bytes       engine accounting: referenced 4 KiB blocks * 4096 (includes tail padding)
//   stored_bytes        data bytes of live extents on disk, before parity
//   ratio_engine        logical_bytes / stored_bytes (what `astrafs status` reports)
//   ratio_file          file_bytes / stored_bytes (same numerator as tar|zstd and borg: compare this)
//   zero/dedup/compression saved bytes, ingest MB/s (file_bytes / s, MB = 10^6 bytes)
//   dedup index RAM: the engine's index is absl::flat_hash_map<uint64_t, uint32_t> holding one entry
//     per unique stored block (MetaState::dedup_). The bench rebuilds a map of that exact type with
//     the same number of insertions (its bucket_count depends only on that) and reports
//     bucket_count * (sizeof(value_type) + 1 control byte) / unique blocks; also the 8-byte
//     fingerprint each extent-table entry keeps for the index, and the process RSS delta over the
//     ingest / unique blocks (all engine metadata, not only the index).
//
// --unit-experiment (a second, untimed pass over the same files, no engine involved): estimates
// the stored bytes if the compression unit were a run of up to N consecutive new blocks of one
// Write call instead of one block, for N in --units (default 1,2,4,8,16,32). It models the engine
// write path: zero blocks are holes, a block whose bytes were seen before (exact XXH3-128 set) is a
// dedup hit, the remaining blocks of each Write call are cut into runs of up to N consecutive new
// blocks, each run compressed with zstd at the same level and kept only if it saves >= 1/8 (else
// stored raw). N = 1 must land within a few bytes of the engine's own stored_bytes.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>
#include <xxhash.h>
#include <zstd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
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
using astra::kBlocksPerIoMax;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "reduction_bench: %s\n", msg.c_str());
  std::exit(1);
}

void Check(const astra::Status& s, const std::string& what) {
  if (!s.ok()) Die(what + ": " + s.ToString());
}

double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

uint64_t RssBytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

struct Config {
  std::string corpus;
  std::string dir;
  uint32_t members = 6, k = 4, m = 2;
  uint64_t file_mib = 2048;
  astra::Compression compression = astra::Compression::kZstd;
  int level = 1;
  bool dedup = true;
  uint32_t frame_blocks = 0;  // OpenOptions::compression_unit_blocks (0 = the engine default)
  bool ingest = true;
  bool unit_experiment = false;
  std::vector<uint32_t> units = {1, 2, 4, 8, 16, 32};
  std::string json_out;
  bool keep = false;
};

struct FileEntry {
  std::string path;
  uint64_t size;
};

std::vector<FileEntry> WalkCorpus(const std::string& root) {
  std::vector<FileEntry> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::none, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) Die("walk " + root + ": " + ec.message());
    if (!it->is_regular_file(ec) || it->is_symlink(ec)) continue;
    files.push_back({it->path().string(), uint64_t(it->file_size(ec))});
  }
  std::sort(files.begin(), files.end(), [](const FileEntry& a, const FileEntry& b) { return a.path < b.path; });
  return files;
}

// Reads up to 256 blocks of `fd` at block `b` into buf, zero-padding the tail. Returns blocks.
uint32_t ReadChunk(int fd, const FileEntry& f, uint64_t b, uint8_t* buf) {
  uint64_t off = b * kBlockBytes;
  uint64_t want = std::min<uint64_t>(uint64_t(kBlocksPerIoMax) * kBlockBytes, f.size - off);
  uint64_t got = 0;
  while (got < want) {
    ssize_t n = ::pread(fd, buf + got, want - got, off + got);
    if (n < 0) Die("read " + f.path + ": " + std::strerror(errno));
    if (n == 0) break;  // file shrank: treat the rest as zeros
    got += uint64_t(n);
  }
  uint32_t blocks = uint32_t((want + kBlockBytes - 1) / kBlockBytes);
  std::memset(buf + got, 0, uint64_t(blocks) * kBlockBytes - got);
  return blocks;
}

// ---- engine ingest ----

struct IngestResult {
  uint64_t files = 0, file_bytes = 0, written_blocks = 0, write_calls = 0;
  double seconds = 0, write_seconds = 0, flush_seconds = 0;
  uint64_t rss_before = 0, rss_after = 0;
  astra::SpaceStats space;
  uint64_t unique_blocks = 0;
  uint64_t index_buckets = 0, index_bytes = 0;
  double loadavg_start = 0, loadavg_end = 0;
};

double LoadAvg1() {
  std::ifstream f("/proc/loadavg");
  double x = 0;
  f >> x;
  return x;
}

std::string MemberPath(const Config& c, uint32_t i) { return c.dir + "/astra-red-member-" + std::to_string(i) + ".img"; }

IngestResult Ingest(const Config& c, const std::vector<FileEntry>& files) {
  IngestResult r;
  std::error_code ec;
  fs::create_directories(c.dir, ec);
  for (uint32_t i = 0; i < c.members; i++) ::unlink(MemberPath(c, i).c_str());
  std::vector<std::unique_ptr<astra::Device>> devs;
  for (uint32_t i = 0; i < c.members; i++) {
    auto d = astra::OpenDevice(MemberPath(c, i), c.file_mib << 20);
    if (!d.ok()) Die("open " + MemberPath(c, i) + ": " + d.status().ToString());
    devs.push_back(std::move(d).value());
  }
  astra::FormatOptions fo;
  fo.data_shards = c.k;
  fo.parity_shards = c.m;
  fo.compression = c.compression;
  fo.compression_level = c.level;
  fo.dedup = c.dedup;
  fo.force = true;
  Check(astra::Pool::Format(devs, fo), "format");
  astra::OpenOptions oo;
  oo.compression_unit_blocks = c.frame_blocks;
  auto p = astra::Pool::Open(std::move(devs), oo);
  if (!p.ok()) Die("open pool: " + p.status().ToString());
  std::unique_ptr<astra::Pool> pool = std::move(p).value();

  std::vector<uint8_t> buf(uint64_t(kBlocksPerIoMax) * kBlockBytes);
  r.loadavg_start = LoadAvg1();
  r.rss_before = RssBytes();
  auto t0 = Clock::now();
  double write_s = 0;
  astra::ObjectId obj = 1 << 20;
  for (const FileEntry& f : files) {
    r.files++;
    r.file_bytes += f.size;
    obj++;
    if (f.size == 0) continue;
    int fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) Die("open " + f.path + ": " + std::strerror(errno));
    for (uint64_t b = 0; b * kBlockBytes < f.size;) {
      uint32_t n = ReadChunk(fd, f, b, buf.data());
      auto w0 = Clock::now();
      Check(pool->Write(obj, b, n, buf.data()), "write " + f.path);
      write_s += Since(w0);
      r.written_blocks += n;
      r.write_calls++;
      b += n;
    }
    ::close(fd);
  }
  auto f0 = Clock::now();
  Check(pool->Flush(), "flush");
  r.flush_seconds = Since(f0);
  r.seconds = Since(t0);
  r.write_seconds = write_s + r.flush_seconds;
  r.rss_after = RssBytes();
  r.loadavg_end = LoadAvg1();
  r.space = pool->GetStatus().space;
  // Unique stored blocks = extents in use = referenced blocks minus the shared references.
  r.unique_blocks = (r.space.logical_bytes - r.space.dedup_saved_bytes) / kBlockBytes;
  if (c.dedup) {
    // Same type and the same number of insertions as MetaState::dedup_ (no erases during ingest):
    // the same bucket_count. Keys are arbitrary distinct values.
    absl::flat_hash_map<uint64_t, uint32_t> replica;
    for (uint64_t i = 0; i < r.unique_blocks; i++) replica.try_emplace(i * 0x9E3779B97F4A7C15ull + 1, uint32_t(i));
    r.index_buckets = replica.bucket_count();
    r.index_bytes = r.index_buckets * (sizeof(decltype(replica)::value_type) + 1);
  }
  Check(pool->Close(), "close");
  pool.reset();
  if (!c.keep)
    for (uint32_t i = 0; i < c.members; i++) ::unlink(MemberPath(c, i).c_str());
  return r;
}

// ---- compression-unit experiment ----

struct UnitResult {
  uint32_t unit = 0;
  uint64_t stored = 0, units = 0, compressed_units = 0;
  double compress_seconds = 0;  // time in ZSTD_compress2 for this unit size (single thread)
};

struct ExperimentResult {
  uint64_t blocks = 0, zero_blocks = 0, dup_blocks = 0, new_blocks = 0, file_bytes = 0;
  double seconds = 0;
  std::vector<UnitResult> by_unit;
};

struct H128 {
  uint64_t lo, hi;
  bool operator==(const H128& o) const { return lo == o.lo && hi == o.hi; }
  template <typename H>
  friend H AbslHashValue(H h, const H128& x) {
    return H::combine(std::move(h), x.lo, x.hi);
  }
};

bool IsZero(const uint8_t* b) {
  for (uint32_t i = 0; i < kBlockBytes; i += 8) {
    uint64_t w;
    std::memcpy(&w, b + i, 8);
    if (w) return false;
  }
  return true;
}

ExperimentResult UnitExperiment(const Config& c, const std::vector<FileEntry>& files) {
  ExperimentResult r;
  for (uint32_t u : c.units) r.by_unit.push_back({u, 0, 0, 0});
  const uint32_t max_unit = *std::max_element(c.units.begin(), c.units.end());
  absl::flat_hash_set<H128> seen;
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, c.level);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 0);
  std::vector<uint8_t> buf(uint64_t(kBlocksPerIoMax) * kBlockBytes);
  std::vector<uint8_t> run(uint64_t(kBlocksPerIoMax) * kBlockBytes);
  std::vector<uint8_t> out(ZSTD_compressBound(uint64_t(max_unit) * kBlockBytes));
  auto t0 = Clock::now();
  auto store_unit = [&](UnitResult& ur, const uint8_t* p, uint32_t nblocks) {
    const uint64_t raw = uint64_t(nblocks) * kBlockBytes;
    size_t n = ZSTD_compress2(cctx, out.data(), out.size(), p, raw);
    ur.units++;
    if (!ZSTD_isError(n) && n <= raw - raw / 8) {
      ur.stored += n;
      ur.compressed_units++;
    } else {
      ur.stored += raw;
    }
  };
  for (const FileEntry& f : files) {
    r.file_bytes += f.size;
    if (f.size == 0) continue;
    int fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) Die("open " + f.path + ": " + std::strerror(errno));
    for (uint64_t b = 0; b * kBlockBytes < f.size;) {
      uint32_t n = ReadChunk(fd, f, b, buf.data());
      b += n;
      r.blocks += n;
      // Classify; gather runs of consecutive new blocks of this Write call.
      std::vector<std::pair<uint32_t, uint32_t>> runs;  // (first, count) of new blocks
      for (uint32_t i = 0; i < n; i++) {
        const uint8_t* blk = buf.data() + uint64_t(i) * kBlockBytes;
        if (IsZero(blk)) {
          r.zero_blocks++;
          continue;
        }
        XXH128_hash_t h = XXH3_128bits(blk, kBlockBytes);
        if (!seen.insert(H128{h.low64, h.high64}).second) {
          r.dup_blocks++;
          continue;
        }
        r.new_blocks++;
        if (!runs.empty() && runs.back().first + runs.back().second == i) runs.back().second++;
        else runs.emplace_back(i, 1);
      }
      for (auto& ur : r.by_unit) {
        auto c0 = Clock::now();
        for (auto [first, count] : runs) {
          for (uint32_t j = 0; j < count; j += ur.unit) {
            uint32_t nb = std::min(ur.unit, count - j);
            store_unit(ur, buf.data() + uint64_t(first + j) * kBlockBytes, nb);
          }
        }
        ur.compress_seconds += Since(c0);
      }
    }
    ::close(fd);
  }
  r.seconds = Since(t0);
  ZSTD_freeCCtx(cctx);
  return r;
}

// ---- output ----

std::string Json(const Config& c, const IngestResult* ir, const ExperimentResult* er) {
  std::ostringstream o;
  o.precision(6);
  o << std::fixed;
  o << "{\n  \"corpus\": \"" << c.corpus << "\",\n"
    << "  \"k\": " << c.k << ", \"m\": " << c.m << ",\n"
    << "  \"compression\": \"" << (c.compression == astra::Compression::kZstd ? "zstd" : "none") << "\",\n"
    << "  \"level\": " << c.level << ",\n  \"frame_blocks\": " << c.frame_blocks << ",\n  \"dedup\": " << (c.dedup ? "true" : "false");
  if (ir) {
    const auto& s = ir->space;
    o << ",\n  \"ingest\": {\n"
      << "    \"files\": " << ir->files << ",\n"
      << "    \"file_bytes\": " << ir->file_bytes << ",\n"
      << "    \"written_blocks\": " << ir->written_blocks << ",\n"
      << "    \"write_calls\": " << ir->write_calls << ",\n"
      << "    \"logical_bytes\": " << s.logical_bytes << ",\n"
      << "    \"stored_bytes\": " << s.stored_bytes << ",\n"
      << "    \"raw_bytes\": " << s.raw_bytes << ",\n"
      << "    \"zero_saved_bytes\": " << s.zero_saved_bytes << ",\n"
      << "    \"dedup_saved_bytes\": " << s.dedup_saved_bytes << ",\n"
      << "    \"compression_saved_bytes\": " << s.compression_saved_bytes << ",\n"
      << "    \"data_reduction_ratio\": " << s.data_reduction_ratio << ",\n"
      << "    \"ratio_engine\": " << double(s.logical_bytes) / double(s.stored_bytes) << ",\n"
      << "    \"ratio_file\": " << double(ir->file_bytes) / double(s.stored_bytes) << ",\n"
      << "    \"seconds\": " << ir->seconds << ",\n"
      << "    \"engine_seconds\": " << ir->write_seconds << ",\n"
      << "    \"flush_seconds\": " << ir->flush_seconds << ",\n"
      << "    \"ingest_MBps\": " << double(ir->file_bytes) / 1e6 / ir->seconds << ",\n"
      << "    \"engine_only_MBps\": " << double(ir->file_bytes) / 1e6 / ir->write_seconds << ",\n"
      << "    \"unique_blocks\": " << ir->unique_blocks << ",\n"
      << "    \"index_buckets\": " << ir->index_buckets << ",\n"
      << "    \"index_bytes\": " << ir->index_bytes << ",\n"
      << "    \"index_bytes_per_unique_block\": "
      << (ir->unique_blocks ? double(ir->index_bytes) / double(ir->unique_blocks) : 0.0) << ",\n"
      << "    \"rss_before\": " << ir->rss_before << ",\n"
      << "    \"rss_after\": " << ir->rss_after << ",\n"
      << "    \"rss_delta_per_unique_block\": "
      << (ir->unique_blocks ? double(int64_t(ir->rss_after) - int64_t(ir->rss_before)) / double(ir->unique_blocks) : 0.0)
      << ",\n"
      << "    \"loadavg_start\": " << ir->loadavg_start << ",\n"
      << "    \"loadavg_end\": " << ir->loadavg_end << "\n  }";
  }
  if (er) {
    o << ",\n  \"unit_experiment\": {\n"
      << "    \"file_bytes\": " << er->file_bytes << ",\n"
      << "    \"blocks\": " << er->blocks << ",\n"
      << "    \"zero_blocks\": " << er->zero_blocks << ",\n"
      << "    \"dup_blocks\": " << er->dup_blocks << ",\n"
      << "    \"new_blocks\": " << er->new_blocks << ",\n"
      << "    \"seconds\": " << er->seconds << ",\n"
      << "    \"units\": [";
    for (size_t i = 0; i < er->by_unit.size(); i++) {
      const auto& u = er->by_unit[i];
      o << (i ? ",\n" : "\n") << "      {\"blocks\": " << u.unit << ", \"stored_bytes\": " << u.stored
        << ", \"units\": " << u.units << ", \"compressed_units\": " << u.compressed_units
        << ", \"compress_seconds\": " << u.compress_seconds
        << ", \"compress_MBps\": " << double(er->new_blocks * kBlockBytes) / 1e6 / u.compress_seconds
        << ", \"ratio_file\": " << double(er->file_bytes) / double(u.stored)
        << ", \"ratio_logical\": " << double((er->blocks - er->zero_blocks) * kBlockBytes) / double(u.stored) << "}";
    }
    o << "\n    ]\n  }";
  }
  o << "\n}\n";
  return o.str();
}

void PrintTable(const Config& c, const IngestResult* ir, const ExperimentResult* er) {
  if (ir) {
    const auto& s = ir->space;
    auto mib = [](uint64_t b) { return double(b) / (1 << 20); };
    std::printf("pool %u+%u, compression %s:%d, dedup %s, corpus %s\n", c.k, c.m,
                c.compression == astra::Compression::kZstd ? "zstd" : "none", c.level, c.dedup ? "on" : "off",
                c.corpus.c_str());
    std::printf("  files                 %12" PRIu64 "   (%" PRIu64 " Write calls, %" PRIu64 " blocks)\n", ir->files,
                ir->write_calls, ir->written_blocks);
    std::printf("  file bytes            %12.1f MiB\n", mib(ir->file_bytes));
    std::printf("  logical bytes         %12.1f MiB (engine)\n", mib(s.logical_bytes));
    std::printf("  stored bytes          %12.1f MiB (raw incl. parity %.1f MiB)\n", mib(s.stored_bytes), mib(s.raw_bytes));
    std::printf("  zero saved            %12.1f MiB\n", mib(s.zero_saved_bytes));
    std::printf("  dedup saved           %12.1f MiB\n", mib(s.dedup_saved_bytes));
    std::printf("  compression saved     %12.1f MiB\n", mib(s.compression_saved_bytes));
    std::printf("  ratio logical/stored  %12.3f   (engine data_reduction_ratio %.3f)\n",
                double(s.logical_bytes) / double(s.stored_bytes), s.data_reduction_ratio);
    std::printf("  ratio filebytes/stored%12.3f\n", double(ir->file_bytes) / double(s.stored_bytes));
    std::printf("  ingest                %12.1f MB/s (%.2f s; engine calls + flush %.2f s, flush %.2f s)\n",
                double(ir->file_bytes) / 1e6 / ir->seconds, ir->seconds, ir->write_seconds, ir->flush_seconds);
    std::printf("  unique blocks         %12" PRIu64 "\n", ir->unique_blocks);
    if (c.dedup)
      std::printf("  dedup index           %12.1f B/unique block (%" PRIu64 " buckets x %zu B) + 8 B fingerprint in extent\n",
                  double(ir->index_bytes) / double(ir->unique_blocks), ir->index_buckets,
                  sizeof(std::pair<uint64_t, uint32_t>) + 1);
    std::printf("  RSS delta             %12.1f B/unique block (all metadata)\n",
                double(int64_t(ir->rss_after) - int64_t(ir->rss_before)) / double(ir->unique_blocks));
    std::printf("  loadavg               %.2f -> %.2f\n", ir->loadavg_start, ir->loadavg_end);
  }
  if (er) {
    std::printf("compression-unit experiment (zstd:%d, 4 KiB dedup, %.1f s): blocks %" PRIu64 ", zero %" PRIu64
                ", dup %" PRIu64 ", new %" PRIu64 "\n",
                c.level, er->seconds, er->blocks, er->zero_blocks, er->dup_blocks, er->new_blocks);
    for (const auto& u : er->by_unit)
      std::printf("  unit %2u blocks: stored %10.1f MiB  ratio file/stored %.3f  (%" PRIu64 "/%" PRIu64
                  " units compressed)  zstd %.1f MB/s of new blocks\n",
                  u.unit, double(u.stored) / (1 << 20), double(er->file_bytes) / double(u.stored), u.compressed_units,
                  u.units, double(er->new_blocks * kBlockBytes) / 1e6 / u.compress_seconds);
  }
}

void Usage() {
  std::fprintf(stderr,
               "usage: reduction_bench --corpus DIR --dir DIR [--file-mib N] [--compression zstd[:L]|none]\n"
               "       [--dedup on|off] [--frame-blocks N] [--no-ingest] [--unit-experiment] [--units 1,4,8] [--json-out F] [--keep]\n");
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
    if (a == "--corpus") c.corpus = next();
    else if (a == "--dir") c.dir = next();
    else if (a == "--file-mib") c.file_mib = std::stoull(next());
    else if (a == "--compression") {
      std::string v = next();
      if (v == "none") c.compression = astra::Compression::kNone;
      else if (v.rfind("zstd", 0) == 0) {
        c.compression = astra::Compression::kZstd;
        if (v.size() > 5 && v[4] == ':') c.level = std::stoi(v.substr(5));
      } else Usage();
    } else if (a == "--dedup") {
      std::string v = next();
      c.dedup = v == "on";
      if (v != "on" && v != "off") Usage();
    } else if (a == "--no-ingest") c.ingest = false;
    else if (a == "--unit-experiment") c.unit_experiment = true;
    else if (a == "--frame-blocks") c.frame_blocks = uint32_t(std::stoul(next()));
    else if (a == "--units") {
      c.units.clear();
      std::stringstream ss(next());
      std::string t;
      while (std::getline(ss, t, ',')) c.units.push_back(uint32_t(std::stoul(t)));
      if (c.units.empty()) Usage();
    } else if (a == "--json-out") c.json_out = next();
    else if (a == "--keep") c.keep = true;
    else Usage();
  }
  if (c.corpus.empty() || (c.ingest && c.dir.empty())) Usage();
  std::vector<FileEntry> files = WalkCorpus(c.corpus);
  // Warm the page cache (and measure nothing): the ingest then reads from memory, like zstd -T1
  // reading a cached tar in the driver script.
  {
    std::vector<uint8_t> buf(uint64_t(kBlocksPerIoMax) * kBlockBytes);
    for (const FileEntry& f : files) {
      int fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      while (::read(fd, buf.data(), buf.size()) > 0) {
      }
      ::close(fd);
    }
  }
  std::unique_ptr<IngestResult> ir;
  std::unique_ptr<ExperimentResult> er;
  if (c.ingest) ir = std::make_unique<IngestResult>(Ingest(c, files));
  if (c.unit_experiment) er = std::make_unique<ExperimentResult>(UnitExperiment(c, files));
  PrintTable(c, ir.get(), er.get());
  if (!c.json_out.empty()) {
    std::ofstream f(c.json_out);
    f << Json(c, ir.get(), er.get());
    if (!f) Die("write " + c.json_out);
  }
  return 0;
}
