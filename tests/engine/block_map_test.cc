// BlockMap (engine/src/block_map.h): the run-length block map must answer exactly like a
// per-block map under any sequence of maps, unmaps and range erases, and must keep sequentially
// written data in few runs (that is its RAM budget).
#include "block_map.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <set>
#include <tuple>
#include <random>
#include <vector>

namespace astra {
namespace {

using Model = std::map<std::pair<uint64_t, uint64_t>, uint32_t>;

void ExpectSame(const BlockMap& m, const Model& model, uint64_t objs, uint64_t blocks) {
  ASSERT_EQ(m.blocks(), model.size());
  for (uint64_t o = 0; o < objs; o++)
    for (uint64_t b = 0; b < blocks + 2; b++) {
      auto it = model.find({o, b});
      ASSERT_EQ(m.Get(o, b), it == model.end() ? kHoleId : it->second) << "obj " << o << " block " << b;
    }
  std::vector<std::tuple<uint64_t, uint64_t, uint32_t>> seen;
  m.ForEach([&](uint64_t o, uint64_t b, uint32_t id) { seen.emplace_back(o, b, id); });
  ASSERT_EQ(seen.size(), model.size());
  size_t i = 0;
  for (const auto& [k, id] : model) {
    ASSERT_EQ(seen[i], std::make_tuple(k.first, k.second, id));
    i++;
  }
}

TEST(BlockMap, SequentialRunsStayOneEntry) {
  BlockMap m;
  for (uint64_t b = 0; b < 10000; b++) EXPECT_EQ(m.Set(7, b, uint32_t(100 + b)), kHoleId);
  EXPECT_EQ(m.runs(), 1u);
  EXPECT_EQ(m.blocks(), 10000u);
  EXPECT_EQ(m.Get(7, 5000), 5100u);
  EXPECT_EQ(m.Get(7, 10000), kHoleId);
  EXPECT_EQ(m.BlockEnd(7), 10000u);
  EXPECT_EQ(m.BlockEnd(6), 0u);
  // An overwrite in the middle splits the run in three; writing the old id back merges again.
  EXPECT_EQ(m.Set(7, 4000, 1), 4100u);
  EXPECT_EQ(m.runs(), 3u);
  EXPECT_EQ(m.Set(7, 4000, 4100), 1u);
  EXPECT_EQ(m.runs(), 1u);
  // Filling a gap from the right end joins the run after it.
  BlockMap g;
  g.Set(1, 10, 20);
  g.Set(1, 9, 19);
  g.Set(1, 8, 18);
  EXPECT_EQ(g.runs(), 1u);
  EXPECT_EQ(g.Get(1, 8), 18u);
}

TEST(BlockMap, EraseReportsEveryIdHighestFirstWithinARun) {
  BlockMap m;
  for (uint64_t b = 0; b < 10; b++) m.Set(3, b, uint32_t(50 + b));
  m.Set(3, 20, 900);
  std::vector<uint32_t> ids;
  EXPECT_EQ(m.Erase(3, 2, 21, [&](uint32_t id) { ids.push_back(id); }), 9u);
  EXPECT_EQ(ids, (std::vector<uint32_t>{59, 58, 57, 56, 55, 54, 53, 52, 900}));
  EXPECT_EQ(m.blocks(), 2u);
  EXPECT_EQ(m.Get(3, 1), 51u);
  EXPECT_EQ(m.Get(3, 2), kHoleId);
  EXPECT_EQ(m.NextMapped(3, 0), std::optional<uint64_t>(0));
  EXPECT_EQ(m.NextMapped(3, 2), std::nullopt);
}

TEST(BlockMap, RandomOperationsMatchAPerBlockMap) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const uint64_t kObjs = 3, kBlocks = 64;
  for (int round = 0; round < 20; round++) {
    BlockMap m;
    Model model;
    uint32_t next_id = 0;
    for (int op = 0; op < 3000; op++) {
      const uint64_t o = rng() % kObjs, b = rng() % kBlocks;
      switch (rng() % 6) {
        case 0:
        case 1: {  // a sequential run of new ids, like a multi-block write
          const uint64_t n = 1 + rng() % 8;
          for (uint64_t i = 0; i < n && b + i < kBlocks; i++) {
            auto it = model.find({o, b + i});
            const uint32_t old = it == model.end() ? kHoleId : it->second;
            ASSERT_EQ(m.Set(o, b + i, next_id), old);
            model[{o, b + i}] = next_id++;
          }
          break;
        }
        case 2: {  // share an existing id (dedup, clone)
          if (model.empty()) break;
          const uint32_t id = std::next(model.begin(), long(rng() % model.size()))->second;
          auto it = model.find({o, b});
          ASSERT_EQ(m.Set(o, b, id), it == model.end() ? kHoleId : it->second);
          model[{o, b}] = id;
          break;
        }
        case 3: {  // unmap one block
          auto it = model.find({o, b});
          ASSERT_EQ(m.Set(o, b, kHoleId), it == model.end() ? kHoleId : it->second);
          if (it != model.end()) model.erase(it);
          break;
        }
        case 4: {  // erase a range (trim, truncate, delete)
          const uint64_t e = rng() % 8 == 0 ? UINT64_MAX : b + rng() % 20;
          std::multiset<uint32_t> want, got;
          for (auto it = model.lower_bound({o, b}); it != model.end() && it->first.first == o &&
                                                    it->first.second < e;) {
            want.insert(it->second);
            it = model.erase(it);
          }
          ASSERT_EQ(m.Erase(o, b, e, [&](uint32_t id) { got.insert(id); }), want.size());
          ASSERT_EQ(got, want);
          break;
        }
        case 5: {  // queries
          const uint64_t e = b + rng() % 20;
          std::vector<std::pair<uint64_t, uint32_t>> want, got;
          for (auto it = model.lower_bound({o, b}); it != model.end() && it->first.first == o &&
                                                    it->first.second < e; ++it)
            want.emplace_back(it->first.second, it->second);
          m.ForEachIn(o, b, e, [&](uint64_t blk, uint32_t id) { got.emplace_back(blk, id); });
          ASSERT_EQ(got, want);
          auto nx = model.lower_bound({o, b});
          ASSERT_EQ(m.NextMapped(o, b), nx != model.end() && nx->first.first == o
                                            ? std::optional<uint64_t>(nx->first.second)
                                            : std::nullopt);
          auto last = model.lower_bound({o + 1, 0});
          uint64_t end = 0;
          if (last != model.begin() && std::prev(last)->first.first == o) end = std::prev(last)->first.second + 1;
          ASSERT_EQ(m.BlockEnd(o), end);
          break;
        }
      }
    }
    ExpectSame(m, model, kObjs, kBlocks);
    ASSERT_LE(m.runs(), model.size());
  }
}

}  // namespace
}  // namespace astra
