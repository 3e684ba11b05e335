// Host-side unit tests of blockdev/ pieces that need no kernel: user_data encoding, USER_COPY
// addressing, ADD_DEV flag choice and SET_PARAMS, the volume record format, the device record
// JSON, and the control-socket naming. (The ublk paths themselves run in the VM suites;
// VolumeTarget's read-modify-write is in volume_target_test.cc.)
#include <gtest/gtest.h>

#include "blockdev/control_socket.h"
#include "blockdev/device_record.h"
#include "blockdev/ublk_device.h"
#include "blockdev/user_data.h"
#include "blockdev/volume_format.h"

namespace astra {
namespace {

using blockdev::DecodeVolumeRecord;
using blockdev::EncodeVolumeRecord;
using blockdev::VolumeRecord;

TEST(UserData, RoundTripsEveryTagAndKind) {
  for (uint32_t tag = 0; tag < ublk::kQueueDepthMax; tag++) {
    for (auto kind : {ublk::CqeKind::kIoCmd, ublk::CqeKind::kWakeup}) {
      uint64_t ud = ublk::EncodeUserData(static_cast<uint16_t>(tag), kind);
      ASSERT_TRUE(ublk::UserDataValid(ud));
      ASSERT_EQ(ublk::UserDataTag(ud), tag);
      ASSERT_EQ(ublk::UserDataKind(ud), kind);
    }
  }
  EXPECT_FALSE(ublk::UserDataValid(0));  // kind 0 is never used
}

TEST(UserCopy, PositionsMatchTheKernelLayout) {
  EXPECT_EQ(ublk::UserCopyPos(0, 0, 0), 0x80000000ull);
  EXPECT_EQ(ublk::UserCopyPos(0, 1, 0) - ublk::UserCopyPos(0, 0, 0), 1ull << 25);
  EXPECT_EQ(ublk::UserCopyPos(3, 2, 4096), 0x80000000ull + (3ull << 41) + (2ull << 25) + 4096);
}

TEST(DeviceFlags, NeverAskForMoreThanOffered) {
  ublk::DeviceOptions o;
  EXPECT_EQ(ublk::ChooseDeviceFlags(0, o), 0u);
  const uint64_t k612 = 0x1fe;  // what Debian's 6.12 reports
  uint64_t f = ublk::ChooseDeviceFlags(k612, o);
  EXPECT_EQ(f & ~k612, 0u);
  EXPECT_TRUE(f & ublk::kFeatUserCopy);
  EXPECT_TRUE(f & ublk::kFeatUserRecovery);
  EXPECT_TRUE(f & ublk::kFeatUserRecoveryReissue);
  EXPECT_FALSE(f & ublk::kFeatUnprivilegedDev);
  o.user_copy = false;
  EXPECT_FALSE(ublk::ChooseDeviceFlags(k612, o) & ublk::kFeatUserCopy);
}

TEST(DeviceParams, FourKiBlocksDiscardAndVolatileCache) {
  ublk::DeviceOptions o;
  o.size_bytes = 1ull << 30;
  ublk_params p = ublk::MakeParams(o, 512 * 1024);
  EXPECT_EQ(p.basic.logical_bs_shift, 12);
  EXPECT_EQ(p.basic.physical_bs_shift, 12);
  EXPECT_EQ(p.basic.dev_sectors, (1ull << 30) >> 9);
  EXPECT_EQ(p.basic.max_sectors, 1024u);
  EXPECT_TRUE(p.basic.attrs & UBLK_ATTR_VOLATILE_CACHE);
  EXPECT_TRUE(p.types & UBLK_PARAM_TYPE_DISCARD);
  EXPECT_EQ(p.discard.discard_granularity, 4096u);
  EXPECT_GT(p.discard.max_write_zeroes_sectors, 0u);
}

TEST(DeviceParams, FiveTwelveByteLogicalBlocksKeepA4KiBPhysicalBlock) {
  ublk::DeviceOptions o;
  o.size_bytes = 1ull << 30;
  o.logical_block_bytes = 512;
  ublk_params p = ublk::MakeParams(o, 512 * 1024);
  EXPECT_EQ(p.basic.logical_bs_shift, 9);
  EXPECT_EQ(p.basic.physical_bs_shift, 12);  // file systems still align to the engine's block
  EXPECT_EQ(p.basic.io_min_shift, 12);
  EXPECT_EQ(p.discard.discard_granularity, 4096u);
}

TEST(VolumeRecord, LogicalBlockSizes) {
  EXPECT_TRUE(blockdev::CheckLogicalBlockSize(0).ok());
  EXPECT_TRUE(blockdev::CheckLogicalBlockSize(512).ok());
  EXPECT_TRUE(blockdev::CheckLogicalBlockSize(4096).ok());
  for (uint32_t bad : {1u, 1024u, 2048u, 8192u}) {
    Status st = blockdev::CheckLogicalBlockSize(bad);
    EXPECT_TRUE(st.IsInvalidArgument());
    EXPECT_NE(st.message().find("512 or 4096"), std::string::npos) << st.ToString();
  }
  VolumeRecord r;
  r.block_bytes = 512;
  r.object = 5;
  r.size_bytes = 1ull << 30;
  auto d = DecodeVolumeRecord("v", EncodeVolumeRecord(r));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->block_bytes, 512u);
}

TEST(VolumeRecord, RoundTripAndCorruption) {
  VolumeRecord r;
  r.object = 0x1122334455667788ull;
  r.size_bytes = 10ull << 30;
  std::string bytes = EncodeVolumeRecord(r);
  ASSERT_EQ(bytes.size(), blockdev::kVolumeRecordBytes);
  auto d = DecodeVolumeRecord("v", bytes);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->object, r.object);
  EXPECT_EQ(d->size_bytes, r.size_bytes);
  EXPECT_EQ(d->block_bytes, 4096u);
  EXPECT_TRUE(DecodeVolumeRecord("v", bytes.substr(1)).status().IsCorruption());
  std::string bad = bytes;
  bad[0] = 9;  // version
  EXPECT_TRUE(DecodeVolumeRecord("v", bad).status().IsCorruption());
  bad = bytes;
  bad[4] = 1;  // block size 4097
  EXPECT_TRUE(DecodeVolumeRecord("v", bad).status().IsCorruption());
}

