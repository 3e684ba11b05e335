#include "nvme_device.h"

#include <fcntl.h>
#include <linux/nvme_ioctl.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include <spdlog/spdlog.h>

namespace astra {

namespace {

// NVMe command opcodes (NVM Command Set) and admin opcodes, from the NVMe base specification.
// Debian 12's UAPI headers carry the ioctl structs but not these constants.
constexpr uint8_t kNvmeCmdFlush = 0x00;
constexpr uint8_t kNvmeCmdWrite = 0x01;
constexpr uint8_t kNvmeCmdRead = 0x02;
constexpr uint8_t kNvmeCmdDsm = 0x09;
constexpr uint8_t kNvmeAdminIdentify = 0x06;
constexpr uint32_t kIdentifyCnsNamespace = 0;
constexpr uint32_t kIdentifyCnsController = 1;
constexpr uint32_t kIdentifyBytes = 4096;
// Dataset Management CDW11: attribute Deallocate.
constexpr uint32_t kDsmAttrDeallocate = 1u << 2;
// Status bits as the kernel hands them to io_uring (the completion's status field shifted right
// by one, dropping the phase tag).
constexpr uint32_t kNvmeStatusMore = 1u << 13;
constexpr uint32_t kNvmeStatusDnr = 1u << 14;
// When the controller cannot be asked for its MDTS.
constexpr uint32_t kDefaultMaxTransferBytes = 128 * 1024;
// Largest registered buffer the kernel accepts (io_uring's limit per iovec).
constexpr uint64_t kRegisteredBufferBytesMax = 1ull << 30;
static_assert(NvmeDevice::kRegisteredBuffersMax <= UINT16_MAX, "sqe->buf_index is 16 bits");

static_assert(sizeof(nvme_uring_cmd) <= 80, "nvme_uring_cmd must fit the SQE128 command area");
static_assert(kDeviceIoBytesMax % kIoAlignBytes == 0);

// user_data of the NOP that tells the reaper to exit; command slot indices are far below it.
constexpr uint64_t kStopUserData = UINT64_MAX;
// Resubmissions of one command after a transient io_uring error (EAGAIN, EINTR, ECANCELED).
constexpr uint32_t kRetriesMax = 16;
// Consecutive failed io_uring_enter calls tolerated before giving up (each waits 100 us).
constexpr int kSubmitAttemptsMax = 100000;

[[noreturn]] void Fatal(const char* what, int err) {
  std::fprintf(stderr, "astra: NvmeDevice: %s: %s\n", what, std::strerror(err < 0 ? -err : err));
  std::abort();
}


uint64_t Le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}
uint16_t Le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }

// Names who holds the flock on the file (dev, ino) by scanning /proc/locks. Best effort.
// (The same scan as UringDevice's, whose helper is private to uring_device.cc.)
std::string DescribeLockHolder(dev_t dev, ino_t ino) {
  std::ifstream locks("/proc/locks");
  std::string line;
  while (std::getline(locks, line)) {
    std::istringstream in(line);
    std::string id, kind;
    in >> id >> kind;
    if (kind == "->") continue;
    std::string mode, access, pid, where;
    in >> mode >> access >> pid >> where;
    unsigned maj = 0, min = 0;
    unsigned long long inode = 0;
    if (kind != "FLOCK" || std::sscanf(where.c_str(), "%x:%x:%llu", &maj, &min, &inode) != 3) {
      continue;
    }
    if (maj != major(dev) || min != minor(dev) || inode != ino) continue;
    if (pid == std::to_string(::getpid())) return "already opened by this process";
    std::string comm;
    std::ifstream comm_file("/proc/" + pid + "/comm");
    std::getline(comm_file, comm);
    return "in use by another process (pid " + pid + (comm.empty() ? "" : ", " + comm) + ")";
  }
  return "in use by another process";
}

// Last component of a symlink's target ("" when it is not a readable symlink).
std::string LinkBasename(const std::string& link) {
  char buf[4096];
  const ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  std::string target(buf, static_cast<size_t>(n));
  const size_t slash = target.rfind('/');
  return slash == std::string::npos ? target : target.substr(slash + 1);
}

// First unsigned number in a sysfs file, 0 if unreadable.
uint64_t ReadSysfsNumber(const std::string& file) {
  std::ifstream f(file);
  uint64_t v = 0;
  if (!(f >> v)) return 0;
  return v;
}

// Parses "ng<ctrl>n<ns>" into its two numbers.
bool ParseGenericName(const std::string& name, unsigned* ctrl, unsigned* ns) {
  char tail = 0;
  return std::sscanf(name.c_str(), "ng%un%u%c", ctrl, ns, &tail) == 2;
}

