// Explicit little-endian encoding of on-disk structures, and a bounds-checked decoder.
//
// Every decoder of bytes read from a device goes through Decoder: a read past the end sets a
// sticky error flag instead of touching memory out of range, so a corrupted length can never
// crash the engine (invariant 5). Callers check ok() once after decoding a structure.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace astra {

inline void PutU16(uint8_t* p, uint16_t v) { for (int i = 0; i < 2; i++) p[i] = uint8_t(v >> (8 * i)); }
inline void PutU32(uint8_t* p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = uint8_t(v >> (8 * i)); }
inline void PutU64(uint8_t* p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = uint8_t(v >> (8 * i)); }
inline uint16_t GetU16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
inline uint32_t GetU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}
inline uint64_t GetU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

// Appends little-endian fields to a growable byte string.
class Encoder {
 public:
  void U8(uint8_t v) { buf_.push_back(v); }
  void U16(uint16_t v) { uint8_t b[2]; PutU16(b, v); buf_.insert(buf_.end(), b, b + 2); }
  void U32(uint32_t v) { uint8_t b[4]; PutU32(b, v); buf_.insert(buf_.end(), b, b + 4); }
  void U64(uint64_t v) { uint8_t b[8]; PutU64(b, v); buf_.insert(buf_.end(), b, b + 8); }
  void Bytes(const void* p, size_t n) {
    auto* c = static_cast<const uint8_t*>(p);
    buf_.insert(buf_.end(), c, c + n);
  }
  // u32 length + bytes
  void Str(std::string_view s) { U32(uint32_t(s.size())); Bytes(s.data(), s.size()); }
  size_t size() const { return buf_.size(); }
  // Room for `n` more bytes at once (an encoder of known size grows without copying itself).
  void Reserve(size_t n) { buf_.reserve(buf_.size() + n); }
  std::vector<uint8_t>& buf() { return buf_; }
  void Clear() { buf_.clear(); }

 private:
  std::vector<uint8_t> buf_;
};

// Reads little-endian fields from a bounded span. Out-of-range reads return 0 and set !ok().
class Decoder {
 public:
  Decoder(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  bool ok() const { return ok_; }
  size_t remaining() const { return n_ - pos_; }
  size_t pos() const { return pos_; }
  uint8_t U8() { return Take(1) ? p_[pos_ - 1] : 0; }
  uint16_t U16() { return Take(2) ? GetU16(p_ + pos_ - 2) : 0; }
  uint32_t U32() { return Take(4) ? GetU32(p_ + pos_ - 4) : 0; }
  uint64_t U64() { return Take(8) ? GetU64(p_ + pos_ - 8) : 0; }
  const uint8_t* Bytes(size_t n) { return Take(n) ? p_ + pos_ - n : nullptr; }
  // u32 length + bytes, the length bounded by `max_bytes`.
  std::string Str(size_t max_bytes) {
    uint32_t n = U32();
    if (!ok_ || n > max_bytes) {
      ok_ = false;
      return {};
    }
    const uint8_t* b = Bytes(n);
    return b ? std::string(reinterpret_cast<const char*>(b), n) : std::string();
  }
  void Fail() { ok_ = false; }

 private:
  bool Take(size_t n) {
    if (!ok_ || n > n_ - pos_) {
      ok_ = false;
      return false;
    }
    pos_ += n;
    return true;
  }
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace astra
