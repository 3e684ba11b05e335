// mkfs.astrafs: formats member devices (block devices or files) as a new AstraFS pool.
// See doc/tools.md. Exit status: 0 formatted, 1 bad usage or any error (nothing formatted).
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "astra/device.h"
#include "astra/limits.h"
#include "astra/pool.h"
#include "cli_common.h"

namespace {

namespace po = boost::program_options;
using astra::Result;
using astra::Status;
namespace tools = astra::tools;

constexpr char kProg[] = "mkfs.astrafs";
constexpr int kExitOk = 0;
constexpr int kExitError = 1;

struct Args {
  std::vector<std::string> devices;
  std::optional<uint32_t> k, m;
  uint64_t create_size_bytes = 0;
  astra::FormatOptions fo;
  bool json = false;
};

// Default geometry for N members when the user does not choose (doc/tools.md):
// 1 -> 1+0, 2 -> 1+1, 3 -> 2+1, 4 -> 3+1, 5 -> 3+2, 6 and more -> 4+2 (declustered over all).
uint32_t DefaultParity(uint32_t n) { return n <= 1 ? 0 : n <= 4 ? 1 : 2; }

// Fills in k and m from what the user gave and checks them against the member count.
Status ChooseGeometry(uint32_t n, std::optional<uint32_t> k, std::optional<uint32_t> m,
                      astra::FormatOptions* fo) {
  if (n > astra::kMembersMax) {
    return Status::InvalidArgument(std::to_string(n) + " devices given; a pool has at most " +
                                   std::to_string(astra::kMembersMax) + " members");
  }
  if (k && (*k < 1 || *k > astra::kDataShardsMax)) {
    return Status::InvalidArgument("--data-shards must be between 1 and " +
                                   std::to_string(astra::kDataShardsMax));
  }
  if (m && *m > astra::kParityShardsMax) {
    return Status::InvalidArgument("--parity-shards must be between 0 and " +
                                   std::to_string(astra::kParityShardsMax));
  }
  uint32_t mm = m ? *m : DefaultParity(n);
  if (!m && k && *k + mm > n) mm = *k < n ? n - *k : 0;  // k given: shrink the default parity
  uint32_t kk = k ? *k : (n > mm ? std::min<uint32_t>(4, n - mm) : 0);
  if (kk == 0 || kk + mm > n) {
    return Status::InvalidArgument("k+m = " + std::to_string(kk) + "+" + std::to_string(mm) +
                                   " needs " + std::to_string(std::max<uint32_t>(kk, 1) + mm) +
                                   " members, but " + std::to_string(n) +
                                   (n == 1 ? " device was" : " devices were") +
                                   " given (every chunk of a stripe goes to a different member)");
  }
  fo->data_shards = kk;
  fo->parity_shards = mm;
  return Status::Ok();
}

Status CheckSizes(const astra::FormatOptions& fo) {
  if (fo.chunk_bytes < astra::kChunkBytesMin || fo.chunk_bytes > astra::kChunkBytesMax ||
      fo.chunk_bytes % astra::kBlockBytes != 0) {
    return Status::InvalidArgument(
        "--chunk-size must be a multiple of 4 KiB from 4 KiB to 1 MiB, "
        "got " +
        std::to_string(fo.chunk_bytes) + " bytes");
  }
  if (fo.segment_column_bytes < astra::kSegmentColumnBytesMin ||
      fo.segment_column_bytes > astra::kSegmentColumnBytesMax ||
      fo.segment_column_bytes % fo.chunk_bytes != 0) {
    return Status::InvalidArgument("--segment-size must be a multiple of the chunk size (" +
                                   tools::HumanBytes(fo.chunk_bytes) +
                                   ") from 64 KiB to 256 MiB, got " +
                                   std::to_string(fo.segment_column_bytes) + " bytes");
  }
  if (fo.journal_bytes != 0 &&
      (fo.journal_bytes < astra::kJournalBytesMin || fo.journal_bytes % astra::kBlockBytes != 0)) {
    return Status::InvalidArgument("--journal-size must be a multiple of 4 KiB, at least 1 MiB");
  }
  return Status::Ok();
}

// Parses the command line. Returns false after printing help (*exit = 0) or an error (*exit = 1).
bool ParseArgs(int argc, char** argv, Args* a, int* exit_code) {
  std::string k, m, size, chunk, segment, journal, compression = "zstd:1", dedup = "on";
  std::vector<std::string> devices;
  bool force = false, verbose = false;
  po::options_description vis(
      "Usage: mkfs.astrafs [OPTIONS] DEVICE... (or DEVICE,DEVICE,...)\n"
      "Formats block devices or files as one AstraFS pool.\n\nOptions");
  vis.add_options()("help,h", "show this help")("data-shards,k", po::value(&k),
                                                "K: data chunks per stripe (default: see below)")(
      "parity-shards,m", po::value(&m), "M: parity chunks per stripe (members that may fail)")(
      "size,s", po::value(&size),
      "create missing files as sparse files of this size (e.g. 10G); existing devices and "
      "files keep their size")("chunk-size", po::value(&chunk),
                               "bytes of one stripe on one member (default 4K)")(
      "segment-size", po::value(&segment), "bytes of one segment on one member (default 1M)")(
      "journal-size", po::value(&journal), "journal bytes per member (default: automatic)")(
      "compression,c", po::value(&compression),
      "zstd, zstd:LEVEL (1..19) or none (default zstd:1)")(
      "dedup", po::value(&dedup), "inline deduplication: on or off (default on)")(
      "force,f", po::bool_switch(&force), "overwrite devices that already hold a pool")(
      "json", po::bool_switch(&a->json), "print the result as JSON on stdout")(
      "verbose,v", po::bool_switch(&verbose), "more log messages");
  po::options_description hidden;
  hidden.add_options()("device", po::value(&devices));
  po::options_description all;
  all.add(vis).add(hidden);
  po::positional_options_description pos;
  pos.add("device", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::fprintf(stderr, "%s: error: %s\nTry '%s --help'.\n", kProg, e.what(), kProg);
    *exit_code = kExitError;
    return false;
  }
  if (vm.count("help")) {
    std::ostringstream o;
    o << vis
      << "\nDefault geometry for N members: 1 -> 1+0, 2 -> 1+1, 3 -> 2+1, 4 -> 3+1, 5 -> 3+2,\n"
         "6 or more -> 4+2 (stripes spread over all members). Sizes take K, M, G, T suffixes\n"
         "(powers of 1024).\n";
    std::fputs(o.str().c_str(), stdout);
    *exit_code = kExitOk;
    return false;
  }
  tools::SetupLogging(kProg, verbose);
  auto fail = [&](const Status& s) {
    std::fprintf(stderr, "%s: error: %s\n", kProg, s.message().c_str());
    *exit_code = kExitError;
    return false;
  };
  auto parse_count = [&](const std::string& v, const char* opt,
                         std::optional<uint32_t>* out) -> Status {
    char* end = nullptr;
    const unsigned long x = std::strtoul(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || v[0] == '-' || x > 1000) {
      return Status::InvalidArgument(std::string("bad value \"") + v + "\" for " + opt +
                                     ": expected a small whole number");
    }
    *out = uint32_t(x);
    return Status::Ok();
  };
  if (devices.empty()) {
    std::fprintf(stderr, "%s: error: no devices given\nTry '%s --help'.\n", kProg, kProg);
    *exit_code = kExitError;
    return false;
  }
  auto devs = tools::ParseDeviceList(devices);
  if (!devs.ok()) return fail(devs.status());
  a->devices = std::move(devs).value();
  Status s;
  if (!k.empty() && !(s = parse_count(k, "--data-shards", &a->k)).ok()) return fail(s);
  if (!m.empty() && !(s = parse_count(m, "--parity-shards", &a->m)).ok()) return fail(s);
  auto size_opt = [&](const std::string& v, const char* opt, uint64_t* out) -> Status {
    if (v.empty()) return Status::Ok();
    auto r = tools::ParseSize(v);
    if (!r.ok()) return r.status().Annotate(opt);
    *out = *r;
    return Status::Ok();
  };
  uint64_t chunk_bytes = a->fo.chunk_bytes;
  if (!(s = size_opt(size, "--size", &a->create_size_bytes)).ok()) return fail(s);
  if (!(s = size_opt(chunk, "--chunk-size", &chunk_bytes)).ok()) return fail(s);
  if (!(s = size_opt(segment, "--segment-size", &a->fo.segment_column_bytes)).ok()) return fail(s);
  if (!(s = size_opt(journal, "--journal-size", &a->fo.journal_bytes)).ok()) return fail(s);
  if (!size.empty() && a->create_size_bytes == 0) {
    return fail(Status::InvalidArgument("--size must be larger than 0"));
  }
  if (chunk_bytes > UINT32_MAX) chunk_bytes = UINT32_MAX;  // CheckSizes names it too large
  a->fo.chunk_bytes = uint32_t(chunk_bytes);
  if (!(s = CheckSizes(a->fo)).ok()) return fail(s);
  auto comp = tools::ParseCompression(compression);
  if (!comp.ok()) return fail(comp.status().Annotate("--compression"));
  a->fo.compression = comp->compression;
  a->fo.compression_level = comp->level;
  auto dd = tools::ParseOnOff(dedup, "--dedup");
  if (!dd.ok()) return fail(dd.status());
  a->fo.dedup = *dd;
  a->fo.force = force;
  if (!(s = ChooseGeometry(uint32_t(a->devices.size()), a->k, a->m, &a->fo)).ok()) return fail(s);
  return true;
}

void PrintSummary(const Args& a, const astra::PoolStatus& ps,
                  const std::vector<astra::DeviceInfo>& infos) {
  const auto& fo = a.fo;
  if (a.json) {
    tools::JsonWriter j(stdout);
    j.BeginObject();
    j.String("pool_uuid", ps.pool_uuid);
    j.Uint("data_shards", ps.data_shards).Uint("parity_shards", ps.parity_shards);
    j.Uint("chunk_bytes", fo.chunk_bytes).Uint("segment_bytes", fo.segment_column_bytes);
    j.String("compression", fo.compression == astra::Compression::kZstd ? "zstd" : "none");
    j.Uint("compression_level",
           fo.compression == astra::Compression::kZstd ? fo.compression_level : 0);
    j.Bool("dedup", fo.dedup);
    j.Uint("capacity", ps.space.capacity_bytes).Uint("free", ps.space.free_bytes);
    j.Uint("segments", ps.segments_total);
    j.BeginArray("members");
    for (size_t i = 0; i < infos.size(); ++i) {
      j.BeginObject()
          .Uint("index", i)
          .String("path", infos[i].path)
          .String("backend", infos[i].backend)
          .Uint("size_bytes", infos[i].size_bytes)
          .EndObject();
    }
    j.EndArray();
    j.EndObject();
    return;
  }
  std::printf("AstraFS pool %s formatted on %zu member(s)\n", ps.pool_uuid.c_str(), infos.size());
  std::printf(
      "  geometry:    %u data + %u parity chunks per stripe (survives the loss of %u "
      "member%s), chunk %s, segment %s per member\n",
      ps.data_shards, ps.parity_shards, ps.parity_shards, ps.parity_shards == 1 ? "" : "s",
      tools::HumanBytes(fo.chunk_bytes).c_str(),
      tools::HumanBytes(fo.segment_column_bytes).c_str());
  if (fo.compression == astra::Compression::kZstd) {
    std::printf("  compression: zstd level %d; dedup %s\n", fo.compression_level,
                fo.dedup ? "on" : "off");
  } else {
    std::printf("  compression: none; dedup %s\n", fo.dedup ? "on" : "off");
  }
  std::printf("  capacity:    %s of user data (%s writable now), %llu segments\n",
              tools::HumanBytes(ps.space.capacity_bytes).c_str(),
              tools::HumanBytes(ps.space.free_bytes).c_str(),
              static_cast<unsigned long long>(ps.segments_total));
  std::printf("  members:\n");
  for (size_t i = 0; i < infos.size(); ++i) {
    std::printf("    %2zu  %s (%s, %s)\n", i, infos[i].path.c_str(), infos[i].backend.c_str(),
                tools::HumanBytes(infos[i].size_bytes).c_str());
  }
}

int Run(const Args& a) {
  // Open (and create) every member first; files created here are removed again on failure, so
  // a failed mkfs leaves nothing behind.
  std::vector<std::string> created;
  auto cleanup = [&] {
    for (const std::string& p : created) ::unlink(p.c_str());
  };
  std::vector<std::unique_ptr<astra::Device>> members;
  std::vector<astra::DeviceInfo> infos;
  for (const std::string& p : a.devices) {
    struct stat st;
    const bool existed = ::stat(p.c_str(), &st) == 0;
    if (!existed && a.create_size_bytes == 0) {
      spdlog::error("{} does not exist (give --size to create it as a sparse file)", p);
      members.clear();
      cleanup();
      return kExitError;
    }
    if (existed && a.create_size_bytes != 0 && S_ISREG(st.st_mode) &&
        uint64_t(st.st_size) != a.create_size_bytes) {
      spdlog::info("{} exists: using its size ({}), not --size", p,
                   tools::HumanBytes(uint64_t(st.st_size)));
    }
    auto d = astra::OpenDevice(p, existed ? 0 : a.create_size_bytes);
    if (!existed && (d.ok() || ::stat(p.c_str(), &st) == 0)) created.push_back(p);
    if (!d.ok()) {
      spdlog::error("{}", tools::DescribeOpenError(p, d.status()));
      members.clear();
      cleanup();
      return kExitError;
    }
    infos.push_back((*d)->info());
    members.push_back(std::move(d).value());
  }
  Status s = astra::Pool::Format(members, a.fo);
  if (!s.ok()) {
    if (s.code() == Status::Code::kExists) {
      spdlog::error("{}", s.message());  // names the device, the pool and --force
    } else if (s.IsInvalidArgument()) {
      spdlog::error("cannot format: {}", s.message());
    } else {
      spdlog::error("format failed: {}", s.ToString());
    }
    members.clear();
    cleanup();
    return kExitError;
  }
  // Open the new pool once: proves it mounts and gives the UUID and capacity to report.
  astra::OpenOptions oo;
  oo.background_checkpoints = false;
  auto pool = astra::Pool::Open(std::move(members), oo);
  if (!pool.ok()) {
    spdlog::error("the new pool does not open: {}", pool.status().ToString());
    return kExitError;
  }
  const astra::PoolStatus ps = (*pool)->GetStatus();
  s = (*pool)->Close();
  if (!s.ok()) {
    spdlog::error("closing the new pool: {}", s.ToString());
    return kExitError;
  }
  PrintSummary(a, ps, infos);
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  int exit_code = kExitOk;
  if (!ParseArgs(argc, argv, &a, &exit_code)) return exit_code;
  return Run(a);
}