// Runs an Identify admin command through `fd` into `out` (kIdentifyBytes). Returns 0, a positive
// NVMe status, or -errno.
int Identify(int fd, uint32_t nsid, uint32_t cns, uint8_t* out) {
  nvme_admin_cmd cmd;
  std::memset(&cmd, 0, sizeof(cmd));
  cmd.opcode = kNvmeAdminIdentify;
  cmd.nsid = nsid;
  cmd.addr = reinterpret_cast<uintptr_t>(out);
  cmd.data_len = kIdentifyBytes;
  cmd.cdw10 = cns;
  const int ret = ::ioctl(fd, NVME_IOCTL_ADMIN_CMD, &cmd);
  return ret < 0 ? -errno : ret;
}

}  // namespace

Status NvmeDevice::StatusFromNvme(uint32_t nvme_status, const std::string& what) {
  const uint32_t sc = nvme_status & 0xff;
  const uint32_t sct = (nvme_status >> 8) & 0x7;
  const bool dnr = (nvme_status & kNvmeStatusDnr) != 0;
  const char* name = "";
  if (sct == 0) {
    switch (sc) {
      case 0x01: name = "invalid command opcode"; break;
      case 0x02: name = "invalid field in command"; break;
      case 0x04: name = "data transfer error"; break;
      case 0x06: name = "internal error"; break;
      case 0x07: name = "command abort requested"; break;
      case 0x0b: name = "invalid namespace or format"; break;
      case 0x80: name = "LBA out of range"; break;
      case 0x81: name = "capacity exceeded"; break;
      case 0x82: name = "namespace not ready"; break;
    }
  } else if (sct == 2) {
    switch (sc) {
      case 0x80: name = "write fault"; break;
      case 0x81: name = "unrecovered read error"; break;
      case 0x82: name = "end-to-end guard check error"; break;
      case 0x85: name = "compare failure"; break;
      case 0x86: name = "access denied"; break;
      case 0x87: name = "deallocated or unwritten logical block"; break;
    }
  } else if (sct == 3) {
    name = "path error";
  }
  char code[64];
  std::snprintf(code, sizeof(code), "NVMe status SCT 0x%x SC 0x%02x", sct, sc);
  std::string m = what + ": " + code;
  if (*name != '\0') m += std::string(" (") + name + ")";
  if (dnr) m += ", do not retry";
  if (nvme_status & kNvmeStatusMore) m += ", more information in the error log";
  Status s = Status::IOError(m, /*retryable=*/!dnr);
  // Media and data integrity errors (SCT 2) mean stored data is unreadable or was not stored;
  // compare failure and access denied do not.
  if (sct == 2 && sc != 0x85 && sc != 0x86) s.WithDataLoss();
  return s;
}

