// Thin FUSE low-level callbacks over FileSystem, and the session set-up (Serve). Every request is
// answered exactly once; the callbacks translate FUSE arguments and replies and nothing else.
#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <spdlog/spdlog.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "astrafs/server.h"
#include "file_system.h"
#include "fuse_loop.h"

namespace astra::fs {
namespace {

constexpr uint32_t kMaxWriteBytes = 1u << 20;
constexpr uint32_t kGroupsMax = 4096;

struct Server {
  FileSystem* fs = nullptr;
  ServeOptions opts;
  std::atomic<fuse_session*> se{nullptr};
  // Set in init when the kernel offers zero-message opens (FUSE_CAP_NO_OPEN_SUPPORT): open and
  // create then answer ENOSYS, so the kernel opens regular files itself (no OPEN, no RELEASE)
  // and creates them with MKNOD. Read-only after init.
  bool kernel_opens = false;
};

Server* S(fuse_req_t req) { return static_cast<Server*>(fuse_req_userdata(req)); }
FileSystem* F(fuse_req_t req) { return S(req)->fs; }

struct DirHandle {
  std::mutex mu;
  std::vector<DirEntry> entries;
  bool loaded = false;
};

Caller CallerOf(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  Caller c;
  c.uid = ctx->uid;
  c.gid = ctx->gid;
  c.in_supplementary_group = [req](uint32_t gid) {
    std::vector<gid_t> groups(64);
    int n = fuse_req_getgroups(req, static_cast<int>(groups.size()), groups.data());
    if (n > static_cast<int>(groups.size()) && n <= static_cast<int>(kGroupsMax)) {
      groups.resize(n);
      n = fuse_req_getgroups(req, n, groups.data());
    }
    if (n <= 0) return false;
    for (int i = 0; i < n && i < static_cast<int>(groups.size()); ++i) {
      if (groups[i] == gid) return true;
    }
    return false;
  };
  return c;
}

void ReplyEntry(fuse_req_t req, const Attr& a) {
  fuse_entry_param e{};
  e.ino = a.st.st_ino;
  e.generation = a.generation;
  e.attr = a.st;
  e.attr_timeout = S(req)->opts.attr_timeout_s;
  e.entry_timeout = S(req)->opts.entry_timeout_s;
  fuse_reply_entry(req, &e);
}

// ---- callbacks ----

void OpInit(void* userdata, fuse_conn_info* conn) {
  auto* srv = static_cast<Server*>(userdata);
  conn->max_write = kMaxWriteBytes;
  conn->max_read = kMaxWriteBytes;  // must match the max_read mount option
  conn->max_readahead = std::min<unsigned>(conn->max_readahead, kMaxWriteBytes);
  auto want = [conn](unsigned cap) {
    if (conn->capable & cap) conn->want |= cap;
  };
  if (srv->opts.writeback_cache) want(FUSE_CAP_WRITEBACK_CACHE);
  want(FUSE_CAP_EXPORT_SUPPORT);
  want(FUSE_CAP_PARALLEL_DIROPS);
  want(FUSE_CAP_ASYNC_DIO);
  want(FUSE_CAP_ASYNC_READ);
  // The kernel clears set-user/group-id bits on write/chown/truncate and sends them as a mode
  // change: it knows the caller's capabilities, we do not.
  conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
  // ACLs are stored as opaque xattrs; permission checks are the kernel's mode-bit checks.
  conn->want &= ~FUSE_CAP_POSIX_ACL;
  // libfuse asks for atomic O_TRUNC by default: the kernel then expects OPEN to truncate and sends
  // no SETATTR for open(O_TRUNC). Our open truncates nothing (and with kernel-side opens there is
  // no OPEN at all), so the old bytes came back once the kernel dropped its cached size. Without
  // it, the kernel truncates with SETATTR(size 0): FileSystem::SetAttr, one transaction.
  conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
  if (!(conn->want & FUSE_CAP_WRITEBACK_CACHE)) srv->opts.writeback_cache = false;
  // The daemon keeps nothing per open regular file (no descriptor, no handle state: O_APPEND comes
  // with every write in fi->flags), so the kernel may open and close files without asking us.
  srv->kernel_opens = (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) != 0;
  srv->fs->set_writeback_cache(srv->opts.writeback_cache);
  spdlog::info("fuse: protocol {}.{}, max_write {} KiB, writeback cache {}, opens {}",
               conn->proto_major, conn->proto_minor, conn->max_write / 1024,
               srv->opts.writeback_cache ? "on" : "off",
               srv->kernel_opens ? "in the kernel" : "in the daemon");
}

void OpDestroy(void* userdata) { static_cast<Server*>(userdata)->fs->Shutdown(); }

void OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Attr a;
  int err = F(req)->Lookup(parent, name, &a);
  if (err == ENOENT) {
    // Negative entry, cached by the kernel: every creation goes through it, so this is safe.
    fuse_entry_param e{};
    e.entry_timeout = S(req)->opts.entry_timeout_s;
    fuse_reply_entry(req, &e);
    return;
  }
  if (err) {
    fuse_reply_err(req, err);
    return;
  }
  ReplyEntry(req, a);
}

void OpForget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  F(req)->Forget(ino, nlookup);
  fuse_reply_none(req);
}

void OpForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t i = 0; i < count; ++i) F(req)->Forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void OpGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  Attr a;
  if (int err = F(req)->GetAttr(ino, &a)) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_reply_attr(req, &a.st, S(req)->opts.attr_timeout_s);
}

void OpSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  Attr a;
  if (int err = F(req)->SetAttr(ino, *attr, to_set, &a)) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_reply_attr(req, &a.st, S(req)->opts.attr_timeout_s);
}

void OpReadlink(fuse_req_t req, fuse_ino_t ino) {
  std::string target;
  if (int err = F(req)->ReadLink(ino, &target)) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_reply_readlink(req, target.c_str());
}

void MakeNode(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev,
              const char* link) {
  Attr a;
  if (int err = F(req)->Create(parent, name, mode, rdev, link ? link : "", CallerOf(req), &a)) {
    fuse_reply_err(req, err);
    return;
  }
  ReplyEntry(req, a);
}

void OpMknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  MakeNode(req, parent, name, mode, rdev, nullptr);
}

void OpMkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  MakeNode(req, parent, name, S_IFDIR | (mode & 07777), 0, nullptr);
}

void OpSymlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  if (link[0] == '\0') {
    fuse_reply_err(req, ENOENT);
    return;
  }
  MakeNode(req, parent, name, S_IFLNK | 0777, 0, link);
}

void OpUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  fuse_reply_err(req, F(req)->Unlink(parent, name));
}

void OpRmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  fuse_reply_err(req, F(req)->Rmdir(parent, name));
}

void OpRename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
              const char* newname, unsigned int flags) {
  fuse_reply_err(req, F(req)->Rename(parent, name, newparent, newname, flags));
}

void OpLink(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  Attr a;
  if (int err = F(req)->Link(ino, newparent, newname, &a)) {
    fuse_reply_err(req, err);
    return;
  }
  ReplyEntry(req, a);
}

void SetupOpen(fuse_file_info* fi) {
  fi->fh = 0;  // no per-file state
  // Every change goes through this kernel: cached pages stay valid across opens (also the
  // kernel's default when it opens files itself).
  fi->keep_cache = 1;
}

void OpOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (S(req)->kernel_opens) {
    // The kernel takes ENOSYS as "opened" and stops sending OPEN/RELEASE for regular files
    // (fc->no_open). Nothing is checked here that the kernel does not check itself: EISDIR and
    // EROFS are refused by the VFS before an open reaches us.
    fuse_reply_err(req, ENOSYS);
    return;
  }
  if (int err = F(req)->Open(ino, fi->flags)) {
    fuse_reply_err(req, err);
    return;
  }
  SetupOpen(fi);
  fuse_reply_open(req, fi);
}

void OpCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
              fuse_file_info* fi) {
  if (S(req)->kernel_opens) {
    // Nothing created: the kernel then uses MKNOD + its own open for every O_CREAT
    // (fc->no_create), one round trip instead of CREATE + RELEASE.
    fuse_reply_err(req, ENOSYS);
    return;
  }
  Attr a;
  if (int err = F(req)->Create(parent, name, S_IFREG | (mode & 07777), 0, "", CallerOf(req), &a)) {
    fuse_reply_err(req, err);
    return;
  }
  SetupOpen(fi);
  fuse_entry_param e{};
  e.ino = a.st.st_ino;
  e.generation = a.generation;
  e.attr = a.st;
  e.attr_timeout = S(req)->opts.attr_timeout_s;
  e.entry_timeout = S(req)->opts.entry_timeout_s;
  if (fuse_reply_create(req, &e, fi) != 0) {
    // The kernel did not get the entry (interrupted): undo the lookup it will never forget.
    F(req)->Forget(e.ino, 1);
  }
}

void OpRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  const char* data = nullptr;
  size_t n = 0;
  if (int err = F(req)->Read(ino, static_cast<uint64_t>(off), size, &data, &n)) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_reply_buf(req, data, n);
}

void OpWrite(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
             fuse_file_info* fi) {
  size_t written = 0;
  // With the writeback cache the kernel positions O_APPEND writes itself (and may read a file
  // opened write-only to fill partial pages); otherwise appends are positioned here. The kernel
  // sends the file's open flags with every write (fuse_write_in.flags), also when it opened the
  // file itself.
  const bool append = (fi->flags & O_APPEND) && !S(req)->opts.writeback_cache;
  if (int err = F(req)->Write(ino, static_cast<uint64_t>(off), buf, size, append, &written)) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_reply_write(req, written);
}

