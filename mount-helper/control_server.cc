#include "control_server.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "astra/device.h"
#include "volume_space.h"

namespace astra::mount {

namespace {

Status Errno(const std::string &what) { return Status::FromErrno(errno, what); }

// Writes all of `s`; false when the peer is gone (no SIGPIPE: MSG_NOSIGNAL).
bool SendAll(int fd, const std::string &s) {
  size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = ::send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += size_t(n);
  }
  return true;
}

// Reads one line (without '\n') of at most kRequestBytesMax within
// kRequestTimeoutMs, or until `stop_fd` becomes readable. kAborted when
// stopping, kInvalidArgument for an over-long line or a closed connection,
// kBusy on a timeout.
Result<std::string> ReadLine(int fd, int stop_fd) {
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(ControlServer::kRequestTimeoutMs);
  char buf[4096];
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Status::Busy("no request within 10 seconds");
    pollfd p[2] = {{fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    const int r = ::poll(p, 2, int(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Errno("poll");
    if (p[1].revents != 0) return Status::Aborted("the mount is shutting down");
    if (r == 0) continue;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("recv");
    if (n == 0) return Status::InvalidArgument("connection closed before a complete request line");
    line.append(buf, size_t(n));
    const size_t nl = line.find('\n');
    if (nl != std::string::npos) {
      if (nl + 1 != line.size()) {
        return Status::InvalidArgument("one request per connection; nothing may follow it");
      }
      line.resize(nl);
      return line;
    }
    if (line.size() > control::kRequestBytesMax) {
      return Status::InvalidArgument("request line longer than " +
                                     std::to_string(control::kRequestBytesMax) + " bytes");
    }
  }
}

// Progress callback that sends throttled progress lines; stops sending once the
// peer is gone (the operation itself goes on: it cannot be interrupted).
class ProgressSender {
 public:
  ProgressSender(int fd, std::string op) : fd_(fd), op_(std::move(op)) {}
  ProgressFn Fn() {
    return [this](uint64_t done, uint64_t total, std::string_view phase) {
      Update(done, total, phase);
    };
  }

 private:
  void Update(uint64_t done, uint64_t total, std::string_view phase) {
    if (gone_) return;
    const auto now = std::chrono::steady_clock::now();
    const bool end = total != 0 && done >= total;
    if (phase == phase_ && !end &&
        now - last_ < std::chrono::milliseconds(ControlServer::kProgressIntervalMs)) {
      return;
    }
    last_ = now;
    phase_ = std::string(phase);
    if (!SendAll(fd_, control::ProgressLine(done, total, phase))) {
      gone_ = true;
      spdlog::info("control: the client of the {} went away; the {} goes on", op_, op_);
    }
  }
  int fd_;
  std::string op_;
  std::string phase_;
  std::chrono::steady_clock::time_point last_{};
  bool gone_ = false;
};

uint64_t ErrorCount(const CheckReport &r) {
  return r.checksum_errors + r.parity_errors + r.refcount_errors + r.other_errors;
}

std::string Canonical(const std::string &p) {
  char resolved[PATH_MAX];
  return ::realpath(p.c_str(), resolved) != nullptr ? std::string(resolved) : p;
}

}  // namespace

ControlServer::ControlServer(Pool &pool, std::string mountpoint)
    : pool_(pool), mountpoint_(std::move(mountpoint)) {}

ControlServer::~ControlServer() { Stop(); }

Status ControlServer::Start() {
  assert(!started_);
  pool_uuid_ = pool_.GetStatus().pool_uuid;
  const std::string dir = control::RunDir();
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return Errno("mkdir " + dir);
  path_ = control::SocketPath(pool_uuid_);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof addr.sun_path) {
    return Status::InvalidArgument("control socket path " + path_ + " is too long (at most " +
                                   std::to_string(sizeof addr.sun_path - 1) + " bytes)");
  }
  std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);

  // A socket left by a daemon that was killed: nobody accepts on it, so it can
  // go. A live one (another process serving this pool, e.g. in another mount
  // namespace) is left alone.
  struct stat st;
  if (::lstat(path_.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return Status::Exists(path_ + " exists and is not a socket; remove it");
    }
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) return Errno("socket");
    const bool live = ::connect(probe, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0;
    ::close(probe);
    if (live) {
      return Status::Busy("another process already serves pool " + pool_uuid_ + " at " + path_);
    }
    spdlog::info("control: removing stale socket {} (nobody listens on it)", path_);
    if (::unlink(path_.c_str()) != 0 && errno != ENOENT) return Errno("unlink " + path_);
  }

  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return Errno("socket");
  const mode_t old_mask = ::umask(0177);  // the socket is born 0600: no window for others
  const int bound = ::bind(listen_fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr);
  const int bind_errno = errno;
  ::umask(old_mask);
  Status s;
  if (bound != 0) {
    s = Status::FromErrno(bind_errno, "bind " + path_);
  } else if (::chmod(path_.c_str(), 0600) != 0) {
    s = Errno("chmod " + path_);
  } else if (::listen(listen_fd_, int(kConnectionsMax)) != 0) {
    s = Errno("listen " + path_);
  } else if (::stat(path_.c_str(), &st) != 0) {
    s = Errno("stat " + path_);
  } else if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) {
    s = Errno("pipe");
  }
  if (!s.ok()) {
    if (bound == 0) ::unlink(path_.c_str());
    ::close(listen_fd_);
    listen_fd_ = -1;
    return s;
  }
  socket_ino_ = st.st_ino;
  started_ = true;
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  spdlog::info("control socket {} (pool {}, protocol {})", path_, pool_uuid_,
               control::kProtocolVersion);
  return Status::Ok();
}