Result<std::unique_ptr<NvmeDevice>> NvmeDevice::Open(const std::string& path,
                                                     const NvmeOpenOptions& opts) {
  std::unique_ptr<NvmeDevice> d(new NvmeDevice());
  d->dev_path_ = path;
  d->info_.path = opts.display_path.empty() ? path : opts.display_path;
  d->info_.backend = "nvme-passthrough";
  const std::string name = d->info_.path == path ? path : d->info_.path + " (" + path + ")";

  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::NotFound(name + ": no such device");
    return Status::FromErrno(errno, "stat " + name);
  }
  if (!S_ISCHR(st.st_mode)) {
    return Status::InvalidArgument(name + ": not a character device (NVMe passthrough needs a " +
                                   "namespace's generic device, /dev/ngXnY)");
  }
  // sysfs names the device's class: "nvme-generic" for /dev/ngXnY. Without sysfs, the ioctl
  // below tells a non-NVMe device apart too (ENOTTY).
  const std::string sys = "/sys/dev/char/" + std::to_string(major(st.st_rdev)) + ":" +
                          std::to_string(minor(st.st_rdev));
  const std::string subsystem = LinkBasename(sys + "/subsystem");
  if (!subsystem.empty() && subsystem != "nvme-generic") {
    return Status::InvalidArgument(name + ": character device " +
                                   std::to_string(major(st.st_rdev)) + ":" +
                                   std::to_string(minor(st.st_rdev)) + " (" + subsystem +
                                   ") is not an NVMe namespace generic device (/dev/ngXnY)");
  }

  d->fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (d->fd_ < 0) {
    const int err = errno;
    if (err == EACCES || err == EPERM) {
      return Status::IOError(name + ": permission denied opening the NVMe generic device " +
                             "read-write (run as root, give this user access to the device " +
                             "node, or set ASTRA_FORCE_BLOCK_PATH=1 and use /dev/nvmeXnY)");
    }
    return Status::FromErrno(err, "open " + name);
  }
  if (::flock(d->fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err == EWOULDBLOCK) {
      return Status::Busy(name + ": " + DescribeLockHolder(st.st_dev, st.st_ino));
    }
    return Status::FromErrno(err, "flock " + name);
  }

  const int nsid = ::ioctl(d->fd_, NVME_IOCTL_ID);
  if (nsid <= 0) {
    const int err = nsid < 0 ? errno : EINVAL;
    if (err == ENOTTY || err == EINVAL) {
      return Status::InvalidArgument(name + ": not an NVMe namespace (NVME_IOCTL_ID: " +
                                     std::strerror(err) + ")");
    }
    return Status::FromErrno(err, "NVME_IOCTL_ID on " + name);
  }
  d->nsid_ = static_cast<uint32_t>(nsid);

  // Identify Namespace: size and the LBA format in use.
  AlignedBuf id = AllocAligned(kIdentifyBytes);
  std::memset(id.get(), 0, kIdentifyBytes);
  int ret = Identify(d->fd_, d->nsid_, kIdentifyCnsNamespace, id.get());
  if (ret < 0) return Status::FromErrno(-ret, "Identify Namespace on " + name);
  if (ret > 0) return StatusFromNvme(static_cast<uint32_t>(ret), "Identify Namespace on " + name);
  const uint64_t nsze = Le64(id.get() + 0);
  const uint8_t nlbaf = id[25];
  const uint8_t flbas = id[26];
  const uint8_t dps = id[29];
  // FLBAS: format index bits 3:0, and bits 6:5 as its high bits when more than 16 formats exist.
  const uint32_t lbaf = (flbas & 0xf) | (nlbaf >= 16 ? ((flbas >> 5) & 0x3) << 4 : 0);
  if (lbaf > nlbaf || lbaf >= 64) {
    return Status::Corruption(name + ": Identify Namespace names LBA format " +
                              std::to_string(lbaf) + " of " + std::to_string(nlbaf + 1));
  }
  const uint8_t* f = id.get() + 128 + 4 * lbaf;
  const uint16_t ms = Le16(f);
  const uint8_t lbads = f[2];
  if (ms != 0 || (dps & 0x7) != 0) {
    return Status::NotSupported(
        name + ": LBA format " + std::to_string(lbaf) + " has " + std::to_string(ms) +
        " metadata bytes per block" +
        ((dps & 0x7) != 0 ? " and protection information type " + std::to_string(dps & 0x7)
                          : std::string()) +
        "; only formats without metadata or protection information are supported (reformat " +
        "the namespace, e.g. nvme format --lbaf=N --pi=0 with a metadata-free format)");
  }
  if (lbads != 9 && lbads != 12) {
    return Status::NotSupported(name + ": logical block size 2^" + std::to_string(lbads) +
                                " bytes (only 512 and 4096 are supported)");
  }
  d->lba_shift_ = lbads;
  d->info_.logical_block_bytes = 1u << lbads;
  const uint64_t nsze_bytes = nsze << lbads;
  d->info_.size_bytes = (opts.test_size_override_bytes > 0 ? opts.test_size_override_bytes
                                                            : nsze_bytes) /
                        kIoAlignBytes * kIoAlignBytes;
  if (d->info_.size_bytes == 0) {
    return Status::InvalidArgument(name + ": too small (" + std::to_string(nsze_bytes) +
                                   " bytes; at least " + std::to_string(kIoAlignBytes) +
                                   " needed)");
  }
  // Deallocate is worth sending only when the controller supports Dataset Management (ONCS bit
  // 2); without Identify Controller we try it and let the drive refuse.
  d->info_.supports_trim = true;

  // The controller: MDTS and ONCS from Identify Controller, on /dev/nvmeX.
  uint32_t max_transfer = kDefaultMaxTransferBytes;
  const std::string ctrl = LinkBasename(sys + "/device");
  if (ctrl.compare(0, 4, "nvme") == 0) {
    const int cfd = ::open(("/dev/" + ctrl).c_str(), O_RDONLY | O_CLOEXEC);
    if (cfd >= 0) {
      std::memset(id.get(), 0, kIdentifyBytes);
      ret = Identify(cfd, 0, kIdentifyCnsController, id.get());
      ::close(cfd);
      if (ret == 0) {
        // MDTS is a power of two in units of the minimum memory page size (CAP.MPSMIN, which
        // user space cannot read; 4 KiB on every controller we know); 0 means no limit.
        const uint8_t mdts = id[77];
        max_transfer = mdts == 0 || mdts > 8 ? kDeviceIoBytesMax : 4096u << mdts;
        const uint16_t oncs = Le16(id.get() + 520);
        d->info_.supports_trim = (oncs & (1u << 2)) != 0;
      }
    }
  }
  // The kernel maps a plain user buffer into one request page by page: the namespace queue's
  // max_hw_sectors_kb and max_segments bound one command too.
  unsigned ctrl_no = 0, ns_no = 0;
  std::string io_poll_file;  // the namespace queue's io_poll: 1 when the driver has poll queues
  if (ParseGenericName(LinkBasename(sys), &ctrl_no, &ns_no)) {
    const std::string q = "/sys/class/block/nvme" + std::to_string(ctrl_no) + "n" +
                          std::to_string(ns_no) + "/queue/";
    io_poll_file = q + "io_poll";
    const uint64_t hw_kb = ReadSysfsNumber(q + "max_hw_sectors_kb");
    if (hw_kb > 0) {
      max_transfer = static_cast<uint32_t>(std::min<uint64_t>(max_transfer, hw_kb * 1024));
    }
    const uint64_t segs = ReadSysfsNumber(q + "max_segments");
    if (segs > 0) {
      max_transfer = static_cast<uint32_t>(std::min<uint64_t>(max_transfer, segs * 4096));
    }

    // Lock the block device of the same namespace too: a UringDevice on it (the block path)
    // and this device must exclude each other.
    const std::string blk = "/dev/nvme" + std::to_string(ctrl_no) + "n" + std::to_string(ns_no);
    struct stat bst;
    if (::stat(blk.c_str(), &bst) == 0 && S_ISBLK(bst.st_mode)) {
      d->block_lock_fd_ = ::open(blk.c_str(), O_RDONLY | O_CLOEXEC);
      if (d->block_lock_fd_ >= 0 && ::flock(d->block_lock_fd_, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        if (err == EWOULDBLOCK) {
          return Status::Busy(name + ": its block device " + blk + " is " +
                              DescribeLockHolder(bst.st_dev, bst.st_ino));
        }
      }
    }
  }
  max_transfer = std::min(max_transfer, kDeviceIoBytesMax);
  max_transfer = std::max<uint32_t>(max_transfer / kIoAlignBytes * kIoAlignBytes, kIoAlignBytes);
  d->max_transfer_bytes_ = max_transfer;

  // Polled completions only when asked for and when the driver has poll queues: without them
  // a polled command lands on an interrupt-driven queue and the reaper would spin for nothing.
  const char* poll_env = std::getenv("ASTRA_NVME_IOPOLL");
  const bool want_poll =
      opts.poll == NvmeOpenOptions::Poll::kOn ||
      (opts.poll == NvmeOpenOptions::Poll::kFromEnv && poll_env != nullptr &&
       std::strcmp(poll_env, "1") == 0);
  if (want_poll) {
    if (!io_poll_file.empty() && ReadSysfsNumber(io_poll_file) == 1) {
      d->iopoll_ = true;
    } else {
      spdlog::warn("{}: polled completions asked for (ASTRA_NVME_IOPOLL=1) but the namespace "
                   "has no poll queues ({} is not 1; load the nvme driver with poll_queues=N, e.g. "
                   "nvme.poll_queues=2 on the kernel command line): completions by interrupt",
                   name, io_poll_file.empty() ? "its queue's io_poll" : io_poll_file);
    }
  }
  unsigned ring_flags = IORING_SETUP_SQE128 | IORING_SETUP_CQE32;
  ret = io_uring_queue_init(kCommandSlots, &d->ring_,
                            ring_flags | (d->iopoll_ ? IORING_SETUP_IOPOLL : 0));
  if (ret == -EINVAL && d->iopoll_) {
    spdlog::warn("{}: io_uring refuses IORING_SETUP_IOPOLL with 128-byte SQEs: completions by "
                 "interrupt", name);
    d->iopoll_ = false;
    ret = io_uring_queue_init(kCommandSlots, &d->ring_, ring_flags);
  }
  if (ret < 0) {
    if (ret == -EINVAL) {
      return Status::NotSupported(name + ": io_uring with 128-byte SQEs (kernel 5.19 or newer " +
                                  "needed for NVMe passthrough)");
    }
    return Status::IOError("io_uring setup for " + name + ": " + std::strerror(-ret));
  }
  d->ring_ready_ = true;
  d->free_requests_.reserve(kDeviceQueueDepth);
  for (uint32_t i = kDeviceQueueDepth; i > 0; --i) d->free_requests_.push_back(i - 1);
  d->free_commands_.reserve(kCommandSlots);
  for (uint32_t i = kCommandSlots; i > 0; --i) d->free_commands_.push_back(i - 1);
  if (d->iopoll_) {
    d->reaper_ = std::thread([dev = d.get()] { dev->ReaperLoopPolled(); });
  } else {
    d->reaper_ = std::thread([dev = d.get()] { dev->ReaperLoop(); });
  }

  // Prove the passthrough path end to end (kernel support for URING_CMD on the char device,
  // permission for I/O commands) with one read of the first block; it also finds out whether
  // fixed buffers work.
  Status s = d->ProbeFirstRead();
  if (!s.ok()) {
    if (s.code() == Status::Code::kNotSupported || s.code() == Status::Code::kInvalidArgument) {
      return Status::NotSupported(name + ": NVMe passthrough through io_uring does not work " +
                                  "here: " + s.message());
    }
    return s.Annotate(name + ": first read through NVMe passthrough failed");
  }
  if (d->iopoll_) spdlog::info("{}: polled completions (IORING_SETUP_IOPOLL)", name);
  return d;
}