void OpRelease(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

void OpFsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
  fuse_reply_err(req, F(req)->Sync());
}

void OpOpendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Attr a;
  if (int err = F(req)->GetAttr(ino, &a)) {
    fuse_reply_err(req, err);
    return;
  }
  if (!S_ISDIR(a.st.st_mode)) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  auto* h = new DirHandle;
  fi->fh = reinterpret_cast<uint64_t>(h);
  if (fuse_reply_open(req, fi) != 0) delete h;
}

void DoReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi,
               bool plus) {
  auto* h = reinterpret_cast<DirHandle*>(fi->fh);
  std::vector<char> buf(size);
  size_t pos = 0;
  int err = 0;
  {
    // The lock must be released before the reply: once the kernel has the reply, the process may
    // close the directory and releasedir may free `h` on another thread.
    std::lock_guard<std::mutex> l(h->mu);
    if (off == 0 || !h->loaded) {
      // (Re)read at offset 0 (rewinddir); later offsets index this snapshot.
      err = F(req)->ListDir(ino, &h->entries);
      h->loaded = err == 0;
    }
    for (size_t i = static_cast<size_t>(off); err == 0 && i < h->entries.size(); ++i) {
      const DirEntry& d = h->entries[i];
      const off_t next = static_cast<off_t>(i + 1);
      size_t len;
      if (plus) {
        fuse_entry_param e{};
        const bool dot = d.name == "." || d.name == "..";
        if (dot) {
          e.attr.st_ino = d.ino;
          e.attr.st_mode = static_cast<mode_t>(d.type) << 12;
        } else {
          Attr a;
          if (F(req)->GetAttr(d.ino, &a) != 0) continue;  // removed since the snapshot
          e.ino = d.ino;
          e.generation = a.generation;
          e.attr = a.st;
          e.attr_timeout = S(req)->opts.attr_timeout_s;
          e.entry_timeout = S(req)->opts.entry_timeout_s;
        }
        len = fuse_add_direntry_plus(req, buf.data() + pos, size - pos, d.name.c_str(), &e, next);
        if (len > size - pos) break;
        if (!dot) F(req)->AddLookup(d.ino);  // the kernel counts a lookup per entry it receives
      } else {
        struct stat st {};
        st.st_ino = d.ino;
        st.st_mode = static_cast<mode_t>(d.type) << 12;
        len = fuse_add_direntry(req, buf.data() + pos, size - pos, d.name.c_str(), &st, next);
        if (len > size - pos) break;
      }
      pos += len;
    }
  }
  if (err != 0) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_reply_buf(req, buf.data(), pos);
}

void OpReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  DoReaddir(req, ino, size, off, fi, false);
}

void OpReaddirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  DoReaddir(req, ino, size, off, fi, true);
}

void OpReleasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete reinterpret_cast<DirHandle*>(fi->fh);
  fuse_reply_err(req, 0);
}

void OpFsyncdir(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
  fuse_reply_err(req, F(req)->Sync());
}

void OpStatfs(fuse_req_t req, fuse_ino_t) {
  struct statvfs st;
  if (int err = F(req)->StatFs(&st)) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_reply_statfs(req, &st);
}

void OpSetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                int flags) {
  fuse_reply_err(req, F(req)->SetXattr(ino, name, std::string_view(value, size), flags));
}

void OpGetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  std::string v;
  if (int err = F(req)->GetXattr(ino, name, &v)) {
    fuse_reply_err(req, err);
    return;
  }
  if (size == 0) {
    fuse_reply_xattr(req, v.size());
  } else if (size < v.size()) {
    fuse_reply_err(req, ERANGE);
  } else {
    fuse_reply_buf(req, v.data(), v.size());
  }
}

void OpListxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  std::string names;
  if (int err = F(req)->ListXattr(ino, &names)) {
    fuse_reply_err(req, err);
    return;
  }
  if (size == 0) {
    fuse_reply_xattr(req, names.size());
  } else if (size < names.size()) {
    fuse_reply_err(req, ERANGE);
  } else {
    fuse_reply_buf(req, names.data(), names.size());
  }
}

void OpRemovexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  fuse_reply_err(req, F(req)->RemoveXattr(ino, name));
}

void OpFallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                 fuse_file_info*) {
  fuse_reply_err(req, F(req)->Fallocate(ino, mode, offset, length));
}

