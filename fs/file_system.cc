#include "file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <spdlog/spdlog.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cerrno>
#include <cstring>

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>  // FUSE_SET_ATTR_* only

namespace astra::fs {
namespace {

constexpr uint64_t kB = kFileBlockBytes;
static_assert(kFileBlockBytes == kBlockBytes, "file blocks are engine blocks");
constexpr uint64_t kGeneration = 1;  // inode numbers are never reused (see doc/fs.md)

uint64_t BlocksUp(uint64_t bytes) { return (bytes + kB - 1) / kB; }

Timespec Now() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return Timespec{ts.tv_sec, static_cast<uint32_t>(ts.tv_nsec)};
}

Timespec FromTimespec(const struct timespec& ts) {
  return Timespec{ts.tv_sec, static_cast<uint32_t>(ts.tv_nsec)};
}

struct timespec ToTimespec(const Timespec& t) {
  struct timespec ts;
  ts.tv_sec = t.sec;
  ts.tv_nsec = t.nsec;
  return ts;
}

uint8_t TypeOf(uint32_t mode) { return static_cast<uint8_t>(IFTODT(mode)); }

constexpr std::string_view kAclAccessName = "system.posix_acl_access";
std::string AclChmod(std::string v, uint32_t mode);

// Per-thread scratch for reads and read-modify-write: 1 MiB + 2 blocks (an unaligned 1 MiB
// request touches 257 blocks). Allocated once per FUSE worker thread, not per request.
constexpr size_t kScratchBytes = (1u << 20) + 2 * kB;
char* Scratch() {
  thread_local std::vector<char> buf(kScratchBytes);
  return buf.data();
}
char* BlockScratch() {
  thread_local std::array<char, kB> buf;
  return buf.data();
}

}  // namespace

// Up to four inode records loaded under their meta locks (rename), written back once.
class FileSystem::RecordSet {
 public:
  struct Entry {
    Ino ino = 0;
    InodeRecord rec;
    bool dirty = false;
    bool deleted = false;
  };
  // Returns the record of `ino`, loading it on first use.
  int Get(FileSystem* fs, Ino ino, Entry** out) {
    for (uint32_t i = 0; i < n_; ++i) {
      if (e_[i].ino == ino) {
        *out = &e_[i];
        return 0;
      }
    }
    assert(n_ < e_.size());
    Entry& e = e_[n_];
    e.ino = ino;
    if (int err = fs->Load(ino, &e.rec)) return err;
    ++n_;
    *out = &e;
    return 0;
  }
  void PutDirty(CatalogTxn* txn) {
    for (uint32_t i = 0; i < n_; ++i) {
      if (e_[i].dirty && !e_[i].deleted) txn->Put(InodeKey(e_[i].ino), EncodeInode(e_[i].rec));
    }
  }

 private:
  std::array<Entry, kLockSetInodesMax> e_;
  uint32_t n_ = 0;
};

FileSystem::FileSystem(Pool* pool, FsOptions opts) : pool_(pool), opts_(opts) {
  assert(pool_ != nullptr);
}

// ---------------------------------------------------------------- helpers

int FileSystem::Load(Ino ino, InodeRecord* rec) {
  if (ino == 0) return ENOENT;
  auto v = pool_->Get(InodeKey(ino));
  if (!v.ok()) {
    if (v.status().IsNotFound()) return ENOENT;
    spdlog::error("inode {}: catalogue read failed: {}", ino, v.status().ToString());
    return v.status().ToErrno();
  }
  if (!DecodeInode(*v, rec)) {
    spdlog::error("inode {}: corrupt inode record ({} bytes)", ino, v->size());
    return EIO;
  }
  return 0;
}

int FileSystem::CommitTxn(const CatalogTxn& txn, const char* what, Ino ino) {
  Status s = pool_->Commit(txn);
  if (s.ok()) return 0;
  if (s.code() == Status::Code::kAborted) return EEXIST;
  if (!s.IsNoSpace()) spdlog::error("{} (inode {}): commit failed: {}", what, ino, s.ToString());
  return s.ToErrno();
}

int FileSystem::FindEntry(Ino parent, std::string_view name, Ino* ino, uint8_t* type) {
  auto v = pool_->Get(DentryKey(parent, name));
  if (!v.ok()) {
    if (v.status().IsNotFound()) return ENOENT;
    spdlog::error("directory {}: catalogue read failed: {}", parent, v.status().ToString());
    return v.status().ToErrno();
  }
  if (!DecodeDentry(*v, ino, type)) {
    spdlog::error("directory {}: corrupt entry for a name of {} bytes", parent, name.size());
    return EIO;
  }
  return 0;
}

void FileSystem::FillAttr(Ino ino, const InodeRecord& rec, Attr* out) {
  struct stat& st = out->st;
  st = {};
  st.st_ino = ino;
  st.st_mode = rec.mode;
  st.st_nlink = rec.nlink;
  st.st_uid = rec.uid;
  st.st_gid = rec.gid;
  st.st_rdev = rec.rdev;
  st.st_size = static_cast<off_t>(rec.size);
  st.st_blksize = kB;
  st.st_blocks = S_ISREG(rec.mode) ? static_cast<blkcnt_t>(pool_->ObjectMappedBlocks(ino) * 8) : 0;
  st.st_atim = ToTimespec(rec.atime);
  st.st_mtim = ToTimespec(rec.mtime);
  st.st_ctim = ToTimespec(rec.ctime);
  out->generation = rec.generation;
}

void FileSystem::AddDeleteInode(CatalogTxn* txn, Ino ino, const InodeRecord& rec) {
  assert(ino != kRootIno);
  txn->Delete(InodeKey(ino));
  txn->Delete(OrphanKey(ino));
  const std::string prefix = XattrPrefix(ino);
  pool_
      ->Scan(prefix, PrefixEnd(prefix),
             [&](std::string_view k, std::string_view) {
               txn->Delete(std::string(k));
               return true;
             })
      .IgnoreError();  // a leftover xattr of a deleted inode is unreachable; fsck reports it
  if (S_ISREG(rec.mode)) txn->DeleteObject(ino);
}

