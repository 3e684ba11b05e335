// astrafs: pool administration — status, scrub, gc, replace. Given the member devices it opens a
// pool that is not in use itself; given the mount point of a mounted pool it asks the
// astrafs-mount daemon through its control socket (control_client.h, doc/control.md). Both paths
// print through the same functions. Exit status: 0 ok, 1 error, 2 usage error, 3 scrub left
// errors uncorrected.
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <climits>
#include <cstdio>
#include <cstring>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "astra/device.h"
#include "astra/pool.h"
#include "cli_common.h"
#include "control_client.h"
#include "volume_space.h"

namespace {

namespace po = boost::program_options;
using astra::CheckReport;
using astra::Result;
using astra::Status;
namespace tools = astra::tools;
namespace control = astra::control;

constexpr char kProg[] = "astrafs";
constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUncorrected = 3;

constexpr char kUsage[] =
    "Usage: astrafs COMMAND [OPTIONS] ARGS...\n"
    "Commands:\n"
    "  status  [--json] DEVICE...|MOUNTPOINT   geometry, members, space\n"
    "  scrub   [--json] [--progress] [--degraded] DEVICE...|MOUNTPOINT\n"
    "                                          verify every checksum and parity; repair\n"
    "  gc      [--json] [--progress] [--degraded] DEVICE...|MOUNTPOINT\n"
    "                                          run the segment cleaner\n"
    "  replace [--json] [--progress] [--size BYTES] [--force] OLD NEW DEVICE...|MOUNTPOINT\n"
    "                                          rebuild member OLD (index or path) onto NEW\n"
    "DEVICE... are the pool's members (also DEVICE,DEVICE,...); a MOUNTPOINT runs the command\n"
    "in the mount's daemon. 'astrafs COMMAND --help' for more.\n";

// Common per-command options and parsing. Returns nullopt after printing help or an error.
struct Common {
  bool json = false, progress = false, verbose = false, force = false, degraded = false;
  std::string size;
  std::vector<std::string> args;
};

std::optional<Common> ParseCommand(int argc, char** argv, const std::string& usage, bool long_op,
                                   bool replace, int* exit_code) {
  Common c;
  po::options_description vis(usage + "\nOptions");
  vis.add_options()("help,h", "show this help")("json", po::bool_switch(&c.json),
                                                "print the result as JSON on stdout")(
      "verbose,v", po::bool_switch(&c.verbose), "more log messages");
  if (long_op) {
    vis.add_options()("progress", po::bool_switch(&c.progress),
                      "draw a progress bar on stderr even when it is not a terminal");
  }
  if (long_op && !replace) {
    vis.add_options()("degraded", po::bool_switch(&c.degraded),
                      "run even though members are absent (they are then recorded as failed)");
  }
  if (replace) {
    vis.add_options()("size", po::value(&c.size),
                      "create NEW as a sparse file of this size when it does not exist")(
        "force,f", po::bool_switch(&c.force), "use NEW even if it holds an AstraFS pool");
  }
  po::options_description hidden;
  hidden.add_options()("arg", po::value(&c.args));
  po::options_description all;
  all.add(vis).add(hidden);
  po::positional_options_description pos;
  pos.add("arg", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::fprintf(stderr, "%s %s: error: %s\nTry '%s %s --help'.\n", kProg, argv[0], e.what(), kProg,
                 argv[0]);
    *exit_code = kExitUsage;
    return std::nullopt;
  }
  if (vm.count("help")) {
    std::ostringstream o;
    o << vis;
    std::fputs(o.str().c_str(), stdout);
    *exit_code = kExitOk;
    return std::nullopt;
  }
  tools::SetupLogging(kProg, c.verbose);
  return c;
}

// Opens the pool on `paths` (plus already opened `extra` devices). Prints the error itself.
// A read-write open of a pool with absent members records them as failed (they then need
// 'astrafs replace'), so that happens only when `allow_degraded`.
Result<std::unique_ptr<astra::Pool>> OpenPool(const std::vector<std::string>& paths, bool read_only,
                                              bool allow_degraded = true) {
  auto members = tools::OpenMembers(paths);
  if (!members.ok()) {
    spdlog::error("{}", members.status().message());
    if (members.status().code() == Status::Code::kBusy) {
      spdlog::info(
          "if the pool is mounted, give its mount point instead of the devices: the command "
          "then runs in the mount's daemon, through its control socket (see doc/control.md)");
    }
    return members.status();
  }
  if (!read_only && !allow_degraded) {
    auto probe = tools::ProbePool(*members);
    if (probe.ok() && !probe->missing.empty()) {
      const Status s = tools::DegradedRefusal(*probe);
      spdlog::error("{}", s.message());
      return s;
    }
  }
  astra::OpenOptions oo;
  oo.read_only = read_only;
  oo.background_checkpoints = false;
  auto pool = astra::Pool::Open(std::move(members).value(), oo);
  if (!pool.ok()) spdlog::error("cannot open the pool: {}", pool.status().ToString());
  return pool;
}

const char* CompressionName(astra::Compression c) {
  return c == astra::Compression::kZstd ? "zstd" : "none";
}

// ---- status ----

// `mountpoint` is set when the status came from a mount's daemon (then "mountpoint" is a key).
// `volumes` is null when they are unknown (a daemon from before per-volume figures, or the
// catalogue could not be listed): then there is no "volumes" key.
void PrintStatusJson(const astra::PoolStatus& ps, const tools::VolumeList* volumes,
                     const std::string& mountpoint) {
  tools::JsonWriter j(stdout);
  j.BeginObject();
  j.String("pool_uuid", ps.pool_uuid);
  if (!mountpoint.empty()) j.String("mountpoint", mountpoint);
  j.Uint("data_shards", ps.data_shards).Uint("parity_shards", ps.parity_shards);
  j.Uint("member_count", ps.members);
  j.Uint("generation", ps.generation);
  j.Bool("degraded", ps.degraded);
  j.String("compression", CompressionName(ps.compression));
  j.Int("compression_level", ps.compression_level);
  j.Bool("dedup", ps.dedup);
  j.Uint("read_poll_us", ps.read_poll_us);
  j.Uint("segments_total", ps.segments_total).Uint("segments_free", ps.segments_free);
  j.Uint("journal_seq", ps.journal_seq).Uint("checkpoint_seq", ps.checkpoint_seq);
  j.Uint("repaired_blocks", ps.repaired_blocks);
  j.BeginArray("members");
  for (const auto& m : ps.member_status) {
    j.BeginObject()
        .Uint("index", m.index)
        .String("path", m.path)
        .String("backend", m.backend)
        .String("state", astra::MemberStateName(m.state))
        .Uint("read_errors", m.read_errors)
        .Uint("write_errors", m.write_errors)
        .Uint("checksum_errors", m.checksum_errors)
        .EndObject();
  }
  j.EndArray();
  const astra::SpaceStats& s = ps.space;
  j.BeginObject("space")
      .Uint("logical_bytes", s.logical_bytes)
      .Uint("stored_bytes", s.stored_bytes)
      .Uint("raw_bytes", s.raw_bytes)
      .Uint("zero_saved_bytes", s.zero_saved_bytes)
      .Uint("dedup_saved_bytes", s.dedup_saved_bytes)
      .Uint("compression_saved_bytes", s.compression_saved_bytes)
      .Double("data_reduction_ratio", s.data_reduction_ratio)
      .Uint("capacity", s.capacity_bytes)
      .Uint("free", s.free_bytes)
      .Uint("reclaimable", s.reclaimable_bytes)
      .Uint("used", s.stored_bytes)
      .EndObject();
  j.BeginObject("cleaner")
      .Uint("passes", ps.cleaner.passes)
      .Uint("segments_cleaned", ps.cleaner.segments_cleaned)
      .Uint("bytes_relocated", ps.cleaner.bytes_relocated)
      .Uint("segments_trimmed", ps.cleaner.segments_trimmed)
      .EndObject();
  if (volumes != nullptr) tools::WriteVolumeList(j, *volumes);
  j.EndObject();
}

// One line per volume, names last (they are up to 64 bytes). Sizes human-readable; --json has
// the exact bytes.
void PrintVolumesText(const tools::VolumeList& list) {
  if (list.volumes.empty() && list.not_listed == 0) {
    std::printf("  volumes:      none\n");
    return;
  }
  std::printf("  volumes:      %zu (stored: shared blocks divided among their references)\n",
              list.volumes.size() + size_t(list.not_listed));
  std::printf("    %10s %10s %10s %10s %10s %10s %10s %10s %6s  %s\n", "size", "logical",
              "stored", "exclusive", "raw", "zero-sav", "dedup-sav", "compr-sav", "ratio",
              "name (object)");
  for (const tools::VolumeSpace& v : list.volumes) {
    if (!v.error.empty()) {
      std::printf("    bad record: %s: %s\n", v.name.c_str(), v.error.c_str());
      continue;
    }
    const astra::ObjectSpaceStats& o = v.space;
    std::printf("    %10s %10s %10s %10s %10s %10s %10s %10s %6.2f  %s (%llu)\n",
                tools::HumanBytes(v.size_bytes).c_str(), tools::HumanBytes(o.logical_bytes).c_str(),
                tools::HumanBytes(o.stored_bytes).c_str(),
                tools::HumanBytes(o.exclusive_stored_bytes).c_str(),
                tools::HumanBytes(v.raw_bytes).c_str(), tools::HumanBytes(v.zero_saved_bytes).c_str(),
                tools::HumanBytes(o.dedup_saved_bytes).c_str(),
                tools::HumanBytes(o.compression_saved_bytes).c_str(), o.data_reduction_ratio,
                v.name.c_str(), static_cast<unsigned long long>(v.object));
  }
  if (list.not_listed != 0) {
    std::printf("    ... and %llu more volume(s), not listed (at most %zu are)\n",
                static_cast<unsigned long long>(list.not_listed), tools::kVolumesListedMax);
  }
}

void PrintStatusText(const astra::PoolStatus& ps, const tools::VolumeList* volumes,
                     const std::string& mountpoint) {
  uint32_t offline = 0;
  for (const auto& m : ps.member_status) offline += m.state != astra::MemberState::kOnline;
  std::printf("pool %s\n", ps.pool_uuid.c_str());
  if (!mountpoint.empty()) {
    std::printf("  mounted at:   %s%s\n", mountpoint.c_str(), ps.read_only ? " (read-only)" : "");
  }
  if (ps.degraded) {
    std::printf("  state:        DEGRADED (%u member(s) not online; can lose %d more)\n", offline,
                int(ps.parity_shards) - int(offline));
  } else {
    std::printf("  state:        healthy\n");
  }
  std::printf("  geometry:     %u+%u erasure coding on %u members, generation %llu\n",
              ps.data_shards, ps.parity_shards, ps.members,
              static_cast<unsigned long long>(ps.generation));
  std::printf("  compression:  %s", CompressionName(ps.compression));
  if (ps.compression == astra::Compression::kZstd) std::printf(" level %d", ps.compression_level);
  std::printf("; dedup %s\n", ps.dedup ? "on" : "off");
  std::printf("  segments:     %llu total, %llu free; journal seq %llu, checkpoint seq %llu\n",
              static_cast<unsigned long long>(ps.segments_total),
              static_cast<unsigned long long>(ps.segments_free),
              static_cast<unsigned long long>(ps.journal_seq),
              static_cast<unsigned long long>(ps.checkpoint_seq));
  std::printf("  members:\n    %-5s %-11s %-18s %10s %10s %10s  %s\n", "index", "state", "backend",
              "read-err", "write-err", "csum-err", "path");
  for (const auto& m : ps.member_status) {
    std::printf("    %-5u %-11s %-18s %10llu %10llu %10llu  %s\n", m.index,
                astra::MemberStateName(m.state), m.backend.empty() ? "-" : m.backend.c_str(),
                static_cast<unsigned long long>(m.read_errors),
                static_cast<unsigned long long>(m.write_errors),
                static_cast<unsigned long long>(m.checksum_errors),
                m.path.empty() ? "(missing)" : m.path.c_str());
  }
  const astra::SpaceStats& s = ps.space;
  auto line = [](const char* name, uint64_t v) {
    std::printf("    %-24s %14s  (%llu bytes)\n", name, tools::HumanBytes(v).c_str(),
                static_cast<unsigned long long>(v));
  };
  std::printf("  space:\n");
  line("capacity", s.capacity_bytes);
  line("free", s.free_bytes);
  line("reclaimable", s.reclaimable_bytes);
  line("logical", s.logical_bytes);
  line("stored", s.stored_bytes);
  line("raw (with parity)", s.raw_bytes);
  line("saved by zero blocks", s.zero_saved_bytes);
  line("saved by dedup", s.dedup_saved_bytes);
  line("saved by compression", s.compression_saved_bytes);
  std::printf("    %-24s %14.2f\n", "data reduction ratio", s.data_reduction_ratio);
  std::printf("  cleaner:      %llu passes, %llu segments cleaned, %s relocated, %llu segments trimmed\n",
              static_cast<unsigned long long>(ps.cleaner.passes),
              static_cast<unsigned long long>(ps.cleaner.segments_cleaned),
              tools::HumanBytes(ps.cleaner.bytes_relocated).c_str(),
              static_cast<unsigned long long>(ps.cleaner.segments_trimmed));
  if (volumes != nullptr) PrintVolumesText(*volumes);
}

void PrintStatus(const Common& c, const astra::PoolStatus& ps, const tools::VolumeList* volumes,
                 const std::string& mountpoint = {}) {
  if (c.json) {
    PrintStatusJson(ps, volumes, mountpoint);
  } else {
    PrintStatusText(ps, volumes, mountpoint);
  }
}

// ---- mounted pools: through the mount daemon's control socket ----

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The mountinfo entry of `dir` when it is an AstraFS mount; otherwise prints why not.
std::optional<tools::MountEntry> AstraMount(const std::string& dir) {
  auto m = tools::FindMount(dir);
  if (!m) {
    spdlog::error(
        "{} is a directory but not a mount point; give the pool's member devices, or the "
        "mount point of a mounted pool",
        dir);
    return std::nullopt;
  }
  if (m->fstype != "fuse.astrafs") {
    spdlog::error("{} is a {} mount, not an AstraFS one (fuse.astrafs)", m->mountpoint, m->fstype);
    return std::nullopt;
  }
  return m;
}

// Runs `req` in the daemon serving `m`, with progress under `label` (nullptr: none). Returns the
// result object, or the error, described for the user (not yet printed).
Result<control::JsonValue> CallMount(const Common& c, const tools::MountEntry& m,
                                     const control::Request& req, const char* label) {
  auto target = control::LocateSocket(m);
  if (!target.ok()) return target.status();
  std::optional<tools::Progress> progress;
  if (label != nullptr) progress.emplace(label, c.progress);
  auto res = control::Call(target->socket_path, req,
                           progress ? progress->Fn() : astra::ProgressFn());
  if (progress) progress->Finish();
  if (!res.ok()) {
    const Status& s = res.status();
    if (s.code() == Status::Code::kNotFound && s.message().rfind("no control socket", 0) == 0) {
      return Status::NotFound(
          "the daemon serving " + m.mountpoint + " (pool " + target->pool_uuid +
          ") offers no control socket at " + target->socket_path +
          " (an astrafs-mount from before the control socket, or it could not create it: see "
          "the mount's log)");
    }
    if (s.code() == Status::Code::kBusy && s.message().rfind("stale", 0) == 0) {
      return Status::Busy(s.message() + "; is the mount at " + m.mountpoint + " still served?");
    }
    return s;
  }
  auto mp = control::GetString(*res, "mountpoint");
  if (!mp.ok() || *mp != m.mountpoint) {
    return Status::InvalidArgument(
        target->socket_path + " serves pool " + target->pool_uuid + " mounted at " +
        (mp.ok() ? *mp : std::string("(unknown)")) + ", not " + m.mountpoint +
        " (the same pool mounted twice? unmount the stale one)");
  }
  return res;
}

// The "status" object of a result, or the error.
Result<astra::PoolStatus> ResultStatus(const control::JsonValue& res) {
  const control::JsonValue* st = res.Find("status");
  if (st == nullptr) return Status::InvalidArgument("the daemon's result has no \"status\"");
  return control::ReadPoolStatus(*st);
}

// A mount point: the full status from the mount's daemon. Without it (no control socket), only
// what statfs(2) tells, and exit 1.
int StatusOfMountpoint(const Common& c, const std::string& dir) {
  auto m = AstraMount(dir);
  if (!m) return kExitError;
  control::Request req;
  req.command = "status";
  auto res = CallMount(c, *m, req, nullptr);
  Result<astra::PoolStatus> ps = res.ok() ? ResultStatus(*res) : Result<astra::PoolStatus>(res.status());
  if (ps.ok()) {
    auto volumes = control::ReadVolumeList(*res);
    if (volumes.ok()) {
      PrintStatus(c, *ps, &*volumes, m->mountpoint);
      return kExitOk;
    }
    PrintStatus(c, *ps, nullptr, m->mountpoint);
    auto daemon_error = control::GetString(*res, "volumes_error");
    if (daemon_error.ok()) {
      spdlog::error("the daemon could not list the volumes: {}", *daemon_error);
      return kExitError;
    }
    if (volumes.status().code() == Status::Code::kNotFound) {
      // Protocol 1 from before per-volume figures: the rest of the status is complete.
      spdlog::warn(
          "the daemon serving {} reports no per-volume figures (an astrafs-mount older than "
          "this astrafs); remount with the current one to see them",
          m->mountpoint);
      return kExitOk;
    }
    spdlog::error("bad volumes in the daemon's status result: {}", volumes.status().message());
    return kExitError;
  }
  struct statvfs sv;
  const bool have_statfs = ::statvfs(m->mountpoint.c_str(), &sv) == 0;
  const std::string why = "no online status of the pool mounted at " + m->mountpoint + ": " +
                          ps.status().message() + "; only statfs figures are shown";
  if (c.json) {
    tools::JsonWriter j(stdout);
    j.BeginObject();
    j.String("mountpoint", m->mountpoint).String("source", m->source);
    j.Bool("online_status_available", false);
    if (have_statfs) {
      const uint64_t bs = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
      j.BeginObject("space")
          .Uint("capacity", uint64_t(sv.f_blocks) * bs)
          .Uint("free", uint64_t(sv.f_bavail) * bs)
          .EndObject();
    }
    j.String("error", why);
    j.EndObject();
  } else {
    std::printf("mount %s (members %s)\n", m->mountpoint.c_str(), m->source.c_str());
    if (have_statfs) {
      const uint64_t bs = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
      std::printf("  capacity %s, free %s (statfs)\n",
                  tools::HumanBytes(uint64_t(sv.f_blocks) * bs).c_str(),
                  tools::HumanBytes(uint64_t(sv.f_bavail) * bs).c_str());
    }
  }
  spdlog::error("{}", why);
  return kExitError;
}

int CmdStatus(int argc, char** argv) {
  int rc = kExitOk;
  auto c = ParseCommand(argc, argv, "Usage: astrafs status [--json] DEVICE...|MOUNTPOINT", false,
                        false, &rc);
  if (!c) return rc;
  if (c->args.empty()) {
    std::fprintf(stderr,
                 "astrafs status: error: give the pool's member devices or a mount point\n");
    return kExitUsage;
  }
  if (c->args.size() == 1 && IsDirectory(c->args[0])) return StatusOfMountpoint(*c, c->args[0]);
  auto devs = tools::ParseDeviceList(c->args);
  if (!devs.ok()) {
    spdlog::error("{}", devs.status().message());
    return kExitUsage;
  }
  // Read-only: status never writes (no journal replay written back, no checkpoint at close).
  auto pool = OpenPool(*devs, /*read_only=*/true);
  if (!pool.ok()) return kExitError;
  const astra::PoolStatus ps = (*pool)->GetStatus();
  auto volumes = tools::ListVolumes(**pool, ps.data_shards, ps.parity_shards);
  Status s = (*pool)->Close();
  if (!s.ok()) spdlog::warn("closing the pool: {}", s.ToString());
  PrintStatus(*c, ps, volumes.ok() ? &*volumes : nullptr);
  if (!volumes.ok()) {
    spdlog::error("cannot list the volumes: {}", volumes.status().ToString());
    return kExitError;
  }
  return kExitOk;
}

// ---- scrub ----

uint64_t ErrorCount(const CheckReport& r) {
  return r.checksum_errors + r.parity_errors + r.refcount_errors + r.other_errors;
}

// Prints a scrub's outcome (offline or from a mount's daemon); returns the exit status.
// `left`/`remaining`: what the read-only verification pass after a repair still found.
int PrintScrub(const Common& c, const std::string& uuid, bool degraded, const CheckReport& rep,
               uint64_t left, const std::vector<std::string>& remaining) {
  const uint64_t found = ErrorCount(rep);
  if (c.json) {
    tools::JsonWriter j(stdout);
    j.BeginObject();
    j.String("pool_uuid", uuid);
    j.Bool("clean", found == 0);
    tools::WriteCheckCounters(j, rep);
    j.Uint("uncorrected_errors", left);
    j.Bool("degraded", degraded);
    j.BeginArray("problems");
    for (const auto& p : rep.problems) j.String(p);
    j.EndArray();
    j.EndObject();
  } else {
    for (const auto& p : rep.problems) std::printf("  problem: %s\n", p.c_str());
    std::printf(
        "scrub of pool %s: %llu extents, %llu stripes checked; %llu error(s) found, "
        "%llu repaired, %llu left\n",
        uuid.c_str(), static_cast<unsigned long long>(rep.extents_checked),
        static_cast<unsigned long long>(rep.stripes_checked),
        static_cast<unsigned long long>(found), static_cast<unsigned long long>(rep.repaired),
        static_cast<unsigned long long>(left));
    for (const auto& p : remaining) std::printf("  left: %s\n", p.c_str());
    if (degraded) std::printf("pool is DEGRADED: see 'astrafs status'\n");
  }
  return left != 0 ? kExitUncorrected : kExitOk;
}

int ScrubOfMountpoint(const Common& c, const std::string& dir) {
  auto m = AstraMount(dir);
  if (!m) return kExitError;
  control::Request req;
  req.command = "scrub";
  auto res = CallMount(c, *m, req, "scrub");
  if (!res.ok()) {
    spdlog::error("scrub of the pool mounted at {}: {}", m->mountpoint, res.status().message());
    return kExitError;
  }
  auto ps = ResultStatus(*res);
  const control::JsonValue* report = res->Find("report");
  auto rep = report != nullptr ? control::ReadCheckReport(*report)
                               : Result<CheckReport>(Status::InvalidArgument("no \"report\""));
  auto left = control::GetUint(*res, "uncorrected_errors");
  const control::JsonValue* remaining = res->Find("remaining");
  if (!ps.ok() || !rep.ok() || !left.ok() || remaining == nullptr) {
    spdlog::error("bad scrub result from the daemon: {}",
                  !ps.ok() ? ps.status().message()
                           : !rep.ok() ? rep.status().message() : "missing fields");
    return kExitError;
  }
  std::vector<std::string> rest;
  for (const auto& v : remaining->items) rest.push_back(v.text);
  return PrintScrub(c, ps->pool_uuid, ps->degraded, *rep, *left, rest);
}

int CmdScrub(int argc, char** argv) {
  int rc = kExitOk;
  auto c = ParseCommand(argc, argv,
                        "Usage: astrafs scrub [--json] [--progress] [--degraded] "
                        "DEVICE...|MOUNTPOINT\n"
                        "Reads everything, verifies checksums and parity, and repairs what "
                        "redundancy allows.\nOn a MOUNTPOINT it runs online in the mount's "
                        "daemon (--degraded is then moot: the pool is open already).",
                        true, false, &rc);
  if (!c) return rc;
  if (c->args.size() == 1 && IsDirectory(c->args[0])) return ScrubOfMountpoint(*c, c->args[0]);
  auto devs = tools::ParseDeviceList(c->args);
  if (!devs.ok()) {
    spdlog::error("{}", devs.status().message());
    return kExitUsage;
  }
  auto pool = OpenPool(*devs, /*read_only=*/false, c->degraded);
  if (!pool.ok()) return kExitError;
  tools::Progress progress("scrub", c->progress);
  auto rep = (*pool)->Scrub(progress.Fn());
  progress.Finish();
  if (!rep.ok()) {
    spdlog::error("scrub failed: {}", rep.status().ToString());
    (*pool)->Close().IgnoreError();
    return kExitError;
  }
  uint64_t left = ErrorCount(*rep);
  std::vector<std::string> remaining;
  if (left != 0) {
    auto again = (*pool)->Check(false);
    if (!again.ok()) {
      spdlog::error("verification after scrub failed: {}", again.status().ToString());
      (*pool)->Close().IgnoreError();
      return kExitError;
    }
    left = ErrorCount(*again);
    remaining = again->problems;
  }
  const astra::PoolStatus ps = (*pool)->GetStatus();
  Status s = (*pool)->Close();
  if (!s.ok()) {
    spdlog::error("closing the pool: {}", s.ToString());
    rc = kExitError;
  }
  const int printed = PrintScrub(*c, ps.pool_uuid, ps.degraded, *rep, left, remaining);
  return rc != kExitOk ? rc : printed;
}

// ---- gc ----

void PrintGc(const Common& c, const std::string& uuid, const astra::CleanerStats& st,
             uint64_t free_before, uint64_t free_after) {
  if (c.json) {
    tools::JsonWriter j(stdout);
    j.BeginObject();
    j.String("pool_uuid", uuid);
    j.Uint("segments_cleaned", st.segments_cleaned);
    j.Uint("bytes_relocated", st.bytes_relocated);
    j.Uint("segments_trimmed", st.segments_trimmed);
    j.Uint("free_before", free_before);
    j.Uint("free_after", free_after);
    j.EndObject();
    return;
  }
  std::printf(
      "gc of pool %s: %llu segments cleaned, %s relocated, %llu segments trimmed; free %s -> "
      "%s\n",
      uuid.c_str(), static_cast<unsigned long long>(st.segments_cleaned),
      tools::HumanBytes(st.bytes_relocated).c_str(),
      static_cast<unsigned long long>(st.segments_trimmed), tools::HumanBytes(free_before).c_str(),
      tools::HumanBytes(free_after).c_str());
}

int GcOfMountpoint(const Common& c, const std::string& dir) {
  auto m = AstraMount(dir);
  if (!m) return kExitError;
  control::Request req;
  req.command = "gc";
  auto res = CallMount(c, *m, req, "gc");
  if (!res.ok()) {
    spdlog::error("gc of the pool mounted at {}: {}", m->mountpoint, res.status().message());
    return kExitError;
  }
  auto ps = ResultStatus(*res);
  const control::JsonValue* cl = res->Find("cleaner");
  auto st = cl != nullptr ? control::ReadCleanerStats(*cl)
                          : Result<astra::CleanerStats>(Status::InvalidArgument("no \"cleaner\""));
  auto free_before = control::GetUint(*res, "free_before");
  if (!ps.ok() || !st.ok() || !free_before.ok()) {
    spdlog::error("bad gc result from the daemon: {}",
                  !ps.ok() ? ps.status().message()
                           : !st.ok() ? st.status().message() : free_before.status().message());
    return kExitError;
  }
  PrintGc(c, ps->pool_uuid, *st, *free_before, ps->space.free_bytes);
  return kExitOk;
}

int CmdGc(int argc, char** argv) {
  int rc = kExitOk;
  auto c = ParseCommand(argc, argv,
                        "Usage: astrafs gc [--json] [--progress] [--degraded] DEVICE...|MOUNTPOINT\n"
                        "Runs the segment cleaner: moves the live data out of partly dead segments, "
                        "checkpoints, and discards the freed segments on the members.\nOn a "
                        "MOUNTPOINT it runs online in the mount's daemon.",
                        true, false, &rc);
  if (!c) return rc;
  if (c->args.size() == 1 && IsDirectory(c->args[0])) return GcOfMountpoint(*c, c->args[0]);
  auto devs = tools::ParseDeviceList(c->args);
  if (!devs.ok()) {
    spdlog::error("{}", devs.status().message());
    return kExitUsage;
  }
  auto pool = OpenPool(*devs, /*read_only=*/false, c->degraded);
  if (!pool.ok()) return kExitError;
  const uint64_t free_before = (*pool)->GetStatus().space.free_bytes;
  tools::Progress progress("gc", c->progress);
  auto st = (*pool)->CollectGarbage(progress.Fn());
  progress.Finish();
  if (!st.ok()) {
    spdlog::error("gc failed: {}", st.status().ToString());
    (*pool)->Close().IgnoreError();
    return kExitError;
  }
  const astra::PoolStatus ps = (*pool)->GetStatus();
  Status s = (*pool)->Close();
  if (!s.ok()) {
    spdlog::error("closing the pool: {}", s.ToString());
    rc = kExitError;
  }
  PrintGc(*c, ps.pool_uuid, *st, free_before, ps.space.free_bytes);
  return rc;
}

// ---- replace ----

bool IsIndex(const std::string& s) {
  return !s.empty() && s.size() < 4 && s.find_first_not_of("0123456789") == std::string::npos;
}

void PrintReplace(const Common& c, const std::string& uuid, uint32_t index, const std::string& old,
                  const std::string& old_state, const std::string& new_path, bool degraded) {
  if (c.json) {
    tools::JsonWriter j(stdout);
    j.BeginObject();
    j.String("pool_uuid", uuid);
    j.Uint("index", index);
    j.String("old", old);
    j.String("old_state", old_state);
    j.String("new", new_path);
    j.Bool("degraded", degraded);
    j.EndObject();
  } else {
    std::printf("member %u of pool %s rebuilt onto %s%s\n", index, uuid.c_str(), new_path.c_str(),
                degraded ? " (pool still DEGRADED: see 'astrafs status')" : "");
  }
}

// An absolute form of `path` (the daemon runs in "/"): realpath when it exists, else cwd-based.
std::string Absolute(const std::string& path) {
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) != nullptr) return resolved;
  if (!path.empty() && path[0] == '/') return path;
  char cwd[PATH_MAX];
  if (::getcwd(cwd, sizeof cwd) == nullptr) return path;
  return std::string(cwd) + "/" + path;
}

