#include "cli_common.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cassert>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace astra::tools {

// ---- Parsing ----

Result<std::vector<std::string>> ParseDeviceList(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (const std::string& a : args) {
    std::string cur;
    bool escaped = false;
    auto push = [&]() -> Status {
      if (cur.empty()) {
        return Status::InvalidArgument("empty device name in \"" + a + "\"");
      }
      out.push_back(cur);
      cur.clear();
      return Status::Ok();
    };
    for (char c : a) {
      if (escaped) {
        cur.push_back(c);
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == ',') {
        ASTRA_RETURN_IF_ERROR(push());
      } else {
        cur.push_back(c);
      }
    }
    if (escaped) cur.push_back('\\');
    ASTRA_RETURN_IF_ERROR(push());
  }
  if (out.empty()) return Status::InvalidArgument("no devices given");
  for (size_t i = 0; i < out.size(); ++i) {
    for (size_t j = i + 1; j < out.size(); ++j) {
      if (out[i] == out[j]) return Status::InvalidArgument("device " + out[i] + " is named twice");
    }
  }
  return out;
}

Result<uint64_t> ParseSize(std::string_view text) {
  const std::string t(text);
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument("bad size \"" + t + "\": " + std::string(why) +
                                   " (use bytes or a K/M/G/T suffix, e.g. 512M)");
  };
  size_t i = 0;
  unsigned __int128 whole = 0;
  while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
    whole = whole * 10 + unsigned(t[i] - '0');
    if (whole > UINT64_MAX) return bad("too large");
    ++i;
  }
  if (i == 0) return bad("expected a number");
  unsigned __int128 frac = 0, frac_div = 1;
  if (i < t.size() && t[i] == '.') {
    ++i;
    const size_t start = i;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
      if (frac_div < 1000000000000000000ull) {  // more digits than that cannot matter
        frac = frac * 10 + unsigned(t[i] - '0');
        frac_div *= 10;
      }
      ++i;
    }
    if (i == start) return bad("expected digits after the decimal point");
  }
  std::string suffix = t.substr(i);
  for (char& c : suffix) c = char(std::toupper(static_cast<unsigned char>(c)));
  unsigned shift = 0;
  if (suffix.empty() || suffix == "B") {
    shift = 0;
  } else {
    static const char kUnits[] = "KMGTP";
    const char* u = std::strchr(kUnits, suffix[0]);
    const std::string rest = suffix.substr(1);
    if (u == nullptr || !(rest.empty() || rest == "B" || rest == "IB")) {
      return bad("unknown unit \"" + t.substr(i) + "\"");
    }
    shift = 10 * unsigned(u - kUnits + 1);
  }
  const unsigned __int128 mult = (unsigned __int128)1 << shift;
  const unsigned __int128 bytes = whole * mult + frac * mult / frac_div;
  if (frac * mult % frac_div != 0) return bad("not a whole number of bytes");
  if (bytes > UINT64_MAX) return bad("too large");
  return uint64_t(bytes);
}

Result<CompressionSpec> ParseCompression(std::string_view text) {
  const std::string t(text);
  CompressionSpec c;
  if (t == "none" || t == "off") {
    c.compression = Compression::kNone;
    c.level = 1;  // stored, unused
    return c;
  }
  if (t == "zstd") return c;
  if (t.rfind("zstd:", 0) == 0) {
    const std::string lv = t.substr(5);
    char* end = nullptr;
    const long l = lv.empty() ? 0 : std::strtol(lv.c_str(), &end, 10);
    if (lv.empty() || *end != '\0' || l < 1 || l > 19) {
      return Status::InvalidArgument("bad compression \"" + t +
                                     "\": the zstd level must be a number from 1 to 19");
    }
    c.level = int(l);
    return c;
  }
  return Status::InvalidArgument("bad compression \"" + t +
                                 "\": use zstd, zstd:LEVEL (1..19) or none");
}

Result<bool> ParseOnOff(std::string_view text, std::string_view what) {
  const std::string t(text);
  if (t == "on" || t == "yes" || t == "true" || t == "1") return true;
  if (t == "off" || t == "no" || t == "false" || t == "0") return false;
  return Status::InvalidArgument("bad value \"" + t + "\" for " + std::string(what) +
                                 ": use on or off");
}

std::string HumanBytes(uint64_t bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = double(bytes);
  int u = 0;
  while (v >= 1024 && u < 6) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (std::fabs(v - std::round(v)) < 0.005) {
    std::snprintf(buf, sizeof buf, "%.0f %s", v, kUnits[u]);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f %s", v, kUnits[u]);
  }
  return buf;
}

// ---- JSON ----

