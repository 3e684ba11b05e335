// Device: synchronous helpers, request validation, aligned buffers, and OpenDevice (which picks
// the implementation for a path). The implementations live in mem_device.cc, uring_device.cc,
// nvme_device.cc and faulty_device.cc.
#include "astra/device.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cassert>
#include <cstdlib>
#include <new>
#include <string>

#include "astra/limits.h"
#include "nvme_device.h"
#include "uring_device.h"

namespace astra {

namespace {

// Largest trim one IoRequest carries (its length field is 32 bits). A multiple of every logical
// block size a device may have (512, 4096), so the chunks of an aligned trim stay aligned.
constexpr uint32_t kTrimRequestBytesMax = 1u << 30;
static_assert(kTrimRequestBytesMax % kIoAlignBytes == 0);

// Submits one request and waits for it. Thread safety: as Submit().
Status RunOne(Device& dev, IoRequest& r) {
  IoWaiter w;
  r.waiter = &w;
  w.Add(1);
  IoRequest* rp = &r;
  dev.Submit(&rp, 1);
  w.Wait();
  return r.status;
}


// Checks [offset, offset + length) against the geometry; `what` names the operation.
Status CheckRange(const DeviceInfo& info, const char* what, uint64_t offset_bytes,
                  uint64_t length_bytes) {
  const uint64_t lb = info.logical_block_bytes;
  assert(lb == 512 || lb == 4096);
  auto where = [&] {
    return info.path + ": " + what + " at offset " + std::to_string(offset_bytes) + " length " +
           std::to_string(length_bytes);
  };
  if (length_bytes == 0) return Status::InvalidArgument(where() + ": zero length");
  if (offset_bytes % lb != 0 || length_bytes % lb != 0) {
    return Status::InvalidArgument(where() + ": not aligned to the " + std::to_string(lb) +
                                   "-byte logical block");
  }
  // Written to avoid overflow of offset + length.
  if (offset_bytes > info.size_bytes || length_bytes > info.size_bytes - offset_bytes) {
    return Status::InvalidArgument(where() + ": beyond the device end (" +
                                   std::to_string(info.size_bytes) + " bytes)");
  }
  return Status::Ok();
}

}  // namespace

Status CheckRequest(const DeviceInfo& info, const IoRequest& r) {
  assert(r.waiter != nullptr);
  switch (r.op) {
    case IoOp::kFlush:
      return Status::Ok();
    case IoOp::kTrim:
      return CheckRange(info, "trim", r.offset_bytes, r.length_bytes);
    case IoOp::kRead:
    case IoOp::kWrite: {
      ASTRA_RETURN_IF_ERROR(CheckRange(info, IoOpName(r.op), r.offset_bytes, r.length_bytes));
      if (r.length_bytes > kDeviceIoBytesMax) {
        return Status::InvalidArgument(info.path + ": " + IoOpName(r.op) + " of " +
                                       std::to_string(r.length_bytes) + " bytes exceeds " +
                                       std::to_string(kDeviceIoBytesMax));
      }
      if (r.buf == nullptr || reinterpret_cast<uintptr_t>(r.buf) % kIoAlignBytes != 0) {
        return Status::InvalidArgument(info.path + ": " + IoOpName(r.op) + " buffer not aligned to " +
                                       std::to_string(kIoAlignBytes) + " bytes");
      }
      return Status::Ok();
    }
  }
  return Status::InvalidArgument(info.path + ": unknown I/O op " +
                                 std::to_string(static_cast<int>(r.op)));
}

Status Device::Read(uint64_t offset_bytes, void* buf, uint32_t length_bytes) {
  IoRequest r;
  r.op = IoOp::kRead;
  r.offset_bytes = offset_bytes;
  r.length_bytes = length_bytes;
  r.buf = buf;
  return RunOne(*this, r);
}

Status Device::Write(uint64_t offset_bytes, const void* buf, uint32_t length_bytes) {
  IoRequest r;
  r.op = IoOp::kWrite;
  r.offset_bytes = offset_bytes;
  r.length_bytes = length_bytes;
  // The device only reads a write's buffer; IoRequest has one pointer type for both directions.
  r.buf = const_cast<void*>(buf);
  return RunOne(*this, r);
}

Status Device::Flush() {
  IoRequest r;
  r.op = IoOp::kFlush;
  return RunOne(*this, r);
}

Status Device::Trim(uint64_t offset_bytes, uint64_t length_bytes) {
  // Validate the whole range first so that a bad trim changes nothing.
  ASTRA_RETURN_IF_ERROR(CheckRange(info(), "trim", offset_bytes, length_bytes));
  // One request at a time: trims are rare and a whole-device trim may need thousands of chunks.
  while (length_bytes > 0) {
    IoRequest r;
    r.op = IoOp::kTrim;
    r.offset_bytes = offset_bytes;
    r.length_bytes = static_cast<uint32_t>(std::min<uint64_t>(length_bytes, kTrimRequestBytesMax));
    ASTRA_RETURN_IF_ERROR(RunOne(*this, r));
    offset_bytes += r.length_bytes;
    length_bytes -= r.length_bytes;
  }
  return Status::Ok();
}

void AlignedFree::operator()(void* p) const { std::free(p); }

AlignedBuf AllocAligned(size_t bytes) {
  // Round up so that a buffer can always be handed whole to an O_DIRECT request.
  const size_t rounded =
      std::max<size_t>(kIoAlignBytes, (bytes + kIoAlignBytes - 1) / kIoAlignBytes * kIoAlignBytes);
  void* p = nullptr;
  if (posix_memalign(&p, kIoAlignBytes, rounded) != 0) throw std::bad_alloc();
  assert(reinterpret_cast<uintptr_t>(p) % kIoAlignBytes == 0);
  return AlignedBuf(static_cast<uint8_t*>(p));
}

namespace {

// "/dev/ng0n1", "/dev/ng12n3": the NVMe generic (passthrough) character devices.
bool LooksLikeNvmeGeneric(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  size_t i = 0;
  auto digits = [&] {
    const size_t start = i;
    while (i < name.size() && name[i] >= '0' && name[i] <= '9') ++i;
    return i > start;
  };
  if (name.compare(0, 2, "ng") != 0) return false;
  i = 2;
  if (!digits()) return false;
  if (i >= name.size() || name[i] != 'n') return false;
  ++i;
  return digits() && i == name.size();
}

// The final component of `path` after resolving symlinks (/dev/vmh/ng0n1 -> "ng2n1"); "" on
// failure.
std::string ResolvedName(const std::string& path) {
  char* real = ::realpath(path.c_str(), nullptr);
  if (real == nullptr) return "";
  std::string r(real);
  std::free(real);
  const size_t slash = r.rfind('/');
  return slash == std::string::npos ? r : r.substr(slash + 1);
}

// "nvme0n1" -> "/dev/ng0n1" (the generic device of the same controller and namespace); "" when
// `name` is not an NVMe namespace block device name (partitions "nvme0n1p1" included).
std::string NvmeGenericFor(const std::string& name) {
  unsigned ctrl = 0, ns = 0;
  char tail = 0;
  if (std::sscanf(name.c_str(), "nvme%un%u%c", &ctrl, &ns, &tail) != 2) return "";
  return "/dev/ng" + std::to_string(ctrl) + "n" + std::to_string(ns);
}

// ASTRA_FORCE_BLOCK_PATH=1 makes /dev/nvmeXnY use the block path (UringDevice) even when its
// generic device could be used for passthrough (for comparisons and as a way around problems).
bool ForceBlockPath() {
  const char* v = std::getenv("ASTRA_FORCE_BLOCK_PATH");
  return v != nullptr && v[0] != '\0' && std::string(v) != "0";
}

// Creates a sparse regular file of `size_bytes`. Fails with kExists if the path appeared meanwhile.
Status CreateSparseFile(const std::string& path, uint64_t size_bytes) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno(errno, "create " + path);
  Status s;
  if (::ftruncate(fd, static_cast<off_t>(size_bytes)) != 0) {
    s = Status::FromErrno(errno, "ftruncate " + path + " to " + std::to_string(size_bytes));
    ::unlink(path.c_str());
  }
  ::close(fd);
  return s;
}

}  // namespace

