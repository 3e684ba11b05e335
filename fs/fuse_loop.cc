#include "fuse_loop.h"

#define FUSE_USE_VERSION 314
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace astra::fs {
namespace {

// Requests that only touch metadata (catalogue lookups and one engine commit at most): the
// leader serves them without handing the leadership on. Data transfers, syncs, directory
// listings and anything else may take long and are served by a worker while another leads.
// Opcodes: <linux/fuse.h>.
bool IsShort(const fuse_buf& buf) {
  if ((buf.flags & FUSE_BUF_IS_FD) || buf.size < sizeof(fuse_in_header)) return false;
  switch (static_cast<const fuse_in_header*>(buf.mem)->opcode) {
    case FUSE_LOOKUP: case FUSE_FORGET: case FUSE_BATCH_FORGET: case FUSE_GETATTR:
    case FUSE_READLINK: case FUSE_SYMLINK: case FUSE_MKNOD: case FUSE_MKDIR: case FUSE_UNLINK:
    case FUSE_RMDIR: case FUSE_RENAME: case FUSE_RENAME2: case FUSE_LINK: case FUSE_STATFS:
    case FUSE_GETXATTR: case FUSE_LISTXATTR: case FUSE_SETXATTR: case FUSE_REMOVEXATTR:
    case FUSE_ACCESS: case FUSE_OPENDIR: case FUSE_RELEASEDIR: case FUSE_CREATE: case FUSE_OPEN:
      return true;
    case FUSE_SETATTR:  // a truncation frees blocks: one engine record, but keep it off the leader
      return buf.size >= sizeof(fuse_in_header) + sizeof(fuse_setattr_in) &&
             !(reinterpret_cast<const fuse_setattr_in*>(static_cast<const char*>(buf.mem) + sizeof(fuse_in_header))->valid & FATTR_SIZE);
    default:
      return false;
  }
}

struct Loop {
  fuse_session* se;
  uint32_t poll_us;
  int fd;
  int wake_fd;                 // eventfd: readable once the loop must end (wakes the leader)
  int done_fd;                 // eventfd: a worker left the loop (wakes the main thread)
  std::mutex leader;           // held by the worker that reads the device
  std::atomic<int> error{0};

  // Reads the next request into `buf` as the leader. > 0: a request; 0: the session ended;
  // < 0: -errno.
  int Receive(fuse_buf* buf) {
    const auto budget = std::chrono::microseconds(poll_us);
    auto start = std::chrono::steady_clock::now();
    for (;;) {
      if (fuse_session_exited(se)) return 0;
      int res = fuse_session_receive_buf(se, buf);
      if (res == -EINTR) continue;
      if (res != -EAGAIN) return res;
      if (std::chrono::steady_clock::now() - start < budget) {
        sched_yield();
        continue;
      }
      pollfd p[2] = {{fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
      if (poll(p, 2, -1) < 0 && errno != EINTR) return -errno;
      if (p[1].revents) return 0;
      start = std::chrono::steady_clock::now();
    }
  }

  void Worker() {
    fuse_buf buf{};
    for (;;) {
      int res;
      {
        std::lock_guard<std::mutex> l(leader);
        // Short metadata requests are served by the leader itself, which then goes on reading:
        // a hand-off wakes a follower, and on a workload of small synchronous requests that
        // wake-up would cost as much as the request.
        while ((res = Receive(&buf)) > 0 && IsShort(buf)) fuse_session_process_buf(se, &buf);
      }  // the next worker leads while this one serves the request
      if (res <= 0) {
        if (res < 0) {
          int expected = 0;
          error.compare_exchange_strong(expected, res);
          fuse_session_exit(se);
        }
        break;
      }
      fuse_session_process_buf(se, &buf);
    }
    free(buf.mem);
    const uint64_t one = 1;
    (void)!write(wake_fd, &one, sizeof one);  // the others leave too
    (void)!write(done_fd, &one, sizeof one);
  }
};

}  // namespace

int RunFuseLoop(fuse_session* se, uint32_t threads, uint32_t poll_us) {
  Loop loop;
  loop.se = se;
  loop.poll_us = poll_us;
  loop.fd = fuse_session_fd(se);
  loop.wake_fd = eventfd(0, EFD_CLOEXEC);
  loop.done_fd = eventfd(0, EFD_CLOEXEC);
  if (loop.wake_fd < 0 || loop.done_fd < 0) {
    int e = errno;
    if (loop.wake_fd >= 0) close(loop.wake_fd);
    if (loop.done_fd >= 0) close(loop.done_fd);
    return -e;
  }
  fcntl(loop.fd, F_SETFL, fcntl(loop.fd, F_GETFL) | O_NONBLOCK);

  // Workers block the termination signals, so they reach this thread (its reads below return
  // EINTR, and libfuse's handler has set the session's exit flag).
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  std::vector<std::thread> workers;
  for (uint32_t i = 0; i < std::max<uint32_t>(threads, 1); i++) workers.emplace_back([&loop] { loop.Worker(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);

  // Until a worker leaves (the session is over) or a signal set the exit flag. The timeout
  // covers a signal that arrives between the flag check and poll().
  while (!fuse_session_exited(se)) {
    pollfd p{loop.done_fd, POLLIN, 0};
    if (poll(&p, 1, 1000) > 0) break;
  }
  fuse_session_exit(se);
  const uint64_t one = 1;
  (void)!write(loop.wake_fd, &one, sizeof one);
  for (auto& t : workers) t.join();
  close(loop.wake_fd);
  close(loop.done_fd);
  return loop.error.load();
}

}  // namespace astra::fs
