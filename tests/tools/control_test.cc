// The control socket of a mounted pool, for real: a 4+2 pool on sparse files mounted by the real
// astrafs-mount, and the real astrafs binary talking to it (status, scrub, gc, replace given the
// MOUNTPOINT). Figures are checked against what the test wrote through the mount; data is read
// back and compared byte for byte after repairs and rebuilds.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "astra/device.h"
#include "control_protocol.h"
#include "mount_fixture.h"
#include "volume_fixture.h"

namespace {

using astra::control::GetDouble;
using astra::control::GetString;
using astra::control::GetUint;
using astra::control::JsonValue;
using astra::control::ParseJson;
namespace ft = astra::fs::test;

constexpr uint64_t kMemberBytes = 64ull << 20;
constexpr size_t kBlock = 4096;

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

bool Has(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

// Writes `data` to `path` through the mount and makes it durable (fsync), then drops the cached
// pages so later reads reach the daemon.
void WriteDurably(const std::string& path, const std::string& data) {
  ASSERT_TRUE(ft::WriteFile(path, data)) << path;
  ft::DropCache(path);
}

// Unique, incompressible blocks, each starting with a tag findable on the members.
std::string TaggedBlocks(uint64_t first_tag, size_t n) {
  std::string s = ft::RandomBytes(n * kBlock, first_tag);
  for (size_t i = 0; i < n; ++i) {
    char tag[33];
    std::snprintf(tag, sizeof tag, "ASTRA-CONTROL-TEST-%013llu",
                  static_cast<unsigned long long>(first_tag + i));
    std::memcpy(&s[i * kBlock], tag, 32);
  }
  return s;
}

class ControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string err;
    devices_ = ft::FormatPool(dir_.path(), 6, kMemberBytes, &err);  // 4+2 by default
    ASSERT_FALSE(devices_.empty()) << err;
    mnt_ = dir_.path() + "/mnt";
    for (int i = 0; i < 6; ++i) members_.push_back(dir_.path() + "/m" + std::to_string(i));
  }

  std::unique_ptr<ft::Mount> MountPool(std::vector<std::string> options = {}) {
    auto m = std::make_unique<ft::Mount>(devices_, mnt_, std::move(options));
    EXPECT_TRUE(m->Start()) << m->Log();
    return m;
  }