std::string JsonQuote(std::string_view s) {
  std::string o;
  o.reserve(s.size() + 2);
  o.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        o += "\\\"";
        break;
      case '\\':
        o += "\\\\";
        break;
      case '\b':
        o += "\\b";
        break;
      case '\f':
        o += "\\f";
        break;
      case '\n':
        o += "\\n";
        break;
      case '\r':
        o += "\\r";
        break;
      case '\t':
        o += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          o += buf;
        } else {
          // Bytes >= 0x80 pass through: paths are bytes; valid UTF-8 stays valid.
          o.push_back(char(c));
        }
    }
  }
  o.push_back('"');
  return o;
}

JsonWriter::~JsonWriter() { assert(in_array_.empty() && "unclosed JSON container"); }

void JsonWriter::Indent() {
  if (compact_) return;
  std::fputc('\n', out_);
  for (size_t i = 0; i < in_array_.size(); ++i) std::fputs("  ", out_);
}

void JsonWriter::Key(std::string_view key) {
  if (in_array_.empty()) {
    assert(first_ && "only one top-level JSON value");
    assert(key.empty());
    return;
  }
  assert(in_array_.back() == key.empty() && "keys in objects, none in arrays");
  if (!first_) std::fputc(',', out_);
  first_ = false;
  Indent();
  if (!key.empty()) std::fprintf(out_, compact_ ? "%s:" : "%s: ", JsonQuote(key).c_str());
}

JsonWriter& JsonWriter::BeginObject(std::string_view key) {
  Key(key);
  std::fputc('{', out_);
  in_array_.push_back(false);
  first_ = true;
  return *this;
}

JsonWriter& JsonWriter::BeginArray(std::string_view key) {
  Key(key);
  std::fputc('[', out_);
  in_array_.push_back(true);
  first_ = true;
  return *this;
}

JsonWriter& JsonWriter::EndObject() {
  assert(!in_array_.empty() && !in_array_.back());
  in_array_.pop_back();
  if (!first_) Indent();
  std::fputc('}', out_);
  first_ = false;
  if (in_array_.empty()) std::fputc('\n', out_);
  return *this;
}

JsonWriter& JsonWriter::EndArray() {
  assert(!in_array_.empty() && in_array_.back());
  in_array_.pop_back();
  if (!first_) Indent();
  std::fputc(']', out_);
  first_ = false;
  if (in_array_.empty()) std::fputc('\n', out_);
  return *this;
}

JsonWriter& JsonWriter::String(std::string_view key, std::string_view v) {
  Key(key);
  std::fputs(JsonQuote(v).c_str(), out_);
  return *this;
}

JsonWriter& JsonWriter::Uint(std::string_view key, uint64_t v) {
  Key(key);
  std::fprintf(out_, "%llu", static_cast<unsigned long long>(v));
  return *this;
}

JsonWriter& JsonWriter::Int(std::string_view key, int64_t v) {
  Key(key);
  std::fprintf(out_, "%lld", static_cast<long long>(v));
  return *this;
}

JsonWriter& JsonWriter::Double(std::string_view key, double v) {
  Key(key);
  if (std::isfinite(v)) {
    std::fprintf(out_, "%.4f", v);
  } else {
    std::fputs("null", out_);  // JSON has no NaN or infinity
  }
  return *this;
}

JsonWriter& JsonWriter::Bool(std::string_view key, bool v) {
  Key(key);
  std::fputs(v ? "true" : "false", out_);
  return *this;
}

void WriteCheckCounters(JsonWriter& j, const CheckReport& r) {
  j.Uint("extents_checked", r.extents_checked);
  j.Uint("stripes_checked", r.stripes_checked);
  j.Uint("blocks_mapped", r.blocks_mapped);
  j.Uint("checksum_errors", r.checksum_errors);
  j.Uint("parity_errors", r.parity_errors);
  j.Uint("refcount_errors", r.refcount_errors);
  j.Uint("other_errors", r.other_errors);
  j.Uint("repaired", r.repaired);
}

// ---- Progress ----

Progress::Progress(std::string label, bool force_bar, std::chrono::seconds plain_interval)
    : label_(std::move(label)),
      bar_(force_bar || ::isatty(STDERR_FILENO) == 1),
      plain_interval_(plain_interval) {}

void Progress::Update(uint64_t done, uint64_t total, std::string_view phase) {
  const auto now = std::chrono::steady_clock::now();
  const bool phase_changed = phase != last_phase_;
  const bool end = total != 0 && done >= total;
  const double pct = total == 0 ? 100.0 : 100.0 * double(std::min(done, total)) / double(total);
  if (bar_) {
    if (!phase_changed && !end && now - last_ < std::chrono::milliseconds(100)) return;
    constexpr int kWidth = 30;
    const int fill = int(pct / 100.0 * kWidth);
    std::string bar(size_t(fill), '#');
    bar.append(size_t(kWidth - fill), '.');
    std::fprintf(stderr, "\r%s: %-8.*s [%s] %5.1f%% (%llu/%llu)\x1b[K", label_.c_str(),
                 int(phase.size()), phase.data(), bar.c_str(), pct,
                 static_cast<unsigned long long>(done), static_cast<unsigned long long>(total));
    std::fflush(stderr);
    drawn_ = true;
  } else {
    // Plain lines: the first one only after an interval, so short runs print nothing.
    if (last_ == std::chrono::steady_clock::time_point{}) last_ = now;
    if (now - last_ < plain_interval_) {
      last_phase_ = std::string(phase);
      return;
    }
    std::fprintf(stderr, "%s: %.*s %.1f%% (%llu/%llu)\n", label_.c_str(), int(phase.size()),
                 phase.data(), pct, static_cast<unsigned long long>(done),
                 static_cast<unsigned long long>(total));
    std::fflush(stderr);
  }
  last_ = now;
  last_phase_ = std::string(phase);
}

