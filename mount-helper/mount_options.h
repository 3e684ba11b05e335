// Command line of astrafs-mount, parsed with Boost.Program_options into MountArgs before anything
// is opened. Two spellings are accepted:
//   astrafs-mount [-f] [-o OPTIONS] DEVICE[,DEVICE...] MOUNTPOINT
//   mount.fuse.astrafs DEVICE[,DEVICE...] MOUNTPOINT [-sfnv] [-o OPTIONS] [-t TYPE]
//     (how mount(8) runs a helper for "mount -t fuse.astrafs"; there -f means "fake")
#pragma once

#include <string>
#include <vector>

namespace astra::mount {

struct MountArgs {
  std::vector<std::string> devices;
  std::string mountpoint;
  bool foreground = false;
  bool fake = false;  // mount(8) -f: parse and check, mount nothing
  bool read_only = false;
  bool allow_other = false;
  bool writeback_cache = true;
  unsigned threads = 16;
  unsigned poll_us = 50;
  double attr_timeout_s = 1.0;
  double entry_timeout_s = 1.0;
  std::string log_file;                   // empty: default path in daemon mode
  std::vector<std::string> fuse_options;  // passed through to libfuse / the kernel
};

// Parses argv. On error returns false with a one-line message in *error. `--help` sets
// *help_text and returns true with an empty device list.
bool ParseMountArgs(int argc, const char* const* argv, MountArgs* out, std::string* error,
                    std::string* help_text);

// "/mnt/data" -> "mnt-data" (for the log file name); "/" -> "root".
std::string EscapeMountpoint(const std::string& path);

}  // namespace astra::mount
