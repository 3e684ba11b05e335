// Helpers for the file-system integration tests: a pool on sparse files in a temporary
// directory, and the real astrafs-mount binary serving it at a temporary mount point.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "astra/pool.h"

namespace astra::fs::test {

// A temporary directory, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Creates `members` sparse member files named m0..m{n-1} under `dir` and formats them as a pool.
// Returns the comma-separated member list ("" on failure, with the reason in *error).
std::string FormatPool(const std::string& dir, int members, uint64_t member_bytes,
                       std::string* error, FormatOptions opts = {});

// Runs astrafs-mount -f in the background; Unmount()/Kill() end it.
class Mount {
 public:
  Mount(std::string devices, std::string mountpoint, std::vector<std::string> options = {});
  ~Mount();
  // Starts the daemon and waits (up to 30 s) until the mount is up. False if it exited.
  bool Start();
  // fusermount3 -u, then waits for the daemon; returns its exit status (-1 if it died).
  int Unmount();
  // SIGKILL (a crash), then detaches the dead mount.
  void Kill();
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_; }
  std::string Log() const;

 private:
  std::string devices_, mountpoint_, log_;
  std::vector<std::string> options_;
  pid_t pid_ = -1;
};

// Path of the astrafs-mount binary under test.
std::string MountBinary();
// Runs a shell command; returns its exit status (or -1), output in *out when given.
int RunCmd(const std::string& cmd, std::string* out = nullptr);
// True when `path` is a mount point of type fuse.astrafs.
bool IsAstraMount(const std::string& path);
// Runs fn() in a forked child with the given credentials; returns fn's result (0..255) or -1.
int RunAs(uid_t uid, gid_t gid, const std::vector<gid_t>& groups, const std::function<int()>& fn);

// Whole-file helpers (abort the test on I/O errors via return values).
bool WriteFile(const std::string& path, const std::string& data);
bool ReadFile(const std::string& path, std::string* data);
std::string RandomBytes(size_t n, uint64_t seed);
// Writes back and drops the cached pages of `path` so the next read goes to the daemon.
void DropCache(const std::string& path);

}  // namespace astra::fs::test
