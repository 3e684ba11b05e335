// astrafs-mount: opens the pool named by its member devices and serves its file system through
// FUSE. Daemonizes unless -f; start-up errors always reach the terminal (see doc/mount.md).
#include <fcntl.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "astra/device.h"
#include "astra/pool.h"
#include "astrafs/server.h"
#include "control_server.h"
#include "mount_options.h"
#include "volume_exports.h"

namespace {

using astra::Status;
using astra::mount::MountArgs;

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;  // could not open the pool or mount
constexpr int kExitUsage = 2;    // bad command line
constexpr char kReadyByte = 'k';
constexpr char kLogDir[] = "/var/log/astrafs";

// Foreground: stderr. Daemon: stderr (until start-up completes and stderr becomes /dev/null)
// plus /var/log/astrafs/<mountpoint>.log, or syslog when that file cannot be opened.
void SetupLogging(const MountArgs& a) {
  std::vector<spdlog::sink_ptr> sinks;
  sinks.push_back(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  std::string file_error;
  if (!a.foreground) {
    std::string path = a.log_file;
    if (path.empty()) {
      mkdir(kLogDir, 0755);
      path = std::string(kLogDir) + "/" + astra::mount::EscapeMountpoint(a.mountpoint) + ".log";
    }
    try {
      sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(path));
    } catch (const spdlog::spdlog_ex& e) {
      file_error = e.what();
      sinks.push_back(std::make_shared<spdlog::sinks::syslog_sink_mt>("astrafs-mount", LOG_PID,
                                                                      LOG_DAEMON, false));
    }
  }
  auto logger = std::make_shared<spdlog::logger>("astrafs", sinks.begin(), sinks.end());
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e [%l] astrafs-mount[%P]: %v");
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  if (!file_error.empty()) spdlog::warn("cannot open log file ({}); logging to syslog", file_error);
}

std::string Describe(const std::string& path, const Status& s) {
  switch (s.code()) {
    case Status::Code::kBusy:
      return path +
             " is in use by another process (is the pool already mounted or open?): " + s.message();
    case Status::Code::kNotFound:
      return path + ": no such device or file";
    default:
      return path + ": " + s.ToString();
  }
}

// Forks before anything starts threads (the engine does at Pool::Open): the parent waits until
// the child reports the mount is up, so errors still reach the terminal and the exit code.
// Returns the write end of the ready pipe in the child; never returns in the parent.
int DaemonizeEarly() {
  int fds[2];
  if (pipe(fds) != 0) {
    std::fprintf(stderr, "astrafs-mount: pipe: %s\n", std::strerror(errno));
    std::exit(kExitFailure);
  }
  const pid_t pid = fork();
  if (pid < 0) {
    std::fprintf(stderr, "astrafs-mount: fork: %s\n", std::strerror(errno));
    std::exit(kExitFailure);
  }
  if (pid > 0) {
    close(fds[1]);
    char c = 0;
    ssize_t n;
    do {
      n = read(fds[0], &c, 1);
    } while (n < 0 && errno == EINTR);
    if (n == 1 && c == kReadyByte) std::_Exit(kExitOk);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) std::_Exit(WEXITSTATUS(status));
    std::_Exit(kExitFailure);
  }
  close(fds[0]);
  setsid();
  return fds[1];
}

void DetachFromTerminal(int ready_fd) {
  const int null = open("/dev/null", O_RDWR);
  if (null >= 0) {
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    if (null > STDERR_FILENO) close(null);
  }
  if (chdir("/") != 0) {
    // Nothing depends on the working directory after start-up.
  }
  const char c = kReadyByte;
  if (write(ready_fd, &c, 1) != 1) {
    spdlog::warn("could not tell the parent process that the mount is ready");
  }
  close(ready_fd);
}

}  // namespace

