// fs_meta_bench: the daemon-side cost of the metadata workload of fio-jobs/run-fs-bench.sh
// (create / stat / unlink of N empty files in one directory), without FUSE.
//
// Drives astra::fs::FileSystem directly with the request sequence the kernel sends for each
// operation (doc/fs-benchmarks.md, "Requests per operation"):
//   create  LOOKUP (negative) + GETATTR (directory) + MKNOD
//   stat    LOOKUP (+ the FORGET the kernel sends when it drops the dentry)
//   unlink  LOOKUP + GETATTR (directory) + UNLINK + SETATTR (ctime, writeback cache) + FORGET
// on a fresh 4+2 pool on 6 member files (io_uring + O_DIRECT, the production path). Reports
// microseconds per operation for each phase, so that engine or fs changes can be measured
// without the FUSE round trips and the scheduler noise that dominate the mounted benchmark.
//
//   fs_meta_bench [--dir DIR] [--files N] [--rounds R] [--member-mib MIB] [--json]
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>  // FUSE_SET_ATTR_* only

#include "astra/device.h"
#include "astra/pool.h"
#include "file_system.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Config {
  std::string dir = "/var/tmp/astra-fsmeta";
  uint64_t files = 50000;
  int rounds = 3;
  uint64_t member_mib = 1024;
  bool json = false;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "fs_meta_bench: %s\n", what.c_str());
  std::exit(1);
}

double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string MemberPath(const Config& c, int i) {
  return c.dir + "/fsmeta-member-" + std::to_string(i) + ".img";
}

std::unique_ptr<astra::Pool> FreshPool(const Config& c) {
  std::vector<std::unique_ptr<astra::Device>> devs;
  for (int i = 0; i < 6; i++) {
    ::unlink(MemberPath(c, i).c_str());
    auto d = astra::OpenDevice(MemberPath(c, i), c.member_mib << 20);
    if (!d.ok()) Die("open " + MemberPath(c, i) + ": " + d.status().ToString());
    devs.push_back(std::move(d).value());
  }
  astra::FormatOptions fo;
  fo.data_shards = 4;
  fo.parity_shards = 2;
  fo.force = true;
  if (auto s = astra::Pool::Format(devs, fo); !s.ok()) Die("format: " + s.ToString());
  auto p = astra::Pool::Open(std::move(devs), astra::OpenOptions{});
  if (!p.ok()) Die("open pool: " + p.status().ToString());
  return std::move(p).value();
}

void Expect(int err, int want, const char* what) {
  if (err != want) Die(std::string(what) + ": " + std::strerror(err));
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--dir") c.dir = next();
    else if (a == "--files") c.files = std::stoull(next());
    else if (a == "--rounds") c.rounds = std::stoi(next());
    else if (a == "--member-mib") c.member_mib = std::stoull(next());
    else if (a == "--json") c.json = true;
    else Die("unknown option " + a + " (see the comment at the top of bench/fs_meta_bench.cc)");
  }
  ::mkdir(c.dir.c_str(), 0755);
  auto pool = FreshPool(c);
  astra::fs::FileSystem fs(pool.get(), astra::fs::FsOptions{});
  if (auto s = fs.Init(); !s.ok()) Die("init: " + s.ToString());

  const astra::fs::Ino root = 1;
  astra::fs::Caller caller;
  std::vector<double> create_us, stat_us, unlink_us;
  // Journal batches written per 1,000 operations (each: a write and a flush of every member).
  std::vector<double> create_batches, unlink_batches;
  auto seq = [&] { return pool->GetStatus().journal_seq; };
  for (int r = 0; r < c.rounds; r++) {
    astra::fs::Attr dir_attr, attr;
    std::string dname = "d" + std::to_string(r);
    Expect(fs.Create(root, dname, S_IFDIR | 0755, 0, {}, caller, &attr), 0, "mkdir");
    const astra::fs::Ino d = attr.st.st_ino;
    std::vector<std::string> names(c.files);
    for (uint64_t i = 0; i < c.files; i++) names[i] = "f" + std::to_string(i);

    uint64_t seq0 = seq();
    auto t0 = Clock::now();
    for (uint64_t i = 0; i < c.files; i++) {
      Expect(fs.Lookup(d, names[i], &attr), ENOENT, "negative lookup");
      Expect(fs.GetAttr(d, &dir_attr), 0, "getattr dir");
      Expect(fs.Create(d, names[i], S_IFREG | 0644, 0, {}, caller, &attr), 0, "create");
    }
    Expect(fs.Sync(), 0, "sync");
    create_us.push_back(Since(t0) * 1e6 / double(c.files));
    create_batches.push_back(double(seq() - seq0) * 1000.0 / double(c.files));
    // The kernel forgets the new inodes when it drops its caches between phases.
    for (uint64_t i = 0; i < c.files; i++) {
      Expect(fs.Lookup(d, names[i], &attr), 0, "lookup");
      fs.Forget(attr.st.st_ino, 2);
    }

    t0 = Clock::now();
    for (uint64_t i = 0; i < c.files; i++) {
      Expect(fs.Lookup(d, names[i], &attr), 0, "stat lookup");
      fs.Forget(attr.st.st_ino, 1);
    }
    stat_us.push_back(Since(t0) * 1e6 / double(c.files));

    seq0 = seq();
    t0 = Clock::now();
    for (uint64_t i = 0; i < c.files; i++) {
      Expect(fs.Lookup(d, names[i], &attr), 0, "unlink lookup");
      Expect(fs.GetAttr(d, &dir_attr), 0, "getattr dir");
      Expect(fs.Unlink(d, names[i]), 0, "unlink");
      struct stat st {};
      clock_gettime(CLOCK_REALTIME, &st.st_ctim);
      astra::fs::Attr out;
      Expect(fs.SetAttr(attr.st.st_ino, st, FUSE_SET_ATTR_CTIME, &out), 0, "setattr ctime");
      fs.Forget(attr.st.st_ino, 1);
    }
    Expect(fs.Sync(), 0, "sync");
    unlink_us.push_back(Since(t0) * 1e6 / double(c.files));
    unlink_batches.push_back(double(seq() - seq0) * 1000.0 / double(c.files));
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  if (c.json) {
    std::printf("{\"files\": %llu, \"rounds\": %d, \"create_us\": %.2f, \"stat_us\": %.2f, \"unlink_us\": %.2f, "
                "\"create_batches_per_1000\": %.2f, \"unlink_batches_per_1000\": %.2f}\n",
                (unsigned long long)c.files, c.rounds, median(create_us), median(stat_us), median(unlink_us),
                median(create_batches), median(unlink_batches));
  } else {
    std::printf("files %llu, rounds %d (median us per operation, daemon side, no FUSE)\n",
                (unsigned long long)c.files, c.rounds);
    std::printf("  create %8.2f us\n  stat   %8.2f us\n  unlink %8.2f us\n", median(create_us),
                median(stat_us), median(unlink_us));
    std::printf("  journal batches per 1,000 operations: create %.2f, unlink %.2f\n", median(create_batches),
                median(unlink_batches));
    for (int r = 0; r < c.rounds; r++)
      std::printf("  round %d: create %.2f stat %.2f unlink %.2f\n", r, create_us[r], stat_us[r], unlink_us[r]);
  }
  pool->Close().IgnoreError();
  for (int i = 0; i < 6; i++) ::unlink(MemberPath(c, i).c_str());
  return 0;
}
