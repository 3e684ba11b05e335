// fsck.astrafs: checks (and by default repairs) an AstraFS pool that is not in use.
// Exit status as e2fsck (bits, ORed): 0 clean, 1 errors corrected, 4 errors left uncorrected,
// 8 operational error (cannot open a member or the pool), 16 usage error. See doc/tools.md.
#include <spdlog/spdlog.h>

#include <boost/program_options.hpp>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "astra/device.h"
#include "astra/pool.h"
#include "cli_common.h"

namespace {

namespace po = boost::program_options;
using astra::CheckReport;
using astra::Status;
namespace tools = astra::tools;

constexpr char kProg[] = "fsck.astrafs";
constexpr int kExitClean = 0;
constexpr int kExitCorrected = 1;
constexpr int kExitUncorrected = 4;
constexpr int kExitOperational = 8;
constexpr int kExitUsage = 16;

struct Args {
  std::vector<std::string> devices;
  bool no_change = false;  // -n
  bool json = false;
  bool progress = false;
  bool verbose = false;
  bool degraded = false;  // repair even with absent members
};

uint64_t ErrorCount(const CheckReport& r) {
  return r.checksum_errors + r.parity_errors + r.refcount_errors + r.other_errors;
}

// Members that are not online (missing, failed, rebuilding): redundancy is reduced, which fsck
// reports but cannot fix (that is `astrafs replace`).
std::vector<std::string> DegradedProblems(const astra::PoolStatus& ps) {
  std::vector<std::string> out;
  for (const auto& m : ps.member_status) {
    if (m.state == astra::MemberState::kOnline) continue;
    out.push_back("member " + std::to_string(m.index) +
                  (m.path.empty() ? "" : " (" + m.path + ")") + " is " +
                  astra::MemberStateName(m.state) +
                  ": the pool is degraded; run 'astrafs replace' to restore redundancy");
  }
  return out;
}

bool ParseArgs(int argc, char** argv, Args* a, int* exit_code) {
  std::vector<std::string> devices;
  bool yes = false, preen = false, auto_repair = false, force = false;
  po::options_description vis(
      "Usage: fsck.astrafs [-n|-y] [--json] [--progress] [--degraded] DEVICE...\n"
      "       (DEVICE... may also be DEVICE,DEVICE,...)\n"
      "Checks an AstraFS pool that is not mounted or open elsewhere: every extent checksum,\n"
      "every stripe's parity, reference counts. Repairs what redundancy allows unless -n.\n\n"
      "Options");
  vis.add_options()("help,h", "show this help")(
      "no-change,n", po::bool_switch(&a->no_change),
      "open the pool read-only and change nothing; report only")(
      "yes,y", po::bool_switch(&yes), "repair everything that can be repaired (the default)")(
      "preen,p", po::bool_switch(&preen), "same as -y (fsck(8) compatibility; also -a)")(
      ",a", po::bool_switch(&auto_repair), "same as -y")(
      "force,f", po::bool_switch(&force),
      "accepted for fsck(8) compatibility: always a full check")(
      "degraded", po::bool_switch(&a->degraded),
      "repair even though members are absent (they are then recorded as failed)")(
      "json", po::bool_switch(&a->json), "print the summary as JSON on stdout")(
      "progress", po::bool_switch(&a->progress),
      "draw a progress bar on stderr even when it is not a terminal")(
      "verbose,v", po::bool_switch(&a->verbose), "more log messages");
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
    *exit_code = kExitUsage;
    return false;
  }
  if (vm.count("help")) {
    std::ostringstream o;
    o << vis
      << "\nExit status (ORed): 0 clean, 1 errors corrected, 4 errors left uncorrected,\n"
         "8 operational error (a member or the pool cannot be opened), 16 usage error.\n";
    std::fputs(o.str().c_str(), stdout);
    *exit_code = kExitClean;
    return false;
  }
  if (a->no_change && (yes || preen || auto_repair)) {
    std::fprintf(stderr, "%s: error: -n and -y (or -p/-a) contradict each other\n", kProg);
    *exit_code = kExitUsage;
    return false;
  }
  if (devices.empty()) {
    std::fprintf(stderr, "%s: error: no devices given\nTry '%s --help'.\n", kProg, kProg);
    *exit_code = kExitUsage;
    return false;
  }
  auto devs = tools::ParseDeviceList(devices);
  if (!devs.ok()) {
    std::fprintf(stderr, "%s: error: %s\n", kProg, devs.status().message().c_str());
    *exit_code = kExitUsage;
    return false;
  }
  a->devices = std::move(devs).value();
  return true;
}

void PrintJson(const CheckReport& r, const astra::PoolStatus& ps, bool clean, bool repair,
               uint64_t uncorrected, const std::vector<std::string>& problems, int exit_code) {
  tools::JsonWriter j(stdout);
  j.BeginObject();
  j.String("pool_uuid", ps.pool_uuid);
  j.Bool("clean", clean);
  j.Bool("read_only", !repair);
  j.Bool("degraded", ps.degraded);
  tools::WriteCheckCounters(j, r);
  j.Uint("uncorrected_errors", uncorrected);
  j.BeginArray("problems");
  for (const auto& p : problems) j.String(p);
  j.EndArray();
  j.Int("exit_code", exit_code);
  j.EndObject();
}

