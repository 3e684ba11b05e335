// Real workloads on a mount: a tree copy compared with diff -r (before and after a remount), and
// the fio verify jobs of fio-jobs/mount-verify.fio.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <string>

#include "mount_fixture.h"

namespace astra::fs::test {
namespace {

constexpr uint64_t kMemberBytes = 2ull << 30;

TEST(TreeCopyTest, CopyUsrIncludeAndDiff) {
  const char* src_env = getenv("ASTRAFS_TREE_SRC");
  const std::string src = src_env != nullptr ? src_env : "/usr/include";
  TempDir tmp;
  std::string error;
  const std::string devs = FormatPool(tmp.path(), 6, kMemberBytes, &error);
  ASSERT_FALSE(devs.empty()) << error;
  const std::string mnt = tmp.path() + "/mnt";
  std::string out;
  {
    Mount m(devs, mnt);
    ASSERT_TRUE(m.Start()) << m.Log();
    ASSERT_EQ(RunCmd("cp -a " + src + " " + mnt + "/tree", &out), 0) << out;
    EXPECT_EQ(RunCmd("diff -r --no-dereference " + src + " " + mnt + "/tree", &out), 0)
        << out.substr(0, 4000);
    EXPECT_EQ(m.Unmount(), 0) << m.Log();
  }
  Mount m(devs, mnt);
  ASSERT_TRUE(m.Start()) << m.Log();
  EXPECT_EQ(RunCmd("diff -r --no-dereference " + src + " " + mnt + "/tree", &out), 0)
      << out.substr(0, 4000);
  // Owners, modes and times survive too (cp -a preserved them).
  EXPECT_EQ(
      RunCmd("cd " + src + " && find . -printf '%p %m %U %G %T@ %l\\n' | sort > " + tmp.path() +
                 "/a.txt && cd " + mnt +
                 "/tree && find . -printf "
                 "'%p %m %U %G %T@ %l\\n' | sort > " +
                 tmp.path() + "/b.txt && cmp " + tmp.path() + "/a.txt " + tmp.path() + "/b.txt",
             &out),
      0)
      << out;
  EXPECT_EQ(RunCmd("rm -rf " + mnt + "/tree", &out), 0) << out;
  EXPECT_EQ(m.Unmount(), 0) << m.Log();
}

TEST(FioTest, MountVerifyJobs) {
  if (RunCmd("command -v fio") != 0) GTEST_SKIP() << "fio is not installed";
  TempDir tmp;
  std::string error;
  const std::string devs = FormatPool(tmp.path(), 6, 1ull << 30, &error);
  ASSERT_FALSE(devs.empty()) << error;
  const std::string mnt = tmp.path() + "/mnt";
  Mount m(devs, mnt);
  ASSERT_TRUE(m.Start()) << m.Log();
  std::string out;
  EXPECT_EQ(
      RunCmd("FIO_DIR=" + mnt + " FIO_SIZE=64m fio " ASTRA_SOURCE_DIR "/fio-jobs/mount-verify.fio",
             &out),
      0)
      << out;
  EXPECT_EQ(out.find("verify:"), std::string::npos) << out;
  EXPECT_EQ(m.Unmount(), 0) << m.Log();
}

}  // namespace
}  // namespace astra::fs::test
