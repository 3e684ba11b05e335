// POSIX behaviour of a real AstraFS mount: every operation the file system serves, driven through
// real system calls, with the errno each failure must give. One pool and one mount per suite
// (allow_other, so forked non-root children can reach it); each test works in its own directory.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "mount_fixture.h"

namespace astra::fs::test {
namespace {

constexpr uint64_t kMemberBytes = 1ull << 30;
constexpr uid_t kUser = 1000, kOther = 1001;
constexpr gid_t kUserGroup = 1000, kOtherGroup = 2000;

class PosixTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new TempDir;
    std::string error;
    const std::string devs = FormatPool(tmp_->path(), 6, kMemberBytes, &error);
    ASSERT_FALSE(devs.empty()) << error;
    mnt_ = tmp_->path() + "/mnt";
    mount_ = new Mount(devs, mnt_, {"allow_other"});
    ASSERT_TRUE(mount_->Start()) << mount_->Log();
    chmod(mnt_.c_str(), 0777);
  }
  static void TearDownTestSuite() {
    if (mount_ != nullptr) {
      EXPECT_EQ(mount_->Unmount(), 0) << mount_->Log();
    }
    delete mount_;
    delete tmp_;
  }
  void SetUp() override {
    ASSERT_TRUE(mount_ != nullptr && mount_->running());
    dir_ = mnt_ + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_EQ(mkdir(dir_.c_str(), 0777), 0) << strerror(errno);
    chmod(dir_.c_str(), 0777);
  }
  std::string P(const std::string& name) const { return dir_ + "/" + name; }

  static TempDir* tmp_;
  static Mount* mount_;
  static std::string mnt_;
  std::string dir_;
};
TempDir* PosixTest::tmp_ = nullptr;
Mount* PosixTest::mount_ = nullptr;
std::string PosixTest::mnt_;

struct stat Stat(const std::string& p) {
  struct stat st {};
  EXPECT_EQ(lstat(p.c_str(), &st), 0) << p << ": " << strerror(errno);
  return st;
}

int Errno(int rc) { return rc == 0 ? 0 : errno; }

TEST_F(PosixTest, WriteReadVerifyUnalignedAndOverlapping) {
  const std::string f = P("data");
  std::string model;
  const int fd = open(f.c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  struct Op {
    uint64_t off;
    size_t len;
  };
  const Op ops[] = {{0, 100},     {50, 5000},         {4095, 2},  {8192, 4096},
                    {3, 1 << 20}, {200000, 70000},    {12288, 1}, {1 << 21, 12345},
                    {7, 9},       {(1 << 21) - 5, 10}};
  uint64_t seed = 1;
  for (const Op& op : ops) {
    const std::string data = RandomBytes(op.len, seed++);
    ASSERT_EQ(pwrite(fd, data.data(), data.size(), static_cast<off_t>(op.off)),
              static_cast<ssize_t>(data.size()));
    if (model.size() < op.off + op.len) model.resize(op.off + op.len, '\0');
    model.replace(op.off, op.len, data);
  }
  ASSERT_EQ(close(fd), 0);
  DropCache(f);
  std::string got;
  ASSERT_TRUE(ReadFile(f, &got));
  ASSERT_EQ(got.size(), model.size());
  EXPECT_TRUE(got == model) << "content differs";
  EXPECT_EQ(Stat(f).st_size, static_cast<off_t>(model.size()));
}

TEST_F(PosixTest, ConcurrentPartialWritesToOneFile) {
  // O_DIRECT bypasses the page cache, so every unaligned write is a read-modify-write in the
  // daemon: the per-inode locking must keep neighbours' bytes.
  const std::string f = P("shared");
  constexpr int kThreads = 4, kRecords = 400, kRec = 100;
  const int fd = open(f.c_str(), O_RDWR | O_CREAT | O_DIRECT, 0644);
  ASSERT_GE(fd, 0);
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      for (int r = t; r < kRecords; r += kThreads) {
        std::string rec(kRec, static_cast<char>('a' + t));
        std::memcpy(rec.data(), &r, sizeof r);
        EXPECT_EQ(pwrite(fd, rec.data(), kRec, static_cast<off_t>(r) * kRec), kRec);
      }
    });
  }
  for (auto& t : ts) t.join();
  close(fd);
  std::string got;
  ASSERT_TRUE(ReadFile(f, &got));
  ASSERT_EQ(got.size(), static_cast<size_t>(kRecords * kRec));
  for (int r = 0; r < kRecords; ++r) {
    int v;
    std::memcpy(&v, got.data() + r * kRec, sizeof v);
    ASSERT_EQ(v, r) << "record " << r;
    ASSERT_EQ(got[r * kRec + kRec - 1], static_cast<char>('a' + r % kThreads)) << "record " << r;
  }
}