Status NvmeDevice::ProbeFirstRead() {
  const uint32_t lb = info_.logical_block_bytes;
  assert(lb <= kIoAlignBytes);
  AlignedBuf probe = AllocAligned(kIoAlignBytes);
  iovec v{probe.get(), kIoAlignBytes};
  const char* env = std::getenv("ASTRA_NVME_FIXED_BUFFERS");
  if (env != nullptr && std::strcmp(env, "0") == 0) {
    // For comparisons (and to work around a kernel problem): plain buffers only.
    no_fixed_reason_ = "fixed buffers disabled by ASTRA_NVME_FIXED_BUFFERS=0";
    return Read(0, probe.get(), lb);
  }
  std::string why;
  int ret = io_uring_register_buffers(&ring_, &v, 1);
  if (ret == 0) {
    {
      std::lock_guard<std::mutex> l(mu_);
      registered_.Assign({&v, 1});
    }
    Status s = Read(0, probe.get(), lb);  // issued fixed: the buffer is registered
    {
      std::lock_guard<std::mutex> l(mu_);
      registered_.Clear();
    }
    ret = io_uring_unregister_buffers(&ring_);
    if (s.ok() && ret == 0) {
      fixed_supported_ = true;
      return s;
    }
    why = !s.ok() ? "a fixed read failed: " + s.ToString()
                  : std::string("io_uring_unregister_buffers: ") + std::strerror(-ret);
  } else {
    why = std::string("io_uring_register_buffers: ") + std::strerror(-ret);
  }
  no_fixed_reason_ = "the kernel does not take fixed buffers (IORING_URING_CMD_FIXED) for NVMe "
                     "passthrough: " + why;
  Status s = Read(0, probe.get(), lb);
  if (s.ok()) {
    spdlog::info("{}: fixed buffers do not work for NVMe passthrough here ({}); plain buffers "
                 "are used",
                 info_.path, why);
  }
  return s;
}

