#include "blockdev/control_socket.h"

#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "blockdev/device_record.h"

namespace astra::blockdev {
namespace {

constexpr size_t kRequestBytesMax = 4096;

Result<sockaddr_un> Address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof(a.sun_path)) {
    return Status::InvalidArgument("control socket path too long: " + path);
  }
  memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

}  // namespace

std::vector<std::string> CanonicalMembers(const std::vector<std::string>& members) {
  std::vector<std::string> out;
  for (const auto& m : members) {
    char buf[PATH_MAX];
    out.push_back(realpath(m.c_str(), buf) ? std::string(buf) : m);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string ControlSocketPath(const std::vector<std::string>& canonical_members) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a 64
  for (const auto& m : canonical_members) {
    for (unsigned char c : m + '\n') {
      h ^= c;
      h *= 1099511628211ull;
    }
  }
  char hex[17];
  snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return RunDir() + "/pool-" + hex + ".sock";
}

Result<std::string> SendRequest(const std::string& path, const std::string& request) {
  ASTRA_ASSIGN_OR_RETURN(sockaddr_un a, Address(path));
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno(errno, "socket");
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) < 0) {
    int e = errno;
    close(fd);
    if (e == ENOENT || e == ECONNREFUSED) return Status::NotFound("no server at " + path);
    return Status::FromErrno(e, "connect " + path);
  }
  std::string line = request + "\n";
  if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    int e = errno;
    close(fd);
    return Status::FromErrno(e, "send to " + path);
  }
  std::string reply;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  if (reply.empty()) return Status::IOError("the server at " + path + " closed without a reply");
  while (!reply.empty() && reply.back() == '\n') reply.pop_back();
  return reply;
}

Result<int> ListenControlSocket(const std::string& path) {
  ASTRA_ASSIGN_OR_RETURN(sockaddr_un a, Address(path));
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno(errno, "socket");
  unlink(path.c_str());  // stale: the caller found nobody listening
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) < 0 || listen(fd, 16) < 0) {
    int e = errno;
    close(fd);
    return Status::FromErrno(e, "listen at " + path);
  }
  return fd;
}

Result<std::string> ReadRequest(int fd) {
  std::string line;
  char c;
  pollfd p{fd, POLLIN, 0};
  while (line.size() < kRequestBytesMax) {
    if (poll(&p, 1, 5000) <= 0) return Status::IOError("request timed out");
    ssize_t n = read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || c == '\n') return line;
    line.push_back(c);
  }
  return Status::InvalidArgument("request too long");
}

void WriteReply(int fd, const std::string& reply) {
  std::string s = reply + "\n";
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

}  // namespace astra::blockdev