TEST(VolumeRecord, NamesAndSizes) {
  EXPECT_TRUE(blockdev::CheckVolumeName("db-01.x_y").ok());
  EXPECT_FALSE(blockdev::CheckVolumeName("").ok());
  EXPECT_FALSE(blockdev::CheckVolumeName("a/b").ok());
  EXPECT_FALSE(blockdev::CheckVolumeName(std::string(65, 'a')).ok());
  EXPECT_TRUE(blockdev::CheckVolumeSize(1ull << 30).ok());
  EXPECT_FALSE(blockdev::CheckVolumeSize(0).ok());
  EXPECT_FALSE(blockdev::CheckVolumeSize((1ull << 30) + 512).ok());
  EXPECT_FALSE(blockdev::CheckVolumeSize(blockdev::kVolumeSizeBytesMax + 4096).ok());
  EXPECT_EQ(blockdev::VolumeKey("db"), "Vdb");
}

TEST(DeviceRecord, JsonRoundTrip) {
  blockdev::DeviceRecord r;
  r.dev_id = 7;
  r.volume = "vol\"q";
  r.object = 99;
  r.size_bytes = 1ull << 40;
  r.queues = 2;
  r.depth = 128;
  r.workers = 3;
  r.pid = 4242;
  r.block_bytes = 512;
  r.by_mount = true;
  r.members = {"/dev/nvme0n1", "/tmp/a b.img"};
  auto d = blockdev::DecodeDeviceRecord(blockdev::EncodeDeviceRecord(r), "test");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->dev_id, 7u);
  EXPECT_EQ(d->volume, r.volume);
  EXPECT_EQ(d->object, 99u);
  EXPECT_EQ(d->size_bytes, r.size_bytes);
  EXPECT_EQ(d->depth, 128u);
  EXPECT_EQ(d->workers, 3u);
  EXPECT_EQ(d->pid, 4242);
  EXPECT_EQ(d->members, r.members);
  EXPECT_EQ(d->block_bytes, 512u);
  EXPECT_TRUE(d->by_mount);
  // A record written before block_bytes / by_mount existed: 4096, served by astrafs-ublk.
  auto old = blockdev::DecodeDeviceRecord(
      "{\"dev_id\": 3, \"volume\": \"v\", \"object\": 1, \"size_bytes\": 1048576, "
      "\"pid\": 9, \"members\": [\"/dev/x\"]}",
      "old");
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ(old->block_bytes, 4096u);
  EXPECT_FALSE(old->by_mount);
  r.block_bytes = 1024;
  EXPECT_TRUE(blockdev::DecodeDeviceRecord(blockdev::EncodeDeviceRecord(r), "t")
                  .status()
                  .IsCorruption());
  EXPECT_TRUE(blockdev::DecodeDeviceRecord("{\"dev_id\": 1}", "t").status().IsCorruption());
  EXPECT_TRUE(blockdev::DecodeDeviceRecord("garbage", "t").status().IsCorruption());
}

TEST(ControlSocket, SameMembersSameSocket) {
  auto a = blockdev::ControlSocketPath(blockdev::CanonicalMembers({"/nonexist/b", "/nonexist/a"}));
  auto b = blockdev::ControlSocketPath(blockdev::CanonicalMembers({"/nonexist/a", "/nonexist/b"}));
  auto c = blockdev::ControlSocketPath(blockdev::CanonicalMembers({"/nonexist/a"}));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

}  // namespace
}  // namespace astra
