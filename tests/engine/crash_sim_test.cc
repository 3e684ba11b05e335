// Power-loss simulation (DESIGN invariant 1): seeded random workloads on MemDevice + FaultyDevice,
// cut at random device I/Os (mid-write, mid-flush, mid-checkpoint), then reopen and check that
// every write acknowledged by a completed Flush() reads back bit-exact, that every block holds
// one whole value that was written to it (never a mix), and that the full check is clean.
//
// ASTRA_SEED replays a run; ASTRA_CRASH_CUTS sets the number of cuts of the first test (default
// 1000; the cleaner test runs a quarter of it, ASTRA_CRASH_CLEANER_CUTS overrides that).
//
// ASTRA_TEST_MEMBERS=/dev/vmh/ng0n1,...,/dev/vmh/ng5n1 (six devices; see test_util.h) puts the
// six disks on real devices instead of MemDevice: each disk is a trimmed region of a member
// (12 MiB, 6 MiB for the cleaner test) under the same FaultyDevice, which holds the writes since
// the last flush and at the cut lands a random subset of them on the device (some torn), drops
// the rest. Run that way in the VM suite nvme_engine_suites (doc/nvme.md), with fewer cuts.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>

#include "test_util.h"

namespace astra::test {
namespace {

// Counts device requests across all members; at zero, power fails on every member at once.
struct CrashClock {
  std::atomic<int64_t> remaining{INT64_MAX};
  std::vector<std::shared_ptr<FaultyDevice>>* devs = nullptr;
  std::mt19937_64* rng = nullptr;
  std::atomic<bool> fired{false};
  void Tick() {
    if (remaining.fetch_sub(1) == 1) {
      fired = true;
      std::uniform_real_distribution<double> u(0, 1);
      double keep = u(*rng), tear = u(*rng) * 0.5;
      for (auto& d : *devs) d->PowerLoss(keep, tear);
    }
  }
};

class ClockedDevice final : public Device {
 public:
  ClockedDevice(std::shared_ptr<Device> d, CrashClock* c) : d_(std::move(d)), c_(c) {}
  const DeviceInfo& info() const override { return d_->info(); }
  void Submit(IoRequest* const* reqs, size_t n) override {
    for (size_t i = 0; i < n; i++) {
      c_->Tick();
      d_->Submit(&reqs[i], 1);
    }
  }

 private:
  std::shared_ptr<Device> d_;
  CrashClock* c_;
};

struct Model {
  // Per (object, block): the value made durable by a completed flush, and values written since.
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> durable;
  std::map<std::pair<uint64_t, uint64_t>, std::set<uint64_t>> since;
  std::map<std::string, std::string> kv_durable;
  // Newest value applied by an operation that returned OK (becomes durable at the next flush).
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> latest;
  std::map<std::string, std::string> kv_latest;
  std::map<std::string, std::set<std::string>> kv_since;  // "" = deleted
};

constexpr uint64_t kObjects = 4;

// Runs `cuts_target` cuts on pools of six `device_bytes` members, reformatted every
// `rounds_per_pool` cuts. Returns the number of segments the cleaner relocated.
uint64_t RunCrashSim(uint64_t seed, int cuts_target, uint64_t device_bytes, int rounds_per_pool,
                     const uint64_t kBlocks) {
  std::mt19937_64 rng(seed);
  uint64_t cleaned = 0;
  auto rnd = [&](uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng); };

