// The command-line tools, run for real (fork + exec) on sparse member files in a temp directory:
// mkfs.astrafs, fsck.astrafs (exit codes as e2fsck), astrafs status / scrub / replace. Data
// written through the engine is read back and compared byte for byte after repairs and rebuilds.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "astra/device.h"
#include "astra/pool.h"
#include "control_protocol.h"
#include "volume_fixture.h"

namespace {

namespace fs = std::filesystem;

struct RunResult {
  int code = -1;
  std::string out, err;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class ToolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string base = ::testing::TempDir();
    if (base.empty()) base = "/tmp/";
    std::string tmpl = base + "astra_tools_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string P(const std::string& name) const { return dir_ + "/" + name; }

  // Runs `bin args...`; stdout and stderr are captured through files (no pipe deadlocks).
  RunResult Run(const std::string& bin, const std::vector<std::string>& args) {
    const std::string out = P(".stdout"), err = P(".stderr");
    const pid_t pid = ::fork();
    if (pid == 0) {
      const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(o, STDOUT_FILENO);
      ::dup2(e, STDERR_FILENO);
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(bin.c_str()));
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(bin.c_str(), argv.data());
      ::_exit(127);
    }
    RunResult r;
    int status = 0;
    EXPECT_EQ(::waitpid(pid, &status, 0), pid);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = ReadAll(out);
    r.err = ReadAll(err);
    return r;
  }
  RunResult Mkfs(std::vector<std::string> a) { return Run(MKFS_BIN, a); }
  RunResult Fsck(std::vector<std::string> a) { return Run(FSCK_BIN, a); }
  RunResult Admin(std::vector<std::string> a) { return Run(ASTRAFS_BIN, a); }

  std::vector<std::string> Members(int n) {
    std::vector<std::string> v;
    for (int i = 0; i < n; ++i) v.push_back(P("m" + std::to_string(i)));
    return v;
  }

  std::unique_ptr<astra::Pool> OpenPool(const std::vector<std::string>& paths,
                                        bool read_only = false) {
    std::vector<std::unique_ptr<astra::Device>> devs;
    for (const auto& p : paths) {
      auto d = astra::OpenDevice(p);
      EXPECT_TRUE(d.ok()) << d.status().ToString();
      if (!d.ok()) return nullptr;
      devs.push_back(std::move(d).value());
    }
    astra::OpenOptions oo;
    oo.read_only = read_only;
    auto pool = astra::Pool::Open(std::move(devs), oo);
    EXPECT_TRUE(pool.ok()) << pool.status().ToString();
    return pool.ok() ? std::move(pool).value() : nullptr;
  }

  // Incompressible, unique blocks: each starts with a 32-byte tag findable on the members.
  static std::vector<uint8_t> Block(uint64_t tag) {
    std::vector<uint8_t> b(astra::kBlockBytes);
    std::mt19937_64 rng(tag * 7919 + 17);
    for (size_t i = 0; i < b.size(); i += 8) {
      const uint64_t x = rng();
      std::memcpy(&b[i], &x, 8);
    }
    std::snprintf(reinterpret_cast<char*>(b.data()), 32, "ASTRA-TOOLS-TEST-%014llu",
                  static_cast<unsigned long long>(tag));
    return b;
  }
  static constexpr uint32_t kBlocks = 64;
  static constexpr astra::ObjectId kObj = 7;

  void WriteData(const std::vector<std::string>& paths) {
    auto pool = OpenPool(paths);
    ASSERT_TRUE(pool);
    std::vector<uint8_t> buf;
    for (uint32_t i = 0; i < kBlocks; ++i) {
      auto b = Block(1000 + i);
      buf.insert(buf.end(), b.begin(), b.end());
    }
    ASSERT_TRUE(pool->Write(kObj, 0, kBlocks, buf.data()).ok());
    ASSERT_TRUE(pool->Close().ok());
  }

  // Read-only: a degraded read-write open would record the absent members as failed.
  void VerifyData(const std::vector<std::string>& paths) {
    auto pool = OpenPool(paths, /*read_only=*/true);
    ASSERT_TRUE(pool);
    std::vector<uint8_t> got(astra::kBlockBytes);
    for (uint32_t i = 0; i < kBlocks; ++i) {
      ASSERT_TRUE(pool->Read(kObj, i, 1, got.data()).ok()) << "block " << i;
      ASSERT_EQ(got, Block(1000 + i)) << "block " << i;
    }
    ASSERT_TRUE(pool->Close().ok());
  }

