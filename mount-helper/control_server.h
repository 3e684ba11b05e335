// ControlServer: the control socket of a mounted pool, through which `astrafs
// status|scrub|gc| replace MOUNTPOINT` run while astrafs-mount holds the pool.
// Protocol: tools/control_protocol.h and doc/control.md.
//
// The socket is <run dir>/<pool-uuid>.sock (run dir: $ASTRA_RUN_DIR or
// /run/astrafs), mode 0600, owned by the daemon's user (root); peers whose uid
// is neither 0 nor the daemon's are refused. Each connection is served on its
// own thread (at most kConnectionsMax at once); status may run at any time, the
// long operations (scrub, gc, replace) one at a time per pool.
//
// Thread safety: Start() and Stop() are called from one thread (astrafs-mount's
// main thread); the connection threads only call the Pool, whose methods are
// thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "astra/pool.h"
#include "astra/status.h"
#include "control_protocol.h"

namespace astra::mount {

class ControlServer {
 public:
  static constexpr size_t kConnectionsMax = 16;
  static constexpr int kRequestTimeoutMs = 10'000;  // to send the request line
  static constexpr int kProgressIntervalMs = 100;   // progress lines at most this often

  // `pool` and the server's lifetime: Stop() must return before the pool is
  // closed. `mountpoint` is reported to clients, which check it is the mount
  // they asked about.
  ControlServer(Pool &pool, std::string mountpoint);
  ~ControlServer();
  ControlServer(const ControlServer &) = delete;
  ControlServer &operator=(const ControlServer &) = delete;

  // Creates the run directory if needed, replaces a stale socket (one nobody
  // listens on), binds, and starts serving. Errors: kBusy (a live server
  // already listens at the path), kExists (the path is taken by something that
  // is not a socket), kInvalidArgument (path too long for a socket), kIOError
  // (socket calls failed, naming the call and the path). Nothing is left behind
  // on error.
  Status Start();

  // Stops accepting, ends connections still waiting for their request, waits
  // for running operations to finish (a scrub cannot be interrupted), and
  // removes the socket (if it is still ours). Idempotent.
  void Stop();

  const std::string &socket_path() const { return path_; }

  // Serves the block-volume commands (control::IsVolumeCommand: export, unexport, exports; see
  // mount-helper/volume_exports.h): writes its fields into the result object after the header,
  // or returns the error to send. Without one those commands get kNotSupported. Set before
  // Start(); called on connection threads, concurrently.
  using VolumeHandler = std::function<Status(const control::Request &, tools::JsonWriter &)>;
  void SetVolumeHandler(VolumeHandler h) { volume_handler_ = std::move(h); }

 private:
  struct Connection {
    int fd = -1;
    std::thread thread;
    std::atomic<bool> done{false};
  };

  void AcceptLoop();
  void ReapFinished();  // joins finished connection threads; needs conns_mu_
  void Handle(Connection *c);
  // The command handlers: write progress lines to `fd` and return the result
  // line (or an error line). The long ones run under op_mu_.
  std::string Dispatch(int fd, const control::Request &r);
  std::string DoStatus();  // the pool status and the per-volume figures
  std::string DoScrub(int fd);
  std::string DoGc(int fd);
  std::string DoReplace(int fd, const control::Request &r);
  // Starts a result line: type, ok, protocol, command, pool_uuid, mountpoint,
  // pid.
  void ResultHeader(tools::JsonWriter &j, const std::string &command) const;

  Pool &pool_;
  const std::string mountpoint_;
  std::string pool_uuid_;
  std::string path_;
  uint64_t socket_ino_ = 0;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  std::thread accept_thread_;
  std::mutex conns_mu_;
  std::list<std::unique_ptr<Connection>> conns_;
  std::mutex op_mu_;        // held for the whole of a scrub, gc or replace
  std::mutex running_mu_;   // guards running_op_
  std::string running_op_;  // the operation holding op_mu_ ("" when none)
  bool started_ = false;
  VolumeHandler volume_handler_;
};

}  // namespace astra::mount