bool FileSystem::DropLink(CatalogTxn* txn, Ino ino, InodeRecord* rec, const Timespec& now) {
  assert(rec->nlink > 0);
  rec->nlink = S_ISDIR(rec->mode) ? 0 : rec->nlink - 1;
  rec->ctime = now;
  if (rec->nlink > 0) return false;
  if (lookups_.Referenced(ino)) {
    // Still known to the kernel (open, or cwd): keep it until the last forget. The orphan mark
    // lets the next mount delete it if we crash first.
    txn->Put(OrphanKey(ino), std::string());
    return false;
  }
  AddDeleteInode(txn, ino, *rec);
  return true;
}

Result<Ino> FileSystem::NewIno() {
  for (;;) {
    ASTRA_ASSIGN_OR_RETURN(uint64_t id, pool_->AllocateId());
    if (id > kRootIno) return id;  // 0 is invalid in FUSE, 1 is the root
  }
}

// ---------------------------------------------------------------- lifecycle

Status FileSystem::Init() {
  auto sv = pool_->Get(SuperKey());
  if (sv.ok()) {
    SuperRecord s;
    if (!DecodeSuper(*sv, &s)) {
      return Status::Corruption("file-system super record (catalogue key \"F\") is not valid");
    }
    if (s.version != kSuperVersion || s.root != kRootIno) {
      return Status::NotSupported("file-system catalogue version " + std::to_string(s.version) +
                                  " is not supported by this astrafs-mount (supports " +
                                  std::to_string(kSuperVersion) + ")");
    }
    InodeRecord root;
    if (int err = Load(kRootIno, &root)) {
      return Status::Corruption("root directory inode is missing or corrupt: " +
                                std::string(strerror(err)));
    }
  } else if (sv.status().IsNotFound()) {
    if (opts_.read_only) {
      return Status::InvalidArgument(
          "the pool holds no file system yet; mount it read-write once to create one");
    }
    InodeRecord root;
    const Timespec now = Now();
    root.mode = S_IFDIR | 0755;
    root.nlink = 2;
    root.parent = kRootIno;
    root.generation = kGeneration;
    root.atime = root.mtime = root.ctime = root.btime = now;
    CatalogTxn txn;
    txn.expect_absent = {SuperKey(), InodeKey(kRootIno)};
    txn.Put(SuperKey(), EncodeSuper(SuperRecord{}));
    txn.Put(InodeKey(kRootIno), EncodeInode(root));
    Status s = pool_->Commit(txn);
    if (!s.ok()) return s.Annotate("creating the root directory");
    spdlog::info("created a new file system (root inode {})", kRootIno);
  } else {
    return sv.status().Annotate("reading the file-system super record");
  }
  if (!opts_.read_only) {
    if (int err = DeleteOrphans("mount")) {
      return Status::FromErrno(err, "deleting orphaned inodes at mount");
    }
  }
  return Status::Ok();
}

void FileSystem::Shutdown() {
  lookups_.Clear();
  if (!opts_.read_only) DeleteOrphans("unmount");
}

int FileSystem::DeleteOrphans(const char* when) {
  std::vector<Ino> orphans;
  const std::string prefix = OrphanPrefix();
  Status s = pool_->Scan(prefix, PrefixEnd(prefix), [&](std::string_view k, std::string_view) {
    Ino ino;
    if (DecodeOrphanKey(k, &ino)) orphans.push_back(ino);
    return true;
  });
  if (!s.ok()) return s.ToErrno();
  uint64_t deleted = 0;
  for (Ino ino : orphans) {
    MetaLockSet l(meta_locks_, {ino});
    if (lookups_.Referenced(ino)) continue;
    InodeRecord rec;
    CatalogTxn txn;
    int err = Load(ino, &rec);
    if (err == ENOENT) {
      txn.Delete(OrphanKey(ino));
    } else if (err != 0) {
      return err;
    } else if (rec.nlink != 0) {
      txn.Delete(OrphanKey(ino));  // relinked? cannot happen; keep the inode, drop the mark
    } else {
      AddDeleteInode(&txn, ino, rec);
      ++deleted;
    }
    if (int e = CommitTxn(txn, "delete orphan", ino)) return e;
  }
  if (deleted > 0) spdlog::info("{}: deleted {} orphaned inode(s)", when, deleted);
  return 0;
}

// ---------------------------------------------------------------- namespace

int FileSystem::Lookup(Ino parent, std::string_view name, Attr* out) {
  if (name.size() > kNameBytesMax) return ENAMETOOLONG;
  MetaLockSet l(meta_locks_, {parent});
  Ino ino = 0;
  if (name == "." || name == "..") {  // only asked for by NFS export (FUSE_CAP_EXPORT_SUPPORT)
    InodeRecord prec;
    if (int err = Load(parent, &prec)) return err;
    ino = name == "." ? parent : prec.parent;
  } else {
    uint8_t type;
    if (int err = FindEntry(parent, name, &ino, &type)) return err;
  }
  InodeRecord rec;
  if (int err = Load(ino, &rec)) {
    if (err == ENOENT) spdlog::error("directory {}: entry points to missing inode {}", parent, ino);
    return err == ENOENT ? EIO : err;
  }
  lookups_.Add(ino);
  FillAttr(ino, rec, out);
  return 0;
}

void FileSystem::Forget(Ino ino, uint64_t nlookup) {
  if (ino == kRootIno || !lookups_.Forget(ino, nlookup) || opts_.read_only) return;
  MetaLockSet l(meta_locks_, {ino});
  if (lookups_.Referenced(ino)) return;  // looked up again meanwhile
  InodeRecord rec;
  if (Load(ino, &rec) != 0 || rec.nlink != 0) return;
  CatalogTxn txn;
  AddDeleteInode(&txn, ino, rec);
  CommitTxn(txn, "delete unlinked inode at forget", ino);
}

int FileSystem::GetAttr(Ino ino, Attr* out) {
  InodeRecord rec;
  if (int err = Load(ino, &rec)) return err;
  FillAttr(ino, rec, out);
  return 0;
}