  // Runs astrafs with `args`; stdout and stderr through files (no pipe deadlocks).
  RunResult Admin(const std::vector<std::string>& args) {
    const std::string out = dir_.path() + "/.stdout", err = dir_.path() + "/.stderr";
    const pid_t pid = ::fork();
    if (pid == 0) {
      const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(o, STDOUT_FILENO);
      ::dup2(e, STDERR_FILENO);
      std::vector<char*> argv = {const_cast<char*>(ASTRAFS_BIN)};
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(ASTRAFS_BIN, argv.data());
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

  // `astrafs ARGS --json`, parsed; the test fails unless it exits `code`.
  JsonValue AdminJson(std::vector<std::string> args, int code = 0) {
    args.insert(args.begin() + 1, "--json");
    const RunResult r = Admin(args);
    EXPECT_EQ(r.code, code) << r.out << r.err;
    auto v = ParseJson(r.out);
    EXPECT_TRUE(v.ok()) << v.status().ToString() << "\n" << r.out << r.err;
    return v.ok() ? std::move(v).value() : JsonValue{};
  }

  static uint64_t U(const JsonValue& o, const char* key) {
    auto v = GetUint(o, key);
    EXPECT_TRUE(v.ok()) << key << ": " << v.status().ToString();
    return v.ok() ? *v : 0;
  }
  static const JsonValue& Obj(const JsonValue& o, const char* key) {
    static const JsonValue kEmpty;
    const JsonValue* v = o.Find(key);
    EXPECT_NE(v, nullptr) << key;
    return v != nullptr ? *v : kEmpty;
  }

  std::string SocketOf(const std::string& uuid) const { return "/run/astrafs/" + uuid + ".sock"; }

  std::string PoolUuid() {
    auto v = GetString(AdminJson({"status", members_[0], members_[1], members_[2], members_[3],
                                  members_[4], members_[5]}),
                       "pool_uuid");
    EXPECT_TRUE(v.ok());
    return v.ok() ? *v : "";
  }

  // Flips one byte inside the stored copy of the block tagged `tag`, on whichever member holds
  // it, with pwrite + fsync underneath the daemon. Returns the member's path ("" if not found).
  std::string CorruptOnDisk(uint64_t tag) {
    char needle[33];
    std::snprintf(needle, sizeof needle, "ASTRA-CONTROL-TEST-%013llu",
                  static_cast<unsigned long long>(tag));
    for (const auto& p : members_) {
      const std::string img = ReadAll(p);
      const size_t at = img.find(needle, 0, 32);
      if (at == std::string::npos) continue;
      const int fd = ::open(p.c_str(), O_RDWR);
      EXPECT_GE(fd, 0);
      const char c = char(img[at + 100] ^ 0x5A);
      EXPECT_EQ(::pwrite(fd, &c, 1, off_t(at + 100)), 1);
      EXPECT_EQ(::fsync(fd), 0);
      ::close(fd);
      return p;
    }
    return "";
  }

  ft::TempDir dir_;
  std::string devices_, mnt_;
  std::vector<std::string> members_;
};

TEST_F(ControlTest, StatusOfAMountReportsWhatWasWritten) {
  const std::string uuid = PoolUuid();
  auto m = MountPool();
  ASSERT_TRUE(m->running());

  // The socket: named by the pool's UUID, a socket, root's, 0600.
  struct stat st;
  ASSERT_EQ(::stat(SocketOf(uuid).c_str(), &st), 0) << m->Log();
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_uid, 0u);

  const JsonValue before = AdminJson({"status", mnt_});
  EXPECT_EQ(GetString(before, "pool_uuid").value(), uuid);
  EXPECT_EQ(GetString(before, "mountpoint").value(), mnt_);
  EXPECT_EQ(U(before, "data_shards"), 4u);
  EXPECT_EQ(U(before, "parity_shards"), 2u);
  EXPECT_EQ(U(before, "member_count"), 6u);
  const JsonValue& ms = Obj(before, "members");
  ASSERT_EQ(ms.items.size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(U(ms.items[i], "index"), i);
    EXPECT_EQ(GetString(ms.items[i], "state").value(), "online");
    EXPECT_EQ(GetString(ms.items[i], "path").value(), members_[i]);
    EXPECT_EQ(U(ms.items[i], "checksum_errors"), 0u);
  }

  // Known content: unique incompressible blocks, the same bytes again in another file (dedup),
  // zero blocks (holes), and compressible text blocks (each one different: no dedup among them).
  constexpr size_t kUnique = 64, kZero = 32, kText = 32;
  const std::string unique = TaggedBlocks(1, kUnique);
  std::string text;
  for (size_t b = 0; b < kText; ++b) {
    std::string blk;
    while (blk.size() < kBlock)
      blk += "block " + std::to_string(b) + " of very compressible text; ";
    text += blk.substr(0, kBlock);
  }
  WriteDurably(mnt_ + "/unique", unique);
  WriteDurably(mnt_ + "/copy", unique);
  WriteDurably(mnt_ + "/zeros", std::string(kZero * kBlock, '\0'));
  WriteDurably(mnt_ + "/text", text);

  const JsonValue after = AdminJson({"status", mnt_});
  const JsonValue &s0 = Obj(before, "space"), &s1 = Obj(after, "space");
  auto delta = [&](const char* key) { return U(s1, key) - U(s0, key); };
  EXPECT_EQ(delta("logical_bytes"), (2 * kUnique + kText) * kBlock) << "holes are not logical";
  EXPECT_EQ(delta("zero_saved_bytes"), kZero * kBlock);
  EXPECT_EQ(delta("dedup_saved_bytes"), kUnique * kBlock);
  // Stored once: the unique blocks raw (incompressible), the text compressed.
  EXPECT_EQ(delta("stored_bytes") + delta("compression_saved_bytes"), (kUnique + kText) * kBlock);
  EXPECT_GE(delta("stored_bytes"), kUnique * kBlock);
  EXPECT_LT(delta("stored_bytes"), (kUnique + kText / 4) * kBlock) << "text compresses well";
  EXPECT_GT(U(s1, "raw_bytes"), U(s1, "stored_bytes")) << "parity on top";
  const double ratio = GetDouble(s1, "data_reduction_ratio").value();
  EXPECT_NEAR(ratio, double(U(s1, "logical_bytes")) / double(U(s1, "stored_bytes")), 0.001);
  EXPECT_GT(ratio, 1.5);
  EXPECT_LT(U(s1, "free"), U(s1, "capacity"));

  // The text form comes from the same printing as offline.
  RunResult r = Admin({"status", mnt_});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "pool " + uuid)) << r.out;
  EXPECT_TRUE(Has(r.out, "mounted at:   " + mnt_)) << r.out;
  EXPECT_TRUE(Has(r.out, "healthy")) << r.out;
  EXPECT_TRUE(Has(r.out, "saved by dedup")) << r.out;

  // Online and offline agree on every space figure once the mount is gone.
  ASSERT_EQ(m->Unmount(), 0) << m->Log();
  EXPECT_NE(::stat(SocketOf(uuid).c_str(), &st), 0) << "socket removed at unmount";
  const JsonValue off = AdminJson(
      {"status", members_[0], members_[1], members_[2], members_[3], members_[4], members_[5]});
  for (const char* key : {"logical_bytes", "stored_bytes", "raw_bytes", "zero_saved_bytes",
                          "dedup_saved_bytes", "compression_saved_bytes", "capacity"}) {
    EXPECT_EQ(U(Obj(off, "space"), key), U(s1, key)) << key;
  }
}

