// user_data.h: what one io_uring completion on a ublk queue ring refers to.
//
// Every SQE a queue thread submits carries a user_data that names its owner, so every CQE has
// exactly one owner: bits 0..15 = tag, bits 16..23 = kind, bits 24..63 = zero (checked).
#pragma once

#include <cassert>
#include <cstdint>

namespace astra::ublk {

enum class CqeKind : uint8_t {
  kIoCmd = 1,   // FETCH_REQ / COMMIT_AND_FETCH_REQ of `tag`: a new request, or an abort
  kWakeup = 2,  // the read on the queue's eventfd: workers finished requests, or stop
};

inline constexpr int kUserDataTagBits = 16;
inline constexpr int kUserDataKindBits = 8;

constexpr uint64_t EncodeUserData(uint16_t tag, CqeKind kind) {
  return static_cast<uint64_t>(tag) |
         (static_cast<uint64_t>(kind) << kUserDataTagBits);
}
constexpr uint16_t UserDataTag(uint64_t user_data) {
  return static_cast<uint16_t>(user_data & ((1u << kUserDataTagBits) - 1));
}
constexpr CqeKind UserDataKind(uint64_t user_data) {
  return static_cast<CqeKind>((user_data >> kUserDataTagBits) & ((1u << kUserDataKindBits) - 1));
}
constexpr bool UserDataValid(uint64_t user_data) {
  return (user_data >> (kUserDataTagBits + kUserDataKindBits)) == 0 &&
         (UserDataKind(user_data) == CqeKind::kIoCmd ||
          UserDataKind(user_data) == CqeKind::kWakeup);
}
static_assert(UserDataTag(EncodeUserData(4095, CqeKind::kIoCmd)) == 4095);
static_assert(UserDataKind(EncodeUserData(7, CqeKind::kWakeup)) == CqeKind::kWakeup);
static_assert(UserDataValid(EncodeUserData(0xffff, CqeKind::kIoCmd)));
static_assert(!UserDataValid(1ull << 40));

}  // namespace astra::ublk