void ControlServer::Stop() {
  if (!started_) return;
  started_ = false;
  const char c = 's';
  if (::write(stop_pipe_[1], &c, 1) != 1) spdlog::warn("control: cannot signal the stop");
  accept_thread_.join();
  // Remove the socket first, so no client connects to a server that is going
  // away; only if it is still ours (a later daemon may have replaced it).
  struct stat st;
  if (::stat(path_.c_str(), &st) == 0 && st.st_ino == socket_ino_) ::unlink(path_.c_str());
  ::close(listen_fd_);
  listen_fd_ = -1;
  std::list<std::unique_ptr<Connection>> conns;
  {
    std::lock_guard<std::mutex> l(conns_mu_);
    conns.swap(conns_);
  }
  {
    std::lock_guard<std::mutex> l(running_mu_);
    if (!running_op_.empty()) {
      spdlog::info(
          "control: waiting for the running {} to finish before "
          "closing the pool",
          running_op_);
    }
  }
  for (auto &conn : conns) conn->thread.join();  // each closes its own fd
  ::close(stop_pipe_[0]);
  ::close(stop_pipe_[1]);
  stop_pipe_[0] = stop_pipe_[1] = -1;
  spdlog::info("control socket {} removed", path_);
}

void ControlServer::ReapFinished() {
  for (auto it = conns_.begin(); it != conns_.end();) {
    if ((*it)->done.load()) {
      (*it)->thread.join();
      it = conns_.erase(it);
    } else {
      ++it;
    }
  }
}

void ControlServer::AcceptLoop() {
  while (true) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    const int r = ::poll(p, 2, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      spdlog::error("control: poll: {}; the control socket stops serving", std::strerror(errno));
      return;
    }
    if (p[1].revents != 0) return;
    if (p[0].revents == 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN) {
        spdlog::warn("control: accept: {}", std::strerror(errno));
      }
      continue;
    }
    // Defence in depth behind the 0600 mode: only root or the daemon's own
    // user.
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        (cred.uid != 0 && cred.uid != ::geteuid())) {
      SendAll(fd, control::ErrorLine(Status::InvalidArgument(
                      "permission denied: only root may use the control socket")));
      ::close(fd);
      continue;
    }
    std::lock_guard<std::mutex> l(conns_mu_);
    ReapFinished();
    if (conns_.size() >= kConnectionsMax) {
      SendAll(fd,
              control::ErrorLine(Status::Busy("too many control connections at once (at most " +
                                              std::to_string(kConnectionsMax) + "); try again")));
      ::close(fd);
      continue;
    }
    auto conn = std::make_unique<Connection>();
    conn->fd = fd;
    Connection *raw = conn.get();
    conns_.push_back(std::move(conn));
    raw->thread = std::thread([this, raw] { Handle(raw); });
  }
}

void ControlServer::Handle(Connection *c) {
  auto line = ReadLine(c->fd, stop_pipe_[0]);
  std::string reply;
  if (!line.ok()) {
    reply = control::ErrorLine(line.status());
  } else {
    auto req = control::DecodeRequest(*line);
    if (!req.ok()) {
      spdlog::warn("control: bad request: {}", req.status().message());
      reply = control::ErrorLine(req.status());
    } else {
      reply = Dispatch(c->fd, *req);
    }
  }
  SendAll(c->fd, reply);
  ::close(c->fd);
  c->done.store(true);
}