// astrafs-mount -o poll_us=N is one knob for the FUSE workers and the engine's member reads
// (doc/mount.md): the pool the daemon opened reports the value it was given, and the mount's
// default (50 µs, mount_options.h) without the option.
TEST_F(ControlTest, MountPollOptionReachesTheEngine) {
  auto m = MountPool();
  ASSERT_TRUE(m->running());
  EXPECT_EQ(U(AdminJson({"status", mnt_}), "read_poll_us"), 50u) << m->Log();
  ASSERT_EQ(m->Unmount(), 0) << m->Log();
  m = MountPool({"poll_us=7"});
  ASSERT_TRUE(m->running());
  EXPECT_EQ(U(AdminJson({"status", mnt_}), "read_poll_us"), 7u) << m->Log();
  ASSERT_EQ(m->Unmount(), 0) << m->Log();
}

TEST_F(ControlTest, OnlineScrubFindsAndRepairsCorruptionUnderneath) {
  auto m = MountPool();
  constexpr size_t kBlocks = 48;
  const std::string data = TaggedBlocks(5000, kBlocks);
  WriteDurably(mnt_ + "/f", data);

  JsonValue r = AdminJson({"scrub", mnt_});
  EXPECT_EQ(r.Find("clean")->boolean, true);
  EXPECT_GE(U(r, "extents_checked"), kBlocks);
  EXPECT_EQ(U(r, "checksum_errors"), 0u);

  const std::string victim = CorruptOnDisk(5000 + 17);
  ASSERT_NE(victim, "") << "block not found on any member";

  // Progress reaches stderr; the result is the offline scrub's JSON.
  RunResult run = Admin({"scrub", "--json", "--progress", mnt_});
  ASSERT_EQ(run.code, 0) << run.out << run.err;
  EXPECT_TRUE(Has(run.err, "100.0%")) << "progress on stderr: " << run.err;
  auto v = ParseJson(run.out);
  ASSERT_TRUE(v.ok()) << run.out;
  EXPECT_EQ(v->Find("clean")->boolean, false) << run.out;
  EXPECT_GE(U(*v, "checksum_errors"), 1u) << run.out;
  EXPECT_GE(U(*v, "repaired"), 1u) << run.out;
  EXPECT_EQ(U(*v, "uncorrected_errors"), 0u) << run.out;
  EXPECT_FALSE(Obj(*v, "problems").items.empty()) << run.out;

  // Repaired for good: the next scrub is clean, and the file reads back intact.
  r = AdminJson({"scrub", mnt_});
  EXPECT_EQ(r.Find("clean")->boolean, true);
  std::string got;
  ft::DropCache(mnt_ + "/f");
  ASSERT_TRUE(ft::ReadFile(mnt_ + "/f", &got));
  EXPECT_TRUE(got == data) << "file differs after the repair";

  // And after a remount (nothing from the page cache).
  ASSERT_EQ(m->Unmount(), 0) << m->Log();
  m = MountPool();
  ASSERT_TRUE(ft::ReadFile(mnt_ + "/f", &got));
  EXPECT_TRUE(got == data) << "file differs after remount";
}