TEST_F(PosixTest, SparseFileBeyondFourGiB) {
  const std::string f = P("sparse");
  const int fd = open(f.c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  const off_t far = (5ll << 30) + 123;
  const std::string data = RandomBytes(10000, 7);
  ASSERT_EQ(pwrite(fd, data.data(), data.size(), far), static_cast<ssize_t>(data.size()));
  ASSERT_EQ(fsync(fd), 0);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, far + static_cast<off_t>(data.size()));
  EXPECT_LE(st.st_blocks, 8 * 4);  // 10000 bytes straddle 3 blocks
  EXPECT_GT(st.st_blocks, 0);
  char buf[4096];
  ASSERT_EQ(pread(fd, buf, sizeof buf, 1ll << 32), static_cast<ssize_t>(sizeof buf));
  EXPECT_TRUE(std::all_of(buf, buf + sizeof buf, [](char c) { return c == 0; }));
  std::string back(data.size(), '\0');
  ASSERT_EQ(pread(fd, back.data(), back.size(), far), static_cast<ssize_t>(back.size()));
  EXPECT_TRUE(back == data);
  EXPECT_EQ(lseek(fd, 0, SEEK_DATA), far & ~4095ll);
  EXPECT_EQ(lseek(fd, 0, SEEK_HOLE), 0);
  const off_t hole = lseek(fd, far, SEEK_HOLE);
  EXPECT_GE(hole, far + static_cast<off_t>(data.size()));
  EXPECT_EQ(lseek(fd, st.st_size, SEEK_DATA), -1);
  EXPECT_EQ(errno, ENXIO);
  close(fd);
}

