// Block volumes with known content for the per-volume figures of `astrafs status`, shared by
// tools_test (offline, DEVICE...) and tools_control_test (online, MOUNTPOINT): the volume
// records are created and their objects written through the engine API, as astrafs-ublk does.
//
//   "alpha"  8 MiB: 16 unique incompressible blocks, the 8 blocks it shares with beta, 8 zero
//                   blocks (holes), 8 compressible text blocks (each different: no dedup)
//   "beta"   4 MiB: the 8 shared blocks (at block 100), 4 unique incompressible blocks
//   object kPlainObject (no volume record, like a file): 8 unique incompressible blocks
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "astra/pool.h"
#include "blockdev/volume_format.h"
#include "control_protocol.h"

namespace astra::tools::test {

inline constexpr uint64_t kVolBlock = 4096;
inline constexpr uint64_t kAlphaUnique = 16, kShared = 8, kAlphaZero = 8, kAlphaText = 8;
inline constexpr uint64_t kBetaUnique = 4, kBetaSharedAt = 100, kPlainBlocks = 8;
inline constexpr uint64_t kAlphaSize = 8ull << 20, kBetaSize = 4ull << 20;
inline constexpr ObjectId kPlainObject = 1'000'000;

// Incompressible and unique per tag.
inline std::string VolBlock(uint64_t tag) {
  std::string b(kVolBlock, '\0');
  std::mt19937_64 rng(tag * 104729 + 7);
  for (size_t i = 0; i < b.size(); i += 8) {
    const uint64_t x = rng();
    std::memcpy(&b[i], &x, 8);
  }
  std::snprintf(b.data(), 32, "ASTRA-VOLUME-TEST-%013llu", static_cast<unsigned long long>(tag));
  return b;
}
inline std::string VolBlocks(uint64_t first_tag, uint64_t n) {
  std::string s;
  for (uint64_t i = 0; i < n; ++i) s += VolBlock(first_tag + i);
  return s;
}
inline std::string TextBlocks(uint64_t n) {
  std::string s;
  for (uint64_t b = 0; b < n; ++b) {
    std::string blk;
    while (blk.size() < kVolBlock)
      blk += "volume text block " + std::to_string(b) + ", compressible; ";
    s += blk.substr(0, kVolBlock);
  }
  return s;
}
// beta's unique blocks (also written as a file by the online test, to share them live).
inline std::string BetaUnique() { return VolBlocks(30'000, kBetaUnique); }

struct TestVolumes {
  ObjectId alpha = 0, beta = 0;
};

// Creates the two volume records (one catalogue transaction, as astrafs-ublk), writes their
// objects and the plain object, and flushes. With `broken`, also a record "broken" whose value
// is not a volume record. Test failures are reported through gtest.
inline TestVolumes WriteTestVolumes(Pool& pool, bool broken = false) {
  TestVolumes v;
  auto a = pool.AllocateId();
  auto b = pool.AllocateId();
  EXPECT_TRUE(a.ok() && b.ok());
  if (!a.ok() || !b.ok()) return v;
  v.alpha = *a;
  v.beta = *b;
  CatalogTxn txn;
  txn.Put(blockdev::VolumeKey("alpha"), blockdev::EncodeVolumeRecord({4096, v.alpha, kAlphaSize}));
  txn.Put(blockdev::VolumeKey("beta"), blockdev::EncodeVolumeRecord({4096, v.beta, kBetaSize}));
  txn.expect_absent = {blockdev::VolumeKey("alpha"), blockdev::VolumeKey("beta")};
  if (broken) txn.Put(blockdev::VolumeKey("broken"), "not a volume record");
  EXPECT_TRUE(pool.Commit(txn).ok());

  const std::string shared = VolBlocks(20'000, kShared);
  std::string alpha = VolBlocks(10'000, kAlphaUnique) + shared +
                      std::string(kAlphaZero * kVolBlock, '\0') + TextBlocks(kAlphaText);
  EXPECT_TRUE(pool.Write(v.alpha, 0, uint32_t(alpha.size() / kVolBlock), alpha.data()).ok());
  EXPECT_TRUE(pool.Write(v.beta, kBetaSharedAt, kShared, shared.data()).ok());
  const std::string beta_unique = BetaUnique();
  EXPECT_TRUE(pool.Write(v.beta, 0, kBetaUnique, beta_unique.data()).ok());
  const std::string plain = VolBlocks(40'000, kPlainBlocks);
  EXPECT_TRUE(pool.Write(kPlainObject, 0, kPlainBlocks, plain.data()).ok());
  EXPECT_TRUE(pool.Flush().ok());
  return v;
}

inline uint64_t JU(const control::JsonValue& o, const char* key) {
  auto v = control::GetUint(o, key);
  EXPECT_TRUE(v.ok()) << key << ": " << v.status().ToString();
  return v.ok() ? *v : 0;
}

// The "volumes" of `astrafs status --json` output `st` against what WriteTestVolumes wrote.
// `shared_refs_elsewhere`: blocks of beta's unique ones also referenced by one other object (the
// online test writes them as a file too). Pool-wide sums are checked by the caller.
inline void CheckTestVolumes(const control::JsonValue& st, const TestVolumes& tv,
                             bool broken = false, uint64_t beta_unique_shared = 0) {
  const uint64_t k = JU(st, "data_shards"), m = JU(st, "parity_shards");
  const control::JsonValue* vs = st.Find("volumes");
  ASSERT_NE(vs, nullptr) << "no \"volumes\"";
  ASSERT_EQ(vs->kind, control::JsonValue::Kind::kArray);
  ASSERT_EQ(vs->items.size(), broken ? 3u : 2u);
  EXPECT_EQ(JU(st, "volumes_not_listed"), 0u);
  const control::JsonValue &a = vs->items[0], &b = vs->items[1];
  EXPECT_EQ(control::GetString(a, "name").value(), "alpha");
  EXPECT_EQ(control::GetString(b, "name").value(), "beta");
  EXPECT_EQ(JU(a, "object"), tv.alpha);
  EXPECT_EQ(JU(b, "object"), tv.beta);
  EXPECT_EQ(JU(a, "size_bytes"), kAlphaSize);
  EXPECT_EQ(JU(b, "size_bytes"), kBetaSize);
  EXPECT_EQ(JU(a, "block_bytes"), 4096u);
  EXPECT_EQ(JU(b, "block_bytes"), 4096u);
  // Logical: mapped blocks only (the zero blocks are holes).
  EXPECT_EQ(JU(a, "logical_bytes"), (kAlphaUnique + kShared + kAlphaText) * kVolBlock);
  EXPECT_EQ(JU(b, "logical_bytes"), (kShared + kBetaUnique) * kVolBlock);
  // Each shared block has 2 references: half of it saved in each volume.
  EXPECT_EQ(JU(a, "dedup_saved_bytes"), kShared * kVolBlock / 2);
  EXPECT_EQ(JU(b, "dedup_saved_bytes"), (kShared + beta_unique_shared) * kVolBlock / 2);
  // Exclusive: what only this volume references (incompressible blocks are stored whole).
  EXPECT_EQ(JU(b, "exclusive_stored_bytes"), (kBetaUnique - beta_unique_shared) * kVolBlock);
  EXPECT_EQ(JU(b, "stored_bytes"), (kBetaUnique + kShared) * kVolBlock / 2 +
                                       (kBetaUnique - beta_unique_shared) * kVolBlock / 2);
  EXPECT_EQ(JU(b, "compression_saved_bytes"), 0u) << "random blocks do not compress";
  // alpha's text compresses well; everything else in it is stored whole.
  EXPECT_GT(JU(a, "compression_saved_bytes"), kAlphaText * kVolBlock * 3 / 4);
  EXPECT_NEAR(double(JU(a, "stored_bytes") - JU(a, "exclusive_stored_bytes")),
              double(kShared * kVolBlock / 2), 2.0)
      << "the shared blocks count half in stored, not at all in exclusive";
  for (const control::JsonValue* v : {&a, &b}) {
    const std::string name = control::GetString(*v, "name").value();
    const uint64_t logical = JU(*v, "logical_bytes"), stored = JU(*v, "stored_bytes");
    EXPECT_EQ(JU(*v, "zero_saved_bytes"), JU(*v, "size_bytes") - logical) << name;
    EXPECT_EQ(JU(*v, "raw_bytes"), stored * (k + m) / k) << name;
    EXPECT_LE(JU(*v, "exclusive_stored_bytes"), stored) << name;
    // Every logical block is stored, saved by dedup or saved by compression (to rounding).
    EXPECT_NEAR(double(stored + JU(*v, "dedup_saved_bytes") + JU(*v, "compression_saved_bytes")),
                double(logical), 2.0)
        << name;
    const double ratio = control::GetDouble(*v, "data_reduction_ratio").value();
    EXPECT_NEAR(ratio, double(logical) / double(stored), 0.001) << name;
  }
  if (broken) {
    const control::JsonValue& x = vs->items[2];
    EXPECT_EQ(control::GetString(x, "name").value(), "broken");
    auto err = control::GetString(x, "error");
    ASSERT_TRUE(err.ok()) << "a bad record is listed with its error";
    EXPECT_NE(err->find("volume record of 'broken'"), std::string::npos) << *err;
    EXPECT_EQ(x.Find("logical_bytes"), nullptr);
  }
}

}  // namespace astra::tools::test