Status NvmeDevice::RegisterBuffers(std::span<const iovec> bufs) {
  std::unique_lock<std::mutex> l(mu_);
  // Requests in flight may name the old registration's indices: let them finish first. Holding
  // mu_ afterwards keeps new ones out until the lookup table matches the kernel's again.
  cv_.wait(l, [&] { return free_requests_.size() == kDeviceQueueDepth; });
  if (!registered_.empty()) {
    registered_.Clear();
    const int ret = io_uring_unregister_buffers(&ring_);
    if (ret < 0) return Status::FromErrno(-ret, "unregister the I/O buffers of " + info_.path);
  }
  if (bufs.empty()) return Status::Ok();
  if (!fixed_supported_) {
    return Status::NotSupported(info_.path + ": " + no_fixed_reason_ + "; plain buffers are used");
  }
  if (bufs.size() > kRegisteredBuffersMax) {
    return Status::InvalidArgument(info_.path + ": " + std::to_string(bufs.size()) +
                                   " buffers to register, at most " +
                                   std::to_string(kRegisteredBuffersMax));
  }
  for (const iovec& v : bufs) {
    if (v.iov_base == nullptr || v.iov_len == 0 || v.iov_len > kRegisteredBufferBytesMax) {
      return Status::InvalidArgument(info_.path + ": register buffers: an iovec of " +
                                     std::to_string(v.iov_len) + " bytes at " +
                                     (v.iov_base == nullptr ? "null" : "an address") +
                                     " (1 byte to 1 GiB, not null)");
    }
  }
  const int ret =
      io_uring_register_buffers(&ring_, bufs.data(), static_cast<unsigned>(bufs.size()));
  if (ret < 0) {
    return Status::FromErrno(-ret, "register " + std::to_string(bufs.size()) +
                                       " I/O buffers with " + info_.path +
                                       (ret == -ENOMEM ? " (pinned pages count against "
                                                         "RLIMIT_MEMLOCK when not root)"
                                                       : ""));
  }
  registered_.Assign(bufs);
  return Status::Ok();
}

