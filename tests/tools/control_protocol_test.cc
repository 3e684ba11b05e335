// tools/control_protocol: the JSON parser, requests and the result payloads (round trips and
// refusals of bad input; the daemon answers these errors on the socket, so none may crash).
#include "control_protocol.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace astra::control {
namespace {

TEST(ControlProtocolTest, JsonParser) {
  auto v = ParseJson(R"( {"a": [1, -2, 3.5e2, true, false, null], "s": "x\"\\\n\u00e9\ud83d\ude00",
                         "big": 18446744073709551615, "o": {}} )");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  ASSERT_EQ(v->Find("a")->items.size(), 6u);
  EXPECT_EQ(v->Find("a")->items[2].text, "3.5e2");
  EXPECT_EQ(v->Find("s")->text, "x\"\\\n\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(GetUint(*v, "big").value(), UINT64_MAX) << "64-bit counters survive exactly";
  EXPECT_FALSE(GetUint(*v, "s").ok());
  EXPECT_FALSE(GetUint(*v, "missing").ok());
  for (const char* bad : {"", "{", "{\"a\"}", "{\"a\":1,}", "[1 2]", "\"abc", "tru", "{} x",
                          "\"\\q\"", "\"\\u12\"", "-", "{\"a\":\"\x01\"}"}) {
    EXPECT_FALSE(ParseJson(bad).ok()) << bad;
  }
  EXPECT_FALSE(ParseJson(std::string(1000, '[') + std::string(1000, ']')).ok()) << "depth limit";
  EXPECT_TRUE(ParseJson(std::string(kJsonDepthMax, '[') + std::string(kJsonDepthMax, ']')).ok());
  auto neg = ParseJson(R"({"n": -1, "d": null})");
  ASSERT_TRUE(neg.ok());
  EXPECT_FALSE(GetUint(*neg, "n").ok()) << "unsigned fields refuse negatives";
  EXPECT_EQ(GetInt(*neg, "n").value(), -1);
  EXPECT_TRUE(std::isnan(GetDouble(*neg, "d").value()));
}

TEST(ControlProtocolTest, Requests) {
  Request r;
  r.command = "status";
  const std::string line = EncodeRequest(r);
  EXPECT_EQ(line, "{\"version\":1,\"command\":\"status\"}\n");
  auto d = DecodeRequest(line);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->command, "status");

  r.command = "replace";
  r.member = 3;
  r.new_path = "/dev/new disk";
  r.size_bytes = 64 << 20;
  r.force = true;
  d = DecodeRequest(EncodeRequest(r));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->member, 3u);
  EXPECT_EQ(d->new_path, "/dev/new disk");
  EXPECT_EQ(d->size_bytes, 64u << 20);
  EXPECT_TRUE(d->force);

  auto v2 = DecodeRequest(R"({"version":2,"command":"status"})");
  ASSERT_FALSE(v2.ok());
  EXPECT_EQ(v2.status().code(), Status::Code::kNotSupported);
  EXPECT_NE(v2.status().message().find("speaks version 1"), std::string::npos);
  for (const char* bad :
       {R"([])", R"({"command":"status"})", R"({"version":1})",
        R"({"version":1,"command":"rm -rf"})", R"({"version":1,"command":"replace","new":"/x"})",
        R"({"version":1,"command":"replace","member":1,"old":"/a","new":"/x"})",
        R"({"version":1,"command":"replace","member":1,"new":"x"})",
        R"({"version":1,"command":"replace","member":999,"new":"/x"})",
        R"({"version":1,"command":"replace","member":1,"new":"/x","force":1})"}) {
    auto e = DecodeRequest(bad);
    EXPECT_FALSE(e.ok()) << bad;
    EXPECT_EQ(e.status().code(), Status::Code::kInvalidArgument) << bad;
  }
}