TEST_F(ControlTest, OnlineGcAndConcurrentStatus) {
  auto m = MountPool();
  for (int i = 0; i < 8; ++i) {
    WriteDurably(mnt_ + "/f" + std::to_string(i), TaggedBlocks(100 + 64 * i, 64));
  }
  for (int i = 0; i < 8; i += 2) ASSERT_EQ(::unlink((mnt_ + "/f" + std::to_string(i)).c_str()), 0);
  ::sync();
  const JsonValue r = AdminJson({"gc", mnt_});
  for (const char* key :
       {"segments_cleaned", "bytes_relocated", "segments_trimmed", "free_before", "free_after"}) {
    EXPECT_NE(r.Find(key), nullptr) << key;
  }
  EXPECT_GE(U(r, "free_after"), U(r, "free_before")) << "gc never loses free space";
  RunResult t = Admin({"gc", mnt_});
  EXPECT_EQ(t.code, 0) << t.err;
  EXPECT_TRUE(Has(t.out, "gc of pool ")) << t.out;
  // The survivors read back intact.
  for (int i = 1; i < 8; i += 2) {
    std::string got;
    ft::DropCache(mnt_ + "/f" + std::to_string(i));
    ASSERT_TRUE(ft::ReadFile(mnt_ + "/f" + std::to_string(i), &got));
    EXPECT_TRUE(got == TaggedBlocks(100 + 64 * i, 64)) << "file " << i;
  }
}

TEST_F(ControlTest, BadMountpointsAndBadRequests) {
  // A directory that is not a mount point; a mount that is not AstraFS.
  for (const char* cmd : {"status", "scrub", "gc"}) {
    RunResult r = Admin({cmd, dir_.path()});
    EXPECT_EQ(r.code, 1) << cmd;
    EXPECT_TRUE(Has(r.err, "not a mount point")) << cmd << ": " << r.err;
    r = Admin({cmd, "/proc"});
    EXPECT_EQ(r.code, 1) << cmd;
    EXPECT_TRUE(Has(r.err, "is a proc mount, not an AstraFS one")) << cmd << ": " << r.err;
  }
  RunResult r = Admin({"replace", "1", dir_.path() + "/new", "/proc"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "not an AstraFS one")) << r.err;

  // Bad requests straight to the socket get an error line, and the daemon lives on.
  const std::string uuid = PoolUuid();
  auto m = MountPool();
  for (const std::string& req :
       {std::string("garbage\n"), std::string("{\"version\":99,\"command\":\"status\"}\n"),
        std::string("{\"version\":1,\"command\":\"format\"}\n"), std::string(100, '[') + "\n",
        std::string("{\"version\":1,\"command\":\"replace\",\"member\":1,\"new\":\"rel\"}\n")}) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, SocketOf(uuid).c_str());
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::write(fd, req.data(), req.size()), ssize_t(req.size()));
    std::string reply;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) reply.append(buf, size_t(n));
    ::close(fd);
    auto v = ParseJson(reply);
    ASSERT_TRUE(v.ok()) << reply;
    EXPECT_EQ(GetString(*v, "type").value(), "result") << reply;
    EXPECT_FALSE(v->Find("ok")->boolean) << reply;
    EXPECT_FALSE(GetString(*v, "message").value().empty()) << reply;
  }
  EXPECT_EQ(Admin({"status", mnt_}).code, 0) << "the daemon still serves";

  // Replace refusals go through the daemon with the offline wording; nothing changes.
  r = Admin({"replace", "1", members_[2], mnt_});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "of this very pool")) << r.err;
  r = Admin({"replace", "9", dir_.path() + "/new", mnt_});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "does not exist")) << r.err;
  r = Admin({"replace", "--size", "64M", "9", dir_.path() + "/new", mnt_});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "there is no member 9")) << r.err;
  struct stat st;
  EXPECT_NE(::stat((dir_.path() + "/new").c_str(), &st), 0) << "a refused replace leaves no file";
  ASSERT_EQ(m->Unmount(), 0);

  // A read-only mount serves status but refuses scrub.
  m = MountPool({"ro"});
  EXPECT_EQ(Admin({"status", mnt_}).code, 0);
  r = Admin({"scrub", mnt_});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "read-only")) << r.err;
}