NvmeDevice::BufferStats NvmeDevice::buffer_stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return buffer_stats_;
}

NvmeDevice::~NvmeDevice() {
  if (reaper_.joinable() && iopoll_) {
    // The polled reaper sleeps while nothing is in the ring: wake it to exit.
    std::unique_lock<std::mutex> l(mu_);
    stopping_ = true;
    cv_.wait(l, [&] { return free_requests_.size() == kDeviceQueueDepth; });
    assert(free_commands_.size() == kCommandSlots);
    reaper_exit_ = true;
    l.unlock();
    reap_cv_.notify_all();
    reaper_.join();
  } else if (reaper_.joinable()) {
    std::unique_lock<std::mutex> l(mu_);
    stopping_ = true;
    cv_.wait(l, [&] { return free_requests_.size() == kDeviceQueueDepth; });
    assert(free_commands_.size() == kCommandSlots);
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) {
      SubmitPreparedLocked();
      sqe = io_uring_get_sqe(&ring_);
    }
    if (sqe == nullptr) Fatal("io_uring_get_sqe: submission queue full", EAGAIN);
    std::memset(sqe, 0, 2 * sizeof(io_uring_sqe));
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, kStopUserData);
    SubmitPreparedLocked();
    l.unlock();
    reaper_.join();
  }
  if (ring_ready_) io_uring_queue_exit(&ring_);
  if (fd_ >= 0) ::close(fd_);  // also releases the flocks
  if (block_lock_fd_ >= 0) ::close(block_lock_fd_);
}

uint64_t NvmeDevice::commands_issued() const {
  std::lock_guard<std::mutex> l(mu_);
  return commands_issued_;
}

void NvmeDevice::Submit(IoRequest* const* reqs, size_t n) {
  std::unique_lock<std::mutex> l(mu_);
  assert(!stopping_);
  for (size_t i = 0; i < n; ++i) {
    IoRequest* r = reqs[i];
    assert(r != nullptr && r->waiter != nullptr);
    Status s = CheckRequest(info_, *r);
    if (!s.ok()) {
      r->status = std::move(s);
      r->waiter->Done();
      continue;
    }
    const bool data = r->op == IoOp::kRead || r->op == IoOp::kWrite;
    const uint32_t commands =
        data ? (r->length_bytes + max_transfer_bytes_ - 1) / max_transfer_bytes_ : 1;
    assert(commands >= 1 && commands <= kDeviceIoBytesMax / kIoAlignBytes);
    const uint32_t ri = AcquireRequestLocked(l);
    Request& rq = requests_[ri];
    rq.req = r;
    rq.pending = commands;  // before any command is issued: completions may run meanwhile
    rq.first_error = Status::Ok();
    if (r->op == IoOp::kTrim) {
      const uint64_t slba = r->offset_bytes >> lba_shift_;
      rq.dsm_range[0] = 0;  // context attributes
      rq.dsm_range[1] = r->length_bytes >> lba_shift_;
      rq.dsm_range[2] = static_cast<uint32_t>(slba);
      rq.dsm_range[3] = static_cast<uint32_t>(slba >> 32);
    }
    // A request inside a registered buffer is issued fixed, every one of its commands.
    const int buf_index = data ? registered_.Find(r->buf, r->length_bytes) : -1;
    for (uint32_t k = 0; k < commands; ++k) {
      const uint32_t c = AcquireCommandLocked(l);
      Command& cmd = commands_[c];
      cmd.request = ri;
      cmd.retries = 0;
      cmd.buf_index = buf_index;
      if (data) ++(buf_index >= 0 ? buffer_stats_.fixed_commands : buffer_stats_.plain_commands);
      if (data) {
        cmd.buf_offset = k * max_transfer_bytes_;
        cmd.offset_bytes = r->offset_bytes + cmd.buf_offset;
        cmd.length_bytes = std::min(max_transfer_bytes_, r->length_bytes - cmd.buf_offset);
      } else {
        cmd.buf_offset = 0;
        cmd.offset_bytes = r->offset_bytes;
        cmd.length_bytes = r->length_bytes;
      }
      PrepLocked(c);
    }
  }
  SubmitPreparedLocked();
}

