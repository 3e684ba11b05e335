// Helpers shared by the command-line tools (mkfs.astrafs, fsck.astrafs, astrafs): device lists,
// sizes with unit suffixes, option values, a small JSON writer, progress reporting, logging, and
// the opening of pool members with clear messages. See doc/tools.md.
//
// Thread safety: none of these are shared between threads; each tool is single-threaded (the
// engine calls progress callbacks on the calling thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "astra/device.h"
#include "astra/pool.h"
#include "astra/result.h"
#include "astra/status.h"

namespace astra::tools {

// ---- Parsing ----

// Pool members as the user named them: each argument may itself be a comma-separated list
// ("a,b,c" as in fstab and astrafs-mount; "\," is a literal comma). Empty names are an error.
Result<std::vector<std::string>> ParseDeviceList(const std::vector<std::string>& args);

// "4096", "64K", "64KiB", "1.5G", "2T", "512B": binary units (K = 1024). Errors name the text.
Result<uint64_t> ParseSize(std::string_view text);

// "zstd", "zstd:LEVEL" (1..19) or "none".
struct CompressionSpec {
  Compression compression = Compression::kZstd;
  int level = 1;
};
Result<CompressionSpec> ParseCompression(std::string_view text);

// "on"/"off" (also yes/no, true/false, 1/0). `what` names the option in the error.
Result<bool> ParseOnOff(std::string_view text, std::string_view what);

// "64 MiB", "1.50 GiB", "512 B".
std::string HumanBytes(uint64_t bytes);

// ---- Output ----

// Streaming JSON writer with two-space indentation, or `compact` (one line, as the control
// protocol's JSON lines need). Keys and values are escaped; nesting is checked with assertions
// (a programming error, not an operating one). A newline follows the top-level value.
class JsonWriter {
 public:
  explicit JsonWriter(std::FILE* out, bool compact = false) : out_(out), compact_(compact) {}
  ~JsonWriter();
  JsonWriter& BeginObject(std::string_view key = {});
  JsonWriter& EndObject();
  JsonWriter& BeginArray(std::string_view key = {});
  JsonWriter& EndArray();
  JsonWriter& String(std::string_view key, std::string_view v);
  JsonWriter& Uint(std::string_view key, uint64_t v);
  JsonWriter& Int(std::string_view key, int64_t v);
  JsonWriter& Double(std::string_view key, double v);
  JsonWriter& Bool(std::string_view key, bool v);
  // Array elements (no key).
  JsonWriter& String(std::string_view v) { return String({}, v); }

 private:
  void Key(std::string_view key);
  void Indent();
  std::FILE* out_;
  bool compact_;
  std::vector<bool> in_array_;  // one per open container: true for arrays
  bool first_ = true;           // no element yet in the innermost container
};

// The counters of a check or scrub report as JSON fields of the current object:
// extents_checked, stripes_checked, blocks_mapped, checksum_errors, parity_errors,
// refcount_errors, other_errors, repaired.
void WriteCheckCounters(JsonWriter& j, const CheckReport& r);

// Escapes a string as a JSON string literal, quotes included.
std::string JsonQuote(std::string_view s);

// Progress of a long operation on stderr. A redrawn bar when stderr is a terminal or `force_bar`
// (--progress); otherwise a plain line at most every `plain_interval` (logs, pipes). Never on
// stdout, so --json output stays parseable.
class Progress {
 public:
  Progress(std::string label, bool force_bar,
           std::chrono::seconds plain_interval = std::chrono::seconds(10));
  ~Progress() { Finish(); }
  void Update(uint64_t done, uint64_t total, std::string_view phase);
  // Ends the bar's line (if one was drawn).
  void Finish();
  ProgressFn Fn() {
    return [this](uint64_t d, uint64_t t, std::string_view p) { Update(d, t, p); };
  }

 private:
  std::string label_;
  bool bar_;
  std::chrono::seconds plain_interval_;
  std::chrono::steady_clock::time_point last_{};
  std::string last_phase_;
  bool drawn_ = false;
};

// ---- Logging ----

// spdlog to stderr as "PROG: LEVEL: message" (the engine's own warnings included).
void SetupLogging(const char* prog, bool verbose);

// ---- Pool members ----

// A one-line explanation of why `path` could not be opened, with a hint for the usual causes
// (busy: the pool is mounted or open in another process, named when known).
std::string DescribeOpenError(const std::string& path, const Status& s);

// Opens every path with OpenDevice (no file creation). On the first failure returns it, already
// described by DescribeOpenError (code preserved).
Result<std::vector<std::unique_ptr<Device>>> OpenMembers(const std::vector<std::string>& paths);

// What the members' superblocks say before the pool is opened (opening a degraded pool
// read-write records the absent members as failed, so callers decide first). Devices that hold
// no superblock or another pool's are ignored here (Pool::Open names them).
struct PoolProbe {
  std::string pool_uuid;
  uint32_t members = 0;
  std::vector<uint32_t> missing;  // member indices none of the devices carries
};
Result<PoolProbe> ProbePool(const std::vector<std::unique_ptr<Device>>& devs);
// The refusal to open such a pool read-write without --degraded, naming the absent members.
Status DegradedRefusal(const PoolProbe& p);

// The mountinfo entry of `dir` when it is a mount point, or nullopt.
struct MountEntry {
  std::string mountpoint;
  std::string fstype;  // "fuse.astrafs"
  std::string source;  // the member list as given to astrafs-mount
};
std::optional<MountEntry> FindMount(const std::string& dir);

}  // namespace astra::tools
