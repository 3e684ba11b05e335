// Status: the result of an operation that can fail for operating (not programming) reasons.
//
// Errors are values, never exceptions (house style, after LevelDB's status.h and RocksDB's
// IOStatus). A Status carries a code, a message naming what went wrong, and two RocksDB-style
// attributes: `retryable` (the same call may succeed later) and `data_loss` (stored data is gone).
//
// Thread safety: a Status is a value; distinct objects may be used from distinct threads.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <utility>

namespace astra {

class [[nodiscard]] Status {
 public:
  // Stored nowhere on disk, but kept stable for logs and JSON output: do not renumber.
  enum class Code : int {
    kOk = 0,
    kNotFound = 1,
    kCorruption = 2,        // bytes read from a device failed validation
    kIOError = 3,           // a device reported an error
    kNoSpace = 4,           // the pool (or a fixed-size region) is full
    kInvalidArgument = 5,   // bad input from a user, a config or a caller
    kExists = 6,            // the thing to create is already there
    kBusy = 7,              // held by someone else (pool lock, member in use)
    kNotSupported = 8,      // valid request the engine or device cannot do
    kReadOnly = 9,          // the pool refuses writes (after an unknown write outcome)
    kAborted = 10,          // a transaction precondition failed
  };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status NotFound(std::string_view m) { return Status(Code::kNotFound, m); }
  static Status Corruption(std::string_view m) { return Status(Code::kCorruption, m); }
  static Status IOError(std::string_view m, bool retryable = false) {
    Status s(Code::kIOError, m);
    s.retryable_ = retryable;
    return s;
  }
  static Status NoSpace(std::string_view m) { return Status(Code::kNoSpace, m); }
  static Status InvalidArgument(std::string_view m) { return Status(Code::kInvalidArgument, m); }
  static Status Exists(std::string_view m) { return Status(Code::kExists, m); }
  static Status Busy(std::string_view m) { return Status(Code::kBusy, m); }
  static Status NotSupported(std::string_view m) { return Status(Code::kNotSupported, m); }
  static Status ReadOnly(std::string_view m) { return Status(Code::kReadOnly, m); }
  static Status Aborted(std::string_view m) { return Status(Code::kAborted, m); }
  // From a negative or positive errno value; `what` names the operation and object.
  static Status FromErrno(int err, std::string_view what);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsIOError() const { return code_ == Code::kIOError; }
  bool IsNoSpace() const { return code_ == Code::kNoSpace; }
  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool retryable() const { return retryable_; }
  bool data_loss() const { return data_loss_; }
  Status& WithDataLoss() {
    data_loss_ = true;
    return *this;
  }
  const std::string& message() const { return msg_; }
  // "Corruption: superblock A of member 2: bad checksum"
  std::string ToString() const;
  // The errno a POSIX front end should return for this status (ENOENT, EIO, ENOSPC, ...).
  int ToErrno() const;
  // Prefixes the message with context: "member 2: " + message.
  Status Annotate(std::string_view context) const;
  // Explicitly discards an error (house style: ignoring a Status is spelled out).
  void IgnoreError() const {}

 private:
  Status(Code c, std::string_view m) : code_(c), msg_(m) {}
  Code code_ = Code::kOk;
  bool retryable_ = false;
  bool data_loss_ = false;
  std::string msg_;
};

const char* CodeName(Status::Code c);

}  // namespace astra

// Returns early from the enclosing function when `expr` yields a non-OK Status.
#define ASTRA_RETURN_IF_ERROR(expr)      \
  do {                                   \
    ::astra::Status _st = (expr);        \
    if (!_st.ok()) return _st;           \
  } while (0)
