// Client side of the control protocol (control_protocol.h, doc/control.md): how
// `astrafs` reaches the astrafs-mount daemon serving a mount point.
//
// Finding the socket: the mount's source in /proc/self/mountinfo is the member
// list; the pool UUID is read from the first member whose superblock reads
// (opened read-only, without the member lock the daemon holds, with O_DIRECT
// where the file system allows it), which names <run dir>/<pool-uuid>.sock. The
// daemon's reply carries its mount point, which the caller compares with the
// mount it asked about.
//
// Thread safety: no shared state; one call per thread.
#pragma once

#include <string>

#include "astra/pool.h"
#include "astra/result.h"
#include "cli_common.h"
#include "control_protocol.h"

namespace astra::control {

struct Target {
  std::string pool_uuid;
  std::string socket_path;
};

// The control socket of the fuse.astrafs mount `m`. Errors: kNotFound (no
// member named in the mount source has a readable superblock: the message names
// each member and why).
Result<Target> LocateSocket(const tools::MountEntry &m);

// Connects to `socket_path`, sends `req`, passes progress lines to `progress`
// (may be null), and returns the final result object when it says ok. Errors:
// kNotFound (no socket there), kBusy naming a stale socket (nobody listens: the
// daemon is gone), kIOError (connection broken before a result: the daemon died
// or was stopped), kInvalidArgument (the daemon's reply is not valid protocol),
// or the server's own error (its code and message).
Result<JsonValue> Call(const std::string &socket_path, const Request &req,
                       const ProgressFn &progress);

}  // namespace astra::control
