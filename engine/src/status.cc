#include "astra/status.h"

#include <cstring>
#include <string>

namespace astra {

const char* CodeName(Status::Code c) {
  switch (c) {
    case Status::Code::kOk: return "OK";
    case Status::Code::kNotFound: return "NotFound";
    case Status::Code::kCorruption: return "Corruption";
    case Status::Code::kIOError: return "IOError";
    case Status::Code::kNoSpace: return "NoSpace";
    case Status::Code::kInvalidArgument: return "InvalidArgument";
    case Status::Code::kExists: return "Exists";
    case Status::Code::kBusy: return "Busy";
    case Status::Code::kNotSupported: return "NotSupported";
    case Status::Code::kReadOnly: return "ReadOnly";
    case Status::Code::kAborted: return "Aborted";
  }
  return "Unknown";
}

Status Status::FromErrno(int err, std::string_view what) {
  if (err < 0) err = -err;
  std::string m(what);
  m += ": ";
  m += std::strerror(err);
  switch (err) {
    case ENOENT: return NotFound(m);
    case ENOSPC: return NoSpace(m);
    case EINVAL: return InvalidArgument(m);
    case EEXIST: return Exists(m);
    case EBUSY:
    case EWOULDBLOCK: return Busy(m);
    case EOPNOTSUPP: return NotSupported(m);
    case EROFS: return ReadOnly(m);
    case EINTR: return IOError(m, /*retryable=*/true);
    default: break;
  }
  return IOError(m);
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s = CodeName(code_);
  if (!msg_.empty()) {
    s += ": ";
    s += msg_;
  }
  return s;
}

int Status::ToErrno() const {
  switch (code_) {
    case Code::kOk: return 0;
    case Code::kNotFound: return ENOENT;
    case Code::kNoSpace: return ENOSPC;
    case Code::kInvalidArgument: return EINVAL;
    case Code::kExists: return EEXIST;
    case Code::kBusy: return EBUSY;
    case Code::kNotSupported: return EOPNOTSUPP;
    case Code::kReadOnly: return EROFS;
    case Code::kAborted: return EAGAIN;
    case Code::kCorruption:
    case Code::kIOError: return EIO;
  }
  return EIO;
}

Status Status::Annotate(std::string_view context) const {
  if (ok()) return *this;
  Status s = *this;
  s.msg_ = std::string(context) + ": " + msg_;
  return s;
}

}  // namespace astra
