#include "catalog_format.h"

#include <isa-l/crc.h>

#include <cassert>
#include <cstring>

namespace astra::fs {
namespace {

void PutBe64(std::string* s, uint64_t v) {
  for (int i = 7; i >= 0; --i) s->push_back(static_cast<char>((v >> (i * 8)) & 0xff));
}
uint64_t GetBe64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
void StoreLe(char* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<char>((v >> (i * 8)) & 0xff);
}
uint64_t LoadLe(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

std::string KindAndIno(char kind, Ino ino) {
  std::string k;
  k.reserve(9);
  k.push_back(kind);
  PutBe64(&k, ino);
  return k;
}

// Inode field offsets (do not change).
constexpr size_t kOffVersion = 0, kOffFixedLen = 2, kOffMode = 4, kOffUid = 8, kOffGid = 12,
                 kOffNlink = 16, kOffFlags = 20, kOffSize = 24, kOffRdev = 32, kOffGen = 40,
                 kOffParent = 48, kOffAtime = 56, kOffMtime = 68, kOffCtime = 80, kOffBtime = 92;
static_assert(kOffBtime + 12 == kInodeFixedBytes);

void StoreTime(char* p, const Timespec& t) {
  StoreLe(p, static_cast<uint64_t>(t.sec), 8);
  StoreLe(p + 8, t.nsec, 4);
}
Timespec LoadTime(const char* p) {
  return Timespec{static_cast<int64_t>(LoadLe(p, 8)), static_cast<uint32_t>(LoadLe(p + 8, 4))};
}

}  // namespace

uint32_t Crc32c(const void* data, size_t n) {
  // ISA-L's crc32_iscsi is CRC-32C without the standard pre/post inversion applied for us
  // (runtime-dispatched SSE4.2/PCLMUL): seed ~0 and invert the result, giving the same value as
  // the byte-at-a-time table this replaced (check value 0xE3069283 in catalog_format_test).
  // The length is at most kInodeFixedBytes + kSymlinkBytesMax + kInodeCrcBytes, far below INT_MAX.
  assert(n <= static_cast<size_t>(INT32_MAX));
  return ~crc32_iscsi(static_cast<unsigned char*>(const_cast<void*>(data)), static_cast<int>(n),
                      0xFFFFFFFFu);
}

std::string SuperKey() { return std::string(1, kSuperKind); }
std::string InodeKey(Ino ino) { return KindAndIno(kInodeKind, ino); }
std::string DentryPrefix(Ino parent) { return KindAndIno(kDentryKind, parent); }
std::string DentryKey(Ino parent, std::string_view name) {
  std::string k = DentryPrefix(parent);
  k.append(name);
  return k;
}
std::string XattrPrefix(Ino ino) { return KindAndIno(kXattrKind, ino); }
std::string XattrKey(Ino ino, std::string_view name) {
  std::string k = XattrPrefix(ino);
  k.append(name);
  return k;
}
std::string OrphanKey(Ino ino) { return KindAndIno(kOrphanKind, ino); }
std::string OrphanPrefix() { return std::string(1, kOrphanKind); }

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& c = reinterpret_cast<unsigned char&>(end.back());
    if (c != 0xff) {
      ++c;
      return end;
    }
    end.pop_back();
  }
  // Only an all-0xff prefix gets here; ours always start with a letter.
  assert(false && "PrefixEnd of an all-0xff prefix");
  return std::string(2 * kNameBytesMax, '\xff');
}

bool DecodeDentryKey(std::string_view key, Ino* parent, std::string_view* name) {
  if (key.size() < 10 || key[0] != kDentryKind) return false;  // at least one name byte
  *parent = GetBe64(key.data() + 1);
  *name = key.substr(9);
  return true;
}
bool DecodeXattrKey(std::string_view key, Ino* ino, std::string_view* name) {
  if (key.size() < 10 || key[0] != kXattrKind) return false;
  *ino = GetBe64(key.data() + 1);
  *name = key.substr(9);
  return true;
}
bool DecodeOrphanKey(std::string_view key, Ino* ino) {
  if (key.size() != 9 || key[0] != kOrphanKind) return false;
  *ino = GetBe64(key.data() + 1);
  return true;
}

