// vm_engine_bench: the engine without ublk, for the speed breakdown of doc/blockdev.md ("Speed").
// Opens a pool in-process (the same OpenDevice / Pool::Open as astrafs-ublk's server), fills a
// region of a fresh object with random data, then runs fio's jobs of the ublk_bench suite as
// direct Pool::Read / Pool::Write calls:
//   4k randread QD1 / QD32, 4k randwrite QD1 / QD32, 128k read QD32, 128k write QD32
// "QD n" = n threads, each with one synchronous engine call in flight (the engine's calls are
// synchronous, as for the ublk server's workers). Written blocks carry a counter so that dedup
// never hits (fio scrambles its buffers for the same reason); random bytes do not compress.
//
//   vm_engine_bench [--runtime SECONDS] [--size MiB] MEMBER...
// Prints one line per job:  BENCH engine <job> <IOPS> IOPS <MiB/s> MiB/s <mean latency> us
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "astra/device.h"
#include "astra/pool.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Job {
  const char* name;
  bool write;
  bool random;
  uint32_t blocks;  // per request, 4 KiB each
  uint32_t qd;
};

struct Outcome {
  uint64_t ops = 0;
  uint64_t errors = 0;
  double seconds = 0;
  double lat_us_sum = 0;
};

Outcome Run(astra::Pool* pool, astra::ObjectId obj, uint64_t region_blocks, const Job& job,
            double runtime_s) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> next_seq{0}, ops{0}, errors{0};
  std::atomic<uint64_t> lat_ns{0};
  std::vector<std::thread> th;
  const uint64_t slots = region_blocks / job.blocks;
  const auto t0 = Clock::now();
  for (uint32_t t = 0; t < job.qd; t++) {
    th.emplace_back([&, t] {
      std::mt19937_64 rng(t * 7919 + 1);
      std::vector<uint8_t> buf(job.blocks * 4096ull);
      for (auto& b : buf) b = static_cast<uint8_t>(rng());
      uint64_t counter = (static_cast<uint64_t>(t) << 40) + 1;
      while (!stop.load(std::memory_order_relaxed)) {
        const uint64_t slot = job.random ? rng() % slots : next_seq.fetch_add(1) % slots;
        const auto s = Clock::now();
        astra::Status st;
        if (job.write) {
          for (uint32_t b = 0; b < job.blocks; b++) {
            memcpy(buf.data() + b * 4096ull, &counter, sizeof counter);  // defeats dedup
            counter++;
          }
          st = pool->Write(obj, slot * job.blocks, job.blocks, buf.data());
        } else {
          st = pool->Read(obj, slot * job.blocks, job.blocks, buf.data());
        }
        lat_ns.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - s)
                             .count(),
                         std::memory_order_relaxed);
        (st.ok() ? ops : errors).fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(runtime_s));
  stop = true;
  for (auto& x : th) x.join();
  Outcome o;
  o.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  o.ops = ops.load();
  o.errors = errors.load();
  o.lat_us_sum = lat_ns.load() / 1000.0;
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  double runtime = 10;
  uint64_t size_mib = 256;
  std::vector<std::string> members;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    if (a == "--runtime" && i + 1 < argc) runtime = std::atof(argv[++i]);
    else if (a == "--size" && i + 1 < argc) size_mib = std::strtoull(argv[++i], nullptr, 0);
    else if (a.rfind("--", 0) == 0) {
      fprintf(stderr, "vm_engine_bench: unknown option %s\n", a.c_str());
      return 2;
    } else {
      members.push_back(a);
    }
  }
  if (members.empty() || runtime <= 0 || size_mib == 0) {
    fprintf(stderr, "usage: vm_engine_bench [--runtime S] [--size MiB] MEMBER...\n");
    return 2;
  }
  std::vector<std::unique_ptr<astra::Device>> devs;
  for (const auto& m : members) {
    auto d = astra::OpenDevice(m);
    if (!d.ok()) {
      fprintf(stderr, "vm_engine_bench: %s: %s\n", m.c_str(), d.status().ToString().c_str());
      return 1;
    }
    devs.push_back(std::move(*d));
  }
  auto pool = astra::Pool::Open(std::move(devs));
  if (!pool.ok()) {
    fprintf(stderr, "vm_engine_bench: open: %s\n", pool.status().ToString().c_str());
    return 1;
  }
  auto obj = (*pool)->AllocateId();
  if (!obj.ok()) {
    fprintf(stderr, "vm_engine_bench: %s\n", obj.status().ToString().c_str());
    return 1;
  }
  // Prefill (reads of holes would measure nothing), as the fio suite does with dd.
  const uint64_t region_blocks = size_mib * 256;
  {
    std::mt19937_64 rng(99);
    std::vector<uint8_t> buf(256 * 4096);
    for (uint64_t b = 0; b < region_blocks; b += 256) {
      for (size_t i = 0; i < buf.size(); i += 8) {
        const uint64_t v = rng();
        memcpy(buf.data() + i, &v, 8);
      }
      astra::Status st = (*pool)->Write(*obj, b, 256, buf.data());
      if (!st.ok()) {
        fprintf(stderr, "vm_engine_bench: prefill: %s\n", st.ToString().c_str());
        return 1;
      }
    }
    astra::Status st = (*pool)->Flush();
    if (!st.ok()) {
      fprintf(stderr, "vm_engine_bench: flush: %s\n", st.ToString().c_str());
      return 1;
    }
  }
  const Job jobs[] = {
      {"randread 4k QD1", false, true, 1, 1},   {"randread 4k QD32", false, true, 1, 32},
      {"randwrite 4k QD1", true, true, 1, 1},   {"randwrite 4k QD32", true, true, 1, 32},
      {"read 128k QD32", false, false, 32, 32}, {"write 128k QD32", true, false, 32, 32},
  };
  int rc = 0;
  for (const Job& j : jobs) {
    Run(pool->get(), *obj, region_blocks, j, 1.0);  // ramp, as fio's ramp_time=1
    Outcome o = Run(pool->get(), *obj, region_blocks, j, runtime);
    const double iops = o.ops / o.seconds;
    printf("BENCH %-8s %-18s %9.0f IOPS %9.1f MiB/s %9.1f us\n", "engine", j.name, iops,
           iops * j.blocks * 4096 / (1 << 20), o.ops ? o.lat_us_sum / o.ops : 0.0);
    fflush(stdout);
    if (o.errors) {
      fprintf(stderr, "vm_engine_bench: %s: %llu errors\n", j.name,
              static_cast<unsigned long long>(o.errors));
      rc = 1;
    }
  }
  astra::Status cs = (*pool)->Close();
  if (!cs.ok()) {
    fprintf(stderr, "vm_engine_bench: close: %s\n", cs.ToString().c_str());
    rc = 1;
  }
  return rc;
}
