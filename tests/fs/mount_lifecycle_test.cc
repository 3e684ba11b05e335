// astrafs-mount as a program: persistence across unmount/remount, crash (kill -9) after fsync,
// orphan clean-up, daemon mode, mount(8) integration, refusal of bad input, ENOSPC, degraded.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "astra/device.h"
#include "astra/pool.h"
#include "catalog_format.h"
#include "mount_fixture.h"

namespace astra::fs::test {
namespace {

constexpr uint64_t kMemberBytes = 512ull << 20;

class LifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    devs_ = FormatPool(tmp_.path(), 6, kMemberBytes, &error);
    ASSERT_FALSE(devs_.empty()) << error;
    mnt_ = tmp_.path() + "/mnt";
    mkdir(mnt_.c_str(), 0755);
  }
  std::string P(const std::string& name) const { return mnt_ + "/" + name; }

  TempDir tmp_;
  std::string devs_, mnt_;
};

TEST_F(LifecycleTest, EverythingPersistsAcrossRemount) {
  const std::string data = RandomBytes(3 << 20, 21);
  {
    Mount m(devs_, mnt_);
    ASSERT_TRUE(m.Start()) << m.Log();
    ASSERT_EQ(mkdir(P("dir").c_str(), 0750), 0);
    ASSERT_TRUE(WriteFile(P("dir/file"), data));
    ASSERT_EQ(link(P("dir/file").c_str(), P("hard").c_str()), 0);
    ASSERT_EQ(symlink("dir/file", P("sym").c_str()), 0);
    ASSERT_EQ(setxattr(P("dir").c_str(), "user.k", "v", 1, 0), 0);
    ASSERT_EQ(mkfifo(P("fifo").c_str(), 0600), 0);
    ASSERT_EQ(truncate(P("dir/file").c_str(), (3 << 20) + 5), 0);
    EXPECT_EQ(m.Unmount(), 0) << m.Log();
  }
  Mount m(devs_, mnt_);
  ASSERT_TRUE(m.Start()) << m.Log();
  std::string got;
  ASSERT_TRUE(ReadFile(P("hard"), &got));
  ASSERT_EQ(got.size(), data.size() + 5);
  EXPECT_TRUE(got.compare(0, data.size(), data) == 0);
  EXPECT_EQ(got.substr(data.size()), std::string(5, '\0'));
  struct stat st;
  ASSERT_EQ(stat(P("dir/file").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 2u);
  ASSERT_EQ(stat(P("dir").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  char buf[64];
  EXPECT_EQ(readlink(P("sym").c_str(), buf, sizeof buf), 8);
  EXPECT_EQ(getxattr(P("dir").c_str(), "user.k", buf, sizeof buf), 1);
  ASSERT_EQ(lstat(P("fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(m.Unmount(), 0) << m.Log();
}

TEST_F(LifecycleTest, FsyncedDataSurvivesKill9) {
  const std::string data = RandomBytes(5 << 20, 23);
  {
    Mount m(devs_, mnt_);
    ASSERT_TRUE(m.Start()) << m.Log();
    ASSERT_EQ(mkdir(P("d").c_str(), 0755), 0);
    const int fd = open(P("d/f").c_str(), O_WRONLY | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ASSERT_EQ(fsync(fd), 0);
    close(fd);
    // Unsynced work after the fsync may or may not survive; it must not break anything.
    for (int i = 0; i < 20; ++i) WriteFile(P("d/later-" + std::to_string(i)), "late");
    m.Kill();
  }
  Mount m(devs_, mnt_);
  ASSERT_TRUE(m.Start()) << m.Log();
  std::string got;
  ASSERT_TRUE(ReadFile(P("d/f"), &got));
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
  // Whatever later files survived are whole: each name has its inode.
  for (int i = 0; i < 20; ++i) {
    struct stat st;
    const std::string p = P("d/later-" + std::to_string(i));
    if (lstat(p.c_str(), &st) == 0) {
      EXPECT_TRUE(S_ISREG(st.st_mode));
      EXPECT_EQ(st.st_nlink, 1u);
    } else {
      EXPECT_EQ(errno, ENOENT) << p;
    }
  }
  EXPECT_EQ(m.Unmount(), 0) << m.Log();
}

TEST_F(LifecycleTest, OrphanOfACrashIsDeletedAtNextMount) {
  Ino orphan = 0;
  {
    Mount m(devs_, mnt_);
    ASSERT_TRUE(m.Start()) << m.Log();
    const int fd = open(P("tmp").c_str(), O_RDWR | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    struct stat st;
    ASSERT_EQ(fstat(fd, &st), 0);
    orphan = st.st_ino;
    const std::string data = RandomBytes(1 << 20, 29);
    ASSERT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ASSERT_EQ(unlink(P("tmp").c_str()), 0);
    ASSERT_EQ(fsync(fd), 0);  // makes the orphan mark durable
    m.Kill();
    close(fd);
  }
  {
    Mount m(devs_, mnt_);
    ASSERT_TRUE(m.Start()) << m.Log();
    EXPECT_EQ(m.Unmount(), 0) << m.Log();
  }
  // Look at the catalogue directly: neither the inode nor its orphan mark is left.
  std::vector<std::unique_ptr<Device>> members;
  size_t start = 0;
  while (start <= devs_.size()) {
    size_t comma = devs_.find(',', start);
    if (comma == std::string::npos) comma = devs_.size();
    auto d = OpenDevice(devs_.substr(start, comma - start));
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    members.push_back(std::move(*d));
    start = comma + 1;
  }
  auto pool = Pool::Open(std::move(members));
  ASSERT_TRUE(pool.ok()) << pool.status().ToString();
  EXPECT_TRUE((*pool)->Get(InodeKey(orphan)).status().IsNotFound());
  EXPECT_TRUE((*pool)->Get(OrphanKey(orphan)).status().IsNotFound());
  EXPECT_EQ((*pool)->ObjectMappedBlocks(orphan), 0u);
  EXPECT_TRUE((*pool)->Close().ok());
}

TEST_F(LifecycleTest, DaemonModeReturnsWhenMountedAndExitsOnUnmount) {
  std::string out;
  ASSERT_EQ(
      RunCmd(MountBinary() + " -o log=" + tmp_.path() + "/daemon.log " + devs_ + " " + mnt_, &out),
      0)
      << out;
  EXPECT_TRUE(IsAstraMount(mnt_));
  ASSERT_TRUE(WriteFile(P("f"), "daemon"));
  ASSERT_EQ(RunCmd("fusermount3 -u " + mnt_, &out), 0) << out;
  // The daemon closes the pool and exits: the members become free again.
  bool freed = false;
  for (int i = 0; i < 200 && !freed; ++i) {
    auto d = OpenDevice(tmp_.path() + "/m0");
    freed = d.ok();
    if (!freed) usleep(50000);
  }
  EXPECT_TRUE(freed) << "pool still held after unmount";
  std::string log;
  ReadFile(tmp_.path() + "/daemon.log", &log);
  EXPECT_NE(log.find("pool closed"), std::string::npos) << log;
}

TEST_F(LifecycleTest, SignalUnmountsAndClosesThePool) {
  Mount m(devs_, mnt_);
  ASSERT_TRUE(m.Start()) << m.Log();
  ASSERT_TRUE(WriteFile(P("f"), "sig"));
  ASSERT_EQ(kill(m.pid(), SIGTERM), 0);
  for (int i = 0; i < 200 && IsAstraMount(mnt_); ++i) usleep(50000);
  EXPECT_FALSE(IsAstraMount(mnt_));
  EXPECT_EQ(m.Unmount(), 0) << m.Log();
  EXPECT_NE(m.Log().find("pool closed"), std::string::npos) << m.Log();
  Mount again(devs_, mnt_);
  ASSERT_TRUE(again.Start()) << again.Log();
  std::string s;
  EXPECT_TRUE(ReadFile(P("f"), &s));
  EXPECT_EQ(s, "sig");
}

TEST_F(LifecycleTest, MountTypeFuseAstrafs) {
  // mount(8) runs /sbin/mount.fuse.astrafs for "-t fuse.astrafs": install it for the test
  // unless the system already has one.
  const std::string helper = "/sbin/mount.fuse.astrafs";
  bool created = false;
  struct stat st;
  if (lstat(helper.c_str(), &st) != 0) {
    ASSERT_EQ(symlink(MountBinary().c_str(), helper.c_str()), 0) << strerror(errno);
    created = true;
  }
  std::string out;
  const int rc = RunCmd("mount -t fuse.astrafs -o allow_other " + devs_ + " " + mnt_, &out);
  EXPECT_EQ(rc, 0) << out;
  if (rc == 0) {
    EXPECT_TRUE(IsAstraMount(mnt_));
    EXPECT_TRUE(WriteFile(P("via-mount"), "m"));
    EXPECT_EQ(RunCmd("umount " + mnt_, &out), 0) << out;
    for (int i = 0; i < 200; ++i) {
      if (OpenDevice(tmp_.path() + "/m0").ok()) break;
      usleep(50000);
    }
  }
  if (created) unlink(helper.c_str());
}

TEST_F(LifecycleTest, BadInputIsRefusedAndNothingIsTouched) {
  const std::string bin = MountBinary();
  std::string out;
  EXPECT_EQ(RunCmd(bin + " -f", &out), 2) << out;
  EXPECT_NE(out.find("missing"), std::string::npos) << out;
  EXPECT_EQ(RunCmd(bin + " -f " + devs_, &out), 2) << out;
  EXPECT_EQ(RunCmd(bin + " -f --bogus " + devs_ + " " + mnt_, &out), 2) << out;
  EXPECT_EQ(RunCmd(bin + " -f " + devs_ + " " + tmp_.path() + "/no-such-dir", &out), 1) << out;
  EXPECT_NE(out.find("no-such-dir"), std::string::npos) << out;
  EXPECT_EQ(RunCmd(bin + " -f " + tmp_.path() + "/missing-member " + mnt_, &out), 1) << out;
  EXPECT_NE(out.find("missing-member"), std::string::npos) << out;
  // A file that is not a pool member stays byte-for-byte as it was.
  const std::string junk = tmp_.path() + "/junk";
  const std::string junk_data = RandomBytes(64 << 20, 31);
  ASSERT_TRUE(WriteFile(junk, junk_data));
  EXPECT_EQ(RunCmd(bin + " -f " + junk + " " + mnt_, &out), 1) << out;
  EXPECT_NE(out.find("junk"), std::string::npos) << out;
  std::string after;
  ASSERT_TRUE(ReadFile(junk, &after));
  EXPECT_TRUE(after == junk_data) << "a refused mount wrote to the device";
  // Members of two different pools.
  TempDir other;
  std::string error;
  const std::string other_devs = FormatPool(other.path(), 6, kMemberBytes, &error);
  ASSERT_FALSE(other_devs.empty()) << error;
  const std::string mixed =
      devs_.substr(0, devs_.rfind(',')) + "," + other_devs.substr(other_devs.rfind(',') + 1);
  EXPECT_EQ(RunCmd(bin + " -f " + mixed + " " + mnt_, &out), 1) << out;
  EXPECT_FALSE(IsAstraMount(mnt_));
  // A pool already in use.
  Mount m(devs_, mnt_);
  ASSERT_TRUE(m.Start()) << m.Log();
  const std::string mnt2 = tmp_.path() + "/mnt2";
  mkdir(mnt2.c_str(), 0755);
  EXPECT_EQ(RunCmd(bin + " -f " + devs_ + " " + mnt2, &out), 1) << out;
  EXPECT_NE(out.find("in use"), std::string::npos) << out;
  EXPECT_FALSE(IsAstraMount(mnt2));
  // Daemon mode reports the same failure through its exit code.
  EXPECT_EQ(RunCmd(bin + " " + devs_ + " " + mnt2, &out), 1) << out;
  EXPECT_NE(out.find("in use"), std::string::npos) << out;
  // Unknown FUSE option: refused before mounting.
  m.Unmount();
  EXPECT_EQ(RunCmd(bin + " -f -o no_such_option " + devs_ + " " + mnt_, &out), 1) << out;
  EXPECT_FALSE(IsAstraMount(mnt_));
}

TEST_F(LifecycleTest, DegradedMountSaysSo) {
  {
    Mount m(devs_, mnt_);
    ASSERT_TRUE(m.Start()) << m.Log();
    ASSERT_TRUE(WriteFile(P("f"), RandomBytes(1 << 20, 37)));
    EXPECT_EQ(m.Unmount(), 0);
  }
  const std::string five = devs_.substr(0, devs_.rfind(','));
  Mount m(five, mnt_);
  ASSERT_TRUE(m.Start()) << m.Log();
  std::string got;
  ASSERT_TRUE(ReadFile(P("f"), &got));
  EXPECT_TRUE(got == RandomBytes(1 << 20, 37));
  EXPECT_EQ(m.Unmount(), 0);
  EXPECT_NE(m.Log().find("DEGRADED"), std::string::npos) << m.Log();
}

TEST(NoSpaceTest, FullPoolReturnsEnospcAndStaysUsable) {
  TempDir tmp;
  std::string error;
  const std::string devs = FormatPool(tmp.path(), 6, 64ull << 20, &error);
  ASSERT_FALSE(devs.empty()) << error;
  const std::string mnt = tmp.path() + "/mnt";
  Mount m(devs, mnt, {"no_writeback_cache"});
  ASSERT_TRUE(m.Start()) << m.Log();
  const std::string f = mnt + "/fill";
  const int fd = open(f.c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  uint64_t seed = 41, written = 0;
  int err = 0;
  for (int i = 0; i < 4096 && err == 0; ++i) {  // at most 4 GiB, far beyond the pool
    const std::string chunk = RandomBytes(1 << 20, seed++);
    const ssize_t n = write(fd, chunk.data(), chunk.size());
    if (n < 0) {
      err = errno;
    } else {
      written += static_cast<uint64_t>(n);
    }
  }
  if (err == 0 && fsync(fd) != 0) err = errno;
  EXPECT_EQ(err, ENOSPC) << "after " << written << " bytes";
  close(fd);
  // The file system still answers, and what was written reads back.
  struct stat st;
  ASSERT_EQ(stat(f.c_str(), &st), 0);
  std::string got;
  ASSERT_TRUE(ReadFile(f, &got));
  EXPECT_EQ(got.substr(0, 1 << 20), RandomBytes(1 << 20, 41));
  EXPECT_EQ(unlink(f.c_str()), 0);
  EXPECT_EQ(m.Unmount(), 0) << m.Log();
}

}  // namespace
}  // namespace astra::fs::test