  // Flips one byte inside the stored copy of the block with `tag`, on whichever member holds
  // it. Returns the member's path ("" when not found).
  std::string CorruptBlock(const std::vector<std::string>& paths, uint64_t tag) {
    const auto b = Block(tag);
    const std::string needle(reinterpret_cast<const char*>(b.data()), 32);
    for (const auto& p : paths) {
      const std::string img = ReadAll(p);
      const size_t at = img.find(needle);
      if (at == std::string::npos) continue;
      EXPECT_EQ(img.find(needle, at + 1), std::string::npos) << "stored twice on " << p;
      std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(std::streamoff(at + 100));
      const char c = char(img[at + 100] ^ 0x5A);
      f.write(&c, 1);
      return p;
    }
    return "";
  }

  std::string dir_;
};

bool Has(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

// ---- mkfs ----

TEST_F(ToolsTest, MkfsThenFsckIsClean) {
  auto m = Members(3);
  auto r = Mkfs({"--size", "64M", "--json", m[0], m[1], m[2]});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "\"pool_uuid\": \"")) << r.out;
  EXPECT_TRUE(Has(r.out, "\"data_shards\": 2")) << r.out;  // default for 3 members: 2+1
  EXPECT_TRUE(Has(r.out, "\"parity_shards\": 1")) << r.out;
  EXPECT_TRUE(Has(r.out, "\"capacity\": ")) << r.out;
  for (const auto& p : m) {
    struct stat st;
    ASSERT_EQ(::stat(p.c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 64 << 20);
    EXPECT_LT(st.st_blocks * 512, 32 << 20) << "member files are sparse";
  }

  r = Fsck({"-n", "--json", m[0] + "," + m[1] + "," + m[2]});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  for (const char* key :
       {"\"clean\": true", "\"extents_checked\": 0",
        "\"stripes_checked\": ", "\"checksum_errors\": 0", "\"parity_errors\": 0",
        "\"refcount_errors\": 0", "\"other_errors\": 0", "\"repaired\": 0", "\"problems\": []"}) {
    EXPECT_TRUE(Has(r.out, key)) << key << " in\n" << r.out;
  }
  // Human form, read-write (repairing) mode: also clean.
  r = Fsck({m[0], m[1], m[2]});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(Has(r.out, "is clean")) << r.out;
}

TEST_F(ToolsTest, MkfsDefaultGeometries) {
  struct Case {
    int n;
    const char* k;
    const char* m;
  } cases[] = {{1, "1", "0"}, {2, "1", "1"}, {6, "4", "2"}};
  for (const auto& c : cases) {
    std::vector<std::string> args = {"--size", "32M", "--json", "--force"};
    for (int i = 0; i < c.n; ++i)
      args.push_back(P("g" + std::to_string(c.n) + "_" + std::to_string(i)));
    auto r = Mkfs(args);
    ASSERT_EQ(r.code, 0) << c.n << ": " << r.err;
    EXPECT_TRUE(Has(r.out, std::string("\"data_shards\": ") + c.k)) << c.n << "\n" << r.out;
    EXPECT_TRUE(Has(r.out, std::string("\"parity_shards\": ") + c.m)) << c.n << "\n" << r.out;
  }
}

