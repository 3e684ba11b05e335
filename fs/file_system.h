// FileSystem: POSIX semantics on top of the engine's objects and catalogue. The FUSE callbacks in
// fuse_server.cc are thin wrappers around it (one method per operation), so the rules live here,
// independent of the kernel protocol.
//
// Every method returns 0 or a positive errno. Every metadata change is exactly one
// Pool::Commit transaction, so a crash never leaves a directory entry without its inode or a
// wrong link count (see doc/fs.md). File data: engine object id == inode number, 4 KiB blocks.
//
// Thread safety: every method may be called from many threads at once (FUSE multi-threaded
// loop). Locking is by sharded data/meta lock tables (lock_table.h); there is no global lock.
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "astra/pool.h"
#include "catalog_format.h"
#include "lock_table.h"
#include "lookup_table.h"

namespace astra::fs {

struct FsOptions {
  bool read_only = false;
  // The kernel caches writes and owns mtime/ctime/size of open files; it sends the times back
  // with setattr. When false, every write updates mtime/ctime here.
  bool writeback_cache = true;
  // Called after the daemon changed attributes the kernel has cached but cannot know about
  // (st_blocks after a write, punch or clone). Must not block on the kernel.
  std::function<void(uint64_t ino)> attributes_changed;
};

// Who is asking (the FUSE request context).
struct Caller {
  uint32_t uid = 0;
  uint32_t gid = 0;
  // Supplementary groups, asked lazily (it costs a /proc read in libfuse).
  std::function<bool(uint32_t)> in_supplementary_group;
  bool IsRoot() const { return uid == 0; }
  bool InGroup(uint32_t g) const {
    return g == gid || (in_supplementary_group && in_supplementary_group(g));
  }
};

struct Attr {
  struct stat st {};
  uint64_t generation = 0;
};

struct DirEntry {
  std::string name;
  Ino ino = 0;
  uint8_t type = 0;  // DT_*
};

class FileSystem {
 public:
  FileSystem(Pool* pool, FsOptions opts);
  FileSystem(const FileSystem&) = delete;
  FileSystem& operator=(const FileSystem&) = delete;

  // Creates the root directory on a fresh pool, checks the catalogue version, and deletes the
  // orphans a crash left behind (inodes unlinked while open). Call once before serving.
  Status Init();
  // At unmount: the kernel has forgotten every inode, so every orphan can go.
  void Shutdown();
  // From the FUSE init callback only, before any other request: the kernel may refuse the
  // writeback cache, and then this file system keeps mtime/ctime itself.
  void set_writeback_cache(bool on) { opts_.writeback_cache = on; }

  // Namespace. Lookup/Create/Link add one kernel lookup to the inode they return.
  int Lookup(Ino parent, std::string_view name, Attr* out);
  void Forget(Ino ino, uint64_t nlookup);
  void AddLookup(Ino ino) { lookups_.Add(ino); }
  int GetAttr(Ino ino, Attr* out);
  // `to_set` is a FUSE_SET_ATTR_* mask. Permission checks are the kernel's (default_permissions).
  int SetAttr(Ino ino, const struct stat& attr, int to_set, Attr* out);
  int ReadLink(Ino ino, std::string* target);
  // Creates a regular file, directory, symlink (`symlink` non-empty) or special file.
  int Create(Ino parent, std::string_view name, mode_t mode, dev_t rdev, std::string_view symlink,
             const Caller& caller, Attr* out);
  int Link(Ino ino, Ino new_parent, std::string_view new_name, Attr* out);
  int Unlink(Ino parent, std::string_view name);
  int Rmdir(Ino parent, std::string_view name);
  int Rename(Ino parent, std::string_view name, Ino new_parent, std::string_view new_name,
             unsigned flags);
  // A snapshot of a directory, with "." and ".." first.
  int ListDir(Ino ino, std::vector<DirEntry>* out);

  // Data.
  int Open(Ino ino, int flags);
  // `*data` points into a per-thread buffer valid until the thread's next Read.
  int Read(Ino ino, uint64_t off, size_t size, const char** data, size_t* n);
  // `append`: write at the current end of file (O_APPEND without the writeback cache).
  int Write(Ino ino, uint64_t off, const char* buf, size_t size, bool append, size_t* written);
  int Sync();
  int Fallocate(Ino ino, int mode, int64_t off, int64_t len);
  int CopyFileRange(Ino in, uint64_t off_in, Ino out, uint64_t off_out, size_t len, size_t* copied);
  int Lseek(Ino ino, int64_t off, int whence, int64_t* result);

  int StatFs(struct statvfs* out);

  // Extended attributes (stored opaquely, POSIX ACLs included).
  int SetXattr(Ino ino, std::string_view name, std::string_view value, int flags);
  int GetXattr(Ino ino, std::string_view name, std::string* value);
  int ListXattr(Ino ino, std::string* names);  // NUL-terminated names, concatenated
  int RemoveXattr(Ino ino, std::string_view name);

 private:
  class RecordSet;

  int Load(Ino ino, InodeRecord* rec);
  int CommitTxn(const CatalogTxn& txn, const char* what, Ino ino);
  int FindEntry(Ino parent, std::string_view name, Ino* ino, uint8_t* type);
  void FillAttr(Ino ino, const InodeRecord& rec, Attr* out);
  // Adds the ops that delete `ino` for good (inode, orphan mark, xattrs, data object).
  void AddDeleteInode(CatalogTxn* txn, Ino ino, const InodeRecord& rec);
  // Drops one name of `ino` (all of a directory's). Returns true when the inode is deleted by
  // `txn`; otherwise the caller must Put `rec` (which may now be an orphan).
  bool DropLink(CatalogTxn* txn, Ino ino, InodeRecord* rec, const Timespec& now);
  int DeleteOrphans(const char* when);
  Result<Ino> NewIno();

  int WriteLocked(Ino ino, uint64_t off, const char* buf, size_t size, bool append,
                  size_t* written);
  // Data helpers; the caller holds the inode's data lock (exclusively unless noted).
  int ReadBlocks(Ino ino, uint64_t block, uint64_t count, char* buf);
  int WriteBlocks(Ino ino, uint64_t block, uint64_t count, const char* buf);
  // Writes [off, off+size); bytes at or after `eof` in a block being merged count as zeros.
  int WriteRange(Ino ino, uint64_t off, const char* buf, size_t size, uint64_t eof);
  // Zeroes [pos, end of pos's block) when that block is mapped.
  int ZeroBlockTail(Ino ino, uint64_t pos);
  // Zeroes [off, end): partial blocks by read-modify-write, whole blocks by Pool::Trim.
  int ZeroRange(Ino ino, uint64_t off, uint64_t end);
  // Before data lands at `new_off` >= `eof` is allowed to be visible: makes sure nothing stale
  // (left by a crash between a data write and its size update) shows up between eof and new_off.
  int PrepareExtend(Ino ino, uint64_t eof, uint64_t new_off);
  // Copies through a buffer (unaligned copy_file_range and the unaligned ends of aligned ones).
  int CopyBytes(Ino in, uint64_t off_in, Ino out, uint64_t off_out, uint64_t len, uint64_t* eof);

  Pool* const pool_;
  FsOptions opts_;  // changed only by set_writeback_cache, before serving
  LockTable<std::shared_mutex> data_locks_;
  LockTable<std::mutex> meta_locks_;
  LookupTable lookups_;
};

}  // namespace astra::fs