std::string ControlServer::Dispatch(int fd, const control::Request &r) {
  if (r.command == "status") return DoStatus();
  if (control::IsVolumeCommand(r.command)) {  // block volumes: not under op_mu_ (they are quick)
    if (!volume_handler_) {
      return control::ErrorLine(Status::NotSupported("this daemon exports no block volumes"));
    }
    control::JsonString s;
    Status st;
    {
      tools::JsonWriter j(s.file(), /*compact=*/true);
      ResultHeader(j, r.command);
      st = volume_handler_(r, j);
      j.EndObject();
    }
    return st.ok() ? s.str() : control::ErrorLine(st);
  }
  // The long operations change the pool: not on a read-only mount, one at a
  // time.
  if (pool_.GetStatus().read_only) {
    return control::ErrorLine(Status::ReadOnly("pool " + pool_uuid_ + " is mounted read-only at " +
                                               mountpoint_ + "; " + r.command +
                                               " needs a read-write mount"));
  }
  std::unique_lock<std::mutex> op(op_mu_, std::try_to_lock);
  if (!op.owns_lock()) {
    std::lock_guard<std::mutex> l(running_mu_);
    return control::ErrorLine(Status::Busy("a " + running_op_ + " is already running on pool " +
                                           pool_uuid_ + "; try again when it has finished"));
  }
  {
    std::lock_guard<std::mutex> l(running_mu_);
    running_op_ = r.command;
  }
  spdlog::info("control: {} started", r.command);
  std::string out;
  if (r.command == "scrub") {
    out = DoScrub(fd);
  } else if (r.command == "gc") {
    out = DoGc(fd);
  } else {
    assert(r.command == "replace");  // DecodeRequest admits no other command
    out = DoReplace(fd, r);
  }
  spdlog::info("control: {} finished", r.command);
  std::lock_guard<std::mutex> l(running_mu_);
  running_op_.clear();
  return out;
}

void ControlServer::ResultHeader(tools::JsonWriter &j, const std::string &command) const {
  j.BeginObject();
  j.String("type", "result").Bool("ok", true);
  j.Uint("protocol", control::kProtocolVersion);
  j.String("command", command);
  j.String("pool_uuid", pool_uuid_).String("mountpoint", mountpoint_);
  j.Uint("pid", uint64_t(::getpid()));
}

std::string ControlServer::DoStatus() {
  const PoolStatus ps = pool_.GetStatus();
  // Per-volume figures (protocol 1, additive): "volumes" and "volumes_not_listed", or
  // "volumes_error" when the catalogue cannot be listed (the pool status is still sent).
  auto volumes = tools::ListVolumes(pool_, ps.data_shards, ps.parity_shards);
  if (!volumes.ok()) spdlog::warn("control: listing volumes: {}", volumes.status().ToString());
  control::JsonString s;
  {
    tools::JsonWriter j(s.file(), /*compact=*/true);
    ResultHeader(j, "status");
    control::WritePoolStatus(j, "status", ps);
    if (volumes.ok()) {
      tools::WriteVolumeList(j, *volumes);
    } else {
      j.String("volumes_error", volumes.status().ToString());
    }
    j.EndObject();
  }
  return s.str();
}

std::string ControlServer::DoScrub(int fd) {
  ProgressSender progress(fd, "scrub");
  auto rep = pool_.Scrub(progress.Fn());
  if (!rep.ok()) {
    spdlog::error("control: scrub failed: {}", rep.status().ToString());
    return control::ErrorLine(rep.status().Annotate("scrub failed"));
  }
  // As offline: when something was found, a read-only pass proves what is left.
  uint64_t left = ErrorCount(*rep);
  CheckReport again;
  if (left != 0) {
    spdlog::warn("control: scrub found {} error(s), repaired {}", left, rep->repaired);
    auto a = pool_.Check(false, progress.Fn());
    if (!a.ok()) {
      return control::ErrorLine(a.status().Annotate("verification after scrub failed"));
    }
    again = std::move(a).value();
    left = ErrorCount(again);
  }
  const PoolStatus ps = pool_.GetStatus();
  control::JsonString s;
  {
    tools::JsonWriter j(s.file(), /*compact=*/true);
    ResultHeader(j, "scrub");
    control::WriteCheckReport(j, "report", *rep);
    j.Uint("uncorrected_errors", left);
    j.BeginArray("remaining");
    for (size_t i = 0; i < again.problems.size() && i < control::kProblemsListedMax; ++i) {
      j.String(again.problems[i]);
    }
    j.EndArray();
    control::WritePoolStatus(j, "status", ps);
    j.EndObject();
  }
  return s.str();
}