int FileSystem::SetAttr(Ino ino, const struct stat& attr, int to_set, Attr* out) {
  if (opts_.read_only) return EROFS;
  const bool set_size = (to_set & FUSE_SET_ATTR_SIZE) != 0;
  std::unique_lock<std::shared_mutex> data_lock;
  if (set_size) data_lock = std::unique_lock<std::shared_mutex>(data_locks_.For(ino));
  MetaLockSet l(meta_locks_, {ino});
  InodeRecord rec;
  if (int err = Load(ino, &rec)) return err;
  const Timespec now = Now();
  CatalogTxn txn;
  uint64_t shrink_to = UINT64_MAX;
  if (set_size) {
    if (S_ISDIR(rec.mode)) return EISDIR;
    if (!S_ISREG(rec.mode)) return EINVAL;
    if (attr.st_size < 0) return EINVAL;
    const uint64_t new_size = static_cast<uint64_t>(attr.st_size);
    if (new_size > kFileBytesMax) return EFBIG;
    const uint64_t old_size = rec.size;
    if (new_size < old_size) {
      txn.TruncateObject(ino, BlocksUp(new_size));
      shrink_to = new_size;
    } else if (new_size > old_size) {
      // Growing: the old last block's tail and everything after it must read as zeros.
      if (int err = ZeroBlockTail(ino, old_size)) return err;
      txn.TruncateObject(ino, BlocksUp(old_size));
    }
    if (new_size != old_size) rec.mtime = now;
    rec.size = new_size;
  }
  if (to_set & FUSE_SET_ATTR_MODE) {
    rec.mode = (rec.mode & S_IFMT) | (attr.st_mode & 07777);
    const std::string acl_key = XattrKey(ino, kAclAccessName);
    auto acl = pool_->Get(acl_key);
    if (acl.ok()) txn.Put(acl_key, AclChmod(std::move(*acl), rec.mode));
  }
  if (to_set & FUSE_SET_ATTR_UID) rec.uid = attr.st_uid;
  if (to_set & FUSE_SET_ATTR_GID) rec.gid = attr.st_gid;
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
    rec.atime = now;
  } else if (to_set & FUSE_SET_ATTR_ATIME) {
    rec.atime = FromTimespec(attr.st_atim);
  }
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    rec.mtime = now;
  } else if (to_set & FUSE_SET_ATTR_MTIME) {
    rec.mtime = FromTimespec(attr.st_mtim);
  }
  rec.ctime = (to_set & FUSE_SET_ATTR_CTIME) ? FromTimespec(attr.st_ctim) : now;
  txn.Put(InodeKey(ino), EncodeInode(rec));
  if (int err = CommitTxn(txn, "setattr", ino)) return err;
  if (shrink_to != UINT64_MAX) {
    // After the commit: a crash in between leaves stale bytes past EOF in the last block, which
    // every later extension zeroes first (ZeroBlockTail / PrepareExtend).
    if (int err = ZeroBlockTail(ino, shrink_to)) return err;
  }
  FillAttr(ino, rec, out);
  return 0;
}

int FileSystem::ReadLink(Ino ino, std::string* target) {
  InodeRecord rec;
  if (int err = Load(ino, &rec)) return err;
  if (!S_ISLNK(rec.mode)) return EINVAL;
  *target = std::move(rec.symlink);
  return 0;
}

int FileSystem::Create(Ino parent, std::string_view name, mode_t mode, dev_t rdev,
                       std::string_view symlink, const Caller& caller, Attr* out) {
  if (name.size() > kNameBytesMax) return ENAMETOOLONG;
  if (name.empty() || name == "." || name == "..") return EEXIST;
  if (symlink.size() > kSymlinkBytesMax) return ENAMETOOLONG;
  if (opts_.read_only) return EROFS;
  auto new_ino = NewIno();
  if (!new_ino.ok()) return new_ino.status().ToErrno();
  const Ino ino = *new_ino;

  MetaLockSet l(meta_locks_, {parent});
  InodeRecord prec;
  if (int err = Load(parent, &prec)) return err;
  if (!S_ISDIR(prec.mode)) return ENOTDIR;
  if (prec.nlink == 0) return ENOENT;  // removed while we were looking at it

  const Timespec now = Now();
  InodeRecord rec;
  rec.mode = mode;
  rec.uid = caller.uid;
  rec.gid = caller.gid;
  rec.generation = kGeneration;
  rec.atime = rec.mtime = rec.ctime = rec.btime = now;
  if (prec.mode & S_ISGID) {
    // BSD group semantics under a set-gid directory (Linux inode_init_owner).
    rec.gid = prec.gid;
    if (S_ISDIR(mode)) {
      rec.mode |= S_ISGID;
    } else if ((mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) && !caller.IsRoot() &&
               !caller.InGroup(rec.gid)) {
      rec.mode &= ~S_ISGID;
    }
  }
  if (S_ISDIR(mode)) {
    rec.nlink = 2;
    rec.parent = parent;
    prec.nlink++;
  } else {
    rec.nlink = 1;
  }
  if (S_ISLNK(mode)) {
    rec.symlink.assign(symlink);
    rec.size = symlink.size();
  }
  if (S_ISCHR(mode) || S_ISBLK(mode)) rec.rdev = rdev;
  prec.mtime = prec.ctime = now;

  CatalogTxn txn;
  const std::string dkey = DentryKey(parent, name);
  txn.expect_absent.push_back(dkey);
  txn.Put(dkey, EncodeDentry(ino, TypeOf(rec.mode)));
  txn.Put(InodeKey(ino), EncodeInode(rec));
  txn.Put(InodeKey(parent), EncodeInode(prec));
  if (int err = CommitTxn(txn, "create", ino)) return err;
  lookups_.Add(ino);
  FillAttr(ino, rec, out);
  return 0;
}

int FileSystem::Link(Ino ino, Ino new_parent, std::string_view new_name, Attr* out) {
  if (new_name.size() > kNameBytesMax) return ENAMETOOLONG;
  if (opts_.read_only) return EROFS;
  MetaLockSet l(meta_locks_, {ino, new_parent});
  InodeRecord rec, prec;
  if (int err = Load(ino, &rec)) return err;
  if (int err = Load(new_parent, &prec)) return err;
  if (!S_ISDIR(prec.mode)) return ENOTDIR;
  if (prec.nlink == 0 || rec.nlink == 0) return ENOENT;
  if (S_ISDIR(rec.mode)) return EPERM;
  if (rec.nlink >= UINT32_MAX - 1) return EMLINK;
  const Timespec now = Now();
  rec.nlink++;
  rec.ctime = now;
  prec.mtime = prec.ctime = now;
  CatalogTxn txn;
  const std::string dkey = DentryKey(new_parent, new_name);
  txn.expect_absent.push_back(dkey);
  txn.Put(dkey, EncodeDentry(ino, TypeOf(rec.mode)));
  txn.Put(InodeKey(ino), EncodeInode(rec));
  txn.Put(InodeKey(new_parent), EncodeInode(prec));
  if (int err = CommitTxn(txn, "link", ino)) return err;
  lookups_.Add(ino);
  FillAttr(ino, rec, out);
  return 0;
}

