// The AstraFS FUSE server: serves a pool's file system at a mount point (libfuse 3.14 low-level
// API; requests served by the worker threads of fs/fuse_loop.h). Used by mount-helper/
// (astrafs-mount).
//
// Thread safety: Serve() runs the session on its own worker threads and returns after unmount;
// call it from one thread per mount.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "astra/pool.h"
#include "astra/status.h"

namespace astra::fs {

struct ServeOptions {
  std::string fsname;        // shown as the mount source (the member list)
  bool read_only = false;    // mount read-only (the pool should be opened read-only too)
  bool allow_other = false;  // let users other than the mounter in (needs root or user_allow_other)
  bool writeback_cache = true;  // kernel write-back caching (see doc/fs.md)
  double attr_timeout_s = 1.0;
  double entry_timeout_s = 1.0;
  uint32_t max_threads = 16;  // FUSE worker threads (requests served at once)
  // How long the worker waiting for the next request polls /dev/fuse before it sleeps,
  // microseconds (0: sleep at once). See fs/fuse_loop.h.
  uint32_t poll_us = 50;
  // More "-o" options for libfuse and the kernel (e.g. "max_read=...", "noatime"). Unknown
  // ones make Serve fail before mounting.
  std::vector<std::string> fuse_options;
};

// Prepares the file system (root directory on a fresh pool, orphan cleanup), mounts it, calls
// `on_mounted` (daemon start-up completes there), and serves until the file system is unmounted
// or the process gets SIGINT/SIGTERM/SIGHUP. Then unmounts and returns; the caller closes `pool`.
// Errors: the file system cannot be prepared (kCorruption, kNotSupported, ...), libfuse rejects
// an option, or the mount fails (kIOError naming the mount point).
Status Serve(Pool& pool, const std::string& mountpoint, const ServeOptions& opts,
             const std::function<void()>& on_mounted);

}  // namespace astra::fs
