// Unit tests of astrafs-mount's command-line parsing (mount-helper/mount_options.h).
#include "mount_options.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace astra::mount {
namespace {

bool Parse(std::vector<const char*> argv, MountArgs* a, std::string* error) {
  std::string help;
  return ParseMountArgs(static_cast<int>(argv.size()), argv.data(), a, error, &help);
}

TEST(MountOptionsTest, DevicesMountpointAndOptions) {
  MountArgs a;
  std::string error;
  ASSERT_TRUE(Parse(
      {"astrafs-mount", "-f", "-o", "ro,allow_other,threads=4,poll_us=0,noatime", "/dev/a,/dev/b", "/mnt/x"},
      &a, &error))
      << error;
  EXPECT_EQ(a.devices, (std::vector<std::string>{"/dev/a", "/dev/b"}));
  EXPECT_EQ(a.mountpoint, "/mnt/x");
  EXPECT_TRUE(a.foreground);
  EXPECT_TRUE(a.read_only);
  EXPECT_TRUE(a.allow_other);
  EXPECT_EQ(a.threads, 4u);
  EXPECT_EQ(a.poll_us, 0u);
  EXPECT_EQ(a.fuse_options, (std::vector<std::string>{"noatime"}));
}

TEST(MountOptionsTest, MountHelperCallingConvention) {
  MountArgs a;
  std::string error;
  // mount(8): mount.fuse.astrafs SOURCE TARGET -o rw,defaults,... [-n] [-t fuse.astrafs]
  ASSERT_TRUE(
      Parse({"/sbin/mount.fuse.astrafs", "/d/1,/d/2", "/mnt", "-o",
             "rw,defaults,_netdev,x-systemd.automount,allow_other", "-n", "-t", "fuse.astrafs"},
            &a, &error))
      << error;
  EXPECT_FALSE(a.foreground);
  EXPECT_FALSE(a.fake);
  EXPECT_TRUE(a.allow_other);
  EXPECT_TRUE(a.fuse_options.empty());
  ASSERT_TRUE(Parse({"mount.fuse.astrafs", "/d/1", "/mnt", "-f"}, &a, &error));
  EXPECT_TRUE(a.fake);
  EXPECT_FALSE(a.foreground);
}

TEST(MountOptionsTest, BadInputIsNamed) {
  MountArgs a;
  std::string error;
  EXPECT_FALSE(Parse({"astrafs-mount"}, &a, &error));
  EXPECT_NE(error.find("missing"), std::string::npos);
  EXPECT_FALSE(Parse({"astrafs-mount", "/dev/a"}, &a, &error));
  EXPECT_NE(error.find("MOUNTPOINT"), std::string::npos);
  EXPECT_FALSE(Parse({"astrafs-mount", "/dev/a", "/m", "/x"}, &a, &error));
  EXPECT_FALSE(Parse({"astrafs-mount", "/dev/a,,/dev/b", "/m"}, &a, &error));
  EXPECT_NE(error.find("empty device"), std::string::npos);
  EXPECT_FALSE(Parse({"astrafs-mount", "-o", "threads=0", "/dev/a", "/m"}, &a, &error));
  EXPECT_NE(error.find("threads"), std::string::npos);
  for (const char* bad : {"poll_us=-1", "poll_us=2.5", "poll_us=x", "poll_us=10001"}) {
    EXPECT_FALSE(Parse({"astrafs-mount", "-o", bad, "/dev/a", "/m"}, &a, &error)) << bad;
    EXPECT_NE(error.find("poll_us"), std::string::npos) << bad;
  }
  EXPECT_FALSE(Parse({"astrafs-mount", "--nope", "/dev/a", "/m"}, &a, &error));
}

TEST(MountOptionsTest, EscapeMountpoint) {
  EXPECT_EQ(EscapeMountpoint("/mnt/data"), "mnt-data");
  EXPECT_EQ(EscapeMountpoint("/"), "root");
  EXPECT_EQ(EscapeMountpoint("/a b//c/"), "a_b-c");
}

}  // namespace
}  // namespace astra::mount