int FileSystem::Unlink(Ino parent, std::string_view name) {
  if (name.size() > kNameBytesMax) return ENAMETOOLONG;
  if (opts_.read_only) return EROFS;
  for (;;) {
    Ino child = 0;
    uint8_t type;
    {
      MetaLockSet l(meta_locks_, {parent});
      if (int err = FindEntry(parent, name, &child, &type)) return err;
    }
    MetaLockSet l(meta_locks_, {parent, child});
    Ino again = 0;
    if (int err = FindEntry(parent, name, &again, &type)) return err;
    if (again != child) continue;  // renamed over meanwhile: lock the new child
    InodeRecord prec, rec;
    if (int err = Load(parent, &prec)) return err;
    if (int err = Load(child, &rec)) return err;
    if (S_ISDIR(rec.mode)) return EISDIR;
    const Timespec now = Now();
    CatalogTxn txn;
    txn.Delete(DentryKey(parent, name));
    if (!DropLink(&txn, child, &rec, now)) txn.Put(InodeKey(child), EncodeInode(rec));
    prec.mtime = prec.ctime = now;
    txn.Put(InodeKey(parent), EncodeInode(prec));
    return CommitTxn(txn, "unlink", child);
  }
}

int FileSystem::Rmdir(Ino parent, std::string_view name) {
  if (name.size() > kNameBytesMax) return ENAMETOOLONG;
  if (name == ".") return EINVAL;
  if (name == "..") return ENOTEMPTY;
  if (opts_.read_only) return EROFS;
  for (;;) {
    Ino child = 0;
    uint8_t type;
    {
      MetaLockSet l(meta_locks_, {parent});
      if (int err = FindEntry(parent, name, &child, &type)) return err;
    }
    MetaLockSet l(meta_locks_, {parent, child});
    Ino again = 0;
    if (int err = FindEntry(parent, name, &again, &type)) return err;
    if (again != child) continue;
    InodeRecord prec, rec;
    if (int err = Load(parent, &prec)) return err;
    if (int err = Load(child, &rec)) return err;
    if (!S_ISDIR(rec.mode)) return ENOTDIR;
    bool empty = true;
    const std::string prefix = DentryPrefix(child);
    Status s = pool_->Scan(prefix, PrefixEnd(prefix), [&](std::string_view, std::string_view) {
      empty = false;
      return false;
    });
    if (!s.ok()) return s.ToErrno();
    if (!empty) return ENOTEMPTY;
    const Timespec now = Now();
    CatalogTxn txn;
    txn.Delete(DentryKey(parent, name));
    if (!DropLink(&txn, child, &rec, now)) txn.Put(InodeKey(child), EncodeInode(rec));
    prec.nlink--;
    prec.mtime = prec.ctime = now;
    txn.Put(InodeKey(parent), EncodeInode(prec));
    return CommitTxn(txn, "rmdir", child);
  }
}

int FileSystem::Rename(Ino parent, std::string_view name, Ino new_parent, std::string_view new_name,
                       unsigned flags) {
  if (name.size() > kNameBytesMax || new_name.size() > kNameBytesMax) return ENAMETOOLONG;
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) return EINVAL;
  if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE)) return EINVAL;
  if (opts_.read_only) return EROFS;
  for (;;) {
    Ino src = 0, dst = 0;
    uint8_t src_type = 0, dst_type = 0;
    {
      MetaLockSet l(meta_locks_, {parent, new_parent});
      if (int err = FindEntry(parent, name, &src, &src_type)) return err;
      int err = FindEntry(new_parent, new_name, &dst, &dst_type);
      if (err != 0 && err != ENOENT) return err;
    }
    MetaLockSet l(meta_locks_, {parent, new_parent, src, dst});
    Ino src2 = 0, dst2 = 0;
    if (int err = FindEntry(parent, name, &src2, &src_type)) return err;
    int derr = FindEntry(new_parent, new_name, &dst2, &dst_type);
    if (derr != 0 && derr != ENOENT) return derr;
    if (src2 != src || dst2 != dst) continue;  // changed before we held every lock

    if (dst == src) return 0;  // two names of one inode (or the same name): nothing to do
    if ((flags & RENAME_NOREPLACE) && dst != 0) return EEXIST;
    if ((flags & RENAME_EXCHANGE) && dst == 0) return ENOENT;

    RecordSet recs;
    RecordSet::Entry *p1, *p2, *s, *t = nullptr;
    if (int err = recs.Get(this, parent, &p1)) return err;
    if (int err = recs.Get(this, new_parent, &p2)) return err;
    if (int err = recs.Get(this, src, &s)) return err;
    if (dst != 0) {
      if (int err = recs.Get(this, dst, &t)) return err;
    }
    if (!S_ISDIR(p2->rec.mode)) return ENOTDIR;
    if (p2->rec.nlink == 0) return ENOENT;
    const bool src_dir = S_ISDIR(s->rec.mode);
    const bool dst_dir = t != nullptr && S_ISDIR(t->rec.mode);
    const Timespec now = Now();
    CatalogTxn txn;

    if (flags & RENAME_EXCHANGE) {
      txn.Put(DentryKey(parent, name), EncodeDentry(dst, TypeOf(t->rec.mode)));
      txn.Put(DentryKey(new_parent, new_name), EncodeDentry(src, TypeOf(s->rec.mode)));
      if (parent != new_parent) {
        if (src_dir) {
          s->rec.parent = new_parent;
          p1->rec.nlink--;
          p2->rec.nlink++;
        }
        if (dst_dir) {
          t->rec.parent = parent;
          p2->rec.nlink--;
          p1->rec.nlink++;
        }
      }
      t->rec.ctime = now;
      t->dirty = true;
    } else {
      if (t != nullptr) {
        if (src_dir && !dst_dir) return ENOTDIR;
        if (!src_dir && dst_dir) return EISDIR;
        if (dst_dir) {
          bool empty = true;
          const std::string prefix = DentryPrefix(dst);
          Status st =
              pool_->Scan(prefix, PrefixEnd(prefix), [&](std::string_view, std::string_view) {
                empty = false;
                return false;
              });
          if (!st.ok()) return st.ToErrno();
          if (!empty) return ENOTEMPTY;
          p2->rec.nlink--;  // the replaced directory's ".."
        }
        t->deleted = DropLink(&txn, dst, &t->rec, now);
        t->dirty = true;
      }
      txn.Delete(DentryKey(parent, name));
      txn.Put(DentryKey(new_parent, new_name), EncodeDentry(src, TypeOf(s->rec.mode)));
      if (src_dir && parent != new_parent) {
        s->rec.parent = new_parent;
        p1->rec.nlink--;
        p2->rec.nlink++;
      }
    }
    s->rec.ctime = now;
    s->dirty = true;
    p1->rec.mtime = p1->rec.ctime = now;
    p2->rec.mtime = p2->rec.ctime = now;
    p1->dirty = p2->dirty = true;
    recs.PutDirty(&txn);
    return CommitTxn(txn, "rename", src);
  }
}