int ReplaceOfMountpoint(const Common& c, const std::string& old_arg, const std::string& new_arg,
                        uint64_t create_size, const std::string& dir) {
  auto m = AstraMount(dir);
  if (!m) return kExitError;
  control::Request req;
  req.command = "replace";
  if (IsIndex(old_arg)) {
    req.member = uint32_t(std::stoul(old_arg));
  } else {
    req.old_path = Absolute(old_arg);
  }
  req.new_path = Absolute(new_arg);
  struct stat st;
  if (::stat(req.new_path.c_str(), &st) != 0 && create_size == 0) {
    spdlog::error("{} does not exist (give --size to create it as a sparse file)", new_arg);
    return kExitError;
  }
  req.size_bytes = create_size;
  req.force = c.force;
  auto res = CallMount(c, *m, req, "replace");
  if (!res.ok()) {
    spdlog::error("replace in the pool mounted at {}: {}", m->mountpoint, res.status().message());
    return kExitError;
  }
  auto ps = ResultStatus(*res);
  auto index = control::GetUint(*res, "index");
  auto old = control::GetString(*res, "old");
  auto old_state = control::GetString(*res, "old_state");
  if (!ps.ok() || !index.ok() || !old.ok() || !old_state.ok()) {
    spdlog::error("bad replace result from the daemon: {}",
                  !ps.ok() ? ps.status().message() : "missing fields");
    return kExitError;
  }
  PrintReplace(c, ps->pool_uuid, uint32_t(*index), *old, *old_state, req.new_path, ps->degraded);
  return kExitOk;
}