TEST_F(ControlTest, SocketLifecycleAndStaleSocket) {
  const std::string uuid = PoolUuid();
  const std::string sock = SocketOf(uuid);
  struct stat st;

  // A stale socket (bound, nobody listening: a killed daemon's) does not block the mount.
  ::unlink(sock.c_str());
  ::mkdir("/run/astrafs", 0755);
  {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, sock.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ::close(fd);
  }
  ASSERT_EQ(::stat(sock.c_str(), &st), 0);
  auto m = MountPool();
  ASSERT_TRUE(m->running());
  EXPECT_EQ(Admin({"status", mnt_}).code, 0) << m->Log();
  EXPECT_TRUE(Has(m->Log(), "removing stale socket")) << m->Log();

  // SIGKILL leaves the socket behind; the next mount replaces it.
  m->Kill();
  EXPECT_EQ(::stat(sock.c_str(), &st), 0) << "a killed daemon cannot clean up";
  m = MountPool();
  RunResult r = Admin({"status", "--json", mnt_});
  EXPECT_EQ(r.code, 0) << r.err << m->Log();

  // SIGTERM: clean shutdown, socket gone.
  ASSERT_EQ(::kill(m->pid(), SIGTERM), 0);
  EXPECT_EQ(m->Unmount(), 0) << m->Log();
  EXPECT_NE(::stat(sock.c_str(), &st), 0) << "socket removed on SIGTERM";

  // A daemon without a socket (deleted by hand here; or one that could not create it): status
  // says so, still shows the statfs figures, and exits 1.
  m = MountPool();
  const pid_t pid = m->pid();
  ASSERT_EQ(::unlink(sock.c_str()), 0);  // as if it never made one
  r = Admin({"status", mnt_});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(Has(r.err, "offers no control socket")) << r.err;
  EXPECT_TRUE(Has(r.out, "capacity")) << "statfs figures still shown: " << r.out;
  ASSERT_EQ(m->pid(), pid);
  EXPECT_EQ(m->Unmount(), 0);
}

