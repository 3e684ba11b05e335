#include "blockdev/device_record.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace astra::blockdev {
namespace {

std::string Quote(const std::string& s) {
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') q.push_back('\\');
    q.push_back(c);
  }
  return q + "\"";
}

// A minimal reader for the flat objects EncodeDeviceRecord writes: string, integer and
// array-of-string values. Anything else is kCorruption.
class Reader {
 public:
  explicit Reader(const std::string& s) : s_(s) {}
  void Ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r')) i_++;
  }
  bool Eat(char c) {
    Ws();
    if (i_ < s_.size() && s_[i_] == c) {
      i_++;
      return true;
    }
    return false;
  }
  bool Peek(char c) {
    Ws();
    return i_ < s_.size() && s_[i_] == c;
  }
  bool String(std::string* out) {
    if (!Eat('"')) return false;
    out->clear();
    while (i_ < s_.size() && s_[i_] != '"') {
      if (s_[i_] == '\\' && i_ + 1 < s_.size()) i_++;
      out->push_back(s_[i_++]);
    }
    return Eat('"');
  }
  bool Int(int64_t* out) {
    Ws();
    size_t start = i_;
    if (i_ < s_.size() && s_[i_] == '-') i_++;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') i_++;
    if (i_ == start) return false;
    *out = std::strtoll(s_.c_str() + start, nullptr, 10);
    return true;
  }

 private:
  const std::string& s_;
  size_t i_ = 0;
};

}  // namespace

std::string RunDir() {
  const char* env = getenv("ASTRA_UBLK_RUN_DIR");
  return env && *env ? env : "/run/astrafs/ublk";
}

std::string DeviceRecordPath(uint32_t dev_id) {
  return RunDir() + "/" + std::to_string(dev_id) + ".json";
}

std::string EncodeDeviceRecord(const DeviceRecord& r) {
  std::ostringstream o;
  o << "{\"dev_id\": " << r.dev_id << ", \"volume\": " << Quote(r.volume)
    << ", \"object\": " << r.object << ", \"size_bytes\": " << r.size_bytes
    << ", \"block_bytes\": " << r.block_bytes << ", \"queues\": " << r.queues
    << ", \"depth\": " << r.depth << ", \"workers\": " << r.workers << ", \"pid\": " << r.pid
    << ", \"by_mount\": " << (r.by_mount ? 1 : 0) << ", \"members\": [";
  for (size_t i = 0; i < r.members.size(); i++) o << (i ? ", " : "") << Quote(r.members[i]);
  o << "]}\n";
  return o.str();
}

Result<DeviceRecord> DecodeDeviceRecord(const std::string& json, const std::string& origin) {
  DeviceRecord r;
  Reader rd(json);
  auto bad = [&](const std::string& why) { return Status::Corruption(origin + ": " + why); };
  if (!rd.Eat('{')) return bad("not a JSON object");
  bool have_id = false;
  while (!rd.Peek('}')) {
    std::string key;
    if (!rd.String(&key) || !rd.Eat(':')) return bad("expected \"key\":");
    if (key == "volume") {
      if (!rd.String(&r.volume)) return bad("volume: expected a string");
    } else if (key == "members") {
      if (!rd.Eat('[')) return bad("members: expected an array");
      while (!rd.Peek(']')) {
        std::string m;
        if (!rd.String(&m)) return bad("members: expected strings");
        r.members.push_back(m);
        rd.Eat(',');
      }
      rd.Eat(']');
    } else {
      int64_t v;
      if (!rd.Int(&v)) return bad(key + ": expected an integer");
      if (key == "dev_id") { r.dev_id = static_cast<uint32_t>(v); have_id = true; }
      else if (key == "object") r.object = static_cast<uint64_t>(v);
      else if (key == "size_bytes") r.size_bytes = static_cast<uint64_t>(v);
      else if (key == "block_bytes") r.block_bytes = static_cast<uint32_t>(v);
      else if (key == "queues") r.queues = static_cast<uint32_t>(v);
      else if (key == "depth") r.depth = static_cast<uint32_t>(v);
      else if (key == "workers") r.workers = static_cast<uint32_t>(v);
      else if (key == "pid") r.pid = v;
      else if (key == "by_mount") r.by_mount = v != 0;
      // unknown integer keys: ignored (forward compatible)
    }
    if (!rd.Eat(',')) break;
  }
  if (!rd.Eat('}')) return bad("unterminated object");
  if (!have_id || r.volume.empty() || r.members.empty()) return bad("dev_id, volume or members missing");
  if (r.block_bytes != 512 && r.block_bytes != 4096) {
    return bad("block_bytes " + std::to_string(r.block_bytes) + " is neither 512 nor 4096");
  }
  return r;
}

Status EnsureRunDir() {
  const std::string dir = RunDir();
  std::string partial;
  for (size_t pos = 1; pos != std::string::npos;) {  // mkdir -p
    pos = dir.find('/', pos + 1);
    partial = dir.substr(0, pos);
    if (mkdir(partial.c_str(), 0755) < 0 && errno != EEXIST) {
      return Status::FromErrno(errno, "mkdir " + partial);
    }
  }
  return Status::Ok();
}

Status SaveDeviceRecord(const DeviceRecord& r) {
  ASTRA_RETURN_IF_ERROR(EnsureRunDir());
  const std::string path = DeviceRecordPath(r.dev_id), tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << EncodeDeviceRecord(r);
    f.flush();
    if (!f) return Status::IOError("cannot write " + tmp);
  }
  if (rename(tmp.c_str(), path.c_str()) < 0) return Status::FromErrno(errno, "rename " + tmp);
  return Status::Ok();
}

Result<DeviceRecord> LoadDeviceRecord(uint32_t dev_id) {
  const std::string path = DeviceRecordPath(dev_id);
  std::ifstream f(path);
  if (!f) {
    return Status::NotFound("no record of ublk device " + std::to_string(dev_id) + " (" + path +
                            "): it was not created by astrafs-ublk");
  }
  std::stringstream ss;
  ss << f.rdbuf();
  return DecodeDeviceRecord(ss.str(), path);
}

void RemoveDeviceRecord(uint32_t dev_id) { unlink(DeviceRecordPath(dev_id).c_str()); }

std::vector<uint32_t> ListDeviceRecords() {
  std::vector<uint32_t> ids;
  DIR* d = opendir(RunDir().c_str());
  if (!d) return ids;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.size() > 5 && n.compare(n.size() - 5, 5, ".json") == 0 &&
        n.find_first_not_of("0123456789") == n.size() - 5) {
      ids.push_back(static_cast<uint32_t>(std::stoul(n.substr(0, n.size() - 5))));
    }
  }
  closedir(d);
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace astra::blockdev
