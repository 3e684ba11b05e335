#include "mount_fixture.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "astra/device.h"

namespace astra::fs::test {

TempDir::TempDir() {
  char tmpl[] = "/tmp/astrafs-test-XXXXXX";
  const char* p = mkdtemp(tmpl);
  path_ = p != nullptr ? p : "/tmp/astrafs-test-failed";
  chmod(path_.c_str(), 0755);  // unprivileged test children must reach the mount point
}

TempDir::~TempDir() {
  // Never recurse into a mount that is still up.
  RunCmd("for m in $(awk '{print $5}' /proc/self/mountinfo | grep '^" + path_ +
         "'); do fusermount3 -u -z $m 2>/dev/null; done");
  RunCmd("rm -rf '" + path_ + "'");
}

std::string FormatPool(const std::string& dir, int members, uint64_t member_bytes,
                       std::string* error, FormatOptions opts) {
  std::vector<std::unique_ptr<Device>> devs;
  std::string list;
  for (int i = 0; i < members; ++i) {
    const std::string path = dir + "/m" + std::to_string(i);
    auto d = OpenDevice(path, member_bytes);
    if (!d.ok()) {
      *error = d.status().ToString();
      return "";
    }
    devs.push_back(std::move(*d));
    list += (i ? "," : "") + path;
  }
  Status s = Pool::Format(devs, opts);
  if (!s.ok()) {
    *error = s.ToString();
    return "";
  }
  return list;  // devs close here, releasing their locks
}

std::string MountBinary() {
  const char* env = getenv("ASTRAFS_MOUNT");
  if (env != nullptr && env[0] != '\0') return env;
  return ASTRAFS_MOUNT_BIN;
}

int RunCmd(const std::string& cmd, std::string* out) {
  FILE* f = popen((cmd + " 2>&1").c_str(), "r");
  if (f == nullptr) return -1;
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  const int st = pclose(f);
  if (out != nullptr) *out = text;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

bool IsAstraMount(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id, parent, dev, root, mp, rest;
    ls >> id >> parent >> dev >> root >> mp;
    if (mp != path) continue;
    if (line.find(" - fuse.astrafs ") != std::string::npos) return true;
  }
  return false;
}

Mount::Mount(std::string devices, std::string mountpoint, std::vector<std::string> options)
    : devices_(std::move(devices)),
      mountpoint_(std::move(mountpoint)),
      options_(std::move(options)) {
  log_ = mountpoint_ + ".log";
}

Mount::~Mount() {
  if (pid_ > 0) Unmount();
}

std::string Mount::Log() const {
  std::string s;
  ReadFile(log_, &s);
  return s;
}

bool Mount::Start() {
  mkdir(mountpoint_.c_str(), 0755);
  const std::string bin = MountBinary();
  std::string opts;
  for (const auto& o : options_) opts += (opts.empty() ? "" : ",") + o;
  pid_ = fork();
  if (pid_ == 0) {
    const int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
    }
    std::vector<const char*> argv = {bin.c_str(), "-f"};
    if (!opts.empty()) {
      argv.push_back("-o");
      argv.push_back(opts.c_str());
    }
    argv.push_back(devices_.c_str());
    argv.push_back(mountpoint_.c_str());
    argv.push_back(nullptr);
    execv(bin.c_str(), const_cast<char* const*>(argv.data()));
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (IsAstraMount(mountpoint_)) return true;
    int st;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Kill();
  return false;
}

int Mount::Unmount() {
  if (pid_ <= 0) return -1;
  RunCmd("fusermount3 -u '" + mountpoint_ + "'");
  int st = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (waitpid(pid_, &st, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &st, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pid_ = -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void Mount::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int st;
  waitpid(pid_, &st, 0);
  pid_ = -1;
  RunCmd("fusermount3 -u -z '" + mountpoint_ + "'");
}

int RunAs(uid_t uid, gid_t gid, const std::vector<gid_t>& groups, const std::function<int()>& fn) {
  const pid_t pid = fork();
  if (pid == 0) {
    if (setgroups(groups.size(), groups.data()) != 0 || setresgid(gid, gid, gid) != 0 ||
        setresuid(uid, uid, uid) != 0) {
      _exit(254);
    }
    _exit(fn() & 0xff);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

bool WriteFile(const std::string& path, const std::string& data) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return false;
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n <= 0) {
      close(fd);
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return close(fd) == 0;
}

bool ReadFile(const std::string& path, std::string* data) {
  const int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return false;
  data->clear();
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) data->append(buf, static_cast<size_t>(n));
  close(fd);
  return n == 0;
}

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t v = rng();
    std::memcpy(s.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return s;
}

void DropCache(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  fsync(fd);
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  close(fd);
}

}  // namespace astra::fs::test
