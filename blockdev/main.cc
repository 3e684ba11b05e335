// astrafs-ublk: exports AstraFS volumes as Linux block devices /dev/ublkbN (see doc/blockdev.md).
//
//   astrafs-ublk add [--volume NAME] [--size BYTES] [--queues N] [--depth D] [--workers W]
//                    [--buffer-copy] [--logical-block-size 512|4096]
//                    DEVICE[,DEVICE...] | MOUNTPOINT
//   astrafs-ublk list [MOUNTPOINT]
//   astrafs-ublk del N
//   astrafs-ublk recover N
//   astrafs-ublk status N
//
// One server process per pool holds the pool and serves all of its exported volumes. `add` starts
// it (daemonized) when no server for these members is running, or asks the running one through its
// control socket; it prints /dev/ublkbN once the device is usable. When the pool is mounted
// (astrafs-mount holds it), `add` asks that process instead, through the mount's control socket
// (doc/control.md), given the mount point or the members; list, del, status and recover follow
// (recover of a mount's device: after the mount died, once the pool is mounted again).
// Tests only: ASTRA_TEST_FAULT=MEMBER:AFTER_IOS makes a member die mid-run (doc/blockdev.md).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <atomic>
#include <cassert>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "astra/device.h"
#include "astra/faulty_device.h"
#include "astra/pool.h"
#include "blockdev/block_server.h"
#include "blockdev/control_socket.h"
#include "blockdev/device_record.h"
#include "blockdev/ublk_control.h"
#include "cli_common.h"
#include "control_client.h"

namespace po = boost::program_options;
using astra::Result;
using astra::Status;
using namespace astra::blockdev;