TEST_F(ToolsTest, MkfsRefusals) {
  auto m = Members(3);
  // k+m larger than the member count: refused before any file is created.
  auto r = Mkfs({"--size", "64M", "-k", "3", "-m", "1", m[0], m[1], m[2]});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "k+m = 3+1 needs 4 members")) << r.err;
  EXPECT_FALSE(fs::exists(m[0]));

  // A missing file without --size.
  r = Mkfs({m[0]});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "does not exist")) << r.err;
  EXPECT_TRUE(Has(r.err, "--size")) << r.err;

  // Bad sizes and suffixes.
  r = Mkfs({"--size", "64Q", m[0]});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "bad size \"64Q\"")) << r.err;
  r = Mkfs({"--size", "12abc", m[0]});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "bad size")) << r.err;
  r = Mkfs({"--size", "64M", "--chunk-size", "5000", m[0]});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "--chunk-size must be a multiple of 4 KiB")) << r.err;
  r = Mkfs({"--size", "64M", "--segment-size", "32K", m[0]});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "--segment-size")) << r.err;

  // Bad compression specs.
  for (const char* spec : {"lz4", "zstd:0", "zstd:20", "zstd:", "zstd:x"}) {
    r = Mkfs({"--size", "64M", "--compression", spec, m[0]});
    EXPECT_EQ(r.code, 1) << spec;
    EXPECT_TRUE(Has(r.err, "bad compression")) << spec << ": " << r.err;
  }
  r = Mkfs({"--size", "64M", "--dedup", "maybe", m[0]});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "--dedup")) << r.err;
  EXPECT_FALSE(fs::exists(m[0])) << "a refused mkfs leaves no file behind";

  // Members too small (the engine names the needed size); the files it created are removed.
  r = Mkfs({"--size", "1M", m[0], m[1]});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "too small")) << r.err;
  EXPECT_FALSE(fs::exists(m[0]));

  // A member that already holds a pool: refused without --force, untouched.
  ASSERT_EQ(Mkfs({"--size", "64M", m[0], m[1], m[2]}).code, 0);
  const std::string before = Admin({"status", "--json", m[0], m[1], m[2]}).out;
  r = Mkfs({m[0], m[1], m[2]});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "already holds AstraFS pool")) << r.err;
  EXPECT_TRUE(Has(r.err, "--force")) << r.err;
  EXPECT_EQ(Admin({"status", "--json", m[0], m[1], m[2]}).out, before);
  r = Mkfs({"--force", m[0], m[1], m[2]});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "formatted on 3 member(s)")) << r.out;

  // Usage errors.
  r = Mkfs({});
  EXPECT_EQ(r.code, 1);
  r = Mkfs({"--no-such-option", m[0]});
  EXPECT_EQ(r.code, 1);
  r = Mkfs({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_TRUE(Has(r.out, "--data-shards")) << r.out;
}

// ---- fsck ----

TEST_F(ToolsTest, FsckDetectsAndRepairsACorruptedExtent) {
  auto m = Members(3);
  ASSERT_EQ(Mkfs({"--size", "64M", m[0], m[1], m[2]}).code, 0);
  WriteData(m);
  ASSERT_EQ(Fsck({"-n", m[0], m[1], m[2]}).code, 0);
  ASSERT_NE(CorruptBlock(m, 1000 + 21), "");

  auto r = Fsck({"-n", "--json", m[0], m[1], m[2]});
  EXPECT_EQ(r.code, 4) << r.out << r.err;
  EXPECT_TRUE(Has(r.out, "\"clean\": false")) << r.out;
  EXPECT_FALSE(Has(r.out, "\"checksum_errors\": 0")) << r.out;
  EXPECT_TRUE(Has(r.out, "\"repaired\": 0")) << r.out;
  EXPECT_TRUE(Has(r.out, "extent ")) << "problems name the extent:\n" << r.out;
  // -n changed nothing: the same result again.
  EXPECT_EQ(Fsck({"-n", m[0], m[1], m[2]}).code, 4);

  r = Fsck({"-y", m[0], m[1], m[2]});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_TRUE(Has(r.out, "all errors corrected")) << r.out;

  r = Fsck({"-n", "--json", m[0], m[1], m[2]});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(Has(r.out, "\"clean\": true")) << r.out;
  VerifyData(m);
}

TEST_F(ToolsTest, FsckOperationalAndUsageErrors) {
  auto m = Members(3);
  auto r = Fsck({"-n", m[0], m[1], m[2]});
  EXPECT_EQ(r.code, 8);
  EXPECT_TRUE(Has(r.err, "no such file")) << r.err;
  r = Fsck({"-n", "-y", m[0]});
  EXPECT_EQ(r.code, 16);
  r = Fsck({});
  EXPECT_EQ(r.code, 16);
  // A file that is not a pool member.
  { std::ofstream(m[0]).write("x", 1); }
  fs::resize_file(m[0], 64 << 20);
  r = Fsck({"-n", m[0]});
  EXPECT_EQ(r.code, 8);
  EXPECT_TRUE(Has(r.err, "cannot open the pool")) << r.err;
}

TEST_F(ToolsTest, PoolInUseIsRefusedNamingTheHolder) {
  auto m = Members(3);
  ASSERT_EQ(Mkfs({"--size", "64M", m[0], m[1], m[2]}).code, 0);
  auto pool = OpenPool(m);
  ASSERT_TRUE(pool);
  auto r = Fsck({"-n", m[0], m[1], m[2]});
  EXPECT_EQ(r.code, 8) << r.out << r.err;
  EXPECT_TRUE(Has(r.err, "in use by another process")) << r.err;
  EXPECT_TRUE(Has(r.err, "pid " + std::to_string(::getpid()))) << r.err;
  r = Admin({"status", m[0], m[1], m[2]});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "in use by another process")) << r.err;
  EXPECT_TRUE(Has(r.err, "control socket")) << r.err;
  r = Mkfs({"--force", m[0], m[1], m[2]});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "in use by another process")) << r.err;
  ASSERT_TRUE(pool->Close().ok());
  pool.reset();
  EXPECT_EQ(Fsck({"-n", m[0], m[1], m[2]}).code, 0);
}

