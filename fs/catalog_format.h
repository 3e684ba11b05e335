// Catalogue format of the file system: how fs/ lays inodes, directory entries, extended attributes
// and orphans out as keys and values in the engine's ordered catalogue (Pool::Get/Scan/Commit).
// The prose specification is doc/format/catalogue.md; keep the two in step.
//
// Keys start with a one-byte record kind, then big-endian integers so that memcmp order groups
// a directory's entries (and an inode's xattrs) together in name order. Values use explicit
// little-endian coding. Every value carries a version byte; the inode record also a CRC-32C.
//
// Stored constants below are marked "do not change".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace astra::fs {

using Ino = uint64_t;

// ---- Record kinds: the first key byte (do not change) ----
inline constexpr char kSuperKind = 'F';   // "F"                  -> SuperRecord
inline constexpr char kInodeKind = 'I';   // "I" be64(ino)         -> InodeRecord
inline constexpr char kDentryKind = 'D';  // "D" be64(parent) name -> DentryValue
inline constexpr char kXattrKind = 'X';   // "X" be64(ino) name    -> raw value bytes
inline constexpr char kOrphanKind = 'O';  // "O" be64(ino)         -> "" (nlink 0, still open)

// ---- Versions and sizes (do not change) ----
inline constexpr uint8_t kSuperVersion = 1;
inline constexpr uint8_t kInodeVersion = 1;
inline constexpr uint8_t kDentryVersion = 1;
inline constexpr char kSuperMagic[8] = {'A', 'S', 'T', 'R', 'A', 'F', 'S', '1'};
inline constexpr size_t kSuperBytes = 24;        // magic 8, version 1, pad 7, root ino 8
inline constexpr size_t kInodeFixedBytes = 104;  // see EncodeInode for the field offsets
inline constexpr size_t kInodeCrcBytes = 4;
inline constexpr size_t kDentryBytes = 10;  // version 1, type 1, ino 8

// ---- Limits ----
inline constexpr Ino kRootIno = 1;                  // FUSE_ROOT_ID
inline constexpr uint32_t kNameBytesMax = 255;      // NAME_MAX
inline constexpr uint32_t kSymlinkBytesMax = 4095;  // PATH_MAX - 1
inline constexpr uint32_t kXattrNameBytesMax = 255;
inline constexpr uint32_t kXattrValueBytesMax = 65536;   // XATTR_SIZE_MAX
inline constexpr uint32_t kFileBlockBytes = 4096;        // == astra::kBlockBytes
inline constexpr uint64_t kFileBytesMax = (1ull << 52);  // 2^40 blocks of 4 KiB (4 PiB)

struct Timespec {
  int64_t sec = 0;
  uint32_t nsec = 0;
  bool operator==(const Timespec&) const = default;
};

// One inode. `size` is meaningful for regular files (and the length of a symlink's target);
// `parent` for directories only (".." and the NFS export path; directories have one name).
struct InodeRecord {
  uint32_t mode = 0;  // S_IFMT type bits | permission bits, as in st_mode
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t nlink = 0;
  uint32_t flags = 0;  // reserved (chattr flags); written as 0
  uint64_t size = 0;
  uint64_t rdev = 0;
  uint64_t generation = 0;
  Ino parent = 0;
  Timespec atime, mtime, ctime, btime;
  std::string symlink;  // target of a symlink, empty otherwise
};

struct SuperRecord {
  uint8_t version = kSuperVersion;
  Ino root = kRootIno;
};

// ---- Keys ----
std::string SuperKey();
std::string InodeKey(Ino ino);
std::string DentryKey(Ino parent, std::string_view name);
std::string DentryPrefix(Ino parent);  // every entry of `parent` starts with this
std::string XattrKey(Ino ino, std::string_view name);
std::string XattrPrefix(Ino ino);
std::string OrphanKey(Ino ino);
std::string OrphanPrefix();
// The smallest key greater than every key that starts with `prefix` (Scan's end bound).
std::string PrefixEnd(std::string_view prefix);
// Decoders for keys found by Scan; false when the key is not of that kind.
bool DecodeDentryKey(std::string_view key, Ino* parent, std::string_view* name);
bool DecodeXattrKey(std::string_view key, Ino* ino, std::string_view* name);
bool DecodeOrphanKey(std::string_view key, Ino* ino);

// ---- Values ----
std::string EncodeSuper(const SuperRecord& s);
bool DecodeSuper(std::string_view v, SuperRecord* s);  // false: not ours / corrupt
std::string EncodeInode(const InodeRecord& r);
bool DecodeInode(std::string_view v, InodeRecord* r);  // false: bad version, length or CRC
std::string EncodeDentry(Ino ino, uint8_t type);       // type: DT_REG, DT_DIR, ...
bool DecodeDentry(std::string_view v, Ino* ino, uint8_t* type);

// CRC-32C (Castagnoli), as used by the inode record.
uint32_t Crc32c(const void* data, size_t n);

}  // namespace astra::fs