uint32_t NvmeDevice::AcquireRequestLocked(std::unique_lock<std::mutex>& l) {
  while (free_requests_.empty()) {
    SubmitPreparedLocked();  // SQEs prepared by this call hold slots too
    cv_.wait(l);
  }
  const uint32_t i = free_requests_.back();
  free_requests_.pop_back();
  assert(i < kDeviceQueueDepth && requests_[i].req == nullptr);
  return i;
}

uint32_t NvmeDevice::AcquireCommandLocked(std::unique_lock<std::mutex>& l) {
  // Waiting while holding a request slot with commands still to issue cannot deadlock: with no
  // free command slot, commands are in flight, and each completion frees one.
  while (free_commands_.empty()) {
    SubmitPreparedLocked();
    cv_.wait(l);
  }
  const uint32_t c = free_commands_.back();
  free_commands_.pop_back();
  assert(c < kCommandSlots && !commands_[c].busy);
  commands_[c].busy = true;
  return c;
}

void NvmeDevice::PrepLocked(uint32_t c) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    // At most kCommandSlots commands are taken and the SQ has that many entries.
    SubmitPreparedLocked();
    sqe = io_uring_get_sqe(&ring_);
  }
  if (sqe == nullptr) Fatal("io_uring_get_sqe: submission queue full", EAGAIN);
  const Command& cmd = commands_[c];
  Request& rq = requests_[cmd.request];
  const IoRequest& r = *rq.req;

  // An SQE128 entry is two io_uring_sqe structs; the command lives in the second half.
  std::memset(sqe, 0, 2 * sizeof(io_uring_sqe));
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = fd_;
  sqe->cmd_op = NVME_URING_CMD_IO;
  if (cmd.buf_index >= 0) {
    // nc->addr stays the user address: the kernel finds it inside registered buffer buf_index.
    sqe->uring_cmd_flags = IORING_URING_CMD_FIXED;
    sqe->buf_index = static_cast<uint16_t>(cmd.buf_index);
  }
  io_uring_sqe_set_data64(sqe, c);
  auto* nc = reinterpret_cast<nvme_uring_cmd*>(sqe->cmd);
  nc->nsid = nsid_;
  const uint64_t slba = cmd.offset_bytes >> lba_shift_;
  switch (r.op) {
    case IoOp::kRead:
    case IoOp::kWrite: {
      const uint32_t nlb = cmd.length_bytes >> lba_shift_;
      assert(nlb >= 1 && nlb <= 65536);
      nc->opcode = r.op == IoOp::kRead ? kNvmeCmdRead : kNvmeCmdWrite;
      nc->addr = reinterpret_cast<uintptr_t>(static_cast<uint8_t*>(r.buf) + cmd.buf_offset);
      nc->data_len = cmd.length_bytes;
      nc->cdw10 = static_cast<uint32_t>(slba);
      nc->cdw11 = static_cast<uint32_t>(slba >> 32);
      nc->cdw12 = nlb - 1;  // 0's based
      break;
    }
    case IoOp::kFlush:
      nc->opcode = kNvmeCmdFlush;
      break;
    case IoOp::kTrim:
      nc->opcode = kNvmeCmdDsm;
      nc->addr = reinterpret_cast<uintptr_t>(rq.dsm_range);
      nc->data_len = sizeof(rq.dsm_range);
      nc->cdw10 = 0;  // number of ranges, 0's based: one
      nc->cdw11 = kDsmAttrDeallocate;
      break;
  }
  ++commands_issued_;
}