// ---- astrafs ----

TEST_F(ToolsTest, StatusJsonKeys) {
  auto m = Members(3);
  ASSERT_EQ(Mkfs({"--size", "64M", m[0], m[1], m[2]}).code, 0);
  WriteData(m);
  auto r = Admin({"status", "--json", m[0] + "," + m[1], m[2]});
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* key : {"\"pool_uuid\"",
                          "\"data_shards\": 2",
                          "\"parity_shards\": 1",
                          "\"degraded\": false",
                          "\"members\": [",
                          "\"state\": \"online\"",
                          "\"backend\": \"uring\"",
                          "\"read_errors\": 0",
                          "\"write_errors\": 0",
                          "\"checksum_errors\": 0",
                          "\"logical_bytes\": 262144",
                          "\"stored_bytes\": ",
                          "\"raw_bytes\": ",
                          "\"zero_saved_bytes\": ",
                          "\"dedup_saved_bytes\": ",
                          "\"compression_saved_bytes\": ",
                          "\"data_reduction_ratio\": ",
                          "\"capacity\": ",
                          "\"free\": ",
                          "\"reclaimable\": ",
                          "\"volumes\": []",
                          "\"volumes_not_listed\": 0"}) {
    EXPECT_TRUE(Has(r.out, key)) << key << " in\n" << r.out;
  }
  r = Admin({"status", m[0], m[1], m[2]});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "healthy")) << r.out;
  EXPECT_TRUE(Has(r.out, "volumes:      none")) << r.out;
  // Status is read-only: it changes nothing (generation unchanged on a second run).
  EXPECT_EQ(Admin({"status", "--json", m[0], m[1], m[2]}).out,
            Admin({"status", "--json", m[0], m[1], m[2]}).out);
  // A plain directory is not a mount point.
  r = Admin({"status", dir_});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "not a mount point")) << r.err;
  EXPECT_EQ(Admin({"frobnicate"}).code, 2);
}

// Per-volume figures (issue 3): two volumes written through the engine with known unique,
// shared, zero and compressible blocks, a plain object beside them, and a bad record.
TEST_F(ToolsTest, StatusListsVolumesWithTheirFigures) {
  namespace vt = astra::tools::test;
  auto m = Members(3);
  ASSERT_EQ(Mkfs({"--size", "64M", m[0], m[1], m[2]}).code, 0);
  vt::TestVolumes tv;
  {
    auto pool = OpenPool(m);
    ASSERT_TRUE(pool);
    tv = vt::WriteTestVolumes(*pool, /*broken=*/true);
    ASSERT_TRUE(pool->Close().ok());
  }
  auto r = Admin({"status", "--json", m[0], m[1], m[2]});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  auto st = astra::control::ParseJson(r.out);
  ASSERT_TRUE(st.ok()) << st.status().ToString() << "\n" << r.out;
  vt::CheckTestVolumes(*st, tv, /*broken=*/true);

  // The volumes' shares and the plain object's bytes add up to the pool's figures.
  const astra::control::JsonValue* space = st->Find("space");
  ASSERT_NE(space, nullptr);
  const auto& a = st->Find("volumes")->items[0];
  const auto& b = st->Find("volumes")->items[1];
  const uint64_t plain = vt::kPlainBlocks * vt::kVolBlock;  // unique, incompressible
  EXPECT_EQ(vt::JU(a, "logical_bytes") + vt::JU(b, "logical_bytes") + plain,
            vt::JU(*space, "logical_bytes"));
  EXPECT_NEAR(double(vt::JU(a, "stored_bytes") + vt::JU(b, "stored_bytes") + plain),
              double(vt::JU(*space, "stored_bytes")), 3.0);
  EXPECT_NEAR(double(vt::JU(a, "dedup_saved_bytes") + vt::JU(b, "dedup_saved_bytes")),
              double(vt::JU(*space, "dedup_saved_bytes")), 2.0);
  EXPECT_NEAR(double(vt::JU(a, "compression_saved_bytes") + vt::JU(b, "compression_saved_bytes")),
              double(vt::JU(*space, "compression_saved_bytes")), 2.0);
  EXPECT_EQ(vt::JU(*space, "zero_saved_bytes"), vt::kAlphaZero * vt::kVolBlock);

  // Text: one line per volume, the bad record with its error.
  r = Admin({"status", m[0], m[1], m[2]});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "volumes:      3")) << r.out;
  EXPECT_TRUE(Has(r.out, "  alpha (" + std::to_string(tv.alpha) + ")\n")) << r.out;
  EXPECT_TRUE(Has(r.out, "  beta (" + std::to_string(tv.beta) + ")\n")) << r.out;
  EXPECT_TRUE(Has(r.out, "8 MiB")) << r.out;
  EXPECT_TRUE(Has(r.out, "    bad record: broken: volume record of 'broken'")) << r.out;
}