int FileSystem::ListDir(Ino ino, std::vector<DirEntry>* out) {
  InodeRecord rec;
  if (int err = Load(ino, &rec)) return err;
  if (!S_ISDIR(rec.mode)) return ENOTDIR;
  out->clear();
  out->push_back(DirEntry{".", ino, DT_DIR});
  out->push_back(DirEntry{"..", rec.parent, DT_DIR});
  const std::string prefix = DentryPrefix(ino);
  int err = 0;
  Status s = pool_->Scan(prefix, PrefixEnd(prefix), [&](std::string_view k, std::string_view v) {
    Ino parent, child;
    std::string_view name;
    uint8_t type;
    if (!DecodeDentryKey(k, &parent, &name) || !DecodeDentry(v, &child, &type)) {
      spdlog::error("directory {}: corrupt entry", ino);
      err = EIO;
      return false;
    }
    out->push_back(DirEntry{std::string(name), child, type});
    return true;
  });
  if (!s.ok()) return s.ToErrno();
  return err;
}

// ---------------------------------------------------------------- data

int FileSystem::Open(Ino ino, int flags) {
  InodeRecord rec;
  if (int err = Load(ino, &rec)) return err;
  if (S_ISDIR(rec.mode) && (flags & O_ACCMODE) != O_RDONLY) return EISDIR;
  if (opts_.read_only && (flags & O_ACCMODE) != O_RDONLY) return EROFS;
  return 0;
}

int FileSystem::ReadBlocks(Ino ino, uint64_t block, uint64_t count, char* buf) {
  while (count > 0) {
    const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(count, kBlocksPerIoMax));
    Status s = pool_->Read(ino, block, n, buf);
    if (!s.ok()) {
      spdlog::error("inode {}: read of blocks {}+{} failed: {}", ino, block, n, s.ToString());
      return s.ToErrno();
    }
    block += n;
    count -= n;
    buf += n * kB;
  }
  return 0;
}

int FileSystem::WriteBlocks(Ino ino, uint64_t block, uint64_t count, const char* buf) {
  while (count > 0) {
    const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(count, kBlocksPerIoMax));
    Status s = pool_->Write(ino, block, n, buf);
    if (!s.ok()) {
      if (!s.IsNoSpace()) {
        spdlog::error("inode {}: write of blocks {}+{} failed: {}", ino, block, n, s.ToString());
      }
      return s.ToErrno();
    }
    block += n;
    count -= n;
    buf += n * kB;
  }
  return 0;
}

int FileSystem::Read(Ino ino, uint64_t off, size_t size, const char** data, size_t* n) {
  *n = 0;
  InodeRecord rec;
  if (int err = Load(ino, &rec)) return err;
  if (!S_ISREG(rec.mode)) return S_ISDIR(rec.mode) ? EISDIR : EINVAL;
  if (off >= rec.size || size == 0) return 0;
  size = std::min<size_t>(size, kScratchBytes - 2 * kB);
  const uint64_t end = std::min<uint64_t>(rec.size, off + size);
  const uint64_t first = off / kB;
  const uint64_t last = BlocksUp(end);
  char* buf = Scratch();
  if (int err = ReadBlocks(ino, first, last - first, buf)) return err;
  *data = buf + (off - first * kB);
  *n = end - off;
  return 0;
}

int FileSystem::ZeroBlockTail(Ino ino, uint64_t pos) {
  if (pos % kB == 0) return 0;
  const uint64_t b = pos / kB;
  auto mapped = pool_->NextMappedBlock(ino, b);
  if (!mapped || *mapped != b) return 0;  // a hole already reads as zeros
  char* blk = BlockScratch();
  if (int err = ReadBlocks(ino, b, 1, blk)) return err;
  std::memset(blk + pos % kB, 0, kB - pos % kB);
  return WriteBlocks(ino, b, 1, blk);
}

int FileSystem::PrepareExtend(Ino ino, uint64_t eof, uint64_t new_off) {
  assert(new_off >= eof);
  const uint64_t eof_block = eof / kB;
  if (eof % kB != 0 && new_off / kB > eof_block) {
    if (int err = ZeroBlockTail(ino, eof)) return err;
  }
  const uint64_t gap_first = BlocksUp(eof);
  const uint64_t gap_end = new_off / kB;
  if (gap_end > gap_first) {
    auto mapped = pool_->NextMappedBlock(ino, gap_first);
    if (mapped && *mapped < gap_end) {
      Status s = pool_->Trim(ino, *mapped, gap_end - *mapped);
      if (!s.ok()) return s.ToErrno();
    }
  }
  return 0;
}

