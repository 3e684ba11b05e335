// The control protocol of a mounted pool: how `astrafs status|scrub|gc|replace
// MOUNTPOINT` reaches the astrafs-mount daemon that holds the pool (a pool is
// opened by one process at a time). Shared by the server
// (mount-helper/control_server.h) and the client (tools/control_client.h). The
// prose spec, with its versioning rules, is doc/control.md.
//
// Transport: a Unix-domain stream socket <run dir>/<pool-uuid>.sock (root, mode
// 0600), one request per connection. Messages are JSON lines (one compact JSON
// object, then '\n'):
//   client -> server: one request   {"version":1,"command":"status"}
//   server -> client: zero or more
//   {"type":"progress","done":N,"total":N,"phase":"..."}
//                     then one      {"type":"result","ok":true|false,...}   and
//                     EOF.
//
// Thread safety: the functions here are pure (no shared state); call them from
// any thread.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "astra/pool.h"
#include "astra/result.h"
#include "astra/status.h"
#include "cli_common.h"
#include "volume_space.h"

namespace astra::control {

// Protocol version this build speaks (requests carry it; doc/control.md: a
// server answers a request of a version it does not speak with an error naming
// the versions it does).
inline constexpr uint32_t kProtocolVersion = 1;
// Limits: a request line, one response line (the client's), the problems listed
// in a result.
inline constexpr size_t kRequestBytesMax = 64 * 1024;
inline constexpr size_t kResponseLineBytesMax = 16u << 20;
inline constexpr size_t kProblemsListedMax = 1000;
inline constexpr int kJsonDepthMax = 16;

// Directory of the sockets: $ASTRA_RUN_DIR when set and not empty, else
// /run/astrafs.
std::string RunDir();
// <RunDir()>/<pool_uuid>.sock
std::string SocketPath(std::string_view pool_uuid);

// ---- JSON ----

// A parsed JSON value. Numbers keep their literal text so 64-bit counters
// survive exactly.
struct JsonValue {
  enum class Kind : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  bool boolean = false;
  std::string text;              // kString: the value (unescaped); kNumber: the literal
  std::vector<JsonValue> items;  // kArray
  std::vector<std::pair<std::string, JsonValue>> members;  // kObject, in order

  // The member `key` of an object, or nullptr (also when this is not an
  // object).
  const JsonValue *Find(std::string_view key) const;
};

// Parses one JSON value (surrounding whitespace allowed). kInvalidArgument
// naming the offset of the first error; nesting deeper than kJsonDepthMax is an
// error.
Result<JsonValue> ParseJson(std::string_view text);

// Typed field access on an object. kInvalidArgument naming the key when it is
// absent or of another type (an unsigned field must be a non-negative integer
// that fits in 64 bits).
Result<uint64_t> GetUint(const JsonValue &obj, std::string_view key);
Result<int64_t> GetInt(const JsonValue &obj, std::string_view key);
Result<double> GetDouble(const JsonValue &obj,
                         std::string_view key);  // null reads as NaN
Result<bool> GetBool(const JsonValue &obj, std::string_view key);
Result<std::string> GetString(const JsonValue &obj, std::string_view key);

// Collects what a JsonWriter writes into a string (open_memstream).
class JsonString {
 public:
  JsonString();
  ~JsonString();
  JsonString(const JsonString &) = delete;
  JsonString &operator=(const JsonString &) = delete;
  std::FILE *file() { return f_; }
  // Everything written so far (flushes the stream).
  std::string str();

 private:
  char *buf_ = nullptr;
  size_t len_ = 0;
  std::FILE *f_ = nullptr;
};

// ---- Requests ----

struct Request {
  uint32_t version = kProtocolVersion;
  std::string command;  // "status", "scrub", "gc", "replace"
  // replace: the member to rebuild, by index or by its current path (exactly
  // one is set).
  std::optional<uint32_t> member;
  std::string old_path;
  std::string new_path;     // replace: absolute path of the new device
  uint64_t size_bytes = 0;  // replace: create new_path as a sparse file of this size when absent
  bool force = false;       // replace: use new_path even if it holds an AstraFS pool
  // Block volumes served by the mount's process (mount-helper/volume_exports.h):
  //   export   {"volume", "size" (0: must exist), "queues", "depth", "workers", "buffer_copy",
  //             "logical_block_size" (512 or 4096; absent or 0: the volume's, new ones 4096)}
  //   unexport {"device": N}      recover {"device": N}      exports {}
  std::string volume;
  uint32_t device = 0;
  uint32_t queues = 1, depth = 64, workers = 2;
  bool buffer_copy = false;
  uint32_t logical_block_bytes = 0;  // sent only when not 0 (older daemons do not know it)
};

// True for the commands a mount serves for its block volumes (export, unexport, recover,
// exports).
bool IsVolumeCommand(std::string_view command);

// One line, '\n' included.
std::string EncodeRequest(const Request &r);
// Parses a request line (without or with its '\n'). kInvalidArgument naming
// what is wrong; kNotSupported when the version is not kProtocolVersion (the
// message names the supported one).
Result<Request> DecodeRequest(std::string_view line);

// ---- Results (the payloads of a "result" line) ----

// As fields of the current JSON object / from such an object.
void WritePoolStatus(tools::JsonWriter &j, std::string_view key, const PoolStatus &ps);
Result<PoolStatus> ReadPoolStatus(const JsonValue &obj);
// The per-volume figures of a status result ("volumes", "volumes_not_listed": written by
// tools::WriteVolumeList). kNotFound when `obj` has no "volumes" (a server from before them);
// kInvalidArgument naming the field when one is missing or mistyped.
Result<tools::VolumeList> ReadVolumeList(const JsonValue &obj);
void WriteCheckReport(tools::JsonWriter &j, std::string_view key, const CheckReport &r);
Result<CheckReport> ReadCheckReport(const JsonValue &obj);
void WriteCleanerStats(tools::JsonWriter &j, std::string_view key, const CleanerStats &s);
Result<CleanerStats> ReadCleanerStats(const JsonValue &obj);

// {"type":"progress",...} line, '\n' included.
std::string ProgressLine(uint64_t done, uint64_t total, std::string_view phase);
// {"type":"result","ok":false,"code":"InvalidArgument","message":"..."} line.
std::string ErrorLine(const Status &s);
// The Status a failed result line carries (its code by name; unknown names read
// as kIOError).
Status StatusFromResult(const JsonValue &result);

}  // namespace astra::control