void NvmeDevice::SubmitPreparedLocked() {
  int failures = 0;
  while (io_uring_sq_ready(&ring_) > 0) {
    const int ret = io_uring_submit(&ring_);
    if (ret > 0) {
      failures = 0;
      const bool was_idle = in_ring_ == 0;
      in_ring_ += static_cast<uint32_t>(ret);
      if (iopoll_ && was_idle) reap_cv_.notify_one();  // the polled reaper sleeps when idle
      continue;
    }
    if (ret != 0 && ret != -EAGAIN && ret != -EBUSY && ret != -EINTR && ret != -ENOMEM) {
      Fatal("io_uring_submit", ret);
    }
    if (++failures > kSubmitAttemptsMax) {
      Fatal("io_uring_submit makes no progress", ret ? ret : EAGAIN);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

std::string NvmeDevice::Describe(const IoRequest& r, uint64_t offset_bytes,
                                 uint32_t length_bytes) const {
  if (r.op == IoOp::kFlush) return "flush " + info_.path;
  return std::string(IoOpName(r.op)) + " " + info_.path + " at offset " +
         std::to_string(offset_bytes) + " length " + std::to_string(length_bytes);
}

void NvmeDevice::ReaperLoop() {
  for (;;) {
    io_uring_cqe* cqe = nullptr;
    const int ret = io_uring_wait_cqe(&ring_, &cqe);
    if (ret == -EINTR || ret == -EAGAIN) continue;
    if (ret < 0) Fatal("io_uring_wait_cqe", ret);
    bool stop = false;
    unsigned head = 0, seen = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      const uint64_t data = io_uring_cqe_get_data64(cqe);
      if (data == kStopUserData) {
        stop = true;
      } else {
        assert(data < kCommandSlots);
        HandleCompletion(static_cast<uint32_t>(data), cqe->res);
      }
    }
    io_uring_cq_advance(&ring_, seen);
    if (stop) return;
  }
}

// The polled ring: completions appear only when someone polls the device (this thread with
// io_uring_wait_cqe, which enters the kernel with GETEVENTS and spins in the driver's poll
// routine; submitters' io_uring_enter calls poll once too). Spinning with nothing in flight would
// burn a CPU, so the thread sleeps on reap_cv_ until commands are in the ring.
void NvmeDevice::ReaperLoopPolled() {
  for (;;) {
    {
      std::unique_lock<std::mutex> l(mu_);
      reap_cv_.wait(l, [&] { return in_ring_ > 0 || reaper_exit_; });
      if (in_ring_ == 0) return;  // reaper_exit_, and nothing left to reap
    }
    io_uring_cqe* cqe = nullptr;
    const int ret = io_uring_wait_cqe(&ring_, &cqe);
    if (ret == -EINTR || ret == -EAGAIN) continue;
    if (ret < 0) Fatal("io_uring_wait_cqe (polled)", ret);
    unsigned head = 0, seen = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      const uint64_t data = io_uring_cqe_get_data64(cqe);
      assert(data < kCommandSlots);
      HandleCompletion(static_cast<uint32_t>(data), cqe->res);
    }
    io_uring_cq_advance(&ring_, seen);
  }
}

void NvmeDevice::HandleCompletion(uint32_t c, int res) {
  std::unique_lock<std::mutex> l(mu_);
  assert(in_ring_ > 0);
  --in_ring_;
  Command& cmd = commands_[c];
  assert(cmd.busy);
  const IoRequest& r = *requests_[cmd.request].req;
  Status st;
  if (res < 0) {
    // ECANCELED: the submitting thread exited before io-wq ran the command; resubmitting from
    // this long-lived thread makes it ours.
    const bool transient = res == -EAGAIN || res == -EINTR || (res == -ECANCELED && !stopping_);
    if (transient && cmd.retries < kRetriesMax) {
      ++cmd.retries;
      PrepLocked(c);
      SubmitPreparedLocked();
      return;
    }
    st = Status::FromErrno(-res, Describe(r, cmd.offset_bytes, cmd.length_bytes));
  } else if (res > 0) {
    st = StatusFromNvme(static_cast<uint32_t>(res),
                        Describe(r, cmd.offset_bytes, cmd.length_bytes));
  }
  l.unlock();
  FinishCommand(c, std::move(st));
}

void NvmeDevice::FinishCommand(uint32_t c, Status s) {
  IoRequest* done = nullptr;
  Status result;
  {
    std::lock_guard<std::mutex> l(mu_);
    Command& cmd = commands_[c];
    Request& rq = requests_[cmd.request];
    assert(rq.pending > 0);
    if (!s.ok() && rq.first_error.ok()) rq.first_error = std::move(s);
    if (--rq.pending == 0) {
      done = rq.req;
      result = std::move(rq.first_error);
      rq = Request{};
      free_requests_.push_back(cmd.request);
    }
    cmd = Command{};
    free_commands_.push_back(c);
  }
  cv_.notify_all();
  if (done != nullptr) {
    IoWaiter* w = done->waiter;
    done->status = std::move(result);
    w->Done();  // last touch of *done: its owner may free it now
  }
}

}  // namespace astra