int CmdReplace(int argc, char** argv) {
  int rc = kExitOk;
  auto c = ParseCommand(
      argc, argv,
      "Usage: astrafs replace [--json] [--progress] [--size BYTES] [--force] OLD NEW "
      "DEVICE...|MOUNTPOINT\n"
      "Rebuilds member OLD of the pool onto the new device NEW. OLD is a member index (see\n"
      "'astrafs status') or the old member's path; DEVICE... are the pool's other members.\n"
      "A missing or failed OLD is found by elimination when it cannot be read. On the\n"
      "MOUNTPOINT of a mounted pool the rebuild runs online in the mount's daemon.",
      true, true, &rc);
  if (!c) return rc;
  if (c->args.size() < 3) {
    std::fprintf(stderr, "astrafs replace: error: give OLD, NEW and the pool's other members\n");
    return kExitUsage;
  }
  const std::string old_arg = c->args[0], new_path = c->args[1];
  uint64_t create_size = 0;
  if (!c->size.empty()) {
    auto r = tools::ParseSize(c->size);
    if (!r.ok()) {
      spdlog::error("--size: {}", r.status().message());
      return kExitUsage;
    }
    create_size = *r;
  }
  if (c->args.size() == 3 && IsDirectory(c->args[2])) {
    return ReplaceOfMountpoint(*c, old_arg, new_path, create_size, c->args[2]);
  }
  auto others = tools::ParseDeviceList({c->args.begin() + 2, c->args.end()});
  if (!others.ok()) {
    spdlog::error("{}", others.status().message());
    return kExitUsage;
  }
  for (const auto& p : *others) {
    if (p == new_path) {
      spdlog::error("{} is named as both NEW and a current member", new_path);
      return kExitUsage;
    }
  }

  // Everything is checked before the pool is opened read-write: that open already records
  // absent members as failed, so a refused replace must not get that far.
  struct stat st;
  const bool new_existed = ::stat(new_path.c_str(), &st) == 0;
  if (!new_existed && create_size == 0) {
    spdlog::error("{} does not exist (give --size to create it as a sparse file)", new_path);
    return kExitError;
  }
  std::unique_ptr<astra::Device> new_dev;
  auto fail = [&](int code) {
    new_dev.reset();
    if (!new_existed) ::unlink(new_path.c_str());  // created here: leave nothing behind
    return code;
  };
  auto nd = astra::OpenDevice(new_path, new_existed ? 0 : create_size);
  if (!nd.ok()) {
    spdlog::error("{}", tools::DescribeOpenError(new_path, nd.status()));
    return fail(kExitError);
  }
  new_dev = std::move(nd).value();
  auto new_id = astra::ProbeMember(*new_dev);

  auto opened = tools::OpenMembers(*others);
  if (!opened.ok()) {
    spdlog::error("{}", opened.status().message());
    return fail(kExitError);
  }
  std::vector<std::unique_ptr<astra::Device>> members = std::move(opened).value();
  // OLD as a path that still reads as a member: it joins the pool (more redundancy while
  // rebuilding) and its superblock gives the index.
  std::optional<uint32_t> index;
  if (IsIndex(old_arg)) {
    index = uint32_t(std::stoul(old_arg));
  } else if (old_arg != new_path && ::stat(old_arg.c_str(), &st) == 0) {
    for (const auto& p : *others) {
      if (p == old_arg) {
        spdlog::error("{} is named as both OLD and one of the other members", old_arg);
        return fail(kExitUsage);
      }
    }
    auto od = astra::OpenDevice(old_arg);
    if (od.ok()) {
      auto id = astra::ProbeMember(**od);
      if (id.ok()) {
        index = id->member_index;
        members.push_back(std::move(od).value());
      }
    } else if (od.status().code() == Status::Code::kBusy) {
      spdlog::error("{}", tools::DescribeOpenError(old_arg, od.status()));
      return fail(kExitError);
    }
  }
  auto probe = tools::ProbePool(members);
  if (!probe.ok()) {
    spdlog::error("{}", probe.status().message());
    return fail(kExitError);
  }
  if (!index) {
    // By elimination: the one member none of the given devices carries.
    if (probe->missing.size() != 1) {
      spdlog::error(
          "cannot tell which member {} was: {} member(s) of the pool are absent from "
          "the devices given; give OLD as a member index (see 'astrafs status')",
          old_arg, probe->missing.size());
      return fail(kExitError);
    }
    index = probe->missing[0];
  }
  if (*index >= probe->members) {
    spdlog::error("the pool has members 0..{}; there is no member {}", probe->members - 1, *index);
    return fail(kExitError);
  }
  if (new_id.ok() && !c->force) {
    spdlog::error("{} holds AstraFS pool {} (member {}){}; use --force to overwrite it", new_path,
                  new_id->pool_uuid, new_id->member_index,
                  new_id->pool_uuid == probe->pool_uuid ? ", this very pool" : "");
    return fail(kExitError);
  }
  astra::OpenOptions oo;
  oo.background_checkpoints = false;
  auto pool = astra::Pool::Open(std::move(members), oo);
  if (!pool.ok()) {
    spdlog::error("cannot open the pool: {}", pool.status().ToString());
    return fail(kExitError);
  }
  astra::PoolStatus ps = (*pool)->GetStatus();
  const std::string replaced_path = ps.member_status[*index].path;
  const std::string replaced_state = astra::MemberStateName(ps.member_status[*index].state);
  spdlog::info("rebuilding member {} ({}, {}) onto {}", *index,
               replaced_path.empty() ? old_arg : replaced_path, replaced_state, new_path);
  tools::Progress progress("replace", c->progress);
  Status s = (*pool)->ReplaceMember(*index, std::move(new_dev), progress.Fn());
  progress.Finish();
  if (!s.ok()) {
    spdlog::error("replace failed: {}", s.ToString());
    (*pool)->Close().IgnoreError();
    return kExitError;
  }
  ps = (*pool)->GetStatus();
  s = (*pool)->Close();
  if (!s.ok()) {
    spdlog::error("closing the pool: {}", s.ToString());
    return kExitError;
  }
  PrintReplace(*c, ps.pool_uuid, *index, replaced_path.empty() ? old_arg : replaced_path,
               replaced_state, new_path, ps.degraded);
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return kExitUsage;
  }
  const std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  if (cmd == "--version") {
    std::printf("astrafs %s\n", ASTRA_VERSION);
    return kExitOk;
  }
  if (cmd == "status") return CmdStatus(argc - 1, argv + 1);
  if (cmd == "scrub") return CmdScrub(argc - 1, argv + 1);
  if (cmd == "replace") return CmdReplace(argc - 1, argv + 1);
  if (cmd == "gc") return CmdGc(argc - 1, argv + 1);
  std::fprintf(stderr, "astrafs: error: unknown command \"%s\"\n%s", cmd.c_str(), kUsage);
  return kExitUsage;
}