TEST_F(PosixTest, DirectoriesAndLinkCounts) {
  EXPECT_EQ(Stat(dir_).st_nlink, 2u);
  ASSERT_EQ(mkdir(P("a").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(P("b").c_str(), 0755), 0);
  EXPECT_EQ(Stat(dir_).st_nlink, 4u);
  EXPECT_EQ(Errno(mkdir(P("a").c_str(), 0755)), EEXIST);
  ASSERT_TRUE(WriteFile(P("a/f"), "x"));
  EXPECT_EQ(Errno(rmdir(P("a").c_str())), ENOTEMPTY);
  EXPECT_EQ(Errno(rmdir(P("a/f").c_str())), ENOTDIR);
  EXPECT_EQ(Errno(unlink(P("b").c_str())), EISDIR);
  EXPECT_EQ(Errno(mkdir(P("a/f/x").c_str(), 0755)), ENOTDIR);
  EXPECT_EQ(Errno(rmdir(P("nope").c_str())), ENOENT);
  ASSERT_EQ(unlink(P("a/f").c_str()), 0);
  ASSERT_EQ(rmdir(P("a").c_str()), 0);
  EXPECT_EQ(Stat(dir_).st_nlink, 3u);

  // A large directory lists every entry exactly once.
  constexpr int kEntries = 3000;
  for (int i = 0; i < kEntries; ++i) {
    const int fd = open(P("b/entry-" + std::to_string(i)).c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0) << i;
    close(fd);
  }
  std::set<std::string> seen;
  DIR* d = opendir(P("b").c_str());
  ASSERT_NE(d, nullptr);
  while (dirent* e = readdir(d)) {
    EXPECT_TRUE(seen.insert(e->d_name).second) << "duplicate " << e->d_name;
    if (strncmp(e->d_name, "entry-", 6) == 0) {
      EXPECT_EQ(e->d_type, DT_REG);
    }
  }
  closedir(d);
  EXPECT_EQ(seen.size(), static_cast<size_t>(kEntries + 2));
  EXPECT_TRUE(seen.count(".") && seen.count(".."));
}

TEST_F(PosixTest, HardLinks) {
  ASSERT_TRUE(WriteFile(P("f"), "hello"));
  ASSERT_EQ(link(P("f").c_str(), P("g").c_str()), 0);
  EXPECT_EQ(Stat(P("f")).st_nlink, 2u);
  EXPECT_EQ(Stat(P("f")).st_ino, Stat(P("g")).st_ino);
  EXPECT_EQ(Errno(link(P("f").c_str(), P("g").c_str())), EEXIST);
  ASSERT_EQ(mkdir(P("d").c_str(), 0755), 0);
  EXPECT_EQ(Errno(link(P("d").c_str(), P("d2").c_str())), EPERM);
  ASSERT_EQ(unlink(P("f").c_str()), 0);
  EXPECT_EQ(Stat(P("g")).st_nlink, 1u);
  std::string s;
  ASSERT_TRUE(ReadFile(P("g"), &s));
  EXPECT_EQ(s, "hello");
}

TEST_F(PosixTest, Symlinks) {
  ASSERT_TRUE(WriteFile(P("target"), "t"));
  ASSERT_EQ(symlink("target", P("l").c_str()), 0);
  char buf[256];
  ssize_t n = readlink(P("l").c_str(), buf, sizeof buf);
  ASSERT_EQ(n, 6);
  EXPECT_EQ(std::string(buf, n), "target");
  EXPECT_TRUE(S_ISLNK(Stat(P("l")).st_mode));
  EXPECT_EQ(Stat(P("l")).st_size, 6);
  std::string s;
  ASSERT_TRUE(ReadFile(P("l"), &s));
  EXPECT_EQ(s, "t");
  ASSERT_EQ(symlink("loop2", P("loop1").c_str()), 0);
  ASSERT_EQ(symlink("loop1", P("loop2").c_str()), 0);
  EXPECT_EQ(open(P("loop1").c_str(), O_RDONLY), -1);
  EXPECT_EQ(errno, ELOOP);
  EXPECT_EQ(open(P("l").c_str(), O_RDONLY | O_NOFOLLOW), -1);
  EXPECT_EQ(errno, ELOOP);
  const std::string long_target(4000, 'x');
  ASSERT_EQ(symlink(long_target.c_str(), P("long").c_str()), 0);
  std::vector<char> lb(5000);
  EXPECT_EQ(readlink(P("long").c_str(), lb.data(), lb.size()), 4000);
  EXPECT_EQ(Errno(symlink("x", P("l").c_str())), EEXIST);
}

TEST_F(PosixTest, SpecialFiles) {
  ASSERT_EQ(mkfifo(P("fifo").c_str(), 0640), 0);
  EXPECT_TRUE(S_ISFIFO(Stat(P("fifo")).st_mode));
  ASSERT_EQ(mknod(P("null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  struct stat st = Stat(P("null"));
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  ASSERT_EQ(mknod(P("blk").c_str(), S_IFBLK | 0600, makedev(7, 0)), 0);
  EXPECT_TRUE(S_ISBLK(Stat(P("blk")).st_mode));
  // FUSE mounts are nodev unless asked: the node exists but cannot be opened.
  EXPECT_EQ(open(P("null").c_str(), O_WRONLY), -1);
  EXPECT_EQ(errno, EACCES);
  const int s = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(s, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string sp = P("sock");
  ASSERT_LT(sp.size(), sizeof addr.sun_path);
  std::strcpy(addr.sun_path, sp.c_str());
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << strerror(errno);
  close(s);
  EXPECT_TRUE(S_ISSOCK(Stat(sp).st_mode));
}

TEST_F(PosixTest, RenameAllForms) {
  ASSERT_TRUE(WriteFile(P("a"), "A"));
  ASSERT_TRUE(WriteFile(P("b"), "B"));
  ASSERT_EQ(rename(P("a").c_str(), P("c").c_str()), 0);
  EXPECT_EQ(Errno(access(P("a").c_str(), F_OK)), ENOENT);
  // Overwrite: the old target is gone.
  ASSERT_EQ(rename(P("c").c_str(), P("b").c_str()), 0);
  std::string s;
  ASSERT_TRUE(ReadFile(P("b"), &s));
  EXPECT_EQ(s, "A");
  // RENAME_NOREPLACE.
  ASSERT_TRUE(WriteFile(P("x"), "X"));
  EXPECT_EQ(Errno(renameat2(AT_FDCWD, P("x").c_str(), AT_FDCWD, P("b").c_str(), RENAME_NOREPLACE)),
            EEXIST);
  ASSERT_EQ(renameat2(AT_FDCWD, P("x").c_str(), AT_FDCWD, P("y").c_str(), RENAME_NOREPLACE), 0);
  // RENAME_EXCHANGE between a file and a directory in different parents.
  ASSERT_EQ(mkdir(P("d1").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(P("d2").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(P("d1/sub").c_str(), 0755), 0);
  ASSERT_TRUE(WriteFile(P("d2/file"), "F"));
  ASSERT_EQ(
      renameat2(AT_FDCWD, P("d1/sub").c_str(), AT_FDCWD, P("d2/file").c_str(), RENAME_EXCHANGE), 0);
  EXPECT_TRUE(S_ISREG(Stat(P("d1/sub")).st_mode));
  EXPECT_TRUE(S_ISDIR(Stat(P("d2/file")).st_mode));
  EXPECT_EQ(Stat(P("d1")).st_nlink, 2u);
  EXPECT_EQ(Stat(P("d2")).st_nlink, 3u);
  EXPECT_EQ(Errno(renameat2(AT_FDCWD, P("d1/none").c_str(), AT_FDCWD, P("d2/file").c_str(),
                            RENAME_EXCHANGE)),
            ENOENT);
  // Directory moves update both parents' link counts and "..".
  ASSERT_EQ(rename(P("d2/file").c_str(), P("d1/moved").c_str()), 0);
  EXPECT_EQ(Stat(P("d1")).st_nlink, 3u);
  EXPECT_EQ(Stat(P("d2")).st_nlink, 2u);
  EXPECT_EQ(Stat(P("d1/moved/..")).st_ino, Stat(P("d1")).st_ino);
  // Errors.
  ASSERT_EQ(mkdir(P("full").c_str(), 0755), 0);
  ASSERT_TRUE(WriteFile(P("full/f"), "f"));
  EXPECT_EQ(Errno(rename(P("d1/moved").c_str(), P("full").c_str())), ENOTEMPTY);
  EXPECT_EQ(Errno(rename(P("y").c_str(), P("full").c_str())), EISDIR);
  EXPECT_EQ(Errno(rename(P("full").c_str(), P("y").c_str())), ENOTDIR);
  EXPECT_EQ(Errno(rename(P("full").c_str(), P("full/inside").c_str())), EINVAL);
  // Replacing an empty directory with a directory.
  ASSERT_EQ(rename(P("d1/moved").c_str(), P("d2").c_str()), 0);
  EXPECT_EQ(Stat(P("d1")).st_nlink, 2u);
  // Two names of one inode: nothing happens.
  ASSERT_EQ(link(P("y").c_str(), P("y2").c_str()), 0);
  ASSERT_EQ(rename(P("y").c_str(), P("y2").c_str()), 0);
  EXPECT_EQ(Stat(P("y")).st_nlink, 2u);
}

TEST_F(PosixTest, ChmodChownUtimens) {
  ASSERT_TRUE(WriteFile(P("f"), "x"));
  ASSERT_EQ(chmod(P("f").c_str(), 04751), 0);
  EXPECT_EQ(Stat(P("f")).st_mode & 07777, 04751u);
  const struct stat before = Stat(P("f"));
  usleep(20000);
  ASSERT_EQ(chown(P("f").c_str(), 123, 456), 0);
  struct stat st = Stat(P("f"));
  EXPECT_EQ(st.st_uid, 123u);
  EXPECT_EQ(st.st_gid, 456u);
  EXPECT_TRUE(
      st.st_ctim.tv_sec > before.st_ctim.tv_sec ||
      (st.st_ctim.tv_sec == before.st_ctim.tv_sec && st.st_ctim.tv_nsec > before.st_ctim.tv_nsec));
  const timespec times[2] = {{1000000000, 123456789}, {1500000000, 987654321}};
  ASSERT_EQ(utimensat(AT_FDCWD, P("f").c_str(), times, 0), 0);
  st = Stat(P("f"));
  EXPECT_EQ(st.st_atim.tv_sec, 1000000000);
  EXPECT_EQ(st.st_atim.tv_nsec, 123456789);
  EXPECT_EQ(st.st_mtim.tv_sec, 1500000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 987654321);
  const timespec omit_now[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
  ASSERT_EQ(utimensat(AT_FDCWD, P("f").c_str(), omit_now, 0), 0);
  st = Stat(P("f"));
  EXPECT_EQ(st.st_atim.tv_sec, 1000000000);
  EXPECT_GT(st.st_mtim.tv_sec, 1600000000);
  // Symlinks keep their own times (AT_SYMLINK_NOFOLLOW).
  ASSERT_EQ(symlink("f", P("l").c_str()), 0);
  ASSERT_EQ(utimensat(AT_FDCWD, P("l").c_str(), times, AT_SYMLINK_NOFOLLOW), 0);
  EXPECT_EQ(Stat(P("l")).st_mtim.tv_sec, 1500000000);
  // Times persist in the daemon (not just the kernel cache): check after the cache expires.
  sleep(2);
  EXPECT_EQ(Stat(P("l")).st_mtim.tv_nsec, 987654321);
}

TEST_F(PosixTest, TruncateNeverShowsStaleBytes) {
  const std::string f = P("t");
  const std::string data = RandomBytes(3 * 4096 + 100, 3);
  ASSERT_TRUE(WriteFile(f, data));
  ASSERT_EQ(truncate(f.c_str(), 5000), 0);
  DropCache(f);
  ASSERT_EQ(truncate(f.c_str(), 20000), 0);
  DropCache(f);
  std::string got;
  ASSERT_TRUE(ReadFile(f, &got));
  ASSERT_EQ(got.size(), 20000u);
  EXPECT_TRUE(got.compare(0, 5000, data, 0, 5000) == 0);
  EXPECT_TRUE(std::all_of(got.begin() + 5000, got.end(), [](char c) { return c == 0; }))
      << "stale bytes after shrink + grow";
  const int fd = open(f.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 0), 0);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 0);
  EXPECT_EQ(st.st_blocks, 0);
  close(fd);
  ASSERT_TRUE(WriteFile(P("dir-truncate"), ""));
  ASSERT_EQ(mkdir(P("dd").c_str(), 0755), 0);
  EXPECT_EQ(Errno(truncate(P("dd").c_str(), 0)), EISDIR);
}

TEST_F(PosixTest, Fallocate) {
  const std::string f = P("fa");
  const int fd = open(f.c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(fallocate(fd, 0, 0, 100000), 0);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 100000);
  ASSERT_EQ(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 200000), 0);
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 100000);
  const std::string data = RandomBytes(100000, 5);
  ASSERT_EQ(pwrite(fd, data.data(), data.size(), 0), 100000);
  ASSERT_EQ(fsync(fd), 0);
  ASSERT_EQ(fstat(fd, &st), 0);
  const blkcnt_t blocks_before = st.st_blocks;
  ASSERT_EQ(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000, 50000), 0);
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 100000);
  EXPECT_LT(st.st_blocks, blocks_before);
  std::string expect = data;
  std::fill(expect.begin() + 1000, expect.begin() + 51000, '\0');
  ASSERT_EQ(fallocate(fd, FALLOC_FL_ZERO_RANGE, 90000, 20000), 0);
  std::fill(expect.begin() + 90000, expect.end(), '\0');
  expect.resize(110000, '\0');
  close(fd);
  DropCache(f);
  std::string got;
  ASSERT_TRUE(ReadFile(f, &got));
  EXPECT_EQ(got.size(), expect.size());
  EXPECT_TRUE(got == expect);
  const int fd2 = open(f.c_str(), O_RDWR);
  EXPECT_EQ(Errno(fallocate(fd2, FALLOC_FL_PUNCH_HOLE, 0, 10)), EOPNOTSUPP);
  close(fd2);
}

TEST_F(PosixTest, ExtendedAttributes) {
  ASSERT_TRUE(WriteFile(P("f"), "x"));
  const std::string f = P("f");
  ASSERT_EQ(setxattr(f.c_str(), "user.a", "1", 1, 0), 0);
  ASSERT_EQ(setxattr(f.c_str(), "user.b", "22", 2, XATTR_CREATE), 0);
  EXPECT_EQ(Errno(setxattr(f.c_str(), "user.b", "3", 1, XATTR_CREATE)), EEXIST);
  EXPECT_EQ(Errno(setxattr(f.c_str(), "user.c", "3", 1, XATTR_REPLACE)), ENODATA);
  ASSERT_EQ(setxattr(f.c_str(), "user.b", "333", 3, XATTR_REPLACE), 0);
  const std::string big(65536, 'v');
  ASSERT_EQ(setxattr(f.c_str(), "trusted.big", big.data(), big.size(), 0), 0);
  char buf[70000];
  EXPECT_EQ(getxattr(f.c_str(), "user.b", buf, sizeof buf), 3);
  EXPECT_EQ(std::string(buf, 3), "333");
  EXPECT_EQ(getxattr(f.c_str(), "user.b", nullptr, 0), 3);
  EXPECT_EQ(getxattr(f.c_str(), "user.b", buf, 1), -1);
  EXPECT_EQ(errno, ERANGE);
  EXPECT_EQ(getxattr(f.c_str(), "trusted.big", buf, sizeof buf), 65536);
  EXPECT_EQ(getxattr(f.c_str(), "user.none", buf, sizeof buf), -1);
  EXPECT_EQ(errno, ENODATA);
  const ssize_t n = listxattr(f.c_str(), buf, sizeof buf);
  ASSERT_GT(n, 0);
  std::set<std::string> names;
  for (ssize_t i = 0; i < n; i += strlen(buf + i) + 1) names.insert(buf + i);
  EXPECT_EQ(names, (std::set<std::string>{"user.a", "user.b", "trusted.big"}));
  ASSERT_EQ(removexattr(f.c_str(), "user.a"), 0);
  EXPECT_EQ(Errno(removexattr(f.c_str(), "user.a")), ENODATA);
  // POSIX ACLs are stored as they come (setfacl builds the binary form).
  std::string out;
  EXPECT_EQ(RunCmd("setfacl -m u:1234:rw '" + f + "' && getfacl -n '" + f + "'", &out), 0) << out;
  EXPECT_NE(out.find("user:1234:rw-"), std::string::npos) << out;
  // Directories and symlinks (trusted.*) carry xattrs too.
  ASSERT_EQ(mkdir(P("d").c_str(), 0755), 0);
  ASSERT_EQ(setxattr(P("d").c_str(), "user.d", "d", 1, 0), 0);
  ASSERT_EQ(symlink("f", P("l").c_str()), 0);
  ASSERT_EQ(lsetxattr(P("l").c_str(), "trusted.l", "l", 1, 0), 0);
  EXPECT_EQ(lgetxattr(P("l").c_str(), "trusted.l", buf, sizeof buf), 1);
}

TEST_F(PosixTest, PosixAclsActLikeChmod) {
  // cp -a and setfacl set permissions by writing system.posix_acl_access.
  ASSERT_TRUE(WriteFile(P("f"), "x"));
  ASSERT_EQ(chmod(P("f").c_str(), 0600), 0);
  // A minimal ACL (u::rwx g::r-x o::--x) is a chmod and is not stored.
  const char minimal[] =
      "\2\0\0\0"
      "\1\0\7\0\377\377\377\377"
      "\4\0\5\0\377\377\377\377"
      "\40\0\1\0\377\377\377\377";
  ASSERT_EQ(setxattr(P("f").c_str(), "system.posix_acl_access", minimal, sizeof minimal - 1, 0), 0);
  EXPECT_EQ(Stat(P("f")).st_mode & 0777, 0751u);
  EXPECT_EQ(getxattr(P("f").c_str(), "system.posix_acl_access", nullptr, 0), -1);
  // An extended ACL is kept; its mask is the group bits, and it follows a chmod.
  std::string out;
  ASSERT_EQ(RunCmd("setfacl -m u:1234:rw,m::rw '" + P("f") + "'", &out), 0) << out;
  EXPECT_EQ(Stat(P("f")).st_mode & 0070, 0060u);
  ASSERT_EQ(chmod(P("f").c_str(), 0640), 0);
  ASSERT_EQ(RunCmd("getfacl -n '" + P("f") + "'", &out), 0) << out;
  EXPECT_NE(out.find("mask::r--"), std::string::npos) << out;
  EXPECT_NE(out.find("user:1234:rw-"), std::string::npos) << out;
  // Garbage is refused.
  EXPECT_EQ(Errno(setxattr(P("f").c_str(), "system.posix_acl_access", "bad", 3, 0)), EINVAL);
}

TEST_F(PosixTest, StatFs) {
  struct statvfs sv;
  ASSERT_EQ(statvfs(mnt_.c_str(), &sv), 0);
  EXPECT_EQ(sv.f_bsize, 4096u);
  EXPECT_GT(sv.f_blocks, 0u);
  EXPECT_LE(sv.f_bfree, sv.f_blocks);
  EXPECT_GT(sv.f_bfree, 0u);
  EXPECT_GT(sv.f_files, 1000000u);
  EXPECT_EQ(sv.f_namemax, 255u);
  // 6 members of 1 GiB at 4+2: user capacity is at most 4 GiB.
  EXPECT_LE(sv.f_blocks * sv.f_frsize, 4ull << 30);
}

TEST_F(PosixTest, AppendMode) {
  const std::string f = P("log");
  const int a = open(f.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  const int b = open(f.c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(write(i % 2 ? a : b, "0123456789", 10), 10);
  }
  close(a);
  close(b);
  struct stat st = Stat(f);
  EXPECT_EQ(st.st_size, 500);
  std::string s;
  ASSERT_TRUE(ReadFile(f, &s));
  for (int i = 0; i < 50; ++i) EXPECT_EQ(s.substr(i * 10, 10), "0123456789");
  // A write-only open can be appended to through partial pages (the kernel reads them).
  const int c = open(f.c_str(), O_WRONLY | O_APPEND);
  ASSERT_EQ(write(c, "xyz", 3), 3);
  close(c);
  DropCache(f);
  ASSERT_TRUE(ReadFile(f, &s));
  EXPECT_EQ(s.size(), 503u);
  EXPECT_EQ(s.substr(500), "xyz");
}

// open(O_TRUNC) of an existing file must reach the file system, not only the kernel's cached size
// (a write after the truncation would hide the bug: its write-back sets the size). Dropping the
// kernel's inodes (root only, like the rest of this suite) makes the next stat ask the daemon.
TEST_F(PosixTest, OpenTruncateSurvivesCacheDrop) {
  const std::string f = P("t");
  ASSERT_TRUE(WriteFile(f, std::string(10000, 'a')));
  const int fd = open(f.c_str(), O_WRONLY | O_TRUNC);
  ASSERT_GE(fd, 0);
  close(fd);
  EXPECT_EQ(Stat(f).st_size, 0);
  sync();
  const int dc = open("/proc/sys/vm/drop_caches", O_WRONLY);
  ASSERT_GE(dc, 0) << strerror(errno);
  ASSERT_EQ(write(dc, "2", 1), 1);  // dentries and inodes
  close(dc);
  EXPECT_EQ(Stat(f).st_size, 0);
  ASSERT_TRUE(WriteFile(f, "new"));
  DropCache(f);
  std::string s;
  ASSERT_TRUE(ReadFile(f, &s));
  EXPECT_EQ(s, "new");
}

TEST_F(PosixTest, DirectIo) {
  const std::string f = P("direct");
  const int fd = open(f.c_str(), O_RDWR | O_CREAT | O_DIRECT, 0644);
  ASSERT_GE(fd, 0);
  void* mem = nullptr;
  ASSERT_EQ(posix_memalign(&mem, 4096, 1 << 20), 0);
  std::unique_ptr<char, decltype(&free)> buf(static_cast<char*>(mem), &free);
  const std::string data = RandomBytes(1 << 20, 11);
  std::memcpy(buf.get(), data.data(), data.size());
  ASSERT_EQ(pwrite(fd, buf.get(), 1 << 20, 1 << 20), 1 << 20);
  std::memset(buf.get(), 0, 1 << 20);
  ASSERT_EQ(pread(fd, buf.get(), 1 << 20, 1 << 20), 1 << 20);
  EXPECT_EQ(std::memcmp(buf.get(), data.data(), data.size()), 0);
  EXPECT_EQ(pread(fd, buf.get(), 4096, 0), 4096);
  EXPECT_TRUE(std::all_of(buf.get(), buf.get() + 4096, [](char c) { return c == 0; }));
  close(fd);
}

TEST_F(PosixTest, CopyFileRange) {
  const std::string src = P("src"), dst = P("dst");
  const std::string data = RandomBytes(1000000, 13);
  ASSERT_TRUE(WriteFile(src, data));
  const int in = open(src.c_str(), O_RDONLY);
  const int out = open(dst.c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(in, 0);
  ASSERT_GE(out, 0);
  // Same alignment (blocks are shared), then an unaligned copy (bytes are copied).
  loff_t off_in = 4096 + 100, off_out = 8192 + 100;
  ASSERT_EQ(copy_file_range(in, &off_in, out, &off_out, 500000, 0), 500000);
  loff_t off_in2 = 7, off_out2 = 700001;
  ASSERT_EQ(copy_file_range(in, &off_in2, out, &off_out2, 123456, 0), 123456);
  // Past the source's end: a short copy.
  loff_t off_in3 = 999000, off_out3 = 0;
  EXPECT_EQ(copy_file_range(in, &off_in3, out, &off_out3, 5000, 0), 1000);
  close(in);
  close(out);
  std::string expect(700001 + 123456, '\0');
  expect.replace(8192 + 100, 500000, data.substr(4096 + 100, 500000));
  expect.replace(700001, 123456, data.substr(7, 123456));
  expect.replace(0, 1000, data.substr(999000, 1000));
  DropCache(dst);
  std::string got;
  ASSERT_TRUE(ReadFile(dst, &got));
  EXPECT_EQ(got.size(), expect.size());
  EXPECT_TRUE(got == expect);
  // The source is unchanged.
  ASSERT_TRUE(ReadFile(src, &got));
  EXPECT_TRUE(got == data);
}

TEST_F(PosixTest, NameTooLong) {
  const std::string longname(256, 'n');
  const std::string ok(255, 'o');
  ASSERT_TRUE(WriteFile(P(ok), "x"));
  EXPECT_EQ(open(P(longname).c_str(), O_CREAT | O_WRONLY, 0644), -1);
  EXPECT_EQ(errno, ENAMETOOLONG);
  EXPECT_EQ(Errno(mkdir(P(longname).c_str(), 0755)), ENAMETOOLONG);
  EXPECT_EQ(Errno(symlink("x", P(longname).c_str())), ENAMETOOLONG);
  EXPECT_EQ(Errno(link(P(ok).c_str(), P(longname).c_str())), ENAMETOOLONG);
  EXPECT_EQ(Errno(rename(P(ok).c_str(), P(longname).c_str())), ENAMETOOLONG);
  EXPECT_EQ(Errno(access(P(longname).c_str(), F_OK)), ENAMETOOLONG);
}

TEST_F(PosixTest, OpenUnlinkedFileLivesUntilClose) {
  const std::string f = P("tmp");
  const int fd = open(f.c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(unlink(f.c_str()), 0);
  EXPECT_EQ(Errno(access(f.c_str(), F_OK)), ENOENT);
  const std::string data = RandomBytes(300000, 17);
  ASSERT_EQ(pwrite(fd, data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
  ASSERT_EQ(fsync(fd), 0);
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  std::string back(data.size(), '\0');
  ASSERT_EQ(pread(fd, back.data(), back.size(), 0), static_cast<ssize_t>(back.size()));
  EXPECT_TRUE(back == data);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_nlink, 0u);
  close(fd);
  // A removed directory that is still someone's cwd.
  ASSERT_EQ(mkdir(P("gone").c_str(), 0755), 0);
  const int dfd = open(P("gone").c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(dfd, 0);
  ASSERT_EQ(rmdir(P("gone").c_str()), 0);
  ASSERT_EQ(fstat(dfd, &st), 0);
  EXPECT_EQ(st.st_nlink, 0u);
  EXPECT_EQ(openat(dfd, "new", O_CREAT | O_WRONLY, 0644), -1);
  EXPECT_EQ(errno, ENOENT);
  close(dfd);
}

TEST_F(PosixTest, MtimeFollowsWrites) {
  const std::string f = P("m");
  ASSERT_TRUE(WriteFile(f, "a"));
  const timespec old_times[2] = {{1000, 0}, {1000, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, f.c_str(), old_times, 0), 0);
  const int fd = open(f.c_str(), O_WRONLY);
  ASSERT_EQ(pwrite(fd, "bb", 2, 10), 2);
  ASSERT_EQ(fsync(fd), 0);
  close(fd);
  sleep(2);  // past the attribute timeout: the daemon's values
  const struct stat st = Stat(f);
  EXPECT_GT(st.st_mtim.tv_sec, 1000);
  EXPECT_EQ(st.st_size, 12);
}

// ---- Permission rules, as an unprivileged user in a forked child ----

TEST_F(PosixTest, NonRootOwnershipAndAccess) {
  ASSERT_TRUE(WriteFile(P("rootonly"), "secret"));
  ASSERT_EQ(chmod(P("rootonly").c_str(), 0600), 0);
  const std::string d = dir_;
  int rc = RunAs(kUser, kUserGroup, {kUserGroup}, [&] {
    if (open((d + "/rootonly").c_str(), O_RDONLY) != -1 || errno != EACCES) return 1;
    if (chmod((d + "/rootonly").c_str(), 0666) != -1 || errno != EPERM) return 2;
    if (chown((d + "/rootonly").c_str(), kUser, kUserGroup) != -1 || errno != EPERM) return 3;
    const int fd = open((d + "/mine").c_str(), O_CREAT | O_WRONLY, 0644);
    if (fd < 0) return 4;
    close(fd);
    struct stat st;
    if (stat((d + "/mine").c_str(), &st) != 0) return 5;
    if (st.st_uid != kUser || st.st_gid != kUserGroup) return 6;
    // chgrp to a group we are not in: EPERM; to our own: fine.
    if (chown((d + "/mine").c_str(), -1, kOtherGroup) != -1 || errno != EPERM) return 7;
    if (chown((d + "/mine").c_str(), -1, kUserGroup) != 0) return 8;
    if (mkdir((d + "/mydir").c_str(), 0700) != 0) return 9;
    if (utimensat(AT_FDCWD, (d + "/rootonly").c_str(), nullptr, 0) != -1 || errno != EACCES)
      return 10;
    return 0;
  });
  EXPECT_EQ(rc, 0);
  // Another user cannot enter a 0700 directory.
  rc = RunAs(kOther, kOtherGroup, {kOtherGroup}, [&] {
    if (open((d + "/mydir/x").c_str(), O_CREAT | O_WRONLY, 0644) != -1 || errno != EACCES) return 1;
    return 0;
  });
  EXPECT_EQ(rc, 0);
}

TEST_F(PosixTest, StickyDirectory) {
  ASSERT_EQ(mkdir(P("tmp").c_str(), 01777), 0);
  ASSERT_EQ(chmod(P("tmp").c_str(), 01777), 0);
  const std::string t = P("tmp");
  EXPECT_EQ(
      RunAs(kUser, kUserGroup, {kUserGroup}, [&] { return WriteFile(t + "/users", "u") ? 0 : 1; }),
      0);
  EXPECT_EQ(RunAs(kOther, kOtherGroup, {kOtherGroup},
                  [&] {
                    if (unlink((t + "/users").c_str()) != -1 || errno != EPERM) return 1;
                    if (rename((t + "/users").c_str(), (t + "/x").c_str()) != -1 || errno != EPERM)
                      return 2;
                    return 0;
                  }),
            0);
  EXPECT_EQ(RunAs(kUser, kUserGroup, {kUserGroup},
                  [&] { return unlink((t + "/users").c_str()) == 0 ? 0 : 1; }),
            0);
}

TEST_F(PosixTest, SetgidDirectoryInheritance) {
  ASSERT_EQ(mkdir(P("g").c_str(), 0777), 0);
  ASSERT_EQ(chown(P("g").c_str(), 0, kOtherGroup), 0);
  ASSERT_EQ(chmod(P("g").c_str(), 02777), 0);
  const std::string g = P("g");
  EXPECT_EQ(RunAs(kUser, kUserGroup, {kUserGroup},
                  [&] {
                    const int fd = open((g + "/f").c_str(), O_CREAT | O_WRONLY, 02775);
                    if (fd < 0) return 1;
                    close(fd);
                    if (mkdir((g + "/sub").c_str(), 0755) != 0) return 2;
                    return 0;
                  }),
            0);
  struct stat st = Stat(P("g/f"));
  EXPECT_EQ(st.st_gid, kOtherGroup);
  EXPECT_EQ(st.st_uid, kUser);
  EXPECT_EQ(st.st_mode & S_ISGID, 0u) << "creator is not in the group: set-gid is dropped";
  st = Stat(P("g/sub"));
  EXPECT_EQ(st.st_gid, kOtherGroup);
  EXPECT_NE(st.st_mode & S_ISGID, 0u) << "subdirectories inherit set-gid";
}

TEST_F(PosixTest, WriteByNonOwnerClearsSetuid) {
  ASSERT_TRUE(WriteFile(P("suid"), "x"));
  ASSERT_EQ(chmod(P("suid").c_str(), 06777), 0);
  const std::string f = P("suid");
  EXPECT_EQ(RunAs(kUser, kUserGroup, {kUserGroup},
                  [&] {
                    const int fd = open(f.c_str(), O_WRONLY);
                    if (fd < 0) return 1;
                    if (write(fd, "y", 1) != 1) return 2;
                    close(fd);
                    return 0;
                  }),
            0);
  EXPECT_EQ(Stat(f).st_mode & (S_ISUID | S_ISGID), 0u);
  // chown by root clears set-user-id as well.
  ASSERT_EQ(chmod(f.c_str(), 04755), 0);
  ASSERT_EQ(chown(f.c_str(), kUser, -1), 0);
  EXPECT_EQ(Stat(f).st_mode & S_ISUID, 0u);
}

// Without the writeback cache the daemon positions O_APPEND writes at its own EOF. The kernel opens
// regular files itself (no OPEN, so no per-open handle), and the flag comes with every WRITE.
TEST(PosixNoWritebackCacheTest, AppendTruncateAndPlainWritesAfterKernelOpens) {
  TempDir tmp;
  std::string error;
  const std::string devs = FormatPool(tmp.path(), 6, 256ull << 20, &error);
  ASSERT_FALSE(devs.empty()) << error;
  const std::string mnt = tmp.path() + "/mnt";
  Mount m(devs, mnt, {"no_writeback_cache"});
  ASSERT_TRUE(m.Start()) << m.Log();
  const std::string f = mnt + "/log";
  const int a = open(f.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  const int b = open(f.c_str(), O_WRONLY | O_APPEND);
  const int w = open(f.c_str(), O_WRONLY);  // no O_APPEND: writes where it is told
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  ASSERT_GE(w, 0);
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(write(i % 2 ? a : b, "0123456789", 10), 10);
  }
  ASSERT_EQ(pwrite(w, "AB", 2, 0), 2);
  ASSERT_EQ(write(a, "xyz", 3), 3);
  close(a);
  close(b);
  close(w);
  std::string s;
  ASSERT_TRUE(ReadFile(f, &s));
  ASSERT_EQ(s.size(), 503u);
  EXPECT_EQ(s.substr(0, 10), "AB23456789");
  for (int i = 1; i < 50; ++i) EXPECT_EQ(s.substr(i * 10, 10), "0123456789");
  EXPECT_EQ(s.substr(500), "xyz");
  const int t = open(f.c_str(), O_WRONLY | O_TRUNC);
  ASSERT_GE(t, 0);
  close(t);
  DropCache(f);
  EXPECT_EQ(Stat(f).st_size, 0);
  EXPECT_EQ(open(mnt.c_str(), O_WRONLY), -1);
  EXPECT_EQ(errno, EISDIR);
  EXPECT_EQ(m.Unmount(), 0) << m.Log();
}

}  // namespace
}  // namespace astra::fs::test
