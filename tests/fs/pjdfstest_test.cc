// The POSIX acceptance suite: pjdfstest (https://github.com/pjd/pjdfstest) run with prove(1) on a
// real mount, as root, every test file. Skipped unless PJDFSTEST_DIR names a checkout in which
// the pjdfstest binary has been built (tests/fs/build-pjdfstest.sh builds it without autotools).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "mount_fixture.h"

namespace astra::fs::test {
namespace {

TEST(PjdfstestTest, EveryTestFilePasses) {
  const char* dir = getenv("PJDFSTEST_DIR");
  if (dir == nullptr || dir[0] == '\0') GTEST_SKIP() << "set PJDFSTEST_DIR to run pjdfstest";
  const std::string pjd = dir;
  if (access((pjd + "/pjdfstest").c_str(), X_OK) != 0) {
    GTEST_SKIP() << pjd << "/pjdfstest is not built (tests/fs/build-pjdfstest.sh)";
  }
  if (RunCmd("command -v prove") != 0) GTEST_SKIP() << "prove(1) is not installed";
  TempDir tmp;
  std::string error;
  const std::string devs = FormatPool(tmp.path(), 6, 1ull << 30, &error);
  ASSERT_FALSE(devs.empty()) << error;
  const std::string mnt = tmp.path() + "/mnt";
  Mount m(devs, mnt, {"allow_other"});
  ASSERT_TRUE(m.Start()) << m.Log();
  const std::string work = mnt + "/pjd";
  ASSERT_EQ(mkdir(work.c_str(), 0755), 0);
  std::string out;
  const int rc = RunCmd("cd " + work + " && prove -r " + pjd + "/tests", &out);
  const size_t summary = out.find("Test Summary Report");
  EXPECT_EQ(rc, 0) << (summary == std::string::npos
                           ? out.substr(out.size() > 4000 ? out.size() - 4000 : 0)
                           : out.substr(summary));
  EXPECT_NE(out.find("Result: PASS"), std::string::npos);
  // prove's totals ("Files=N, Tests=M, ..."), for the record.
  if (const size_t files = out.rfind("Files="); files != std::string::npos)
    std::printf("%s\n", out.substr(files, out.find('\n', files) - files).c_str());
  EXPECT_EQ(m.Unmount(), 0) << m.Log();
}

}  // namespace
}  // namespace astra::fs::test