int main(int argc, char** argv) {
  MountArgs a;
  std::string error, help;
  if (!astra::mount::ParseMountArgs(argc, argv, &a, &error, &help)) {
    std::fprintf(stderr, "astrafs-mount: %s\nTry 'astrafs-mount --help'.\n", error.c_str());
    return kExitUsage;
  }
  if (!help.empty()) {
    std::fputs(help.c_str(), stdout);
    return kExitOk;
  }
  struct stat st;
  if (stat(a.mountpoint.c_str(), &st) != 0) {
    std::fprintf(stderr, "astrafs-mount: mount point %s: %s\n", a.mountpoint.c_str(),
                 std::strerror(errno));
    return kExitFailure;
  }
  if (!S_ISDIR(st.st_mode)) {
    std::fprintf(stderr, "astrafs-mount: mount point %s is not a directory\n",
                 a.mountpoint.c_str());
    return kExitFailure;
  }
  char resolved[PATH_MAX];
  if (realpath(a.mountpoint.c_str(), resolved) != nullptr) a.mountpoint = resolved;
  for (std::string& d : a.devices) {
    if (realpath(d.c_str(), resolved) != nullptr) d = resolved;  // the daemon runs in "/"
  }

  const int ready_fd = (a.foreground || a.fake) ? -1 : DaemonizeEarly();
  SetupLogging(a);

  std::vector<std::unique_ptr<astra::Device>> members;
  std::string fsname;
  for (const std::string& path : a.devices) {
    auto dev = astra::OpenDevice(path);
    if (!dev.ok()) {
      spdlog::error("cannot open pool member {}", Describe(path, dev.status()));
      return kExitFailure;
    }
    members.push_back(std::move(*dev));
    fsname += (fsname.empty() ? "" : ",") + path;
  }
  astra::OpenOptions oo;
  oo.read_only = a.read_only;
  oo.read_poll_us = a.poll_us;  // one knob: FUSE workers and member reads poll alike
  auto pool = astra::Pool::Open(std::move(members), oo);
  if (!pool.ok()) {
    spdlog::error("cannot open the pool on {}: {}", fsname, pool.status().ToString());
    return kExitFailure;
  }
  const astra::PoolStatus ps = (*pool)->GetStatus();
  spdlog::info("pool {}: {} member(s), {}+{} erasure coding{}", ps.pool_uuid, ps.members,
               ps.data_shards, ps.parity_shards, ps.read_only ? ", read-only" : "");
  if (ps.degraded) {
    std::string missing;
    for (const auto& m : ps.member_status) {
      if (m.state != astra::MemberState::kOnline) {
        missing += " " + std::to_string(m.index) + "(" + astra::MemberStateName(m.state) + ")";
      }
    }
    spdlog::warn("pool {} is DEGRADED: member(s){} not online; data is served from parity",
                 ps.pool_uuid, missing);
  }
  if (a.fake) {
    Status c = (*pool)->Close();
    return c.ok() ? kExitOk : kExitFailure;
  }

  // Block volumes of this pool exported by this process (doc/blockdev.md, "From a mounted
  // pool"): requested through the control socket; ublk is opened on the first export only.
  auto volumes = std::make_unique<astra::mount::VolumeExports>(**pool, a.devices);
  // The control socket (doc/control.md) lets 'astrafs status|scrub|gc|replace MOUNTPOINT' reach
  // this process. The mount does not depend on it: without it only those commands are missing.
  auto control = std::make_unique<astra::mount::ControlServer>(**pool, a.mountpoint);
  control->SetVolumeHandler([v = volumes.get()](const astra::control::Request& r,
                                                astra::tools::JsonWriter& j) {
    return v->Handle(r, j);
  });
  if (Status cs = control->Start(); !cs.ok()) {
    spdlog::warn("no control socket: {}; 'astrafs status|scrub|gc|replace {}' will not work "
                 "while the pool is mounted",
                 cs.ToString(), a.mountpoint);
    control.reset();
  }

  astra::fs::ServeOptions so;
  so.fsname = fsname;
  so.read_only = a.read_only;
  so.allow_other = a.allow_other;
  so.writeback_cache = a.writeback_cache;
  so.attr_timeout_s = a.attr_timeout_s;
  so.entry_timeout_s = a.entry_timeout_s;
  so.max_threads = a.threads;
  so.poll_us = a.poll_us;
  so.fuse_options = a.fuse_options;
  int rc = kExitOk;
  Status s = astra::fs::Serve(**pool, a.mountpoint, so, [&] {
    if (ready_fd >= 0) DetachFromTerminal(ready_fd);
  });
  if (!s.ok()) {
    spdlog::error("{}", s.ToString());
    rc = kExitFailure;
  }
  control.reset();  // waits for a running scrub/gc/replace; removes the socket
  // Exported volumes next (flush, STOP_DEV, DEL_DEV each), while the pool is still open.
  if (Status vs = volumes->RemoveAll(); !vs.ok()) {
    spdlog::error("deleting the exported block devices: {}", vs.ToString());
    rc = kExitFailure;
  }
  volumes.reset();
  Status c = (*pool)->Close();
  if (!c.ok()) {
    spdlog::error("closing the pool: {}", c.ToString());
    rc = kExitFailure;
  } else {
    spdlog::info("pool closed");
  }
  return rc;
}