void OpCopyFileRange(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, fuse_file_info*,
                     fuse_ino_t ino_out, off_t off_out, fuse_file_info*, size_t len, int flags) {
  if (flags != 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  size_t copied = 0;
  if (int err = F(req)->CopyFileRange(ino_in, static_cast<uint64_t>(off_in), ino_out,
                                      static_cast<uint64_t>(off_out), len, &copied)) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_reply_write(req, copied);
}

void OpLseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, fuse_file_info*) {
  int64_t result = 0;
  if (int err = F(req)->Lseek(ino, off, whence, &result)) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_reply_lseek(req, result);
}

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops ops{};
  ops.init = OpInit;
  ops.destroy = OpDestroy;
  ops.lookup = OpLookup;
  ops.forget = OpForget;
  ops.forget_multi = OpForgetMulti;
  ops.getattr = OpGetattr;
  ops.setattr = OpSetattr;
  ops.readlink = OpReadlink;
  ops.mknod = OpMknod;
  ops.mkdir = OpMkdir;
  ops.symlink = OpSymlink;
  ops.unlink = OpUnlink;
  ops.rmdir = OpRmdir;
  ops.rename = OpRename;
  ops.link = OpLink;
  ops.open = OpOpen;
  ops.create = OpCreate;
  ops.read = OpRead;
  ops.write = OpWrite;
  // No flush handler: libfuse answers FLUSH with ENOSYS and the kernel stops sending it
  // (fc->no_flush). The daemon keeps nothing per open file, and the kernel still writes the
  // file's dirty pages back and reports their errors at close (fuse_flush does that before it
  // would send FLUSH), so close(2) loses nothing and saves a round trip. fi->noflush would not do
  // this: the kernel ignores it under the writeback cache, and without the cache it also skips
  // that write-back at close.
  ops.release = OpRelease;
  ops.fsync = OpFsync;
  ops.opendir = OpOpendir;
  ops.readdir = OpReaddir;
  ops.readdirplus = OpReaddirplus;
  ops.releasedir = OpReleasedir;
  ops.fsyncdir = OpFsyncdir;
  ops.statfs = OpStatfs;
  ops.setxattr = OpSetxattr;
  ops.getxattr = OpGetxattr;
  ops.listxattr = OpListxattr;
  ops.removexattr = OpRemovexattr;
  ops.fallocate = OpFallocate;
  ops.copy_file_range = OpCopyFileRange;
  ops.lseek = OpLseek;
  return ops;
}

// "-o" values are comma-separated; a comma inside one (the member list) is escaped for libfuse.
std::string EscapeOptionValue(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == ',' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

}  // namespace

Status Serve(Pool& pool, const std::string& mountpoint, const ServeOptions& opts,
             const std::function<void()>& on_mounted) {
  Server srv;
  srv.opts = opts;
  FsOptions fso;
  fso.read_only = opts.read_only;
  fso.writeback_cache = opts.writeback_cache;
  fso.attributes_changed = [&srv](uint64_t ino) {
    // Attributes only (negative offset): no page-cache work, safe from a request handler.
    fuse_session* se = srv.se.load(std::memory_order_acquire);
    if (se != nullptr) fuse_lowlevel_notify_inval_inode(se, ino, -1, 0);
  };
  FileSystem fs(&pool, fso);
  ASTRA_RETURN_IF_ERROR(fs.Init());
  srv.fs = &fs;

  std::string o = "default_permissions,subtype=astrafs,max_read=" + std::to_string(kMaxWriteBytes);
  if (!opts.fsname.empty()) o += ",fsname=" + EscapeOptionValue(opts.fsname);
  if (opts.allow_other) o += ",allow_other";
  if (opts.read_only) o += ",ro";
  for (const std::string& extra : opts.fuse_options) o += "," + extra;
  std::vector<std::string> argv_s = {"astrafs-mount", "-o", o};
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());

  const fuse_lowlevel_ops ops = MakeOps();
  fuse_session* se = fuse_session_new(&args, &ops, sizeof(ops), &srv);
  if (se == nullptr) {
    return Status::InvalidArgument("libfuse refused the mount options \"" + o + "\"");
  }
  if (fuse_set_signal_handlers(se) != 0) {
    fuse_session_destroy(se);
    return Status::IOError("cannot install signal handlers");
  }
  if (fuse_session_mount(se, mountpoint.c_str()) != 0) {
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    return Status::IOError("cannot mount on " + mountpoint + " (see the message above)");
  }
  spdlog::info("mounted {} on {}{}", opts.fsname, mountpoint, opts.read_only ? " (read-only)" : "");
  srv.se.store(se, std::memory_order_release);
  if (on_mounted) on_mounted();

  const int rc = RunFuseLoop(se, opts.max_threads, opts.poll_us);
  srv.se.store(nullptr, std::memory_order_release);
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);  // calls destroy (orphan cleanup) if the kernel did not already
  spdlog::info("unmounted {} ({})", mountpoint,
               rc == 0 ? "clean" : "loop error " + std::to_string(rc));
  if (rc < 0) return Status::IOError("fuse session loop failed: " + std::string(strerror(-rc)));
  return Status::Ok();
}

}  // namespace astra::fs