TEST_F(ToolsTest, ScrubRepairs) {
  auto m = Members(3);
  ASSERT_EQ(Mkfs({"--size", "64M", m[0], m[1], m[2]}).code, 0);
  WriteData(m);
  ASSERT_NE(CorruptBlock(m, 1000 + 40), "");
  auto r = Admin({"scrub", "--json", "--progress", m[0], m[1], m[2]});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(Has(r.out, "\"clean\": false")) << r.out;
  EXPECT_TRUE(Has(r.out, "\"uncorrected_errors\": 0")) << r.out;
  EXPECT_TRUE(Has(r.err, "100.0%")) << "progress on stderr: " << r.err;
  EXPECT_EQ(Fsck({"-n", m[0], m[1], m[2]}).code, 0);
  VerifyData(m);
}

TEST_F(ToolsTest, ReplaceRebuildsALostMember) {
  auto m = Members(3);
  ASSERT_EQ(Mkfs({"--size", "64M", m[0], m[1], m[2]}).code, 0);
  WriteData(m);
  // Member 1 is lost; its file is replaced by a fresh, empty one at a new path.
  ASSERT_TRUE(fs::remove(m[1]));
  auto r = Admin({"status", "--json", m[0], m[2]});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "\"degraded\": true")) << r.out;
  EXPECT_TRUE(Has(r.out, "\"state\": \"missing\"")) << r.out;
  // Degraded pool: fsck reports it (redundancy reduced), which only replace fixes.
  r = Fsck({"-n", m[0], m[2]});
  EXPECT_EQ(r.code, 4) << r.out << r.err;
  EXPECT_TRUE(Has(r.out, "astrafs replace")) << r.out;
  // Repairing would record the absent member as failed: refused unless --degraded.
  r = Fsck({m[0], m[2]});
  EXPECT_EQ(r.code, 8) << r.out << r.err;
  EXPECT_TRUE(Has(r.err, "member(s) 1 of pool")) << r.err;
  EXPECT_TRUE(Has(r.err, "--degraded")) << r.err;
  r = Admin({"scrub", m[0], m[2]});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_TRUE(Has(r.err, "--degraded")) << r.err;

  const std::string fresh = P("fresh");
  r = Admin({"replace", m[1], fresh, m[0], m[2]});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "does not exist")) << r.err;
  r = Admin({"replace", "--json", "--size", "64M", m[1], fresh, m[0], m[2]});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(Has(r.out, "\"index\": 1")) << r.out;
  EXPECT_TRUE(Has(r.out, "\"degraded\": false")) << r.out;

  const std::vector<std::string> now = {m[0], fresh, m[2]};
  r = Fsck({"-n", "--json", now[0], now[1], now[2]});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  VerifyData(now);
  // The rebuilt member alone carries its share: the pool survives losing another one.
  VerifyData({m[0], fresh});

  // NEW also named as a member is a usage error; a NEW that belongs to this pool is refused.
  r = Admin({"replace", "1", m[2], m[0], m[2]});
  EXPECT_EQ(r.code, 2) << r.err;
  r = Admin({"replace", "1", m[2], m[0], fresh});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_TRUE(Has(r.err, "this very pool")) << r.err;
  EXPECT_EQ(Fsck({"-n", now[0], now[1], now[2]}).code, 0) << "refusals changed nothing";
}

TEST_F(ToolsTest, ReplaceByIndexOntoAForeignPoolNeedsForce) {
  auto m = Members(3);
  ASSERT_EQ(Mkfs({"--size", "64M", m[0], m[1], m[2]}).code, 0);
  ASSERT_EQ(Mkfs({"--size", "64M", P("other")}).code, 0);
  WriteData(m);
  auto r = Admin({"replace", "2", P("other"), m[0], m[1], m[2]});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "holds AstraFS pool")) << r.err;
  r = Admin({"replace", "--force", "2", P("other"), m[0], m[1], m[2]});
  ASSERT_EQ(r.code, 0) << r.err;
  VerifyData({m[0], m[1], P("other")});
  EXPECT_EQ(Fsck({"-n", m[0], m[1], P("other")}).code, 0);
}

}  // namespace
