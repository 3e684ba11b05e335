// Result<T>: a value or a non-OK Status (C++20 has no std::expected).
//
// Thread safety: a value type; no internal synchronisation.
#pragma once

#include <cassert>
#include <optional>
#include <utility>

#include "astra/status.h"

namespace astra {

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    assert(!status_.ok() && "Result built from an OK status carries no value");
  }
  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace astra

// `ASTRA_ASSIGN_OR_RETURN(auto x, Foo());` binds the value or returns the Status.
#define ASTRA_CONCAT_INNER(a, b) a##b
#define ASTRA_CONCAT(a, b) ASTRA_CONCAT_INNER(a, b)
#define ASTRA_ASSIGN_OR_RETURN(lhs, expr)                          \
  auto ASTRA_CONCAT(_res_, __LINE__) = (expr);                     \
  if (!ASTRA_CONCAT(_res_, __LINE__).ok())                         \
    return ASTRA_CONCAT(_res_, __LINE__).status();                 \
  lhs = std::move(ASTRA_CONCAT(_res_, __LINE__)).value()
