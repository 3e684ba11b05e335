#include "control_client.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "astra/device.h"

namespace astra::control {

namespace {

// The block device of the NVMe namespace whose generic char device is `path`
// (/dev/ngXnY -> /dev/nvmeXnY, after resolving symlinks such as /dev/vmh/ng0n1),
// or "" when `path` is not named like one or that block device does not exist.
std::string NvmeBlockTwin(const std::string &path) {
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr) return "";
  const std::string r = resolved;
  const size_t slash = r.rfind('/');
  const std::string base = r.substr(slash + 1);
  if (base.size() < 5 || base.compare(0, 2, "ng") != 0 ||
      base.find_first_not_of("0123456789n", 2) != std::string::npos) {
    return "";
  }
  const std::string twin = r.substr(0, slash + 1) + "nvme" + base.substr(2);
  struct stat st;
  if (::stat(twin.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) return "";
  return twin;
}

// A member opened read-only for ProbeMember while the daemon holds it: no flock
// (the daemon's exclusive lock would refuse it), reads only, synchronous pread.
// O_DIRECT when the file system takes it, so the superblock comes from the
// device and not from a stale page cache.
class PeekDevice final : public Device {
 public:
  static Result<std::unique_ptr<Device>> Open(const std::string &path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
    if (fd < 0 && errno == EINVAL) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno(errno, path);
    struct stat st;
    uint64_t size = 0;
    if (::fstat(fd, &st) != 0) {
      const Status s = Status::FromErrno(errno, path);
      ::close(fd);
      return s;
    }
    if (S_ISREG(st.st_mode)) {
      size = uint64_t(st.st_size);
    } else if (S_ISBLK(st.st_mode)) {
      if (::ioctl(fd, BLKGETSIZE64, &size) != 0) size = 0;
    } else if (S_ISCHR(st.st_mode) && !NvmeBlockTwin(path).empty()) {
      // An NVMe passthrough member (/dev/ngXnY, doc/nvme.md) cannot be read
      // with pread: its namespace's block device holds the same LBAs.
      ::close(fd);
      return Open(NvmeBlockTwin(path));
    } else {
      ::close(fd);
      return Status::InvalidArgument(path + " is not a file, block device or NVMe generic device");
    }
    auto d = std::unique_ptr<PeekDevice>(new PeekDevice(fd));
    d->info_.path = path;
    d->info_.backend = "peek";
    d->info_.size_bytes = size / kIoAlignBytes * kIoAlignBytes;
    d->info_.logical_block_bytes = 4096;
    return std::unique_ptr<Device>(std::move(d));
  }
  ~PeekDevice() override { ::close(fd_); }
  const DeviceInfo &info() const override { return info_; }
  void Submit(IoRequest *const *reqs, size_t n) override {
    for (size_t i = 0; i < n; ++i) {
      IoRequest *r = reqs[i];
      r->status = r->op == IoOp::kRead ? CheckRequest(info_, *r)
                                       : Status::NotSupported(info_.path + " is open read-only");
      if (r->status.ok()) r->status = ReadAll(*r);
      r->waiter->Done();
    }
  }

 private:
  explicit PeekDevice(int fd) : fd_(fd) {}
  Status ReadAll(const IoRequest &r) {
    uint32_t done = 0;
    while (done < r.length_bytes) {
      const ssize_t n = ::pread(fd_, static_cast<char *>(r.buf) + done, r.length_bytes - done,
                                off_t(r.offset_bytes + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::FromErrno(errno, info_.path);
      if (n == 0) return Status::IOError(info_.path + ": short read");
      done += uint32_t(n);
    }
    return Status::Ok();
  }
  int fd_;
  DeviceInfo info_;
};

}  // namespace

Result<Target> LocateSocket(const tools::MountEntry &m) {
  auto members = tools::ParseDeviceList({m.source});
  if (!members.ok()) {
    return Status::NotFound("the mount's source \"" + m.source +
                            "\" is not a member list: " + members.status().message());
  }
  std::string why;
  for (const std::string &p : *members) {
    auto dev = PeekDevice::Open(p);
    Status s = dev.status();
    if (dev.ok()) {
      auto id = ProbeMember(**dev);
      if (id.ok()) return Target{id->pool_uuid, SocketPath(id->pool_uuid)};
      s = id.status();
    }
    why += (why.empty() ? "" : "; ") + p + ": " + s.ToString();
  }
  return Status::NotFound("cannot tell which pool is mounted at " + m.mountpoint +
                          ": no member of its source has a readable superblock (" + why + ")");
}

Result<JsonValue> Call(const std::string &socket_path, const Request &req,
                       const ProgressFn &progress) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) {
    return Status::InvalidArgument("socket path " + socket_path + " is too long");
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno(errno, "socket");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0) {
    const int e = errno;
    if (e == ENOENT) return Status::NotFound("no control socket at " + socket_path);
    if (e == ECONNREFUSED) {
      return Status::Busy("stale control socket " + socket_path +
                          ": nobody listens on it (the daemon that made it is gone)");
    }
    return Status::FromErrno(e, "connect " + socket_path);
  }
  const std::string line = EncodeRequest(req);
  for (size_t done = 0; done < line.size();) {
    const ssize_t n = ::send(fd, line.data() + done, line.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::FromErrno(errno, "send to " + socket_path);
    done += size_t(n);
  }
  std::string buf;
  char chunk[65536];
  while (true) {
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      auto v = ParseJson(std::string_view(buf).substr(0, nl));
      buf.erase(0, nl + 1);
      if (!v.ok()) return v.status().Annotate("reply from " + socket_path);
      auto type = GetString(*v, "type");
      if (!type.ok()) return type.status().Annotate("reply from " + socket_path);
      if (*type == "progress") {
        auto done = GetUint(*v, "done");
        auto total = GetUint(*v, "total");
        auto phase = GetString(*v, "phase");
        if (progress && done.ok() && total.ok() && phase.ok()) progress(*done, *total, *phase);
        continue;
      }
      if (*type != "result") continue;  // later versions may add line types: skip them
      auto ok = GetBool(*v, "ok");
      if (!ok.ok()) return ok.status().Annotate("reply from " + socket_path);
      if (!*ok) return StatusFromResult(*v);
      return std::move(v).value();
    }
    if (buf.size() > kResponseLineBytesMax) {
      return Status::InvalidArgument("reply line from " + socket_path + " is too long");
    }
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "recv from " + socket_path);
    if (n == 0) {
      return Status::IOError(
          "the mount daemon closed the connection before it sent a result "
          "(did it stop or crash? see its log)");
    }
    buf.append(chunk, size_t(n));
  }
}

}  // namespace astra::control