int FileSystem::WriteRange(Ino ino, uint64_t off, const char* buf, size_t size, uint64_t eof) {
  uint64_t pos = off;
  const uint64_t end = off + size;
  while (pos < end) {
    const uint64_t b = pos / kB;
    const uint64_t in_block = pos % kB;
    if (in_block == 0 && end - pos >= kB) {
      const uint64_t whole = (end - pos) / kB;
      if (int err = WriteBlocks(ino, b, whole, buf + (pos - off))) return err;
      pos += whole * kB;
      continue;
    }
    // Partial block: read-modify-write (the caller holds the data lock exclusively).
    const uint64_t len = std::min<uint64_t>(kB - in_block, end - pos);
    char* blk = BlockScratch();
    const uint64_t block_start = b * kB;
    if (block_start >= eof) {
      std::memset(blk, 0, kB);
    } else {
      if (int err = ReadBlocks(ino, b, 1, blk)) return err;
      if (eof < block_start + kB) std::memset(blk + (eof - block_start), 0, block_start + kB - eof);
    }
    std::memcpy(blk + in_block, buf + (pos - off), len);
    if (int err = WriteBlocks(ino, b, 1, blk)) return err;
    pos += len;
  }
  return 0;
}

int FileSystem::Write(Ino ino, uint64_t off, const char* buf, size_t size, bool append,
                      size_t* written) {
  // The kernel's cached attributes only go stale here through st_blocks (size and times are the
  // kernel's own under the writeback cache): invalidate only when the mapped block count
  // changed (overwrites of mapped blocks then cost no extra round trip). Measured: this is not
  // what limits random writes at QD 32 under the writeback cache (~1.3k vs ~1.7k IOPS without
  // any invalidation): the kernel serialises those writes on the inode lock (libfuse 3.14 has
  // no parallel direct writes); see doc/fs-benchmarks.md.
  const uint64_t blocks_before = pool_->ObjectMappedBlocks(ino);
  const int err = WriteLocked(ino, off, buf, size, append, written);
  if (*written > 0 && opts_.attributes_changed && pool_->ObjectMappedBlocks(ino) != blocks_before)
    opts_.attributes_changed(ino);
  return err;
}

int FileSystem::WriteLocked(Ino ino, uint64_t off, const char* buf, size_t size, bool append,
                            size_t* written) {
  *written = 0;
  if (opts_.read_only) return EROFS;
  if (size == 0) return 0;
  InodeRecord rec;
  std::shared_mutex& dl = data_locks_.For(ino);
  if (!append && off % kB == 0 && size % kB == 0) {
    // Fast path: whole blocks inside the file need no merge and no size change; writers of
    // disjoint blocks proceed in parallel under the shared lock.
    std::shared_lock<std::shared_mutex> shared(dl);
    if (int err = Load(ino, &rec)) return err;
    if (off + size <= rec.size) {
      if (int err = WriteBlocks(ino, off / kB, size / kB, buf)) return err;
      *written = size;
      if (opts_.writeback_cache) return 0;
      MetaLockSet l(meta_locks_, {ino});
      if (int err = Load(ino, &rec)) return err;
      rec.mtime = rec.ctime = Now();
      CatalogTxn txn;
      txn.Put(InodeKey(ino), EncodeInode(rec));
      return CommitTxn(txn, "write (times)", ino);
    }
  }
  std::unique_lock<std::shared_mutex> exclusive(dl);
  if (int err = Load(ino, &rec)) return err;
  if (!S_ISREG(rec.mode)) return EINVAL;
  if (append) off = rec.size;
  if (off + size > kFileBytesMax || off + size < off) return EFBIG;
  const uint64_t eof = rec.size;
  if (off + size > eof) {
    if (int err = PrepareExtend(ino, eof, std::max(off, eof))) return err;
  }
  if (int err = WriteRange(ino, off, buf, size, eof)) return err;
  *written = size;
  if (off + size <= eof && opts_.writeback_cache) return 0;
  // The size (or the times) follow the data: the engine recovers a prefix of the mutations, so a
  // size that survives a crash always covers data that survived too.
  MetaLockSet l(meta_locks_, {ino});
  if (int err = Load(ino, &rec)) return err;
  rec.size = std::max<uint64_t>(rec.size, off + size);
  if (!opts_.writeback_cache) rec.mtime = rec.ctime = Now();
  CatalogTxn txn;
  txn.Put(InodeKey(ino), EncodeInode(rec));
  return CommitTxn(txn, "write (size)", ino);
}

int FileSystem::Sync() {
  Status s = pool_->Flush();
  if (!s.ok()) {
    spdlog::error("flush failed: {}", s.ToString());
    return s.ToErrno();
  }
  return 0;
}

int FileSystem::ZeroRange(Ino ino, uint64_t off, uint64_t end) {
  if (off >= end) return 0;
  const uint64_t first_whole = BlocksUp(off);
  const uint64_t end_whole = end / kB;
  if (first_whole >= end_whole) {  // inside one block, or spanning one boundary partially
    const uint64_t b = off / kB;
    auto zero_part = [&](uint64_t blk, uint64_t from, uint64_t to) -> int {
      auto mapped = pool_->NextMappedBlock(ino, blk);
      if (!mapped || *mapped != blk) return 0;
      char* buf = BlockScratch();
      if (int err = ReadBlocks(ino, blk, 1, buf)) return err;
      std::memset(buf + from, 0, to - from);
      return WriteBlocks(ino, blk, 1, buf);
    };
    if ((end - 1) / kB == b) return zero_part(b, off % kB, end - b * kB);
    if (int err = zero_part(b, off % kB, kB)) return err;
    return zero_part(b + 1, 0, end - (b + 1) * kB);
  }
  if (off % kB != 0) {
    if (int err = ZeroRange(ino, off, first_whole * kB)) return err;
  }
  Status s = pool_->Trim(ino, first_whole, end_whole - first_whole);
  if (!s.ok()) return s.ToErrno();
  if (end % kB != 0) return ZeroRange(ino, end_whole * kB, end);
  return 0;
}