int Run(const Args& a) {
  auto members = tools::OpenMembers(a.devices);
  if (!members.ok()) {
    spdlog::error("{}", members.status().message());
    return kExitOperational;
  }
  if (!a.no_change && !a.degraded) {
    auto probe = tools::ProbePool(*members);
    if (probe.ok() && !probe->missing.empty()) {
      spdlog::error("{}", tools::DegradedRefusal(*probe).message());
      return kExitOperational;
    }
  }
  astra::OpenOptions oo;
  oo.read_only = a.no_change;
  oo.background_checkpoints = false;
  auto opened = astra::Pool::Open(std::move(members).value(), oo);
  if (!opened.ok()) {
    spdlog::error("cannot open the pool: {}", opened.status().ToString());
    return kExitOperational;
  }
  astra::Pool& pool = **opened;
  const bool repair = !a.no_change;
  astra::PoolStatus ps = pool.GetStatus();
  if (!a.json) {
    std::printf("%s: pool %s, %u member(s), %u+%u%s\n", kProg, ps.pool_uuid.c_str(), ps.members,
                ps.data_shards, ps.parity_shards, repair ? "" : " (read-only check, -n)");
    std::fflush(stdout);
  }
  tools::Progress progress("fsck", a.progress);
  auto first = pool.Check(repair, progress.Fn());
  progress.Finish();
  if (!first.ok()) {
    spdlog::error("check failed: {}", first.status().ToString());
    pool.Close().IgnoreError();
    return kExitOperational;
  }
  CheckReport rep = std::move(first).value();
  std::vector<std::string> problems = rep.problems;
  uint64_t found = ErrorCount(rep), uncorrected = found;
  std::vector<std::string> remaining;
  if (repair && found != 0) {
    // Prove the repair: a second, read-only pass decides between "corrected" and "left".
    tools::Progress verify_progress("fsck verify", a.progress);
    auto again = pool.Check(false, verify_progress.Fn());
    verify_progress.Finish();
    if (!again.ok()) {
      spdlog::error("verification pass failed: {}", again.status().ToString());
      pool.Close().IgnoreError();
      return kExitOperational;
    }
    uncorrected = ErrorCount(*again);
    remaining = again->problems;
  }
  ps = pool.GetStatus();  // a repair may have failed a noisy member
  for (auto& p : DegradedProblems(ps)) {
    problems.push_back(p);
    remaining.push_back(p);
    ++found;
    ++uncorrected;
  }
  int exit_code = kExitClean;
  if (uncorrected != 0) {
    exit_code |= kExitUncorrected;
  } else if (found != 0) {
    exit_code |= kExitCorrected;
  }
  Status closed = pool.Close();
  if (!closed.ok()) {
    spdlog::error("closing the pool: {}", closed.ToString());
    exit_code |= kExitOperational;
  }
  const bool clean = found == 0;
  if (a.json) {
    PrintJson(rep, ps, clean, repair, uncorrected, problems, exit_code);
    return exit_code;
  }
  for (const auto& p : problems) std::printf("  problem: %s\n", p.c_str());
  std::printf("%s: %llu extents, %llu stripes checked, %llu blocks mapped\n", kProg,
              static_cast<unsigned long long>(rep.extents_checked),
              static_cast<unsigned long long>(rep.stripes_checked),
              static_cast<unsigned long long>(rep.blocks_mapped));
  if (clean) {
    std::printf("%s: pool %s is clean\n", kProg, ps.pool_uuid.c_str());
    return exit_code;
  }
  std::printf("%s: errors found: %llu checksum, %llu parity, %llu reference count, %llu other%s\n",
              kProg, static_cast<unsigned long long>(rep.checksum_errors),
              static_cast<unsigned long long>(rep.parity_errors),
              static_cast<unsigned long long>(rep.refcount_errors),
              static_cast<unsigned long long>(rep.other_errors),
              ps.degraded ? "; pool degraded" : "");
  if (!repair) {
    std::printf("%s: nothing changed (-n); run without -n to repair\n", kProg);
  } else if (uncorrected == 0) {
    std::printf("%s: all errors corrected (%llu extents relocated or structures rewritten)\n",
                kProg, static_cast<unsigned long long>(rep.repaired));
  } else {
    for (const auto& p : remaining) std::printf("  left: %s\n", p.c_str());
    std::printf("%s: %llu error(s) left uncorrected (%llu repaired)\n", kProg,
                static_cast<unsigned long long>(uncorrected),
                static_cast<unsigned long long>(rep.repaired));
  }
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  int exit_code = kExitClean;
  if (!ParseArgs(argc, argv, &a, &exit_code)) return exit_code;
  tools::SetupLogging(kProg, a.verbose);
  return Run(a);
}