void Progress::Finish() {
  if (drawn_) {
    std::fputc('\n', stderr);
    std::fflush(stderr);
    drawn_ = false;
  }
}

// ---- Logging ----

void SetupLogging(const char* prog, bool verbose) {
  auto logger =
      std::make_shared<spdlog::logger>(prog, std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_pattern("%n: %l: %v");
  logger->set_level(verbose ? spdlog::level::debug : spdlog::level::info);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
}

// ---- Pool members ----

std::string DescribeOpenError(const std::string& path, const Status& s) {
  switch (s.code()) {
    case Status::Code::kBusy:
      // The engine's message names the holder ("in use by another process (pid N, comm)").
      return "cannot open " + s.message() +
             " (is the pool mounted or open elsewhere? unmount it or stop that process first)";
    case Status::Code::kNotFound:
      return "cannot open " + path + ": no such file or device";
    default:
      return "cannot open " + path + ": " + s.ToString();
  }
}

Result<std::vector<std::unique_ptr<Device>>> OpenMembers(const std::vector<std::string>& paths) {
  std::vector<std::unique_ptr<Device>> out;
  for (const std::string& p : paths) {
    auto d = OpenDevice(p);
    if (!d.ok()) {
      const Status& s = d.status();
      const std::string msg = DescribeOpenError(p, s);
      switch (s.code()) {
        case Status::Code::kBusy:
          return Status::Busy(msg);
        case Status::Code::kNotFound:
          return Status::NotFound(msg);
        case Status::Code::kInvalidArgument:
          return Status::InvalidArgument(msg);
        default:
          return Status::IOError(msg);
      }
    }
    out.push_back(std::move(d).value());
  }
  return out;
}

Result<PoolProbe> ProbePool(const std::vector<std::unique_ptr<Device>>& devs) {
  PoolProbe p;
  std::vector<bool> present;
  for (const auto& d : devs) {
    if (!d) continue;
    auto id = ProbeMember(*d);
    if (!id.ok()) continue;
    if (p.pool_uuid.empty()) {
      p.pool_uuid = id->pool_uuid;
      p.members = id->members;
      present.assign(p.members, false);
    }
    if (id->pool_uuid != p.pool_uuid || id->member_index >= p.members) continue;
    present[id->member_index] = true;
  }
  if (p.pool_uuid.empty()) {
    return Status::Corruption("none of the devices holds a valid AstraFS superblock");
  }
  for (uint32_t i = 0; i < p.members; ++i) {
    if (!present[i]) p.missing.push_back(i);
  }
  return p;
}

Status DegradedRefusal(const PoolProbe& p) {
  std::string list;
  for (uint32_t i : p.missing) list += (list.empty() ? "" : ", ") + std::to_string(i);
  return Status::InvalidArgument(
      "member(s) " + list + " of pool " + p.pool_uuid + " (" + std::to_string(p.members) +
      " members) are not among the devices given; opening the pool read-write would record "
      "them as failed, to be rebuilt with 'astrafs replace'. Name every member, or give "
      "--degraded to go ahead (or -n for a read-only check)");
}

namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string UnescapeMountinfo(const std::string& s) {
  std::string o;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      o.push_back(char(std::strtol(s.substr(i + 1, 3).c_str(), nullptr, 8)));
      i += 3;
    } else {
      o.push_back(s[i]);
    }
  }
  return o;
}

}  // namespace

std::optional<MountEntry> FindMount(const std::string& dir) {
  char resolved[PATH_MAX];
  if (::realpath(dir.c_str(), resolved) == nullptr) return std::nullopt;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  std::optional<MountEntry> found;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id, parent, devno, root, mnt, opts, f;
    ls >> id >> parent >> devno >> root >> mnt >> opts;
    while (ls >> f && f != "-") {
    }
    MountEntry e;
    ls >> e.fstype >> e.source;
    e.mountpoint = UnescapeMountinfo(mnt);
    e.source = UnescapeMountinfo(e.source);
    if (e.mountpoint == resolved) found = e;  // the last one is on top
  }
  return found;
}

}  // namespace astra::tools