Result<std::unique_ptr<Device>> OpenDevice(const std::string& path, uint64_t create_size_bytes) {
  if (path.empty()) return Status::InvalidArgument("device path is empty");
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err != ENOENT) return Status::FromErrno(err, "stat " + path);
    if (create_size_bytes == 0) return Status::NotFound(path + ": no such file or device");
    if (create_size_bytes < kIoAlignBytes) {
      return Status::InvalidArgument(path + ": size to create (" +
                                     std::to_string(create_size_bytes) + " bytes) is below " +
                                     std::to_string(kIoAlignBytes));
    }
    ASTRA_RETURN_IF_ERROR(CreateSparseFile(path, create_size_bytes));
    if (::stat(path.c_str(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
  }
  if (S_ISCHR(st.st_mode)) {
    // NvmeDevice checks (sysfs class, NVME_IOCTL_ID) that this really is an NVMe namespace's
    // generic device and names the path when it is not.
    if (!LooksLikeNvmeGeneric(path) && !LooksLikeNvmeGeneric(ResolvedName(path))) {
      return Status::InvalidArgument(path + ": a character device that is not an NVMe " +
                                     "namespace generic device (/dev/ngXnY); members are " +
                                     "regular files, block devices or /dev/ngXnY");
    }
    ASTRA_ASSIGN_OR_RETURN(auto dev, NvmeDevice::Open(path));
    return std::unique_ptr<Device>(std::move(dev));
  }
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    return Status::InvalidArgument(path + ": not a regular file or block device");
  }
  // /dev/nvmeXnY: prefer the namespace's generic device (passthrough) when it exists and this
  // process may open it, unless ASTRA_FORCE_BLOCK_PATH=1 asks for the block path.
  if (S_ISBLK(st.st_mode) && !ForceBlockPath()) {
    const std::string generic = NvmeGenericFor(ResolvedName(path));
    struct stat gst;
    if (!generic.empty() && ::stat(generic.c_str(), &gst) == 0 && S_ISCHR(gst.st_mode)) {
      NvmeOpenOptions opts;
      opts.display_path = path;
      auto dev = NvmeDevice::Open(generic, opts);
      if (dev.ok()) return std::unique_ptr<Device>(std::move(dev.value()));
      // Held by someone: the block path would be refused as well, and must not race them.
      if (dev.status().code() == Status::Code::kBusy) return dev.status();
      // Otherwise (no permission, unsupported format or kernel) fall back to the block path.
    }
  }
  ASTRA_ASSIGN_OR_RETURN(auto dev, UringDevice::Open(path));
  return std::unique_ptr<Device>(std::move(dev));
}

const char* IoOpName(IoOp op) {
  switch (op) {
    case IoOp::kRead: return "read";
    case IoOp::kWrite: return "write";
    case IoOp::kFlush: return "flush";
    case IoOp::kTrim: return "trim";
  }
  return "?";
}

}  // namespace astra
