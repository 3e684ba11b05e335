#include "mount_options.h"

#include <boost/program_options.hpp>
#include <cstdlib>
#include <sstream>

namespace astra::mount {
namespace po = boost::program_options;
namespace {

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      cur.push_back(s[++i]);
    } else if (s[i] == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(s[i]);
    }
  }
  out.push_back(cur);
  return out;
}

bool ParseNumber(const std::string& v, double* out) {
  char* end = nullptr;
  *out = std::strtod(v.c_str(), &end);
  return !v.empty() && end != nullptr && *end == '\0' && *out >= 0;
}

// Options mount(8) and fstab add that mean nothing to a FUSE mount.
bool IsMountNoise(const std::string& o) {
  static const char* const kNoise[] = {"defaults", "auto",   "noauto", "user",  "nouser", "users",
                                       "_netdev",  "nofail", "owner",  "group", "rw"};
  for (const char* n : kNoise) {
    if (o == n) return true;
  }
  return o.rfind("x-", 0) == 0 || o.rfind("comment=", 0) == 0 || o.rfind("helper=", 0) == 0;
}

bool ApplyOption(const std::string& o, MountArgs* a, std::string* error) {
  const size_t eq = o.find('=');
  const std::string key = o.substr(0, eq);
  const std::string val = eq == std::string::npos ? "" : o.substr(eq + 1);
  double d = 0;
  if (o.empty() || IsMountNoise(o)) return true;
  if (o == "ro") {
    a->read_only = true;
  } else if (o == "allow_other") {
    a->allow_other = true;
  } else if (o == "writeback_cache") {
    a->writeback_cache = true;
  } else if (o == "no_writeback_cache") {
    a->writeback_cache = false;
  } else if (key == "threads") {
    if (!ParseNumber(val, &d) || d < 1 || d > 256) {
      *error = "option threads=N wants 1..256, got \"" + val + "\"";
      return false;
    }
    a->threads = static_cast<unsigned>(d);
  } else if (key == "poll_us") {
    if (!ParseNumber(val, &d) || d < 0 || d > 10000 || d != static_cast<unsigned>(d)) {
      *error = "option poll_us=N wants a whole number of microseconds 0..10000, got \"" + val + "\"";
      return false;
    }
    a->poll_us = static_cast<unsigned>(d);
  } else if (key == "attr_timeout" || key == "entry_timeout") {
    if (!ParseNumber(val, &d)) {
      *error = "option " + key + "=SECONDS wants a non-negative number, got \"" + val + "\"";
      return false;
    }
    (key == "attr_timeout" ? a->attr_timeout_s : a->entry_timeout_s) = d;
  } else if (key == "log") {
    a->log_file = val;
  } else if (key == "fsname" || key == "subtype" || o == "default_permissions") {
    // Set by astrafs-mount itself.
  } else {
    a->fuse_options.push_back(o);
  }
  return true;
}

}  // namespace

std::string EscapeMountpoint(const std::string& path) {
  std::string out;
  for (char c : path) {
    if (c == '/') {
      if (!out.empty() && out.back() != '-') out.push_back('-');
    } else if (isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_') {
      out.push_back(c);
    } else {
      out.push_back('_');
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  while (!out.empty() && out.front() == '-') out.erase(out.begin());
  return out.empty() ? "root" : out;
}

bool ParseMountArgs(int argc, const char* const* argv, MountArgs* out, std::string* error,
                    std::string* help_text) {
  std::string prog = argc > 0 ? argv[0] : "astrafs-mount";
  prog = prog.substr(prog.find_last_of('/') + 1);
  const bool mount_helper_style = prog.rfind("mount.", 0) == 0;

  po::options_description visible("Options");
  visible.add_options()("help,h", "show this help")(
      "foreground,f", mount_helper_style ? "fake: check everything, mount nothing"
                                         : "stay in the foreground, log to stderr")(
      "options,o", po::value<std::vector<std::string>>()->composing(),
      "comma-separated mount options: ro, allow_other, threads=N, poll_us=N, attr_timeout=S, "
      "entry_timeout=S, no_writeback_cache, log=FILE, and standard FUSE/mount options");
  po::options_description hidden;
  hidden.add_options()("positional", po::value<std::vector<std::string>>(), "")("sloppy,s", "")(
      "no-mtab,n", "")("verbose,v", "")("type,t", po::value<std::string>(), "");
  po::options_description all;
  all.add(visible).add(hidden);
  po::positional_options_description pos;
  pos.add("positional", -1);

  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    *error = e.what();
    return false;
  }
  if (vm.count("help")) {
    std::ostringstream h;
    h << "usage: " << prog << " [-f] [-o OPTIONS] DEVICE[,DEVICE...] MOUNTPOINT\n"
      << "Serves the AstraFS pool made of the given member devices at MOUNTPOINT.\n"
      << visible;
    *help_text = h.str();
    return true;
  }
  std::vector<std::string> positional;
  if (vm.count("positional")) positional = vm["positional"].as<std::vector<std::string>>();
  if (positional.size() != 2) {
    *error = positional.empty()       ? "missing DEVICE[,DEVICE...] and MOUNTPOINT"
             : positional.size() == 1 ? "missing MOUNTPOINT"
                                      : "too many arguments (want DEVICE[,DEVICE...] MOUNTPOINT)";
    return false;
  }
  MountArgs a;
  for (const std::string& d : Split(positional[0], ',')) {
    if (d.empty()) {
      *error = "empty device name in \"" + positional[0] + "\"";
      return false;
    }
    a.devices.push_back(d);
  }
  a.mountpoint = positional[1];
  if (vm.count("foreground")) {
    (mount_helper_style ? a.fake : a.foreground) = true;
  }
  if (vm.count("options")) {
    for (const std::string& group : vm["options"].as<std::vector<std::string>>()) {
      for (const std::string& o : Split(group, ',')) {
        if (!ApplyOption(o, &a, error)) return false;
      }
    }
  }
  *out = std::move(a);
  return true;
}

}  // namespace astra::mount
