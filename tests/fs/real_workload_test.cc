// Real workloads on a mount (issue 4), each on a fresh 4+2 pool of six sparse files served by the
// real astrafs-mount binary:
//  * a real upstream tarball (Debian's linux-source-6.1) unpacked on the mount and on the native
//    disk; every entry compared (type, mode, owner, mtime, size, symlink target, SHA-256 of every
//    regular file), again after an unmount and a remount; then fsck.astrafs -n must find the
//    pool clean;
//  * real upstream C projects (zlib, gzip: the .orig tarballs of Debian's source packages)
//    unpacked on the mount, configured, built and put through their own test suites there.
// The inputs come from Debian packages installed by scripts/setup.sh. Large temporary files go
// under ASTRAFS_BIG_TMPDIR (default /var/tmp), never /tmp.
#include <dirent.h>
#include <fnmatch.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <string>
#include <vector>

#include "mount_fixture.h"

namespace astra::fs::test {
namespace {

using Clock = std::chrono::steady_clock;

std::string Env(const char* name, const std::string& fallback) {
  const char* v = getenv(name);
  return v != nullptr && v[0] != '\0' ? v : fallback;
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Prints and records one measured duration (ctest shows it with --output-on-failure or -V).
void Report(const std::string& what, double seconds) {
  printf("[ timing ] %s: %.1f s\n", what.c_str(), seconds);
  fflush(stdout);
  ::testing::Test::RecordProperty(what, std::to_string(seconds));
}

// A temporary directory on a disk with room (the pool files and the native copy are gigabytes),
// removed on destruction after any mount still up under it is detached, so a failed assertion
// leaves neither a mount nor files behind.
class BigTempDir {
 public:
  BigTempDir() {
    std::string tmpl = Env("ASTRAFS_BIG_TMPDIR", "/var/tmp") + "/astrafs-real-XXXXXX";
    const char* p = mkdtemp(tmpl.data());
    path_ = p != nullptr ? p : "";
    if (!path_.empty()) chmod(path_.c_str(), 0755);
  }
  ~BigTempDir() {
    if (path_.empty()) return;
    RunCmd("for m in $(awk '{print $5}' /proc/self/mountinfo | grep '^" + path_ +
           "/'); do fusermount3 -u -z $m 2>/dev/null; done");
    RunCmd("rm -rf '" + path_ + "'");
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The first file in `dir` whose name matches the glob `pattern` ("" if none).
std::string FindFile(const std::string& dir, const std::string& pattern) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return "";
  std::string found;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name.ends_with(".asc")) continue;  // a detached signature, not the tarball
    if (fnmatch(pattern.c_str(), e->d_name, 0) == 0) {
      found = dir + "/" + e->d_name;
      break;
    }
  }
  closedir(d);
  return found;
}

std::string FsckBinary() { return Env("ASTRAFS_FSCK", ASTRAFS_FSCK_BIN); }

// Splits a NUL-separated file into records.
std::vector<std::string> ReadRecords(const std::string& path) {
  std::string text;
  std::vector<std::string> out;
  if (!ReadFile(path, &text)) return out;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\0') {
      out.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

// path -> "type mode uid gid mtime size [-> target] [sha256]" for every entry under `root`.
// Directory sizes are left out (they are the file system's business, not the tarball's).
bool Manifest(const std::string& root, const std::string& scratch,
              std::map<std::string, std::string>* out, std::string* error) {
  const std::string meta = scratch + ".meta", sums = scratch + ".sums";
  std::string log;
  const std::string cmd = "cd '" + root +
                          "' && find . -printf '%p\\t%y %m %U %G %T@ %s -> %l\\0' > '" + meta +
                          "' && find . -type f -print0 | xargs -0 -r sha256sum -z > '" + sums + "'";
  if (RunCmd(cmd, &log) != 0) {
    *error = "listing " + root + " failed: " + log;
    return false;
  }
  out->clear();
  for (const std::string& r : ReadRecords(meta)) {
    const size_t tab = r.find('\t');
    if (tab == std::string::npos || r.compare(0, tab, ".") == 0) continue;  // not the root itself
    std::string attrs = r.substr(tab + 1);
    if (attrs[0] == 'd') {  // "d mode uid gid mtime SIZE -> "
      const size_t arrow = attrs.rfind(" -> ");
      const size_t size_at = attrs.rfind(' ', arrow - 1);
      attrs = attrs.substr(0, size_at);
    } else if (attrs[0] != 'l') {
      attrs.resize(attrs.rfind(" -> "));  // no target
    }
    (*out)[r.substr(0, tab)] = attrs;
  }
  for (const std::string& r : ReadRecords(sums)) {  // "<64 hex>  ./path"
    if (r.size() < 67) continue;
    (*out)[r.substr(66)] += " sha256=" + r.substr(0, 64);
  }
  return true;
}

// Empty when equal; otherwise names the first differing path and counts the differences.
std::string CompareManifests(const std::map<std::string, std::string>& native,
                             const std::map<std::string, std::string>& mounted) {
  std::string first;
  size_t diffs = 0;
  auto note = [&](const std::string& path, const std::string& a, const std::string& b) {
    if (++diffs == 1) {
      first = "first differing entry: " + path + "\n  native: " + a + "\n  mount:  " + b + "\n";
    }
  };
  auto a = native.begin();
  auto b = mounted.begin();
  while (a != native.end() || b != mounted.end()) {
    if (b == mounted.end() || (a != native.end() && a->first < b->first)) {
      note(a->first, a->second, "(missing)");
      ++a;
    } else if (a == native.end() || b->first < a->first) {
      note(b->first, "(missing)", b->second);
      ++b;
    } else {
      if (a->second != b->second) note(a->first, a->second, b->second);
      ++a;
      ++b;
    }
  }
  if (diffs == 0) return "";
  return first + std::to_string(diffs) + " of " + std::to_string(native.size()) + " entries differ";
}

// A directory whose entries the archive lists out of order (a file added to it after its own
// metadata was restored) keeps the time of unpacking, on either side. Those mtimes, recognised on
// the native side as not older than `unpack_start`, are left out of both manifests.
void DropUnpackTimeDirMtimes(time_t unpack_start, std::map<std::string, std::string>* native,
                             std::map<std::string, std::string>* mounted) {
  auto strip = [](std::string* attrs) { attrs->resize(attrs->rfind(' ')); };
  for (auto& [path, attrs] : *native) {
    if (attrs.rfind("d ", 0) != 0) continue;
    if (std::stod(attrs.substr(attrs.rfind(' ') + 1)) < static_cast<double>(unpack_start)) continue;
    strip(&attrs);
    auto it = mounted->find(path);
    if (it != mounted->end() && it->second.rfind("d ", 0) == 0) strip(&it->second);
  }
}

std::string Tail(const std::string& s, size_t n = 6000) {
  return s.size() <= n ? s : "...\n" + s.substr(s.size() - n);
}

// ---- the comparison itself must be able to fail ----

// Two native trees that differ in one way each time: the comparison names the entry.
TEST(RealWorkloadTest, ManifestComparisonNamesTheFirstDifference) {
  BigTempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  const std::string a = tmp.path() + "/a", b = tmp.path() + "/b";
  std::string out;
  ASSERT_EQ(RunCmd("mkdir -p " + a + "/d && echo hello > " + a + "/d/f && echo x > " + a +
                       "/g && ln -s d/f " + a + "/l && touch -d @1000000000 " + a + "/d/f " + a +
                       "/g " + a + "/d && touch -h -d @1000000000 " + a + "/l",
                   &out),
            0)
      << out;
  struct Case {
    const char* change;   // applied to a copy of a
    const char* differs;  // the entry it must be reported on
  };
  const Case cases[] = {
      {"printf 'hellp\\n' > d/f && touch -d @1000000000 d/f d", "./d/f"},  // same size
      {"chmod 600 g", "./g"},
      {"ln -sfn d/g l && touch -h -d @1000000000 l", "./l"},
      {"touch -d @1000000001 g", "./g"},
      {"rm g", "./g"},
      {"touch d/new && touch -d @1000000000 d", "./d/new"},
  };
  std::map<std::string, std::string> want, got;
  std::string error;
  ASSERT_TRUE(Manifest(a, tmp.path() + "/a", &want, &error)) << error;
  ASSERT_EQ(want.size(), 4u);
  for (const Case& c : cases) {
    ASSERT_EQ(RunCmd("rm -rf " + b + " && cp -a " + a + " " + b, &out), 0) << out;
    ASSERT_TRUE(Manifest(b, tmp.path() + "/b", &got, &error)) << error;
    EXPECT_EQ(CompareManifests(want, got), "") << "an exact copy must compare equal";
    ASSERT_EQ(RunCmd("cd " + b + " && " + c.change, &out), 0) << out;
    ASSERT_TRUE(Manifest(b, tmp.path() + "/b", &got, &error)) << error;
    const std::string diff = CompareManifests(want, got);
    EXPECT_NE(diff.find(std::string("first differing entry: ") + c.differs + "\n"),
              std::string::npos)
        << c.change << " gave: " << diff;
  }
}

// ---- tarball ----

TEST(RealWorkloadTest, LinuxSourceTarballMatchesNativeDisk) {
  const std::string tarball = Env("ASTRAFS_TARBALL", "/usr/src/linux-source-6.1.tar.xz");
  // Optional: members to extract (space-separated), e.g. "linux-source-6.1/fs" for a quick run.
  const std::string members = Env("ASTRAFS_TARBALL_MEMBERS", "");
  ASSERT_TRUE(Exists(tarball)) << tarball
                               << " is missing: install Debian's linux-source-6.1 package "
                                  "(scripts/setup.sh does)";
  BigTempDir tmp;
  ASSERT_FALSE(tmp.path().empty()) << "mkdtemp under ASTRAFS_BIG_TMPDIR failed";
  std::string error, out;
  // 4+2 on six 3 GiB sparse members: 12 GiB of user capacity for ~1.5 GB of tree.
  const std::string devs = FormatPool(tmp.path(), 6, 3ull << 30, &error);
  ASSERT_FALSE(devs.empty()) << error;
  const std::string native = tmp.path() + "/native", mnt = tmp.path() + "/mnt";
  ASSERT_EQ(mkdir(native.c_str(), 0755), 0);
  const std::string untar = "tar -xf '" + tarball + "' ";

  const time_t unpack_start = time(nullptr) - 1;
  auto t0 = Clock::now();
  ASSERT_EQ(RunCmd(untar + "-C '" + native + "' " + members, &out), 0) << out;
  Report("unpack on the native disk", SecondsSince(t0));
  std::map<std::string, std::string> want, got;
  t0 = Clock::now();
  ASSERT_TRUE(Manifest(native, tmp.path() + "/native", &want, &error)) << error;
  Report("manifest of the native tree", SecondsSince(t0));
  ASSERT_GT(want.size(), 1u) << "nothing unpacked from " << tarball;
  printf("[ info   ] %zu entries\n", want.size());
  // Compared as they are, minus directory times set by the unpacking itself (see above).
  auto compare = [&](std::map<std::string, std::string> native_tree,
                     std::map<std::string, std::string> mounted) {
    DropUnpackTimeDirMtimes(unpack_start, &native_tree, &mounted);
    return CompareManifests(native_tree, mounted);
  };

  {
    Mount m(devs, mnt);
    ASSERT_TRUE(m.Start()) << m.Log();
    t0 = Clock::now();
    ASSERT_EQ(RunCmd(untar + "-C '" + mnt + "' " + members, &out), 0) << out << "\n" << m.Log();
    Report("unpack on the mount", SecondsSince(t0));
    t0 = Clock::now();
    ASSERT_TRUE(Manifest(mnt, tmp.path() + "/mount1", &got, &error)) << error;
    Report("manifest of the mount", SecondsSince(t0));
    EXPECT_EQ(compare(want, got), "") << "before remount";
    RunCmd("df -h --output=size,used,avail '" + mnt + "' && du -ch " + tmp.path() + "/m? | tail -1",
           &out);
    printf("%s(last line: the pool's member files on disk)\n", out.c_str());
    t0 = Clock::now();
    ASSERT_EQ(m.Unmount(), 0) << m.Log();
    Report("unmount", SecondsSince(t0));
  }
  {
    // After the remount every byte comes from the pool, not from the kernel's page cache.
    Mount m(devs, mnt);
    ASSERT_TRUE(m.Start()) << m.Log();
    t0 = Clock::now();
    ASSERT_TRUE(Manifest(mnt, tmp.path() + "/mount2", &got, &error)) << error;
    Report("manifest of the mount after remount", SecondsSince(t0));
    EXPECT_EQ(compare(want, got), "") << "after remount";
    ASSERT_EQ(m.Unmount(), 0) << m.Log();
  }
  t0 = Clock::now();
  EXPECT_EQ(RunCmd(FsckBinary() + " -n " + devs, &out), 0) << "fsck.astrafs -n:\n" << Tail(out);
  Report("fsck.astrafs -n", SecondsSince(t0));
}

// ---- a real C project ----

struct Project {
  const char* name;         // Debian source package
  const char* orig_glob;    // its upstream tarball in the sources directory
  const char* check;        // the project's own test suite
  const char* pass_marker;  // printed by that suite when everything passed
  const char* recheck;      // a quick use of the built programs, run after the remount
};

// Unpacks the project's upstream tarball on a fresh mount, runs configure, make and its own tests
// there; then unmounts and remounts: the whole tree (sources, objects, programs, test logs) must
// read back as it was, and the built programs must still work. fsck must find the pool clean.
void BuildOnMount(const Project& p) {
  const std::string dir = Env("ASTRAFS_SOURCES_DIR", "/var/cache/astrafs/sources");
  const std::string orig = FindFile(dir, std::string(p.name) + "_" + p.orig_glob);
  ASSERT_FALSE(orig.empty()) << "no " << p.name << " source tarball in " << dir
                             << ": scripts/setup.sh downloads it (apt-get source --download-only "
                             << p.name << ")";
  BigTempDir tmp;
  ASSERT_FALSE(tmp.path().empty()) << "mkdtemp under ASTRAFS_BIG_TMPDIR failed";
  std::string error, out;
  const std::string devs = FormatPool(tmp.path(), 6, 1ull << 30, &error);
  ASSERT_FALSE(devs.empty()) << error;
  const std::string mnt = tmp.path() + "/mnt", src = mnt + "/src";
  const std::string in_tree = "cd '" + src + "'/* && ";
  const std::string name = p.name;
  std::map<std::string, std::string> built, reread;
  {
    Mount m(devs, mnt);
    ASSERT_TRUE(m.Start()) << m.Log();
    ASSERT_EQ(mkdir(src.c_str(), 0755), 0);
    auto t0 = Clock::now();
    ASSERT_EQ(RunCmd("tar -xf '" + orig + "' -C '" + src + "'", &out), 0) << out;
    ASSERT_EQ(RunCmd(in_tree + "./configure", &out), 0) << "configure failed:\n" << Tail(out);
    Report(name + ": unpack + configure", SecondsSince(t0));
    t0 = Clock::now();
    ASSERT_EQ(RunCmd(in_tree + "make -j2", &out), 0) << "make failed:\n" << Tail(out);
    Report(name + ": make", SecondsSince(t0));
    t0 = Clock::now();
    const int rc = RunCmd(in_tree + p.check, &out);
    Report(name + ": " + p.check, SecondsSince(t0));
    ASSERT_EQ(rc, 0) << p.check << " failed:\n" << Tail(out);
    EXPECT_NE(out.find(p.pass_marker), std::string::npos) << Tail(out);
    ASSERT_TRUE(Manifest(src, tmp.path() + "/built", &built, &error)) << error;
    ASSERT_EQ(m.Unmount(), 0) << m.Log();
  }
  {
    Mount m(devs, mnt);
    ASSERT_TRUE(m.Start()) << m.Log();
    ASSERT_TRUE(Manifest(src, tmp.path() + "/reread", &reread, &error)) << error;
    EXPECT_EQ(CompareManifests(built, reread), "") << "the built tree after remount";
    EXPECT_EQ(RunCmd(in_tree + p.recheck, &out), 0) << p.recheck << " failed after remount:\n"
                                                    << Tail(out);
    ASSERT_EQ(m.Unmount(), 0) << m.Log();
  }
  EXPECT_EQ(RunCmd(FsckBinary() + " -n " + devs, &out), 0) << "fsck.astrafs -n:\n" << Tail(out);
}

// zlib: its own configure script, make, and `make test` (example and minigzip, static, shared
// and 64-bit).
TEST(RealWorkloadTest, BuildZlibOnMount) {
  BuildOnMount({"zlib", "*.orig.tar.*", "make test", "*** zlib 64-bit test OK ***", "make test"});
}

// gzip: GNU autoconf/automake with gnulib (a configure run of several hundred checks), make, and
// `make check` (26 tests).
TEST(RealWorkloadTest, BuildGzipOnMount) {
  BuildOnMount({"gzip", "*.orig.tar.xz", "make check -j2", "# FAIL:  0",
                "./gzip -9c configure | ./gzip -dc | cmp - configure && ./gzip --version"});
}

}  // namespace
}  // namespace astra::fs::test