std::string EncodeSuper(const SuperRecord& s) {
  std::string v(kSuperBytes, '\0');
  std::memcpy(v.data(), kSuperMagic, 8);
  v[8] = static_cast<char>(s.version);
  StoreLe(v.data() + 16, s.root, 8);
  return v;
}
bool DecodeSuper(std::string_view v, SuperRecord* s) {
  if (v.size() != kSuperBytes || std::memcmp(v.data(), kSuperMagic, 8) != 0) return false;
  s->version = static_cast<uint8_t>(v[8]);
  s->root = LoadLe(v.data() + 16, 8);
  return true;
}

std::string EncodeInode(const InodeRecord& r) {
  assert(r.symlink.size() <= kSymlinkBytesMax);
  std::string v(kInodeFixedBytes + r.symlink.size() + kInodeCrcBytes, '\0');
  char* p = v.data();
  p[kOffVersion] = static_cast<char>(kInodeVersion);
  StoreLe(p + kOffFixedLen, kInodeFixedBytes, 2);
  StoreLe(p + kOffMode, r.mode, 4);
  StoreLe(p + kOffUid, r.uid, 4);
  StoreLe(p + kOffGid, r.gid, 4);
  StoreLe(p + kOffNlink, r.nlink, 4);
  StoreLe(p + kOffFlags, r.flags, 4);
  StoreLe(p + kOffSize, r.size, 8);
  StoreLe(p + kOffRdev, r.rdev, 8);
  StoreLe(p + kOffGen, r.generation, 8);
  StoreLe(p + kOffParent, r.parent, 8);
  StoreTime(p + kOffAtime, r.atime);
  StoreTime(p + kOffMtime, r.mtime);
  StoreTime(p + kOffCtime, r.ctime);
  StoreTime(p + kOffBtime, r.btime);
  std::memcpy(p + kInodeFixedBytes, r.symlink.data(), r.symlink.size());
  const size_t body = v.size() - kInodeCrcBytes;
  StoreLe(p + body, Crc32c(p, body), 4);
  return v;
}

bool DecodeInode(std::string_view v, InodeRecord* r) {
  if (v.size() < kInodeFixedBytes + kInodeCrcBytes) return false;
  const char* p = v.data();
  if (static_cast<uint8_t>(p[kOffVersion]) != kInodeVersion) return false;
  const size_t fixed = LoadLe(p + kOffFixedLen, 2);
  if (fixed != kInodeFixedBytes) return false;
  const size_t body = v.size() - kInodeCrcBytes;
  if (LoadLe(p + body, 4) != Crc32c(p, body)) return false;
  if (body - fixed > kSymlinkBytesMax) return false;
  r->mode = static_cast<uint32_t>(LoadLe(p + kOffMode, 4));
  r->uid = static_cast<uint32_t>(LoadLe(p + kOffUid, 4));
  r->gid = static_cast<uint32_t>(LoadLe(p + kOffGid, 4));
  r->nlink = static_cast<uint32_t>(LoadLe(p + kOffNlink, 4));
  r->flags = static_cast<uint32_t>(LoadLe(p + kOffFlags, 4));
  r->size = LoadLe(p + kOffSize, 8);
  r->rdev = LoadLe(p + kOffRdev, 8);
  r->generation = LoadLe(p + kOffGen, 8);
  r->parent = LoadLe(p + kOffParent, 8);
  r->atime = LoadTime(p + kOffAtime);
  r->mtime = LoadTime(p + kOffMtime);
  r->ctime = LoadTime(p + kOffCtime);
  r->btime = LoadTime(p + kOffBtime);
  r->symlink.assign(p + fixed, body - fixed);
  return true;
}

std::string EncodeDentry(Ino ino, uint8_t type) {
  std::string v(kDentryBytes, '\0');
  v[0] = static_cast<char>(kDentryVersion);
  v[1] = static_cast<char>(type);
  StoreLe(v.data() + 2, ino, 8);
  return v;
}
bool DecodeDentry(std::string_view v, Ino* ino, uint8_t* type) {
  if (v.size() != kDentryBytes || static_cast<uint8_t>(v[0]) != kDentryVersion) return false;
  *type = static_cast<uint8_t>(v[1]);
  *ino = LoadLe(v.data() + 2, 8);
  return *ino != 0;
}

}  // namespace astra::fs