int FileSystem::Fallocate(Ino ino, int mode, int64_t off, int64_t len) {
  if (opts_.read_only) return EROFS;
  if (off < 0 || len <= 0) return EINVAL;
  const bool keep_size = (mode & FALLOC_FL_KEEP_SIZE) != 0;
  const bool punch = (mode & FALLOC_FL_PUNCH_HOLE) != 0;
  const bool zero = (mode & FALLOC_FL_ZERO_RANGE) != 0;
  if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
    return EOPNOTSUPP;
  }
  if (punch && (!keep_size || zero)) return EINVAL;
  const uint64_t start = static_cast<uint64_t>(off);
  const uint64_t end = start + static_cast<uint64_t>(len);
  if (end > kFileBytesMax || end < start) return EFBIG;

  std::unique_lock<std::shared_mutex> data_lock(data_locks_.For(ino));
  InodeRecord rec;
  if (int err = Load(ino, &rec)) return err;
  if (S_ISDIR(rec.mode)) return EISDIR;
  if (!S_ISREG(rec.mode)) return ENODEV;
  const uint64_t eof = rec.size;
  if (punch || zero) {
    // Nothing is mapped past EOF (see PrepareExtend), so the range stops there.
    if (int err = ZeroRange(ino, start, std::min(end, std::max(eof, start)))) return err;
  } else if (!keep_size && end > eof) {
    // Thin provisioning: nothing to reserve, but refuse what can plainly never be written.
    const uint64_t free_bytes = pool_->GetStatus().space.free_bytes;
    if (end - std::max(start, eof) > free_bytes) return ENOSPC;
  }
  const bool grows = !keep_size && end > eof;
  if (!grows && !punch && !zero) return 0;
  if (grows) {
    if (int err = ZeroBlockTail(ino, eof)) return err;
  }
  MetaLockSet l(meta_locks_, {ino});
  if (int err = Load(ino, &rec)) return err;
  CatalogTxn txn;
  if (grows && end > rec.size) {
    txn.TruncateObject(ino, BlocksUp(rec.size));
    rec.size = end;
  }
  rec.mtime = rec.ctime = Now();
  txn.Put(InodeKey(ino), EncodeInode(rec));
  const int err = CommitTxn(txn, "fallocate", ino);
  if (opts_.attributes_changed) opts_.attributes_changed(ino);
  return err;
}

int FileSystem::CopyBytes(Ino in, uint64_t off_in, Ino out, uint64_t off_out, uint64_t len,
                          uint64_t* eof) {
  constexpr uint64_t kChunk = 1u << 20;
  while (len > 0) {
    const uint64_t n = std::min(len, kChunk);
    const uint64_t first = off_in / kB;
    const uint64_t last = BlocksUp(off_in + n);
    char* buf = Scratch();
    if (int err = ReadBlocks(in, first, last - first, buf)) return err;
    if (int err = WriteRange(out, off_out, buf + (off_in - first * kB), n, *eof)) return err;
    *eof = std::max(*eof, off_out + n);
    off_in += n;
    off_out += n;
    len -= n;
  }
  return 0;
}

int FileSystem::CopyFileRange(Ino in, uint64_t off_in, Ino out, uint64_t off_out, size_t len,
                              size_t* copied) {
  *copied = 0;
  if (opts_.read_only) return EROFS;
  DataLockSet dl(data_locks_, {in, out});
  InodeRecord src, dst;
  if (int err = Load(in, &src)) return err;
  if (int err = Load(out, &dst)) return err;
  if (!S_ISREG(src.mode) || !S_ISREG(dst.mode)) return EINVAL;
  if (off_in >= src.size || len == 0) return 0;
  uint64_t n = std::min<uint64_t>(len, src.size - off_in);
  if (off_out + n > kFileBytesMax) return EFBIG;
  if (in == out && off_in < off_out + n && off_out < off_in + n) return EINVAL;  // overlap
  const uint64_t old_eof = dst.size;
  uint64_t eof = old_eof;
  if (off_out + n > eof) {
    if (int err = PrepareExtend(out, eof, std::max(off_out, eof))) return err;
  }
  if (off_in % kB == off_out % kB) {
    // Same alignment: share whole blocks (no data copied), copy only the partial ends.
    const uint64_t head = std::min<uint64_t>((kB - off_in % kB) % kB, n);
    if (int err = CopyBytes(in, off_in, out, off_out, head, &eof)) return err;
    const uint64_t whole = (n - head) / kB;
    if (whole > 0) {
      Status s = pool_->CloneRange(in, (off_in + head) / kB, out, (off_out + head) / kB, whole);
      if (!s.ok()) {
        spdlog::error("copy_file_range {} -> {}: clone failed: {}", in, out, s.ToString());
        return s.ToErrno();
      }
      eof = std::max(eof, off_out + head + whole * kB);
    }
    const uint64_t done = head + whole * kB;
    if (int err = CopyBytes(in, off_in + done, out, off_out + done, n - done, &eof)) return err;
  } else {
    if (int err = CopyBytes(in, off_in, out, off_out, n, &eof)) return err;
  }
  MetaLockSet l(meta_locks_, {out});
  if (int err = Load(out, &dst)) return err;
  dst.size = std::max<uint64_t>(dst.size, off_out + n);
  dst.mtime = dst.ctime = Now();
  CatalogTxn txn;
  txn.Put(InodeKey(out), EncodeInode(dst));
  if (int err = CommitTxn(txn, "copy_file_range", out)) return err;
  *copied = n;
  if (opts_.attributes_changed) opts_.attributes_changed(out);
  return 0;
}

int FileSystem::Lseek(Ino ino, int64_t off, int whence, int64_t* result) {
  if (whence != SEEK_DATA && whence != SEEK_HOLE) return EINVAL;
  if (off < 0) return ENXIO;
  InodeRecord rec;
  if (int err = Load(ino, &rec)) return err;
  const uint64_t pos = static_cast<uint64_t>(off);
  if (pos >= rec.size) return ENXIO;
  uint64_t b = pos / kB;
  if (whence == SEEK_DATA) {
    auto next = pool_->NextMappedBlock(ino, b);
    if (!next || *next * kB >= rec.size) return ENXIO;
    *result = static_cast<int64_t>(std::max(pos, *next * kB));
    return 0;
  }
  while (b * kB < rec.size) {
    auto next = pool_->NextMappedBlock(ino, b);
    if (!next || *next != b) break;
    ++b;
  }
  *result = static_cast<int64_t>(std::min<uint64_t>(std::max(pos, b * kB), rec.size));
  return 0;
}

int FileSystem::StatFs(struct statvfs* out) {
  const PoolStatus ps = pool_->GetStatus();
  *out = {};
  out->f_bsize = kB;
  out->f_frsize = kB;
  out->f_blocks = ps.space.capacity_bytes / kB;
  out->f_bfree = ps.space.free_bytes / kB;
  out->f_bavail = out->f_bfree;
  // Inodes are catalogue records, not a fixed table: report a large, honest-looking budget.
  out->f_files = 1ull << 32;
  out->f_ffree = out->f_files - 1;
  out->f_favail = out->f_ffree;
  out->f_namemax = kNameBytesMax;
  return 0;
}