TEST(ControlProtocolTest, ResultPayloadsRoundTrip) {
  PoolStatus ps;
  ps.pool_uuid = "0123";
  ps.data_shards = 4;
  ps.parity_shards = 2;
  ps.members = 2;
  ps.generation = 77;
  ps.degraded = true;
  ps.member_status.push_back({0, "/dev/a", "uring", MemberState::kOnline, 1, 2, 3});
  ps.member_status.push_back({1, "", "", MemberState::kMissing, 0, 0, 0});
  ps.space.logical_bytes = 1ull << 40;
  ps.space.stored_bytes = 12345;
  ps.space.zero_saved_bytes = 4096;
  ps.space.dedup_saved_bytes = 8192;
  ps.space.compression_saved_bytes = 99;
  ps.space.data_reduction_ratio = 2.5;
  ps.cleaner.segments_cleaned = 5;
  ps.compression = Compression::kZstd;
  ps.compression_level = 3;
  ps.dedup = true;
  ps.read_poll_us = 77;
  CheckReport rep;
  rep.checksum_errors = 2;
  rep.repaired = 2;
  rep.problems = {"extent 1: bad \"checksum\""};

  JsonString s;
  {
    tools::JsonWriter j(s.file(), /*compact=*/true);
    j.BeginObject();
    WritePoolStatus(j, "status", ps);
    WriteCheckReport(j, "report", rep);
    j.EndObject();
  }
  const std::string line = s.str();
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line";
  auto v = ParseJson(line);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  auto got = ReadPoolStatus(*v->Find("status"));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->pool_uuid, "0123");
  EXPECT_EQ(got->generation, 77u);
  EXPECT_TRUE(got->degraded);
  ASSERT_EQ(got->member_status.size(), 2u);
  EXPECT_EQ(got->member_status[0].checksum_errors, 3u);
  EXPECT_EQ(got->member_status[1].state, MemberState::kMissing);
  EXPECT_EQ(got->space.logical_bytes, 1ull << 40);
  EXPECT_EQ(got->space.dedup_saved_bytes, 8192u);
  EXPECT_DOUBLE_EQ(got->space.data_reduction_ratio, 2.5);
  EXPECT_EQ(got->cleaner.segments_cleaned, 5u);
  EXPECT_EQ(got->compression_level, 3);
  EXPECT_EQ(got->read_poll_us, 77u);
  auto r = ReadCheckReport(*v->Find("report"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->checksum_errors, 2u);
  EXPECT_EQ(r->problems, rep.problems);

  // A payload with a field missing or of the wrong type is refused, naming the field.
  auto bad = ParseJson(R"({"pool_uuid":"x","data_shards":"4"})");
  ASSERT_TRUE(bad.ok());
  auto e = ReadPoolStatus(*bad);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("data_shards"), std::string::npos);

  // Errors travel by code name.
  auto err = ParseJson(ErrorLine(Status::Busy("a scrub is already running")));
  ASSERT_TRUE(err.ok());
  const Status back = StatusFromResult(*err);
  EXPECT_EQ(back.code(), Status::Code::kBusy);
  EXPECT_EQ(back.message(), "a scrub is already running");
}

// Per-volume figures (an additive field of the status result): round trip, the bad-record
// form, a result without them (an older server: kNotFound), and mistyped fields.
TEST(ControlProtocolTest, VolumesRoundTrip) {
  tools::VolumeList list;
  tools::VolumeSpace v;
  v.name = "db";
  v.object = 42;
  v.size_bytes = 1ull << 40;
  v.block_bytes = 4096;
  v.space.logical_bytes = 3ull << 32;
  v.space.stored_bytes = 12345;
  v.space.exclusive_stored_bytes = 1000;
  v.space.dedup_saved_bytes = 8192;
  v.space.compression_saved_bytes = 77;
  v.space.data_reduction_ratio = 2.5;
  v.raw_bytes = tools::RawBytes(v.space.stored_bytes, 4, 2);
  v.zero_saved_bytes = v.size_bytes - v.space.logical_bytes;
  list.volumes.push_back(v);
  tools::VolumeSpace bad;
  bad.name = "broken";
  bad.error = "volume record of 'broken': length 3, expected 32";
  list.volumes.push_back(bad);
  list.not_listed = 7;
  JsonString s;
  {
    tools::JsonWriter j(s.file(), /*compact=*/true);
    j.BeginObject();
    tools::WriteVolumeList(j, list);
    j.EndObject();
  }
  auto parsed = ParseJson(s.str());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  auto got = ReadVolumeList(*parsed);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->volumes.size(), 2u);
  EXPECT_EQ(got->not_listed, 7u);
  const tools::VolumeSpace& g = got->volumes[0];
  EXPECT_EQ(g.name, "db");
  EXPECT_EQ(g.object, 42u);
  EXPECT_EQ(g.size_bytes, 1ull << 40);
  EXPECT_EQ(g.block_bytes, 4096u);
  EXPECT_EQ(g.space.logical_bytes, 3ull << 32);
  EXPECT_EQ(g.space.stored_bytes, 12345u);
  EXPECT_EQ(g.space.exclusive_stored_bytes, 1000u);
  EXPECT_EQ(g.raw_bytes, 18517u) << "12345 x 6 / 4, rounded down";
  EXPECT_EQ(g.zero_saved_bytes, (1ull << 40) - (3ull << 32));
  EXPECT_EQ(g.space.dedup_saved_bytes, 8192u);
  EXPECT_EQ(g.space.compression_saved_bytes, 77u);
  EXPECT_DOUBLE_EQ(g.space.data_reduction_ratio, 2.5);
  EXPECT_EQ(got->volumes[1].name, "broken");
  EXPECT_EQ(got->volumes[1].error, bad.error);

  EXPECT_EQ(tools::RawBytes(UINT64_MAX / 2, 1, 1), UINT64_MAX - 1) << "no overflow";
  EXPECT_EQ(tools::RawBytes(0, 4, 2), 0u);

  auto old = ParseJson(R"({"status":{}})");
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(ReadVolumeList(*old).status().code(), Status::Code::kNotFound);
  auto mistyped = ParseJson(
      R"({"volumes":[{"name":"x","object":"1"}],"volumes_not_listed":0})");
  ASSERT_TRUE(mistyped.ok());
  auto e = ReadVolumeList(*mistyped);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(e.status().message().find("object"), std::string::npos);
}

}  // namespace
}  // namespace astra::control