  int cuts = 0, mid_op_cuts = 0;
  uint64_t tag_counter = 1;
  while (cuts < cuts_target) {
    // A fresh pool every so often keeps the pools small (no segment cleaner in this test).
    MemPool mp(6, device_bytes, Disks::kFromEnv);
    for (auto& f : mp.faulty) {
      f->SetSeed(rng());
      f->SetTrackUnflushed(true);
    }
    CrashClock clock;
    clock.devs = &mp.faulty;
    clock.rng = &rng;
    auto devices = [&] {
      std::vector<std::unique_ptr<Device>> v;
      for (auto& f : mp.faulty) v.push_back(std::make_unique<ClockedDevice>(f, &clock));
      return v;
    };
    {
      auto d = devices();
      FormatOptions fo = SmallFormat();
      fo.segment_column_bytes = 64 * 1024;
      fo.journal_bytes = 1u << 20;
      fo.compression = rnd(2) ? Compression::kZstd : Compression::kNone;
      if (!(Pool::Format(d, fo).ok())) { ADD_FAILURE() << "Pool::Format(d, fo).ok()"; return cleaned; }
      for (auto& f : mp.faulty) if (!(f->Flush().ok())) { ADD_FAILURE() << "f->Flush().ok()"; return cleaned; }
    }
    Model model;
    for (int round = 0; round < rounds_per_pool && cuts < cuts_target; round++, cuts++) {
      auto opened = Pool::Open(devices(), TestOpen());
      EXPECT_TRUE(opened.ok()) << "cut " << cuts << ": " << opened.status().ToString();
      if (!opened.ok()) return cleaned;
      auto pool = std::move(opened).value();
      // ---- verify what survived the previous cut ----
      uint8_t got[4096], want[4096];
      for (uint64_t o = 1; o <= kObjects; o++) {
        for (uint64_t b = 0; b < kBlocks; b++) {
          Status s = pool->Read(o, b, 1, got);
          if (!(s.ok())) { ADD_FAILURE() << "s.ok()" << "cut " << cuts << ": " << s.ToString(); return cleaned; }
          auto key = std::make_pair(o, b);
          uint64_t d = model.durable.count(key) ? model.durable[key] : 0;
          std::set<uint64_t> ok = model.since[key];
          ok.insert(d);
          uint64_t found = UINT64_MAX;
          for (uint64_t t : ok) {
            FillBlock(want, t, t % 3 == 0);
            if (memcmp(want, got, 4096) == 0) found = t;
          }
          if (found == UINT64_MAX) {
            std::string cands;
            for (uint64_t t : ok) cands += std::to_string(t) + " ";
            uint64_t actual = UINT64_MAX;
            for (uint64_t t = 0; t <= tag_counter + 200 && actual == UINT64_MAX; t++) {
              FillBlock(want, t, t % 3 == 0);
              if (memcmp(want, got, 4096) == 0) actual = t;
            }
            ADD_FAILURE() << "candidates: " << cands << " actual tag: " << (actual == UINT64_MAX ? std::string("none") : std::to_string(actual));
          }
          if (found == UINT64_MAX) { ADD_FAILURE() << "cut " << cuts << " seed " << seed << ": object " << o << " block " << b
                                       << " holds bytes that were never written there whole (durable tag " << d << ")"; return cleaned; }
          model.durable[key] = found;
        }
      }
      model.since.clear();
      for (auto& [k, vals] : model.kv_since) {
        auto r = pool->Get(k);
        std::string v = r.ok() ? *r : "";
        std::set<std::string> ok = vals;
        ok.insert(model.kv_durable.count(k) ? model.kv_durable[k] : "");
        if (!(ok.count(v))) { ADD_FAILURE() << "ok.count(v)" << "cut " << cuts << ": catalogue key " << k << " has value never committed"; return cleaned; }
        model.kv_durable[k] = v;
      }
      for (auto& [k, v] : model.kv_durable) {
        auto r = pool->Get(k);
        if ((r.ok() ? *r : std::string()) != v) {
          ADD_FAILURE() << "cut " << cuts << ": catalogue key " << k << " lost its durable value";
          return cleaned;
        }
      }
      model.kv_since.clear();
      model.latest = model.durable;
      model.kv_latest = model.kv_durable;
      auto rep = pool->Check(false);
      if (!(rep.ok())) { ADD_FAILURE() << "rep.ok()" << rep.status().ToString(); return cleaned; }
      if (!(rep->clean())) { ADD_FAILURE() << "rep->clean()" << "cut " << cuts << " seed " << seed << ": " << rep->problems[0]; return cleaned; }

      // ---- a random workload, cut at a random device I/O ----
      clock.fired = false;
      clock.remaining = int64_t(1 + rnd(rnd(2) ? 400 : 5000));
      bool failed = false;
      for (int op = 0; op < 200 && !failed; op++) {
        uint64_t kind = rnd(100);
        Status s;
        if (kind < 55 && rnd(3) == 0) {
          // A WriteBatch of 1-4 writes (overlaps allowed): each applies in order, as Write.
          const uint64_t nops = 1 + rnd(4);
          std::vector<std::vector<uint8_t>> bufs(nops);
          std::vector<std::vector<uint64_t>> tags(nops);
          std::vector<WriteOp> ops(nops);
          for (uint64_t j = 0; j < nops; j++) {
            uint64_t o = 1 + rnd(kObjects), b = rnd(kBlocks), n = 1 + rnd(std::min<uint64_t>(4, kBlocks - b));
            bufs[j].resize(n * 4096);
            tags[j].resize(n);
            for (uint64_t i = 0; i < n; i++) {
              uint64_t r = rnd(10);
              tags[j][i] = r == 0 ? 0 : r <= 2 ? 1 + rnd(8) /* duplicates */ : ++tag_counter + 100;
              FillBlock(&bufs[j][i * 4096], tags[j][i], tags[j][i] % 3 == 0);
              model.since[{o, b + i}].insert(tags[j][i]);
            }
            ops[j] = {o, b, uint32_t(n), bufs[j].data(), {}};
          }
          s = pool->WriteBatch(ops);
          for (uint64_t j = 0; j < nops; j++)
            if (ops[j].status.ok())
              for (uint64_t i = 0; i < ops[j].count; i++) model.latest[{ops[j].obj, ops[j].block + i}] = tags[j][i];
        } else if (kind < 55) {
          uint64_t o = 1 + rnd(kObjects), b = rnd(kBlocks), n = 1 + rnd(std::min<uint64_t>(4, kBlocks - b));
          std::vector<uint8_t> buf(n * 4096);
          std::vector<uint64_t> tags(n);
          for (uint64_t i = 0; i < n; i++) {
            uint64_t r = rnd(10);
            tags[i] = r == 0 ? 0 : r <= 2 ? 1 + rnd(8) /* duplicates */ : ++tag_counter + 100;
            FillBlock(&buf[i * 4096], tags[i], tags[i] % 3 == 0);
            model.since[{o, b + i}].insert(tags[i]);
          }
          s = pool->Write(o, b, uint32_t(n), buf.data());
          if (s.ok())
            for (uint64_t i = 0; i < n; i++) model.latest[{o, b + i}] = tags[i];
        } else if (kind < 62) {
          uint64_t o = 1 + rnd(kObjects), b = rnd(kBlocks), n = 1 + rnd(8);
          for (uint64_t i = b; i < std::min(kBlocks, b + n); i++) model.since[{o, i}].insert(0);
          s = pool->Trim(o, b, n);
          if (s.ok())
            for (uint64_t i = b; i < std::min(kBlocks, b + n); i++) model.latest[{o, i}] = 0;
        } else if (kind < 67) {
          uint64_t so = 1 + rnd(kObjects), dob = 1 + rnd(kObjects), sb = rnd(kBlocks), db = rnd(kBlocks);
          uint64_t n = 1 + rnd(std::min(kBlocks - sb, kBlocks - db));
          if (so == dob) continue;
          for (uint64_t i = 0; i < n; i++) {
            // The clone copies the source's current value (durable or any pending one).
            auto& dst = model.since[{dob, db + i}];
            auto skey = std::make_pair(so, sb + i);
            dst.insert(model.durable.count(skey) ? model.durable[skey] : 0);
            for (uint64_t t : model.since[skey]) dst.insert(t);
          }
          s = pool->CloneRange(so, sb, dob, db, n);
          if (s.ok())
            for (uint64_t i = 0; i < n; i++) {
              auto it = model.latest.find({so, sb + i});
              model.latest[{dob, db + i}] = it == model.latest.end() ? 0 : it->second;
            }
        } else if (kind < 80) {
          CatalogTxn t;
          std::pair<std::string, std::string> pending_kv;
          std::string k = "k" + std::to_string(rnd(20));
          if (rnd(4) == 0) {
            t.Delete(k);
            model.kv_since[k].insert("");
            pending_kv = {k, ""};
          } else {
            std::string v = "v" + std::to_string(++tag_counter) + std::string(rnd(300), 'x');
            t.Put(k, v);
            model.kv_since[k].insert(v);
            pending_kv = {k, v};
          }
          s = pool->Commit(t);
          if (s.ok()) model.kv_latest[pending_kv.first] = pending_kv.second;
        } else if (kind < 97) {
          s = pool->Flush();
          if (s.ok()) {
            // Acknowledged: the newest value of every block and key is durable now.
            model.durable = model.latest;
            model.kv_durable = model.kv_latest;
            model.since.clear();
            model.kv_since.clear();
          }
        } else {
          s = pool->Checkpoint();
        }
        if (!s.ok()) failed = true;  // the cut happened: stop using this pool instance
      }
      if (!clock.fired) {
        // No cut during the workload: cut now, between operations.
        std::uniform_real_distribution<double> u(0, 1);
        double keep = u(rng);
        for (auto& f : mp.faulty) f->PowerLoss(keep, 0.3);
      } else {
        mid_op_cuts++;
      }
      clock.remaining = INT64_MAX;
      cleaned += pool->GetStatus().cleaner.segments_cleaned;
      pool.reset();  // its close fails on dead devices: that is the crash
      for (auto& f : mp.faulty) f->Revive();
    }
  }
  std::printf("power-loss cuts: %d (%d during an operation), segments cleaned: %llu\n", cuts, mid_op_cuts,
              (unsigned long long)cleaned);
  EXPECT_GE(cuts, cuts_target);
  return cleaned;
}

int CutsFromEnv(const char* name, int fallback) {
  const char* e = std::getenv(name);
  return e ? std::atoi(e) : fallback;
}

TEST(CrashSimTest, PowerLossAtRandomInstantsLosesNothingAcknowledged) {
  RunCrashSim(TestSeed(20261121), CutsFromEnv("ASTRA_CRASH_CUTS", 1000), 12ull << 20, 25, 48);
}

// Small pools reused across many cuts: the cleaner runs (foreground and on checkpoints) while
// power fails at random instants.
TEST(CrashSimTest, PowerLossWhileTheCleanerRuns) {
  const int cuts =
      CutsFromEnv("ASTRA_CRASH_CLEANER_CUTS", CutsFromEnv("ASTRA_CRASH_CUTS", 1000) / 4);
  uint64_t cleaned = RunCrashSim(TestSeed(777), cuts, 6ull << 20, 250, 512);
  EXPECT_GT(cleaned, 0u) << "the workload never made the cleaner run";
}

}  // namespace
}  // namespace astra::test