// The same per-volume figures online as offline (issue 3): volumes written through the engine
// before the mount; then a file sharing beta's unique blocks changes beta's figures live.
TEST_F(ControlTest, OnlineStatusListsVolumesAsOffline) {
  namespace vt = astra::tools::test;
  vt::TestVolumes tv;
  {
    std::vector<std::unique_ptr<astra::Device>> devs;
    for (const auto& p : members_) {
      auto d = astra::OpenDevice(p);
      ASSERT_TRUE(d.ok()) << d.status().ToString();
      devs.push_back(std::move(d).value());
    }
    auto pool = astra::Pool::Open(std::move(devs));
    ASSERT_TRUE(pool.ok()) << pool.status().ToString();
    tv = vt::WriteTestVolumes(**pool);
    ASSERT_TRUE((*pool)->Close().ok());
  }
  const JsonValue off = AdminJson(
      {"status", members_[0], members_[1], members_[2], members_[3], members_[4], members_[5]});
  vt::CheckTestVolumes(off, tv);

  auto m = MountPool();
  ASSERT_TRUE(m->running());
  const JsonValue on = AdminJson({"status", mnt_});
  vt::CheckTestVolumes(on, tv);
  // Every key of every volume, as the same text.
  const JsonValue &off_v = Obj(off, "volumes"), &on_v = Obj(on, "volumes");
  ASSERT_EQ(on_v.items.size(), off_v.items.size());
  for (size_t i = 0; i < on_v.items.size(); ++i) {
    ASSERT_EQ(on_v.items[i].members.size(), off_v.items[i].members.size()) << i;
    EXPECT_EQ(on_v.items[i].members.size(), 12u) << "name, object, size, block and 8 figures";
    for (size_t f = 0; f < on_v.items[i].members.size(); ++f) {
      EXPECT_EQ(on_v.items[i].members[f].first, off_v.items[i].members[f].first);
      EXPECT_EQ(on_v.items[i].members[f].second.text, off_v.items[i].members[f].second.text)
          << "volume " << i << " " << on_v.items[i].members[f].first;
    }
  }
  RunResult r = Admin({"status", mnt_});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "volumes:      2")) << r.out;
  EXPECT_TRUE(Has(r.out, "  alpha (" + std::to_string(tv.alpha) + ")\n")) << r.out;
  EXPECT_TRUE(Has(r.out, "  beta (" + std::to_string(tv.beta) + ")\n")) << r.out;

  // Live: a file holding beta's unique blocks shares them, so half of each is now saved in
  // beta and none of them is beta's alone.
  WriteDurably(mnt_ + "/beta-copy", vt::BetaUnique());
  vt::CheckTestVolumes(AdminJson({"status", mnt_}), tv, false, vt::kBetaUnique);
  ASSERT_EQ(m->Unmount(), 0) << m->Log();
}

TEST_F(ControlTest, OnlineReplaceRebuildsAMember) {
  auto m = MountPool();
  const std::string data = TaggedBlocks(9000, 96);
  WriteDurably(mnt_ + "/f", data);
  const std::string fresh = dir_.path() + "/fresh";

  RunResult r =
      Admin({"replace", "--json", "--progress", "--size", "64M", members_[3], fresh, mnt_});
  ASSERT_EQ(r.code, 0) << r.out << r.err << m->Log();
  auto v = ParseJson(r.out);
  ASSERT_TRUE(v.ok()) << r.out;
  EXPECT_EQ(U(*v, "index"), 3u);
  EXPECT_EQ(GetString(*v, "old").value(), members_[3]);
  EXPECT_EQ(GetString(*v, "new").value(), fresh);
  EXPECT_FALSE(v->Find("degraded")->boolean);

  const JsonValue s = AdminJson({"status", mnt_});
  EXPECT_EQ(GetString(Obj(s, "members").items[3], "path").value(), fresh);
  EXPECT_EQ(GetString(Obj(s, "members").items[3], "state").value(), "online");
  std::string got;
  ft::DropCache(mnt_ + "/f");
  ASSERT_TRUE(ft::ReadFile(mnt_ + "/f", &got));
  EXPECT_TRUE(got == data);
  ASSERT_EQ(m->Unmount(), 0) << m->Log();

  // The new member carries its share: the pool opens and reads without the old one, and
  // without two others (m = 2).
  std::string list;
  for (int i = 0; i < 6; ++i) {
    if (i == 1 || i == 2) continue;
    list += (list.empty() ? "" : ",") + (i == 3 ? fresh : members_[i]);
  }
  ft::Mount degraded(list, mnt_, {"ro"});
  ASSERT_TRUE(degraded.Start()) << degraded.Log();
  ASSERT_TRUE(ft::ReadFile(mnt_ + "/f", &got));
  EXPECT_TRUE(got == data) << "rebuilt member's chunks are right";
  EXPECT_EQ(degraded.Unmount(), 0);
}

}  // namespace
