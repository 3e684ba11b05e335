// Unit tests of the file-system catalogue format (fs/catalog_format.h).
#include "catalog_format.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

namespace astra::fs {
namespace {

TEST(CatalogFormatTest, InodeRoundTrip) {
  InodeRecord r;
  r.mode = S_IFLNK | 0777;
  r.uid = 1000;
  r.gid = 2000;
  r.nlink = 3;
  r.size = 1ull << 40;
  r.rdev = 0x1234;
  r.generation = 9;
  r.parent = 77;
  r.atime = {1, 2};
  r.mtime = {-5, 999999999};
  r.ctime = {1700000000, 3};
  r.btime = {4, 5};
  r.symlink = "some/target";
  const std::string v = EncodeInode(r);
  EXPECT_EQ(v.size(), kInodeFixedBytes + r.symlink.size() + kInodeCrcBytes);
  InodeRecord d;
  ASSERT_TRUE(DecodeInode(v, &d));
  EXPECT_EQ(d.mode, r.mode);
  EXPECT_EQ(d.uid, r.uid);
  EXPECT_EQ(d.gid, r.gid);
  EXPECT_EQ(d.nlink, r.nlink);
  EXPECT_EQ(d.size, r.size);
  EXPECT_EQ(d.rdev, r.rdev);
  EXPECT_EQ(d.generation, r.generation);
  EXPECT_EQ(d.parent, r.parent);
  EXPECT_EQ(d.atime, r.atime);
  EXPECT_EQ(d.mtime, r.mtime);
  EXPECT_EQ(d.ctime, r.ctime);
  EXPECT_EQ(d.btime, r.btime);
  EXPECT_EQ(d.symlink, r.symlink);
}

TEST(CatalogFormatTest, CorruptInodesAreRejected) {
  InodeRecord r;
  r.mode = S_IFREG | 0644;
  const std::string v = EncodeInode(r);
  InodeRecord d;
  for (size_t i = 0; i < v.size(); ++i) {
    std::string bad = v;
    bad[i] ^= 0x10;
    EXPECT_FALSE(DecodeInode(bad, &d)) << "flipped byte " << i;
  }
  EXPECT_FALSE(DecodeInode(v.substr(0, v.size() - 1), &d));
  EXPECT_FALSE(DecodeInode("", &d));
}

TEST(CatalogFormatTest, KeysSortByParentThenName) {
  EXPECT_LT(DentryKey(1, "zzz"), DentryKey(2, "a"));
  EXPECT_LT(DentryKey(255, "a"), DentryKey(256, "a"));
  EXPECT_LT(DentryKey(7, "a"), DentryKey(7, "b"));
  const std::string prefix = DentryPrefix(7);
  const std::string end = PrefixEnd(prefix);
  EXPECT_LT(DentryKey(7, std::string(255, '\xff')), end);
  EXPECT_GT(DentryKey(8, ""), DentryKey(7, std::string(255, '\xff')));
  EXPECT_GE(DentryKey(8, "a"), end);
  Ino parent;
  std::string_view name;
  ASSERT_TRUE(DecodeDentryKey(DentryKey(0x0102030405060708ull, "name"), &parent, &name));
  EXPECT_EQ(parent, 0x0102030405060708ull);
  EXPECT_EQ(name, "name");
  Ino ino;
  ASSERT_TRUE(DecodeOrphanKey(OrphanKey(42), &ino));
  EXPECT_EQ(ino, 42u);
  EXPECT_FALSE(DecodeOrphanKey(InodeKey(42), &ino));
}

TEST(CatalogFormatTest, DentryAndSuperRoundTrip) {
  Ino ino;
  uint8_t type;
  ASSERT_TRUE(DecodeDentry(EncodeDentry(12345, DT_DIR), &ino, &type));
  EXPECT_EQ(ino, 12345u);
  EXPECT_EQ(type, DT_DIR);
  EXPECT_FALSE(DecodeDentry(EncodeDentry(0, DT_REG), &ino, &type));
  EXPECT_FALSE(DecodeDentry("short", &ino, &type));
  SuperRecord s;
  ASSERT_TRUE(DecodeSuper(EncodeSuper(SuperRecord{}), &s));
  EXPECT_EQ(s.version, kSuperVersion);
  EXPECT_EQ(s.root, kRootIno);
  EXPECT_FALSE(DecodeSuper(std::string(kSuperBytes, 'x'), &s));
}

TEST(CatalogFormatTest, Crc32cKnownValue) {
  EXPECT_EQ(Crc32c("123456789", 9), 0xE3069283u);  // the CRC-32C check value
}

}  // namespace
}  // namespace astra::fs
