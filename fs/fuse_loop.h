// The FUSE request loop of astrafs-mount: worker threads in the leader/followers pattern
// (D. Schmidt, C. O'Ryan, M. Kircher, I. Pyarali, F. Buschmann, "Leader/Followers", PLoP 2000)
// with bounded polling of /dev/fuse.
//
// One worker at a time, the leader, reads the next request. A short metadata request (lookup,
// getattr, create, unlink, ...: IsShort in fuse_loop.cc) the leader serves itself and reads on;
// for any other it hands the leadership on and serves the request, so up to `threads` requests
// (data transfers, syncs, listings) are served at once, as in libfuse's multi-threaded loop. A new leader first polls the device for up to `poll_us`
// microseconds (non-blocking reads, yielding the CPU between tries) before it sleeps in poll(2):
// a caller waiting for a reply usually sends its next request within a few tens of
// microseconds, and a request found by polling costs no wake-up of the daemon. Measured on the
// metadata benchmark (doc/fs-benchmarks.md): create, stat and unlink run ~35 % faster with 50 us,
// for the same total CPU. poll_us = 0 sleeps at once (plain leader/followers).
#pragma once

#include <cstdint>

struct fuse_session;

namespace astra::fs {

// Serves `se` until the file system is unmounted or fuse_session_exit() is called (libfuse's
// signal handlers do that on SIGINT/SIGTERM/SIGHUP). Must be called on the thread that receives
// those signals: the workers it starts block them. Returns 0, or a negative errno when reading
// the device failed. Sets the session's file descriptor non-blocking.
int RunFuseLoop(fuse_session* se, uint32_t threads, uint32_t poll_us);

}  // namespace astra::fs