// ---------------------------------------------------------------- xattrs

namespace {

// Reads a POSIX access ACL in the kernel's xattr form (le32 version 2, then entries of le16 tag,
// le16 perm, le32 id) into the permission bits it implies (posix_acl_update_mode): owner from
// USER_OBJ, group from MASK when present (else GROUP_OBJ), other from OTHER. `*minimal` when the
// ACL says no more than the mode bits (then it is not stored, as Linux file systems do).
bool AclToMode(std::string_view v, uint32_t* perm_bits, bool* minimal) {
  constexpr uint16_t kUserObj = 0x01, kUser = 0x02, kGroupObj = 0x04, kGroup = 0x08, kMask = 0x10,
                     kOther = 0x20;
  if (v.size() < 4 || (v.size() - 4) % 8 != 0) return false;
  auto le = [&](size_t off, int bytes) {
    uint32_t x = 0;
    for (int i = bytes - 1; i >= 0; --i) x = (x << 8) | static_cast<uint8_t>(v[off + i]);
    return x;
  };
  if (le(0, 4) != 2) return false;
  int user_obj = -1, group_obj = -1, mask = -1, other = -1;
  bool extended = false;
  for (size_t off = 4; off < v.size(); off += 8) {
    const uint32_t tag = le(off, 2), perm = le(off + 2, 2) & 7;
    switch (tag) {
      case kUserObj:
        user_obj = static_cast<int>(perm);
        break;
      case kGroupObj:
        group_obj = static_cast<int>(perm);
        break;
      case kMask:
        mask = static_cast<int>(perm);
        break;
      case kOther:
        other = static_cast<int>(perm);
        break;
      case kUser:
      case kGroup:
        extended = true;
        break;
      default:
        return false;
    }
  }
  if (user_obj < 0 || group_obj < 0 || other < 0 || (extended && mask < 0)) return false;
  *perm_bits = static_cast<uint32_t>(user_obj << 6 | (mask >= 0 ? mask : group_obj) << 3 | other);
  *minimal = !extended && mask < 0;
  return true;
}

// posix_acl_chmod: a stored (extended) access ACL follows a chmod: USER_OBJ takes the owner bits,
// MASK the group bits, OTHER the other bits.
std::string AclChmod(std::string v, uint32_t mode) {
  for (size_t off = 4; off + 8 <= v.size(); off += 8) {
    const uint16_t tag =
        static_cast<uint16_t>(static_cast<uint8_t>(v[off]) | static_cast<uint8_t>(v[off + 1]) << 8);
    int bits = -1;
    if (tag == 0x01) bits = (mode >> 6) & 7;
    if (tag == 0x10) bits = (mode >> 3) & 7;
    if (tag == 0x20) bits = mode & 7;
    if (bits >= 0) {
      v[off + 2] = static_cast<char>(bits);
      v[off + 3] = 0;
    }
  }
  return v;
}

}  // namespace

int FileSystem::SetXattr(Ino ino, std::string_view name, std::string_view value, int flags) {
  if (name.empty()) return EINVAL;
  if (name.size() > kXattrNameBytesMax) return ERANGE;
  if (value.size() > kXattrValueBytesMax) return E2BIG;
  if (opts_.read_only) return EROFS;
  bool mode_changed = false;
  {
    MetaLockSet l(meta_locks_, {ino});
    InodeRecord rec;
    if (int err = Load(ino, &rec)) return err;
    const std::string key = XattrKey(ino, name);
    CatalogTxn txn;
    if (flags & XATTR_CREATE) txn.expect_absent.push_back(key);
    if (flags & XATTR_REPLACE) {
      auto v = pool_->Get(key);
      if (!v.ok()) return v.status().IsNotFound() ? ENODATA : v.status().ToErrno();
    }
    bool store = true;
    if (name == kAclAccessName) {
      // The kernel hands POSIX ACLs over as plain xattrs (no FUSE_CAP_POSIX_ACL): setting one is
      // also a chmod (cp -a, setfacl rely on it), and an ACL equal to the mode is not kept.
      uint32_t perm_bits = 0;
      bool minimal = false;
      if (!AclToMode(value, &perm_bits, &minimal)) return EINVAL;
      const uint32_t mode = (rec.mode & ~0777u) | perm_bits;
      mode_changed = mode != rec.mode;
      rec.mode = mode;
      if (minimal) {
        store = false;
        txn.Delete(key);
      }
    }
    if (store) txn.Put(key, std::string(value));
    rec.ctime = Now();
    txn.Put(InodeKey(ino), EncodeInode(rec));
    if (int err = CommitTxn(txn, "setxattr", ino)) return err;
  }
  if (mode_changed && opts_.attributes_changed) opts_.attributes_changed(ino);
  return 0;
}

int FileSystem::GetXattr(Ino ino, std::string_view name, std::string* value) {
  if (name.size() > kXattrNameBytesMax) return ERANGE;
  auto v = pool_->Get(XattrKey(ino, name));
  if (!v.ok()) return v.status().IsNotFound() ? ENODATA : v.status().ToErrno();
  *value = std::move(*v);
  return 0;
}

int FileSystem::ListXattr(Ino ino, std::string* names) {
  names->clear();
  const std::string prefix = XattrPrefix(ino);
  Status s = pool_->Scan(prefix, PrefixEnd(prefix), [&](std::string_view k, std::string_view) {
    names->append(k.substr(prefix.size()));
    names->push_back('\0');
    return true;
  });
  return s.ok() ? 0 : s.ToErrno();
}

int FileSystem::RemoveXattr(Ino ino, std::string_view name) {
  if (name.size() > kXattrNameBytesMax) return ERANGE;
  if (opts_.read_only) return EROFS;
  MetaLockSet l(meta_locks_, {ino});
  InodeRecord rec;
  if (int err = Load(ino, &rec)) return err;
  const std::string key = XattrKey(ino, name);
  auto v = pool_->Get(key);
  if (!v.ok()) return v.status().IsNotFound() ? ENODATA : v.status().ToErrno();
  CatalogTxn txn;
  txn.Delete(key);
  rec.ctime = Now();
  txn.Put(InodeKey(ino), EncodeInode(rec));
  return CommitTxn(txn, "removexattr", ino);
}

}  // namespace astra::fs
