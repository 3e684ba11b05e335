// tools/cli_common: device lists, sizes, option values, the JSON writer.
#include "cli_common.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace astra::tools {
namespace {

TEST(CliCommonTest, DeviceLists) {
  auto r = ParseDeviceList({"a,b", "c", "d\\,e"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, (std::vector<std::string>{"a", "b", "c", "d,e"}));
  EXPECT_FALSE(ParseDeviceList({}).ok());
  EXPECT_FALSE(ParseDeviceList({"a,,b"}).ok());
  EXPECT_FALSE(ParseDeviceList({"a,"}).ok());
  auto dup = ParseDeviceList({"a,b", "a"});
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.status().message().find("named twice"), std::string::npos);
}

TEST(CliCommonTest, Sizes) {
  struct {
    const char* text;
    uint64_t bytes;
  } good[] = {{"0", 0},           {"4096", 4096},     {"512B", 512},
              {"64K", 64 << 10},  {"64k", 64 << 10},  {"64KiB", 64 << 10},
              {"64KB", 64 << 10}, {"1M", 1 << 20},    {"1.5G", 3ull << 29},
              {"2T", 2ull << 40}, {"1P", 1ull << 50}, {"0.5K", 512}};
  for (const auto& g : good) {
    auto r = ParseSize(g.text);
    ASSERT_TRUE(r.ok()) << g.text << ": " << r.status().ToString();
    EXPECT_EQ(*r, g.bytes) << g.text;
  }
  for (const char* bad : {"", "M", "-1", "1Q", "1MX", "1.", ".5", "1.0001K", "99999999999999999999",
                          "16384P", "16E", "1 M"}) {
    auto r = ParseSize(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("bad size"), std::string::npos) << bad;
    }
  }
}

TEST(CliCommonTest, CompressionAndOnOff) {
  auto z = ParseCompression("zstd");
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(z->compression, Compression::kZstd);
  EXPECT_EQ(z->level, 1);
  z = ParseCompression("zstd:19");
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(z->level, 19);
  z = ParseCompression("none");
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(z->compression, Compression::kNone);
  for (const char* bad : {"", "zstd:", "zstd:0", "zstd:20", "zstd:3x", "gzip", "none:1"}) {
    EXPECT_FALSE(ParseCompression(bad).ok()) << bad;
  }
  EXPECT_TRUE(*ParseOnOff("on", "--dedup"));
  EXPECT_FALSE(*ParseOnOff("off", "--dedup"));
  EXPECT_FALSE(ParseOnOff("maybe", "--dedup").ok());
}

TEST(CliCommonTest, HumanBytes) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(1023), "1023 B");
  EXPECT_EQ(HumanBytes(64 << 20), "64 MiB");
  EXPECT_EQ(HumanBytes(3ull << 29), "1.50 GiB");
}

TEST(CliCommonTest, JsonWriter) {
  EXPECT_EQ(JsonQuote("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
  char* buf = nullptr;
  size_t len = 0;
  std::FILE* f = open_memstream(&buf, &len);
  ASSERT_NE(f, nullptr);
  {
    JsonWriter j(f);
    j.BeginObject();
    j.String("s", "x\ty").Uint("u", 18446744073709551615ull).Int("i", -3).Bool("b", false);
    j.Double("d", 2.5);
    j.BeginArray("a").String("p").String("q").EndArray();
    j.BeginArray("empty").EndArray();
    j.BeginObject("o").Uint("n", 1).EndObject();
    j.EndObject();
  }
  std::fclose(f);
  const std::string out(buf, len);
  free(buf);
  EXPECT_EQ(out,
            "{\n"
            "  \"s\": \"x\\ty\",\n"
            "  \"u\": 18446744073709551615,\n"
            "  \"i\": -3,\n"
            "  \"b\": false,\n"
            "  \"d\": 2.5000,\n"
            "  \"a\": [\n"
            "    \"p\",\n"
            "    \"q\"\n"
            "  ],\n"
            "  \"empty\": [],\n"
            "  \"o\": {\n"
            "    \"n\": 1\n"
            "  }\n"
            "}\n");
}

}  // namespace
}  // namespace astra::tools