namespace {

int Fail(const std::string& msg) {
  std::cerr << "astrafs-ublk: " << msg << "\n";
  return 1;
}
int Fail(const Status& st) { return Fail(st.ToString()); }

std::vector<std::string> SplitMembers(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// "1073741824", "64M", "1G", "1GiB", "2T". kInvalidArgument on garbage or overflow.
Result<uint64_t> ParseSize(const std::string& s) {
  size_t i = 0;
  uint64_t v = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    uint64_t d = static_cast<uint64_t>(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return Status::InvalidArgument("size '" + s + "' is beyond the limits");
    v = v * 10 + d;
    i++;
  }
  if (i == 0) return Status::InvalidArgument("size '" + s + "' is not a number of bytes");
  std::string unit = s.substr(i);
  int shift = 0;
  if (unit.empty() || unit == "B") shift = 0;
  else if (unit == "K" || unit == "KiB" || unit == "k") shift = 10;
  else if (unit == "M" || unit == "MiB") shift = 20;
  else if (unit == "G" || unit == "GiB") shift = 30;
  else if (unit == "T" || unit == "TiB") shift = 40;
  else if (unit == "P" || unit == "PiB") shift = 50;
  else if (unit == "E" || unit == "EiB") shift = 60;
  else return Status::InvalidArgument("size '" + s + "': unknown unit '" + unit + "'");
  if (shift && v > (UINT64_MAX >> shift)) {
    return Status::InvalidArgument("size '" + s + "' is beyond the limits");
  }
  return v << shift;
}

Status RequireUblk() {
  struct stat st;
  if (stat(astra::ublk::kControlPath, &st) < 0) {
    return Status::NotFound("ublk_drv not loaded: run modprobe ublk_drv (" +
                            std::string(astra::ublk::kControlPath) + " is absent)");
  }
  return Status::Ok();
}

// "ok X" -> X; "err M" -> error M.
Result<std::string> ParseReply(const std::string& reply) {
  if (reply.rfind("ok", 0) == 0) return reply.size() > 3 ? reply.substr(3) : std::string();
  if (reply.rfind("err ", 0) == 0) return Status::InvalidArgument(reply.substr(4));
  return Status::IOError("malformed reply from the server: " + reply);
}

void WaitForNode(const std::string& path) {
  struct stat st;
  for (int i = 0; i < 500 && stat(path.c_str(), &st) < 0; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// ---- pools served by astrafs-mount ------------------------------------------------------

// The control socket of the astrafs-mount process serving the pool of `members` (comma-separated),
// when one does: it then holds the pool, and exports its volumes itself. kNotFound when no mount
// serves the pool (no socket, or a stale one); kNotSupported for a daemon without volumes.
Result<std::string> MountSocketForMembers(const std::string& members) {
  astra::tools::MountEntry m;
  m.source = members;
  m.mountpoint = members;
  auto t = astra::control::LocateSocket(m);
  if (!t.ok()) return Status::NotFound(t.status().message());
  struct stat st;
  if (stat(t->socket_path.c_str(), &st) != 0) return Status::NotFound("not mounted");
  astra::control::Request probe;
  probe.command = "exports";
  auto v = astra::control::Call(t->socket_path, probe, nullptr);
  if (v.ok()) return t->socket_path;
  if (v.status().IsNotFound() || v.status().code() == Status::Code::kBusy) {
    return Status::NotFound(v.status().message());  // absent or stale: nobody serves it
  }
  return v.status();
}

// The control socket of the astrafs-mount mounted at `dir`. kInvalidArgument when `dir` is not
// the mount point of a fuse.astrafs mount.
Result<std::string> MountSocketForDir(const std::string& dir) {
  auto m = astra::tools::FindMount(dir);
  if (!m || m->fstype != "fuse.astrafs") {
    return Status::InvalidArgument(dir + " is not the mount point of an AstraFS pool "
                                   "(astrafs-mount); give the pool's members or its mount point");
  }
  auto t = astra::control::LocateSocket(*m);
  if (!t.ok()) return t.status();
  return t->socket_path;
}

Result<astra::control::JsonValue> CallMount(const std::string& sock,
                                            const astra::control::Request& r) {
  return astra::control::Call(sock, r, nullptr);
}

void PrintMountExports(const astra::control::JsonValue& v) {
  const astra::control::JsonValue* ex = v.Find("exports");
  if (ex == nullptr) return;
  auto mp = astra::control::GetString(v, "mountpoint");
  auto pid = astra::control::GetUint(v, "pid");
  for (const auto& e : ex->items) {
    auto id = astra::control::GetUint(e, "device");
    auto vol = astra::control::GetString(e, "volume");
    auto size = astra::control::GetUint(e, "size_bytes");
    auto mapped = astra::control::GetUint(e, "mapped_bytes");
    if (!id.ok() || !vol.ok() || !size.ok() || !mapped.ok()) continue;
    printf("device %llu /dev/ublkb%llu volume %s size_bytes %llu mapped_bytes %llu server "
           "astrafs-mount pid %llu mountpoint %s\n",
           static_cast<unsigned long long>(*id), static_cast<unsigned long long>(*id),
           vol->c_str(), static_cast<unsigned long long>(*size),
           static_cast<unsigned long long>(*mapped),
           static_cast<unsigned long long>(pid.ok() ? *pid : 0),
           mp.ok() ? mp->c_str() : "?");
  }
}

// ---- test-only fault injection (ASTRA_TEST_FAULT) -------------------------------------------

// ASTRA_TEST_FAULT=MEMBER:AFTER_IOS, for tests only (the VM suite ublk_member_fail): the server
// wraps the MEMBER-th device of the member list (0-based) in astra::FaultyDevice; once the pool
// is open, that member serves AFTER_IOS more requests and then dies (FaultyDevice::SetDead):
// every later I/O to it fails with kIOError, like a drive dropping off the bus mid-run.
constexpr const char* kTestFaultEnv = "ASTRA_TEST_FAULT";

struct TestFault {
  uint32_t member = 0;
  uint64_t after_ios = 0;
};

// nullopt when the variable is unset or empty; kInvalidArgument when it is malformed.
Result<std::optional<TestFault>> ParseTestFault(size_t members) {
  const char* v = std::getenv(kTestFaultEnv);
  if (v == nullptr || *v == '\0') return std::optional<TestFault>();
  const std::string s = v;
  const size_t colon = s.find(':');
  auto digits = [](const std::string& t) {
    return !t.empty() && t.size() <= 18 && t.find_first_not_of("0123456789") == std::string::npos;
  };
  if (colon == std::string::npos || !digits(s.substr(0, colon)) || !digits(s.substr(colon + 1))) {
    return Status::InvalidArgument(std::string(kTestFaultEnv) + "='" + s +
                                   "': expected MEMBER:AFTER_IOS (two decimal numbers)");
  }
  TestFault f;
  const uint64_t member = std::stoull(s.substr(0, colon));
  f.after_ios = std::stoull(s.substr(colon + 1));
  if (member >= members) {
    return Status::InvalidArgument(std::string(kTestFaultEnv) + "='" + s + "': the pool has " +
                                   std::to_string(members) + " members (0.." +
                                   std::to_string(members - 1) + ")");
  }
  f.member = static_cast<uint32_t>(member);
  return std::optional<TestFault>(f);
}

// Counts the requests sent to a FaultyDevice and kills it once Arm()'s budget is used up. The
// request that crosses the budget already fails (SetDead happens before it is forwarded).
class DyingDevice final : public astra::Device {
 public:
  DyingDevice(std::unique_ptr<astra::FaultyDevice> faulty, uint32_t member)
      : faulty_(std::move(faulty)), member_(member) {}
  const astra::DeviceInfo& info() const override { return faulty_->info(); }
  void Submit(astra::IoRequest* const* reqs, size_t n) override {
    if (armed_.load(std::memory_order_acquire)) {
      const int64_t before = budget_.fetch_sub(static_cast<int64_t>(n));
      if (before - static_cast<int64_t>(n) < 0 && !dead_.exchange(true)) {
        astra::FaultStats fs = faulty_->stats();
        fprintf(stderr,
                "astrafs-ublk: %s: member %u (%s) dies now: every further I/O fails "
                "(served %llu reads, %llu writes, %llu flushes since the pool opened)\n",
                kTestFaultEnv, member_, info().path.c_str(),
                static_cast<unsigned long long>(fs.reads - base_.reads),
                static_cast<unsigned long long>(fs.writes - base_.writes),
                static_cast<unsigned long long>(fs.flushes - base_.flushes));
        faulty_->SetDead(true);
      }
    }
    faulty_->Submit(reqs, n);
  }
  // Called once, after the pool has opened: `after_ios` more requests succeed.
  void Arm(uint64_t after_ios) {
    assert(!armed_.load());
    base_ = faulty_->stats();
    budget_.store(static_cast<int64_t>(after_ios));
    armed_.store(true, std::memory_order_release);
    fprintf(stderr, "astrafs-ublk: %s: member %u (%s) dies after %llu more I/Os\n", kTestFaultEnv,
            member_, info().path.c_str(), static_cast<unsigned long long>(after_ios));
  }

 private:
  std::unique_ptr<astra::FaultyDevice> faulty_;
  const uint32_t member_;
  astra::FaultStats base_;
  std::atomic<int64_t> budget_{0};
  std::atomic<bool> armed_{false}, dead_{false};
};

// ---- the server process ---------------------------------------------------------------------

std::string HandleRequest(BlockServer& srv, const std::string& line) {
  std::istringstream in(line);
  std::string cmd;
  in >> cmd;
  auto reply = [](const Result<uint32_t>& r) {
    return r.ok() ? "ok /dev/ublkb" + std::to_string(r.value()) : "err " + r.status().ToString();
  };
  if (cmd == "add") {
    ExportOptions o;
    uint32_t queues = 0, depth = 0, uc = 1, lbs = 0;
    in >> o.volume >> o.size_bytes >> queues >> depth >> o.workers_per_queue >> uc;
    if (!in) return "err malformed add request";
    if (in >> lbs) o.logical_block_bytes = lbs;  // optional (absent from older clients)
    o.queues = static_cast<uint16_t>(queues);
    o.depth = static_cast<uint16_t>(depth);
    o.user_copy = uc != 0;
    return reply(srv.Export(o));
  }
  uint32_t id = 0;
  if (cmd == "recover") {
    in >> id;
    return in ? reply(srv.Recover(id)) : "err malformed recover request";
  }
  if (cmd == "del") {
    in >> id;
    if (!in) return "err malformed del request";
    Status st = srv.Remove(id);
    return st.ok() ? "ok" : "err " + st.ToString();
  }
  if (cmd == "status") return "ok " + srv.Describe();
  return "err unknown request '" + cmd + "'";
}

// Runs in the forked server: opens the pool, serves `first` (reporting to `report_fd`), then the
// control socket, until no device is left or SIGTERM/SIGINT (which deletes the devices).
int ServerMain(const std::vector<std::string>& members, const std::string& first, int report_fd) {
  auto report = [&](const std::string& r) {
    if (report_fd >= 0) {
      std::string s = r + "\n";
      ssize_t n = write(report_fd, s.data(), s.size());
      (void)n;
      close(report_fd);
      report_fd = -1;
    }
  };
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  sigprocmask(SIG_BLOCK, &sigs, nullptr);  // before any thread exists: all inherit the mask
  signal(SIGPIPE, SIG_IGN);
  int sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC);

  const std::vector<std::string> canon = CanonicalMembers(members);
  auto fault = ParseTestFault(members.size());
  if (!fault.ok()) {
    report("err " + fault.status().ToString());
    return 1;
  }
  DyingDevice* dying = nullptr;  // owned by the pool
  std::vector<std::unique_ptr<astra::Device>> devs;
  for (const auto& m : members) {
    auto d = astra::OpenDevice(m);
    if (!d.ok()) {
      report("err cannot open pool member " + m + ": " + d.status().ToString());
      return 1;
    }
    if (fault->has_value() && (*fault)->member == devs.size()) {
      auto faulty = std::make_unique<astra::FaultyDevice>(std::move(d.value()));
      auto wrapped = std::make_unique<DyingDevice>(std::move(faulty), (*fault)->member);
      dying = wrapped.get();
      devs.push_back(std::move(wrapped));
      continue;
    }
    devs.push_back(std::move(d.value()));
  }
  auto pool = astra::Pool::Open(std::move(devs));
  if (!pool.ok()) {
    report("err cannot open the pool: " + pool.status().ToString());
    return 1;
  }
  if (dying != nullptr) dying->Arm((*fault)->after_ios);
  const std::string sock_path = ControlSocketPath(canon);
  auto listen_fd = ListenControlSocket(sock_path);
  if (!listen_fd.ok()) {
    report("err " + listen_fd.status().ToString());
    (*pool)->Close().IgnoreError();
    return 1;
  }
  int rc = 0;
  {
    BlockServer srv(pool->get(), canon);
    Status st = srv.OpenControl();
    std::string r = st.ok() ? HandleRequest(srv, first) : "err " + st.ToString();
    report(r);
    while (srv.exports() > 0) {
      pollfd p[2] = {{*listen_fd, POLLIN, 0}, {sig_fd, POLLIN, 0}};
      if (poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (p[1].revents & POLLIN) {
        signalfd_siginfo si;
        ssize_t n = read(sig_fd, &si, sizeof si);
        (void)n;
        fprintf(stderr, "astrafs-ublk: signal %u: removing every device\n", si.ssi_signo);
        Status rs = srv.RemoveAll();
        if (!rs.ok()) fprintf(stderr, "astrafs-ublk: %s\n", rs.ToString().c_str());
        break;
      }
      if (p[0].revents & POLLIN) {
        int c = accept4(*listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        auto req = ReadRequest(c);
        WriteReply(c, req.ok() ? HandleRequest(srv, *req) : "err " + req.status().ToString());
        close(c);
      }
    }
    if (!r.starts_with("ok")) rc = 1;
  }
  close(*listen_fd);
  unlink(sock_path.c_str());
  Status cs = (*pool)->Close();
  if (!cs.ok()) {
    fprintf(stderr, "astrafs-ublk: closing the pool: %s\n", cs.ToString().c_str());
    rc = 1;
  }
  fprintf(stderr, "astrafs-ublk: server %d exits (%d)\n", getpid(), rc);
  return rc;
}

// Sends `request` to the server of `members`, starting one (daemonized) when none runs.
Result<std::string> Dispatch(const std::vector<std::string>& members, const std::string& request) {
  ASTRA_RETURN_IF_ERROR(EnsureRunDir());
  const std::vector<std::string> canon = CanonicalMembers(members);
  const std::string sock = ControlSocketPath(canon);
  Result<std::string> sent = SendRequest(sock, request);
  if (sent.ok()) return ParseReply(*sent);
  if (!sent.status().IsNotFound()) return sent.status();

  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) < 0) return Status::FromErrno(errno, "pipe");
  fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) return Status::FromErrno(errno, "fork");
  if (pid == 0) {
    close(pfd[0]);
    setsid();
    // Detach from the caller's terminal and pipes (a `$(astrafs-ublk add ...)` must not wait
    // for the server); its diagnostics go to a log next to the socket.
    const std::string log = sock.substr(0, sock.size() - 5) + ".log";
    int null_fd = open("/dev/null", O_RDWR);
    int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    dup2(null_fd, 0);
    dup2(log_fd >= 0 ? log_fd : null_fd, 1);
    dup2(log_fd >= 0 ? log_fd : null_fd, 2);
    if (null_fd > 2) close(null_fd);
    if (log_fd > 2) close(log_fd);
    setvbuf(stderr, nullptr, _IOLBF, 0);
    fprintf(stderr, "astrafs-ublk: server %d starts for %s\n", getpid(), sock.c_str());
    _exit(ServerMain(members, request, pfd[1]));
  }
  close(pfd[1]);
  std::string reply;
  char buf[1024];
  for (;;) {
    ssize_t n = read(pfd[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  close(pfd[0]);
  while (!reply.empty() && reply.back() == '\n') reply.pop_back();
  if (reply.empty()) {
    int st = 0;
    waitpid(pid, &st, 0);
    return Status::IOError("the server died while starting (see " + RunDir() + "/pool-*.log)");
  }
  return ParseReply(reply);
}

int CmdAdd(const std::vector<std::string>& args) {
  po::options_description desc("astrafs-ublk add [options] DEVICE[,DEVICE...]");
  std::string volume = "vol0", size_text, members_text;
  uint32_t queues = 1, depth = 64, workers = 2, logical_block = 0;
  bool buffer_copy = false;
  desc.add_options()
      ("volume", po::value(&volume), "volume name (created when missing and --size is given)")
      ("size", po::value(&size_text), "logical size of a new volume (bytes, or 64M, 10G, ...)")
      ("queues", po::value(&queues), "hardware queues (one thread and ring each), 1..16")
      ("depth", po::value(&depth), "requests in flight per queue, 1..1024")
      ("workers", po::value(&workers), "engine worker threads per queue, 1..16")
      ("buffer-copy", po::bool_switch(&buffer_copy), "do not use USER_COPY even if offered")
      ("logical-block-size", po::value(&logical_block),
       "512 or 4096 (default: the volume's; a new volume gets 4096); fixed at creation")
      ("members", po::value(&members_text), "pool members, comma-separated");
  po::positional_options_description pos;
  pos.add("members", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(desc).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    return Fail(std::string(e.what()) + "\n" + [&] { std::ostringstream o; o << desc; return o.str(); }());
  }
  std::vector<std::string> members = SplitMembers(members_text);
  if (members.empty()) {
    return Fail("add: name the pool's member devices (DEVICE[,DEVICE...]) or its mount point");
  }
  uint64_t size = 0;
  if (!size_text.empty()) {
    auto s = ParseSize(size_text);
    if (!s.ok()) return Fail(s.status());
    size = *s;
    if (Status st = CheckVolumeSize(size); !st.ok()) return Fail(st);
  }
  if (Status st = CheckVolumeName(volume); !st.ok()) return Fail(st);
  if (queues < 1 || queues > astra::ublk::kQueuesMax) return Fail("--queues must be 1..16");
  if (depth < 1 || depth > astra::ublk::kQueueDepthMax) return Fail("--depth must be 1..1024");
  if (workers < 1 || workers > astra::ublk::kWorkersPerQueueMax) return Fail("--workers must be 1..16");
  if (vm.count("logical-block-size") && logical_block != 512 && logical_block != 4096) {
    return Fail("--logical-block-size " + std::to_string(logical_block) +
                " is not supported: use 512 or 4096");
  }
  if (Status st = RequireUblk(); !st.ok()) return Fail(st);
  // A mounted pool: astrafs-mount holds it, so it exports the volume itself.
  struct stat dst;
  Result<std::string> mount_sock = Status::NotFound("");
  if (members.size() == 1 && stat(members[0].c_str(), &dst) == 0 && S_ISDIR(dst.st_mode)) {
    mount_sock = MountSocketForDir(members[0]);
    if (!mount_sock.ok()) return Fail(mount_sock.status().message());
  } else {
    mount_sock = MountSocketForMembers(members_text);
    if (!mount_sock.ok() && !mount_sock.status().IsNotFound()) return Fail(mount_sock.status());
  }
  if (mount_sock.ok()) {
    astra::control::Request r;
    r.command = "export";
    r.volume = volume;
    r.size_bytes = size;
    r.queues = queues;
    r.depth = depth;
    r.workers = workers;
    r.buffer_copy = buffer_copy;
    r.logical_block_bytes = logical_block;
    auto v = CallMount(*mount_sock, r);
    if (!v.ok()) {
      return Fail(v.status().message().empty() ? v.status().ToString() : v.status().message());
    }
    auto path = astra::control::GetString(*v, "path");
    if (!path.ok()) return Fail(path.status());
    WaitForNode(*path);
    std::cout << *path << std::endl;
    return 0;
  }
  std::ostringstream req;
  req << "add " << volume << " " << size << " " << queues << " " << depth << " " << workers << " "
      << (buffer_copy ? 0 : 1) << " " << logical_block;
  auto r = Dispatch(members, req.str());
  if (!r.ok()) return Fail(r.status().message().empty() ? r.status().ToString() : r.status().message());
  WaitForNode(*r);
  std::cout << *r << std::endl;
  return 0;
}

Result<uint32_t> ParseDevId(const std::string& s) {
  std::string t = s;
  if (t.rfind("/dev/ublkb", 0) == 0) t = t.substr(10);
  if (t.empty() || t.find_first_not_of("0123456789") != std::string::npos || t.size() > 6) {
    return Status::InvalidArgument("'" + s + "' is not a ublk device number");
  }
  return static_cast<uint32_t>(std::stoul(t));
}

int CmdForDevice(const std::string& cmd, const std::vector<std::string>& args) {
  if (args.size() != 1) return Fail(cmd + ": give one device number N (or /dev/ublkbN)");
  auto id = ParseDevId(args[0]);
  if (!id.ok()) return Fail(id.status());
  if (Status st = RequireUblk(); !st.ok()) return Fail(st);
  auto rec = LoadDeviceRecord(*id);
  if (!rec.ok()) return Fail(rec.status());
  const std::string sock = ControlSocketPath(rec->members);
  const std::string request = cmd + " " + std::to_string(*id);
  // Served by astrafs-mount (the pool is mounted): del, status and recover go to it.
  if (SendRequest(sock, "status").status().IsNotFound()) {
    std::string joined;
    for (const auto& m : rec->members) joined += (joined.empty() ? "" : ",") + m;
    auto ms = MountSocketForMembers(joined);
    if (!ms.ok() && !ms.status().IsNotFound()) return Fail(ms.status());
    if (ms.ok()) {
      astra::control::Request r;
      r.command = cmd == "del" ? "unexport" : cmd == "recover" ? "recover" : "exports";
      r.device = *id;
      auto v = CallMount(*ms, r);
      if (cmd == "del" && !v.ok() && v.status().IsNotFound()) {
        // Not served by this mount: its server (an astrafs-ublk daemon, or an earlier mount of
        // the pool) died. Removed directly below.
      } else if (!v.ok()) {
        return Fail(v.status().message());
      } else if (cmd == "recover") {
        auto path = astra::control::GetString(*v, "path");
        if (!path.ok()) return Fail(path.status());
        std::cout << *path << std::endl;
        return 0;
      } else if (cmd == "status") {
        bool found = false;
        if (const auto* ex = v->Find("exports")) {
          for (const auto& e : ex->items) {
            auto d = astra::control::GetUint(e, "device");
            found = found || (d.ok() && *d == *id);
          }
        }
        if (!found) return Fail("/dev/ublkb" + std::to_string(*id) + " is not served by the mount");
        astra::control::JsonValue one = *v;
        for (auto& [k, val] : one.members) {
          if (k != "exports") continue;
          std::erase_if(val.items, [&](const astra::control::JsonValue& e) {
            auto d = astra::control::GetUint(e, "device");
            return !d.ok() || *d != *id;
          });
        }
        PrintMountExports(one);
        return 0;
      } else {
        return 0;  // del done by the mount
      }
    } else if (cmd == "recover" && rec->by_mount) {
      // Its server was astrafs-mount: an astrafs-ublk server would take the pool and the
      // remount would then fail. The new mount takes the device back instead.
      return Fail("/dev/ublkb" + std::to_string(*id) + " was served by astrafs-mount (pid " +
                  std::to_string(rec->pid) + "), which is gone: mount the pool again " +
                  "(astrafs-mount " + joined + " MOUNTPOINT), then run astrafs-ublk recover " +
                  std::to_string(*id));
    }
  }
  if (cmd == "recover") {
    auto r = Dispatch(rec->members, request);
    if (!r.ok()) return Fail(r.status().message());
    std::cout << *r << std::endl;
    return 0;
  }
  Result<std::string> sent = SendRequest(sock, cmd == "status" ? "status" : request);
  if (sent.ok()) {
    auto r = ParseReply(*sent);
    if (!r.ok()) return Fail(r.status().message());
    if (!r->empty()) std::cout << *r << (r->back() == '\n' ? "" : "\n");
    return 0;
  }
  if (!sent.status().IsNotFound()) return Fail(sent.status());
  if (cmd == "status") return Fail("no server runs for /dev/ublkb" + args[0] + " (recover it?)");
  // del without a server (it died): the kernel still has the device; remove it directly.
  auto ctrl = astra::ublk::UblkControl::Open();
  if (!ctrl.ok()) return Fail(ctrl.status());
  Status st = (*ctrl)->StopDev(*id);
  if (!st.ok() && !st.IsNotFound()) return Fail(st);
  st = (*ctrl)->DelDev(*id);
  if (!st.ok() && !st.IsNotFound()) return Fail(st);
  RemoveDeviceRecord(*id);
  return 0;
}

int CmdList(const std::vector<std::string>& args) {
  if (args.size() > 1) return Fail("list: at most one argument, a mount point");
  if (args.size() == 1) {  // the devices the astrafs-mount at this mount point serves
    auto sock = MountSocketForDir(args[0]);
    if (!sock.ok()) return Fail(sock.status().message());
    astra::control::Request r;
    r.command = "exports";
    auto v = CallMount(*sock, r);
    if (!v.ok()) return Fail(v.status().message());
    PrintMountExports(*v);
    return 0;
  }
  auto ctrl = astra::ublk::UblkControl::Open();
  printf("%-4s %-14s %-20s %14s %-9s %8s  %s\n", "ID", "DEVICE", "VOLUME", "SIZE", "STATE", "PID",
         "MEMBERS");
  for (uint32_t id : ListDeviceRecords()) {
    auto rec = LoadDeviceRecord(id);
    if (!rec.ok()) continue;
    std::string state = "?";
    if (ctrl.ok()) {
      auto info = (*ctrl)->GetDevInfo(id);
      state = info.ok() ? astra::ublk::StateName(info->state) : "gone";
    }
    std::string members;
    for (const auto& m : rec->members) members += (members.empty() ? "" : ",") + m;
    printf("%-4u /dev/ublkb%-4u %-20s %14llu %-9s %8lld  %s\n", id, id, rec->volume.c_str(),
           static_cast<unsigned long long>(rec->size_bytes), state.c_str(),
           static_cast<long long>(rec->pid), members.c_str());
  }
  return 0;
}

void Usage() {
  std::cerr << "usage: astrafs-ublk add [--volume NAME] [--size BYTES] [--queues N] [--depth D]\n"
               "                        [--workers W] [--buffer-copy]\n"
               "                        [--logical-block-size 512|4096]\n"
               "                        DEVICE[,DEVICE...] | MOUNTPOINT\n"
               "       astrafs-ublk list [MOUNTPOINT]\n"
               "       astrafs-ublk del N\n"
               "       astrafs-ublk recover N\n"
               "       astrafs-ublk status N\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    Usage();
    return 2;
  }
  const std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (cmd == "add") return CmdAdd(args);
  if (cmd == "list") return CmdList(args);
  if (cmd == "del" || cmd == "recover" || cmd == "status") return CmdForDevice(cmd, args);
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    Usage();
    return 0;
  }
  Usage();
  return 2;
}