std::string ControlServer::DoGc(int fd) {
  ProgressSender progress(fd, "gc");
  const uint64_t free_before = pool_.GetStatus().space.free_bytes;
  auto st = pool_.CollectGarbage(progress.Fn());
  if (!st.ok()) {
    spdlog::error("control: gc failed: {}", st.status().ToString());
    return control::ErrorLine(st.status().Annotate("gc failed"));
  }
  const PoolStatus ps = pool_.GetStatus();
  control::JsonString s;
  {
    tools::JsonWriter j(s.file(), /*compact=*/true);
    ResultHeader(j, "gc");
    control::WriteCleanerStats(j, "cleaner", *st);
    j.Uint("free_before", free_before);
    control::WritePoolStatus(j, "status", ps);
    j.EndObject();
  }
  return s.str();
}

std::string ControlServer::DoReplace(int fd, const control::Request &r) {
  const PoolStatus ps = pool_.GetStatus();
  uint32_t index = 0;
  if (r.member) {
    if (*r.member >= ps.members) {
      return control::ErrorLine(Status::InvalidArgument(
          "pool " + pool_uuid_ + " has members 0.." + std::to_string(ps.members - 1) +
          "; there is no member " + std::to_string(*r.member)));
    }
    index = *r.member;
  } else {
    const std::string want = Canonical(r.old_path);
    bool found = false;
    for (const auto &m : ps.member_status) {
      if (!m.path.empty() && (m.path == r.old_path || Canonical(m.path) == want)) {
        index = m.index;
        found = true;
      }
    }
    if (!found) {
      return control::ErrorLine(Status::InvalidArgument(
          r.old_path + " is not a member of pool " + pool_uuid_ +
          " as mounted (a member that is missing has no path: give its index, "
          "see 'astrafs "
          "status')"));
    }
  }
  const std::string new_canon = Canonical(r.new_path);
  for (const auto &m : ps.member_status) {
    if (!m.path.empty() && Canonical(m.path) == new_canon) {
      return control::ErrorLine(Status::InvalidArgument(
          r.new_path + " is member " + std::to_string(m.index) + " of this very pool"));
    }
  }
  // As offline: NEW is created when absent (given a size), and removed again if
  // the replace is refused before the rebuild starts.
  struct stat st;
  const bool existed = ::stat(r.new_path.c_str(), &st) == 0;
  if (!existed && r.size_bytes == 0) {
    return control::ErrorLine(Status::NotFound(
        r.new_path + " does not exist (give --size to create it as a sparse file)"));
  }
  auto dev = OpenDevice(r.new_path, existed ? 0 : r.size_bytes);
  if (!dev.ok()) {
    return control::ErrorLine(dev.status().Annotate("cannot open " + r.new_path));
  }
  auto refuse = [&](const Status &s) {
    dev->reset();
    if (!existed) ::unlink(r.new_path.c_str());
    return control::ErrorLine(s);
  };
  auto id = ProbeMember(**dev);
  if (id.ok() && !r.force) {
    return refuse(Status::Exists(r.new_path + " holds AstraFS pool " + id->pool_uuid + " (member " +
                                 std::to_string(id->member_index) + ")" +
                                 (id->pool_uuid == pool_uuid_ ? ", this very pool" : "") +
                                 "; use --force to overwrite it"));
  }
  const std::string old_path = ps.member_status[index].path;
  const std::string old_state = MemberStateName(ps.member_status[index].state);
  spdlog::info("control: rebuilding member {} ({}, {}) onto {}", index,
               old_path.empty() ? "missing" : old_path, old_state, r.new_path);
  ProgressSender progress(fd, "replace");
  Status s = pool_.ReplaceMember(index, std::move(*dev), progress.Fn());
  if (!s.ok()) {
    spdlog::error("control: replace failed: {}", s.ToString());
    return control::ErrorLine(s.Annotate("replace failed"));
  }
  const PoolStatus after = pool_.GetStatus();
  control::JsonString out;
  {
    tools::JsonWriter j(out.file(), /*compact=*/true);
    ResultHeader(j, "replace");
    j.Uint("index", index);
    j.String("old", old_path.empty() ? (r.old_path.empty() ? "(missing)" : r.old_path) : old_path);
    j.String("old_state", old_state);
    j.String("new", r.new_path);
    control::WritePoolStatus(j, "status", after);
    j.EndObject();
  }
  return out.str();
}

}  // namespace astra::mount
