#include "control_protocol.h"

#include <cassert>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <type_traits>

namespace astra::control {

std::string RunDir() {
  const char *env = std::getenv("ASTRA_RUN_DIR");
  if (env != nullptr && env[0] != '\0') return env;
  return "/run/astrafs";
}

std::string SocketPath(std::string_view pool_uuid) {
  return RunDir() + "/" + std::string(pool_uuid) + ".sock";
}

// ---- JSON ----

const JsonValue *JsonValue::Find(std::string_view key) const {
  if (kind != Kind::kObject) return nullptr;
  for (const auto &[k, v] : members) {
    if (k == key) return &v;
  }
  return nullptr;
}

namespace {

class Parser {
 public:
  explicit Parser(std::string_view t) : t_(t) {}

  Result<JsonValue> ParseAll() {
    JsonValue v;
    ASTRA_RETURN_IF_ERROR(Value(&v, 0));
    Space();
    if (i_ != t_.size()) return Error("trailing characters");
    return v;
  }

 private:
  Status Error(std::string_view why) const {
    return Status::InvalidArgument("bad JSON at byte " + std::to_string(i_) + ": " +
                                   std::string(why));
  }
  void Space() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\n' || t_[i_] == '\r'))
      ++i_;
  }
  bool Literal(std::string_view word) {
    if (t_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  Status Value(JsonValue *v, int depth) {
    if (depth > kJsonDepthMax) return Error("nested too deeply");
    Space();
    if (i_ >= t_.size()) return Error("unexpected end");
    const char c = t_[i_];
    if (c == '{') return Object(v, depth);
    if (c == '[') return Array(v, depth);
    if (c == '"') {
      v->kind = JsonValue::Kind::kString;
      return String(&v->text);
    }
    if (Literal("true")) {
      v->kind = JsonValue::Kind::kBool;
      v->boolean = true;
      return Status::Ok();
    }
    if (Literal("false")) {
      v->kind = JsonValue::Kind::kBool;
      return Status::Ok();
    }
    if (Literal("null")) {
      v->kind = JsonValue::Kind::kNull;
      return Status::Ok();
    }
    if (c == '-' || (c >= '0' && c <= '9')) return Number(v);
    return Error("unexpected character");
  }

  Status Number(JsonValue *v) {
    const size_t start = i_;
    if (t_[i_] == '-') ++i_;
    size_t digits = 0;
    while (i_ < t_.size() && std::strchr("0123456789.eE+-", t_[i_]) != nullptr) {
      digits += t_[i_] >= '0' && t_[i_] <= '9';
      ++i_;
    }
    if (digits == 0) return Error("bad number");
    v->kind = JsonValue::Kind::kNumber;
    v->text = std::string(t_.substr(start, i_ - start));
    return Status::Ok();
  }

  static void AppendUtf8(std::string *o, uint32_t cp) {
    if (cp < 0x80) {
      o->push_back(char(cp));
    } else if (cp < 0x800) {
      o->push_back(char(0xC0 | (cp >> 6)));
      o->push_back(char(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      o->push_back(char(0xE0 | (cp >> 12)));
      o->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
      o->push_back(char(0x80 | (cp & 0x3F)));
    } else {
      o->push_back(char(0xF0 | (cp >> 18)));
      o->push_back(char(0x80 | ((cp >> 12) & 0x3F)));
      o->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
      o->push_back(char(0x80 | (cp & 0x3F)));
    }
  }

  Status Hex4(uint32_t *out) {
    if (i_ + 4 > t_.size()) return Error("short \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = t_[i_++];
      v <<= 4;
      if (h >= '0' && h <= '9') {
        v |= uint32_t(h - '0');
      } else if (h >= 'a' && h <= 'f') {
        v |= uint32_t(h - 'a' + 10);
      } else if (h >= 'A' && h <= 'F') {
        v |= uint32_t(h - 'A' + 10);
      } else {
        return Error("bad \\u escape");
      }
    }
    *out = v;
    return Status::Ok();
  }

  Status String(std::string *out) {
    assert(t_[i_] == '"');
    ++i_;
    out->clear();
    while (i_ < t_.size()) {
      const char c = t_[i_++];
      if (c == '"') return Status::Ok();
      if (static_cast<unsigned char>(c) < 0x20) return Error("control character in a string");
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (i_ >= t_.size()) break;
      const char e = t_[i_++];
      switch (e) {
        case '"':
          out->push_back('"');
          break;
        case '\\':
          out->push_back('\\');
          break;
        case '/':
          out->push_back('/');
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          uint32_t cp = 0;
          ASTRA_RETURN_IF_ERROR(Hex4(&cp));
          if (cp >= 0xD800 && cp < 0xDC00 && Literal("\\u")) {
            uint32_t lo = 0;
            ASTRA_RETURN_IF_ERROR(Hex4(&lo));
            if (lo < 0xDC00 || lo >= 0xE000) return Error("bad surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          AppendUtf8(out, cp);
          break;
        }
        default:
          return Error("bad escape");
      }
    }
    return Error("unterminated string");
  }

  Status Array(JsonValue *v, int depth) {
    ++i_;
    v->kind = JsonValue::Kind::kArray;
    Space();
    if (i_ < t_.size() && t_[i_] == ']') {
      ++i_;
      return Status::Ok();
    }
    while (true) {
      v->items.emplace_back();
      ASTRA_RETURN_IF_ERROR(Value(&v->items.back(), depth + 1));
      Space();
      if (i_ < t_.size() && t_[i_] == ',') {
        ++i_;
        continue;
      }
      if (i_ < t_.size() && t_[i_] == ']') {
        ++i_;
        return Status::Ok();
      }
      return Error("expected ',' or ']'");
    }
  }

  Status Object(JsonValue *v, int depth) {
    ++i_;
    v->kind = JsonValue::Kind::kObject;
    Space();
    if (i_ < t_.size() && t_[i_] == '}') {
      ++i_;
      return Status::Ok();
    }
    while (true) {
      Space();
      if (i_ >= t_.size() || t_[i_] != '"') return Error("expected a key");
      std::string key;
      ASTRA_RETURN_IF_ERROR(String(&key));
      Space();
      if (i_ >= t_.size() || t_[i_] != ':') return Error("expected ':'");
      ++i_;
      v->members.emplace_back(std::move(key), JsonValue{});
      ASTRA_RETURN_IF_ERROR(Value(&v->members.back().second, depth + 1));
      Space();
      if (i_ < t_.size() && t_[i_] == ',') {
        ++i_;
        continue;
      }
      if (i_ < t_.size() && t_[i_] == '}') {
        ++i_;
        return Status::Ok();
      }
      return Error("expected ',' or '}'");
    }
  }

  std::string_view t_;
  size_t i_ = 0;
};

Status Missing(std::string_view key, std::string_view what) {
  return Status::InvalidArgument("\"" + std::string(key) + "\" must be " + std::string(what));
}

}  // namespace

Result<JsonValue> ParseJson(std::string_view text) { return Parser(text).ParseAll(); }

Result<uint64_t> GetUint(const JsonValue &obj, std::string_view key) {
  const JsonValue *v = obj.Find(key);
  const char *what = "a non-negative integer";
  if (v == nullptr || v->kind != JsonValue::Kind::kNumber || v->text.empty() ||
      v->text.find_first_not_of("0123456789") != std::string::npos) {
    return Missing(key, what);
  }
  errno = 0;
  const unsigned long long x = std::strtoull(v->text.c_str(), nullptr, 10);
  if (errno == ERANGE) return Missing(key, what);
  return uint64_t(x);
}

Result<int64_t> GetInt(const JsonValue &obj, std::string_view key) {
  const JsonValue *v = obj.Find(key);
  const char *what = "an integer";
  if (v == nullptr || v->kind != JsonValue::Kind::kNumber) return Missing(key, what);
  char *end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v->text.c_str(), &end, 10);
  if (errno == ERANGE || *end != '\0') return Missing(key, what);
  return int64_t(x);
}

Result<double> GetDouble(const JsonValue &obj, std::string_view key) {
  const JsonValue *v = obj.Find(key);
  if (v != nullptr && v->kind == JsonValue::Kind::kNull) return std::nan("");
  if (v == nullptr || v->kind != JsonValue::Kind::kNumber) return Missing(key, "a number");
  char *end = nullptr;
  const double x = std::strtod(v->text.c_str(), &end);
  if (*end != '\0') return Missing(key, "a number");
  return x;
}

Result<bool> GetBool(const JsonValue &obj, std::string_view key) {
  const JsonValue *v = obj.Find(key);
  if (v == nullptr || v->kind != JsonValue::Kind::kBool) return Missing(key, "true or false");
  return v->boolean;
}

Result<std::string> GetString(const JsonValue &obj, std::string_view key) {
  const JsonValue *v = obj.Find(key);
  if (v == nullptr || v->kind != JsonValue::Kind::kString) return Missing(key, "a string");
  return v->text;
}

JsonString::JsonString() { f_ = ::open_memstream(&buf_, &len_); }

JsonString::~JsonString() {
  if (f_ != nullptr) std::fclose(f_);
  std::free(buf_);
}

std::string JsonString::str() {
  if (f_ == nullptr) return {};
  std::fflush(f_);
  return std::string(buf_, len_);
}

// ---- Requests ----

bool IsVolumeCommand(std::string_view command) {
  return command == "export" || command == "unexport" || command == "recover" ||
         command == "exports";
}

namespace {

// The fields of export / unexport (exports has none). Optional ones keep Request's defaults.
Result<Request> DecodeVolumeRequest(const JsonValue &v, Request r) {
  auto opt_uint = [&](std::string_view key, uint64_t max, auto *out) -> Status {
    if (v.Find(key) == nullptr) return Status::Ok();
    auto x = GetUint(v, key);
    if (!x.ok()) return x.status();
    if (*x > max) return Status::InvalidArgument("\"" + std::string(key) + "\" is out of range");
    *out = static_cast<std::remove_pointer_t<decltype(out)>>(*x);
    return Status::Ok();
  };
  if (r.command == "unexport" || r.command == "recover") {
    auto d = GetUint(v, "device");
    if (!d.ok()) return d.status();
    if (*d > UINT32_MAX) return Status::InvalidArgument("\"device\" is out of range");
    r.device = uint32_t(*d);
    return r;
  }
  if (r.command == "exports") return r;
  auto vol = GetString(v, "volume");
  if (!vol.ok()) return vol.status();
  r.volume = *vol;
  ASTRA_RETURN_IF_ERROR(opt_uint("size", UINT64_MAX, &r.size_bytes));
  ASTRA_RETURN_IF_ERROR(opt_uint("queues", 1024, &r.queues));
  ASTRA_RETURN_IF_ERROR(opt_uint("depth", 65536, &r.depth));
  ASTRA_RETURN_IF_ERROR(opt_uint("workers", 1024, &r.workers));
  ASTRA_RETURN_IF_ERROR(opt_uint("logical_block_size", 1u << 20, &r.logical_block_bytes));
  if (v.Find("buffer_copy") != nullptr) {
    auto b = GetBool(v, "buffer_copy");
    if (!b.ok()) return b.status();
    r.buffer_copy = *b;
  }
  return r;
}

}  // namespace

std::string EncodeRequest(const Request &r) {
  JsonString s;
  {
    tools::JsonWriter j(s.file(), /*compact=*/true);
    j.BeginObject();
    j.Uint("version", r.version);
    j.String("command", r.command);
    if (r.command == "replace") {
      if (r.member) j.Uint("member", *r.member);
      if (!r.old_path.empty()) j.String("old", r.old_path);
      j.String("new", r.new_path);
      j.Uint("size", r.size_bytes);
      j.Bool("force", r.force);
    }
    if (r.command == "export") {
      j.String("volume", r.volume).Uint("size", r.size_bytes);
      j.Uint("queues", r.queues).Uint("depth", r.depth).Uint("workers", r.workers);
      j.Bool("buffer_copy", r.buffer_copy);
      if (r.logical_block_bytes != 0) j.Uint("logical_block_size", r.logical_block_bytes);
    }
    if (r.command == "unexport" || r.command == "recover") j.Uint("device", r.device);
    j.EndObject();
  }
  return s.str();
}

Result<Request> DecodeRequest(std::string_view line) {
  auto v = ParseJson(line);
  if (!v.ok()) return v.status();
  if (v->kind != JsonValue::Kind::kObject) {
    return Status::InvalidArgument("a request must be a JSON object");
  }
  Request r;
  auto version = GetUint(*v, "version");
  if (!version.ok()) return version.status();
  if (*version != kProtocolVersion) {
    return Status::NotSupported("protocol version " + std::to_string(*version) +
                                " is not supported; this server speaks version " +
                                std::to_string(kProtocolVersion));
  }
  r.version = uint32_t(*version);
  auto command = GetString(*v, "command");
  if (!command.ok()) return command.status();
  r.command = *command;
  if (r.command == "status" || r.command == "scrub" || r.command == "gc") return r;
  if (IsVolumeCommand(r.command)) return DecodeVolumeRequest(*v, std::move(r));
  if (r.command != "replace") {
    return Status::InvalidArgument("unknown command \"" + r.command +
                                   "\" (status, scrub, gc, replace)");
  }
  if (v->Find("member") != nullptr) {
    auto m = GetUint(*v, "member");
    if (!m.ok()) return m.status();
    if (*m > kMembersMax) return Status::InvalidArgument("\"member\" is out of range");
    r.member = uint32_t(*m);
  }
  if (v->Find("old") != nullptr) {
    auto o = GetString(*v, "old");
    if (!o.ok()) return o.status();
    r.old_path = *o;
  }
  if (r.member.has_value() == !r.old_path.empty()) {
    return Status::InvalidArgument("replace needs exactly one of \"member\" and \"old\"");
  }
  auto n = GetString(*v, "new");
  if (!n.ok()) return n.status();
  r.new_path = *n;
  if (r.new_path.empty() || r.new_path[0] != '/') {
    return Status::InvalidArgument("\"new\" must be an absolute path");
  }
  if (v->Find("size") != nullptr) {
    auto s = GetUint(*v, "size");
    if (!s.ok()) return s.status();
    r.size_bytes = *s;
  }
  if (v->Find("force") != nullptr) {
    auto f = GetBool(*v, "force");
    if (!f.ok()) return f.status();
    r.force = *f;
  }
  return r;
}

// ---- Results ----

void WritePoolStatus(tools::JsonWriter &j, std::string_view key, const PoolStatus &ps) {
  j.BeginObject(key);
  j.String("pool_uuid", ps.pool_uuid);
  j.Uint("data_shards", ps.data_shards).Uint("parity_shards", ps.parity_shards);
  j.Uint("members", ps.members).Uint("generation", ps.generation);
  j.Bool("degraded", ps.degraded).Bool("read_only", ps.read_only);
  j.BeginArray("member_status");
  for (const auto &m : ps.member_status) {
    j.BeginObject()
        .Uint("index", m.index)
        .String("path", m.path)
        .String("backend", m.backend)
        .Uint("state", uint32_t(m.state))
        .Uint("read_errors", m.read_errors)
        .Uint("write_errors", m.write_errors)
        .Uint("checksum_errors", m.checksum_errors)
        .EndObject();
  }
  j.EndArray();
  const SpaceStats &s = ps.space;
  j.BeginObject("space")
      .Uint("logical_bytes", s.logical_bytes)
      .Uint("stored_bytes", s.stored_bytes)
      .Uint("raw_bytes", s.raw_bytes)
      .Uint("zero_saved_bytes", s.zero_saved_bytes)
      .Uint("dedup_saved_bytes", s.dedup_saved_bytes)
      .Uint("compression_saved_bytes", s.compression_saved_bytes)
      .Uint("capacity_bytes", s.capacity_bytes)
      .Uint("free_bytes", s.free_bytes)
      .Uint("reclaimable_bytes", s.reclaimable_bytes)
      .Double("data_reduction_ratio", s.data_reduction_ratio)
      .EndObject();
  j.Uint("segments_total", ps.segments_total).Uint("segments_free", ps.segments_free);
  j.Uint("journal_seq", ps.journal_seq).Uint("checkpoint_seq", ps.checkpoint_seq);
  j.Uint("repaired_blocks", ps.repaired_blocks);
  WriteCleanerStats(j, "cleaner", ps.cleaner);
  j.Uint("compression", uint32_t(ps.compression));
  j.Int("compression_level", ps.compression_level);
  j.Bool("dedup", ps.dedup);
  j.Uint("read_poll_us", ps.read_poll_us);
  j.EndObject();
}

// Assigns a field or returns its error from the enclosing function.
#define ASTRA_GET(dst, expr)               \
  do {                                     \
    auto r_ = (expr);                      \
    if (!r_.ok()) return r_.status();      \
    dst = static_cast<decltype(dst)>(*r_); \
  } while (0)

Result<PoolStatus> ReadPoolStatus(const JsonValue &o) {
  if (o.kind != JsonValue::Kind::kObject) return Status::InvalidArgument("status is not an object");
  PoolStatus ps;
  ASTRA_GET(ps.pool_uuid, GetString(o, "pool_uuid"));
  ASTRA_GET(ps.data_shards, GetUint(o, "data_shards"));
  ASTRA_GET(ps.parity_shards, GetUint(o, "parity_shards"));
  ASTRA_GET(ps.members, GetUint(o, "members"));
  ASTRA_GET(ps.generation, GetUint(o, "generation"));
  ASTRA_GET(ps.degraded, GetBool(o, "degraded"));
  ASTRA_GET(ps.read_only, GetBool(o, "read_only"));
  const JsonValue *ms = o.Find("member_status");
  if (ms == nullptr || ms->kind != JsonValue::Kind::kArray || ms->items.size() > kMembersMax) {
    return Status::InvalidArgument("\"member_status\" must be an array of members");
  }
  for (const JsonValue &m : ms->items) {
    MemberStatus s;
    uint64_t state = 0;
    ASTRA_GET(s.index, GetUint(m, "index"));
    ASTRA_GET(s.path, GetString(m, "path"));
    ASTRA_GET(s.backend, GetString(m, "backend"));
    ASTRA_GET(state, GetUint(m, "state"));
    if (state > uint64_t(MemberState::kRebuilding)) {
      return Status::InvalidArgument("unknown member state " + std::to_string(state));
    }
    s.state = MemberState(state);
    ASTRA_GET(s.read_errors, GetUint(m, "read_errors"));
    ASTRA_GET(s.write_errors, GetUint(m, "write_errors"));
    ASTRA_GET(s.checksum_errors, GetUint(m, "checksum_errors"));
    ps.member_status.push_back(std::move(s));
  }
  const JsonValue *sp = o.Find("space");
  if (sp == nullptr || sp->kind != JsonValue::Kind::kObject) {
    return Status::InvalidArgument("\"space\" must be an object");
  }
  SpaceStats &s = ps.space;
  ASTRA_GET(s.logical_bytes, GetUint(*sp, "logical_bytes"));
  ASTRA_GET(s.stored_bytes, GetUint(*sp, "stored_bytes"));
  ASTRA_GET(s.raw_bytes, GetUint(*sp, "raw_bytes"));
  ASTRA_GET(s.zero_saved_bytes, GetUint(*sp, "zero_saved_bytes"));
  ASTRA_GET(s.dedup_saved_bytes, GetUint(*sp, "dedup_saved_bytes"));
  ASTRA_GET(s.compression_saved_bytes, GetUint(*sp, "compression_saved_bytes"));
  ASTRA_GET(s.capacity_bytes, GetUint(*sp, "capacity_bytes"));
  ASTRA_GET(s.free_bytes, GetUint(*sp, "free_bytes"));
  ASTRA_GET(s.reclaimable_bytes, GetUint(*sp, "reclaimable_bytes"));
  ASTRA_GET(s.data_reduction_ratio, GetDouble(*sp, "data_reduction_ratio"));
  ASTRA_GET(ps.segments_total, GetUint(o, "segments_total"));
  ASTRA_GET(ps.segments_free, GetUint(o, "segments_free"));
  ASTRA_GET(ps.journal_seq, GetUint(o, "journal_seq"));
  ASTRA_GET(ps.checkpoint_seq, GetUint(o, "checkpoint_seq"));
  ASTRA_GET(ps.repaired_blocks, GetUint(o, "repaired_blocks"));
  const JsonValue *cl = o.Find("cleaner");
  if (cl == nullptr) return Status::InvalidArgument("\"cleaner\" must be an object");
  ASTRA_GET(ps.cleaner, ReadCleanerStats(*cl));
  uint64_t compression = 0;
  ASTRA_GET(compression, GetUint(o, "compression"));
  if (compression > uint64_t(Compression::kZstd)) {
    return Status::InvalidArgument("unknown compression " + std::to_string(compression));
  }
  ps.compression = Compression(compression);
  ASTRA_GET(ps.compression_level, GetInt(o, "compression_level"));
  ASTRA_GET(ps.dedup, GetBool(o, "dedup"));
  if (o.Find("read_poll_us") != nullptr) {  // added within version 1: older daemons omit it (0)
    uint64_t poll_us = 0;
    ASTRA_GET(poll_us, GetUint(o, "read_poll_us"));
    if (poll_us > UINT32_MAX) return Status::InvalidArgument("read_poll_us out of range");
    ps.read_poll_us = uint32_t(poll_us);
  }
  return ps;
}

Result<tools::VolumeList> ReadVolumeList(const JsonValue &o) {
  const JsonValue *vs = o.Find("volumes");
  if (vs == nullptr) return Status::NotFound("no \"volumes\"");
  if (vs->kind != JsonValue::Kind::kArray || vs->items.size() > tools::kVolumesListedMax) {
    return Status::InvalidArgument("\"volumes\" must be an array of at most " +
                                   std::to_string(tools::kVolumesListedMax) + " volumes");
  }
  tools::VolumeList list;
  ASTRA_GET(list.not_listed, GetUint(o, "volumes_not_listed"));
  for (const JsonValue &e : vs->items) {
    tools::VolumeSpace v;
    ASTRA_GET(v.name, GetString(e, "name"));
    if (e.Find("error") != nullptr) {
      ASTRA_GET(v.error, GetString(e, "error"));
      list.volumes.push_back(std::move(v));
      continue;
    }
    ASTRA_GET(v.object, GetUint(e, "object"));
    ASTRA_GET(v.size_bytes, GetUint(e, "size_bytes"));
    ASTRA_GET(v.block_bytes, GetUint(e, "block_bytes"));
    ASTRA_GET(v.space.logical_bytes, GetUint(e, "logical_bytes"));
    ASTRA_GET(v.space.stored_bytes, GetUint(e, "stored_bytes"));
    ASTRA_GET(v.space.exclusive_stored_bytes, GetUint(e, "exclusive_stored_bytes"));
    ASTRA_GET(v.raw_bytes, GetUint(e, "raw_bytes"));
    ASTRA_GET(v.zero_saved_bytes, GetUint(e, "zero_saved_bytes"));
    ASTRA_GET(v.space.dedup_saved_bytes, GetUint(e, "dedup_saved_bytes"));
    ASTRA_GET(v.space.compression_saved_bytes, GetUint(e, "compression_saved_bytes"));
    ASTRA_GET(v.space.data_reduction_ratio, GetDouble(e, "data_reduction_ratio"));
    list.volumes.push_back(std::move(v));
  }
  return list;
}

void WriteCheckReport(tools::JsonWriter &j, std::string_view key, const CheckReport &r) {
  j.BeginObject(key);
  tools::WriteCheckCounters(j, r);
  j.BeginArray("problems");
  for (size_t i = 0; i < r.problems.size() && i < kProblemsListedMax; ++i) j.String(r.problems[i]);
  if (r.problems.size() > kProblemsListedMax) {
    j.String("... and " + std::to_string(r.problems.size() - kProblemsListedMax) + " more");
  }
  j.EndArray();
  j.EndObject();
}

Result<CheckReport> ReadCheckReport(const JsonValue &o) {
  CheckReport r;
  ASTRA_GET(r.extents_checked, GetUint(o, "extents_checked"));
  ASTRA_GET(r.stripes_checked, GetUint(o, "stripes_checked"));
  ASTRA_GET(r.blocks_mapped, GetUint(o, "blocks_mapped"));
  ASTRA_GET(r.checksum_errors, GetUint(o, "checksum_errors"));
  ASTRA_GET(r.parity_errors, GetUint(o, "parity_errors"));
  ASTRA_GET(r.refcount_errors, GetUint(o, "refcount_errors"));
  ASTRA_GET(r.other_errors, GetUint(o, "other_errors"));
  ASTRA_GET(r.repaired, GetUint(o, "repaired"));
  const JsonValue *p = o.Find("problems");
  if (p == nullptr || p->kind != JsonValue::Kind::kArray) {
    return Status::InvalidArgument("\"problems\" must be an array");
  }
  for (const JsonValue &s : p->items) {
    if (s.kind != JsonValue::Kind::kString) {
      return Status::InvalidArgument("\"problems\" must hold strings");
    }
    r.problems.push_back(s.text);
  }
  return r;
}

void WriteCleanerStats(tools::JsonWriter &j, std::string_view key, const CleanerStats &s) {
  j.BeginObject(key)
      .Uint("passes", s.passes)
      .Uint("segments_cleaned", s.segments_cleaned)
      .Uint("bytes_relocated", s.bytes_relocated)
      .Uint("segments_trimmed", s.segments_trimmed)
      .EndObject();
}

Result<CleanerStats> ReadCleanerStats(const JsonValue &o) {
  CleanerStats s;
  ASTRA_GET(s.passes, GetUint(o, "passes"));
  ASTRA_GET(s.segments_cleaned, GetUint(o, "segments_cleaned"));
  ASTRA_GET(s.bytes_relocated, GetUint(o, "bytes_relocated"));
  ASTRA_GET(s.segments_trimmed, GetUint(o, "segments_trimmed"));
  return s;
}

#undef ASTRA_GET

std::string ProgressLine(uint64_t done, uint64_t total, std::string_view phase) {
  JsonString s;
  {
    tools::JsonWriter j(s.file(), /*compact=*/true);
    j.BeginObject()
        .String("type", "progress")
        .Uint("done", done)
        .Uint("total", total)
        .String("phase", phase)
        .EndObject();
  }
  return s.str();
}

std::string ErrorLine(const Status &st) {
  assert(!st.ok());
  JsonString s;
  {
    tools::JsonWriter j(s.file(), /*compact=*/true);
    j.BeginObject()
        .String("type", "result")
        .Bool("ok", false)
        .String("code", CodeName(st.code()))
        .String("message", st.message())
        .EndObject();
  }
  return s.str();
}

Status StatusFromResult(const JsonValue &result) {
  auto code = GetString(result, "code");
  auto message = GetString(result, "message");
  const std::string msg = message.ok() ? *message : "(the server gave no message)";
  if (code.ok()) {
    for (int c = int(Status::Code::kNotFound); c <= int(Status::Code::kAborted); ++c) {
      if (*code == CodeName(Status::Code(c))) {
        switch (Status::Code(c)) {
          case Status::Code::kNotFound:
            return Status::NotFound(msg);
          case Status::Code::kCorruption:
            return Status::Corruption(msg);
          case Status::Code::kNoSpace:
            return Status::NoSpace(msg);
          case Status::Code::kInvalidArgument:
            return Status::InvalidArgument(msg);
          case Status::Code::kExists:
            return Status::Exists(msg);
          case Status::Code::kBusy:
            return Status::Busy(msg);
          case Status::Code::kNotSupported:
            return Status::NotSupported(msg);
          case Status::Code::kReadOnly:
            return Status::ReadOnly(msg);
          case Status::Code::kAborted:
            return Status::Aborted(msg);
          default:
            return Status::IOError(msg);
        }
      }
    }
  }
  return Status::IOError(msg);
}

}  // namespace astra::control
