#include "uring_device.h"

#include <fcntl.h>
#include <linux/fs.h>
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

namespace astra {

namespace {

// user_data of the NOP that tells the reaper to exit; slot indices are far below it.
constexpr uint64_t kStopUserData = UINT64_MAX;
static_assert(kDeviceQueueDepth < kStopUserData);
// Resubmissions of one request after a transient error (EAGAIN, EINTR, ECANCELED).
constexpr uint32_t kRetriesMax = 16;
// Consecutive failed io_uring_enter calls tolerated before giving up (each waits 100 us).
constexpr int kSubmitAttemptsMax = 100000;

[[noreturn]] void Fatal(const char* what, int err) {
  std::fprintf(stderr, "astra: UringDevice: %s: %s\n", what, std::strerror(err < 0 ? -err : err));
  std::abort();
}


// Names who holds the flock on the file (dev, ino) by scanning /proc/locks, e.g.
// "in use by another process (pid 1234, astrafs-mount)". Best effort.
std::string DescribeLockHolder(dev_t dev, ino_t ino) {
  std::ifstream locks("/proc/locks");
  std::string line;
  while (std::getline(locks, line)) {
    std::istringstream in(line);
    std::string id, kind;
    in >> id >> kind;
    if (kind == "->") continue;  // a waiter, not the holder
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

// Whether the block device (major:minor) accepts discards, from sysfs.
bool BlockDeviceDiscards(dev_t rdev) {
  std::ifstream f("/sys/dev/block/" + std::to_string(major(rdev)) + ":" +
                  std::to_string(minor(rdev)) + "/queue/discard_max_bytes");
  uint64_t max_bytes = 0;
  return static_cast<bool>(f >> max_bytes) && max_bytes > 0;
}

}  // namespace

Result<std::unique_ptr<UringDevice>> UringDevice::Open(const std::string& path) {
  std::unique_ptr<UringDevice> d(new UringDevice());
  d->info_.path = path;
  d->info_.backend = "uring";

  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
  d->is_block_ = S_ISBLK(st.st_mode);
  if (!d->is_block_ && !S_ISREG(st.st_mode)) {
    return Status::InvalidArgument(path + ": not a regular file or block device");
  }
  // O_EXCL on a block device makes the kernel refuse it while mounted or claimed (md, dm, ...).
  const int flags = O_RDWR | O_DIRECT | O_CLOEXEC | (d->is_block_ ? O_EXCL : 0);
  d->fd_ = ::open(path.c_str(), flags);
  if (d->fd_ < 0) {
    const int err = errno;
    if (err == EBUSY && d->is_block_) {
      return Status::Busy(path + ": block device is mounted, claimed by the kernel, or " +
                          DescribeLockHolder(st.st_dev, st.st_ino));
    }
    if (err == EINVAL) {
      return Status::InvalidArgument(path + ": cannot open with O_DIRECT (the file system may " +
                                     "not support direct I/O)");
    }
    return Status::FromErrno(err, "open " + path);
  }
  if (::flock(d->fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err == EWOULDBLOCK) {
      return Status::Busy(path + ": " + DescribeLockHolder(st.st_dev, st.st_ino));
    }
    return Status::FromErrno(err, "flock " + path);
  }
  if (::fstat(d->fd_, &st) != 0) return Status::FromErrno(errno, "fstat " + path);

  uint64_t size_bytes = 0;
  uint32_t block_bytes = 4096;
  if (d->is_block_) {
    if (::ioctl(d->fd_, BLKGETSIZE64, &size_bytes) != 0) {
      return Status::FromErrno(errno, "ioctl BLKGETSIZE64 " + path);
    }
    int sector = 0;
    if (::ioctl(d->fd_, BLKSSZGET, &sector) != 0) {
      return Status::FromErrno(errno, "ioctl BLKSSZGET " + path);
    }
    if (sector != 512 && sector != 4096) {
      return Status::NotSupported(path + ": logical block size " + std::to_string(sector) +
                                  " (only 512 and 4096 are supported)");
    }
    block_bytes = static_cast<uint32_t>(sector);
    d->info_.supports_trim = BlockDeviceDiscards(st.st_rdev);
  } else {
    size_bytes = static_cast<uint64_t>(st.st_size);
    d->info_.supports_trim = true;  // hole punching; a file system without it fails the trim
  }
  d->info_.size_bytes = size_bytes / kIoAlignBytes * kIoAlignBytes;
  d->info_.logical_block_bytes = block_bytes;
  if (d->info_.size_bytes == 0) {
    return Status::InvalidArgument(path + ": too small (" + std::to_string(size_bytes) +
                                   " bytes; at least " + std::to_string(kIoAlignBytes) +
                                   " needed)");
  }

  const int ret = io_uring_queue_init(kDeviceQueueDepth, &d->ring_, 0);
  if (ret < 0) {
    return Status::IOError("io_uring setup for " + path + ": " + std::strerror(-ret));
  }
  d->ring_ready_ = true;
  d->free_slots_.reserve(kDeviceQueueDepth);
  for (uint32_t i = kDeviceQueueDepth; i > 0; --i) d->free_slots_.push_back(i - 1);
  d->reaper_ = std::thread([dev = d.get()] { dev->ReaperLoop(); });
  return d;
}

UringDevice::~UringDevice() {
  if (reaper_.joinable()) {
    std::unique_lock<std::mutex> l(mu_);
    stopping_ = true;
    cv_.wait(l, [&] { return free_slots_.size() == kDeviceQueueDepth; });
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) {
      SubmitPreparedLocked();
      sqe = io_uring_get_sqe(&ring_);
    }
    assert(sqe != nullptr);
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, kStopUserData);
    SubmitPreparedLocked();
    l.unlock();
    reaper_.join();
  }
  if (ring_ready_) io_uring_queue_exit(&ring_);
  if (fd_ >= 0) ::close(fd_);  // also releases the flock
}

void UringDevice::Submit(IoRequest* const* reqs, size_t n) {
  std::unique_lock<std::mutex> l(mu_);
  assert(!stopping_);
  for (size_t i = 0; i < n; ++i) {
    IoRequest* r = reqs[i];
    assert(r != nullptr && r->waiter != nullptr);
    Status s = CheckRequest(info_, *r);
    if (s.ok() && r->op == IoOp::kTrim && is_block_) {
      l.unlock();  // BLKDISCARD can take a while; let other submitters and the reaper in
      s = Discard(*r);
      r->status = std::move(s);
      r->waiter->Done();
      l.lock();
      continue;
    }
    if (!s.ok()) {
      r->status = std::move(s);
      r->waiter->Done();
      continue;
    }
    const uint32_t idx = AcquireSlotLocked(l);
    Slot& slot = slots_[idx];
    slot = Slot{};
    slot.req = r;
    if (r->op == IoOp::kRead || r->op == IoOp::kWrite) {
      slot.buf_index = registered_.Find(r->buf, r->length_bytes);
      if (slot.buf_index >= 0) ++fixed_ios_;
    }
    PrepLocked(idx);
  }
  SubmitPreparedLocked();
}

uint32_t UringDevice::AcquireSlotLocked(std::unique_lock<std::mutex>& l) {
  while (free_slots_.empty()) {
    // SQEs prepared by this call hold slots too: hand them to the kernel before waiting.
    SubmitPreparedLocked();
    cv_.wait(l);
  }
  const uint32_t idx = free_slots_.back();
  free_slots_.pop_back();
  assert(idx < kDeviceQueueDepth);
  return idx;
}

void UringDevice::PrepLocked(uint32_t idx) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    // At most kDeviceQueueDepth slots are taken and the SQ has that many entries, so one frees
    // up as soon as the kernel consumes what is queued.
    SubmitPreparedLocked();
    sqe = io_uring_get_sqe(&ring_);
  }
  assert(sqe != nullptr);
  const Slot& s = slots_[idx];
  const IoRequest& r = *s.req;
  assert(s.done_bytes < r.length_bytes || r.op == IoOp::kFlush);
  uint8_t* buf = static_cast<uint8_t*>(r.buf) + s.done_bytes;
  const uint32_t len = r.length_bytes - s.done_bytes;
  const uint64_t off = r.offset_bytes + s.done_bytes;
  switch (r.op) {
    case IoOp::kRead:
      if (s.buf_index >= 0) {
        io_uring_prep_read_fixed(sqe, fd_, buf, len, off, s.buf_index);
      } else {
        io_uring_prep_read(sqe, fd_, buf, len, off);
      }
      break;
    case IoOp::kWrite:
      if (s.buf_index >= 0) {
        io_uring_prep_write_fixed(sqe, fd_, buf, len, off, s.buf_index);
      } else {
        io_uring_prep_write(sqe, fd_, buf, len, off);
      }
      break;
    case IoOp::kFlush:
      io_uring_prep_fsync(sqe, fd_, IORING_FSYNC_DATASYNC);
      break;
    case IoOp::kTrim:
      assert(!is_block_);
      io_uring_prep_fallocate(sqe, fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                              static_cast<off_t>(r.offset_bytes),
                              static_cast<off_t>(r.length_bytes));
      break;
  }
  io_uring_sqe_set_data64(sqe, idx);
}

void UringDevice::SubmitPreparedLocked() {
  int failures = 0;
  while (io_uring_sq_ready(&ring_) > 0) {
    const int ret = io_uring_submit(&ring_);
    if (ret > 0) {
      failures = 0;
      continue;
    }
    // EAGAIN/ENOMEM: kernel short of memory; EBUSY: completions to reap first (the reaper does);
    // EINTR: a signal. All transient; anything else is a bug in this file.
    if (ret != 0 && ret != -EAGAIN && ret != -EBUSY && ret != -EINTR && ret != -ENOMEM) {
      Fatal("io_uring_submit", ret);
    }
    if (++failures > kSubmitAttemptsMax)
      Fatal("io_uring_submit makes no progress", ret ? ret : EAGAIN);
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

Status UringDevice::RegisterBuffers(std::span<const iovec> bufs) {
  std::unique_lock<std::mutex> l(mu_);
  // Requests in flight may name the old registration's indices: let them finish first.
  cv_.wait(l, [&] { return free_slots_.size() == kDeviceQueueDepth; });
  if (!registered_.empty()) {
    const int ret = io_uring_unregister_buffers(&ring_);
    if (ret < 0) return Status::FromErrno(-ret, "unregister buffers of " + info_.path);
    registered_.Clear();
  }
  if (bufs.empty()) return Status::Ok();
  for (const iovec& v : bufs) {
    if (v.iov_base == nullptr || v.iov_len == 0) {
      return Status::InvalidArgument(info_.path + ": register buffers: empty iovec");
    }
  }
  const int ret =
      io_uring_register_buffers(&ring_, bufs.data(), static_cast<unsigned>(bufs.size()));
  if (ret < 0) return Status::FromErrno(-ret, "register buffers of " + info_.path);
  registered_.Assign(bufs);
  return Status::Ok();
}

Status UringDevice::UnregisterBuffers() { return RegisterBuffers({}); }

uint64_t UringDevice::fixed_ios() const {
  std::lock_guard<std::mutex> l(mu_);
  return fixed_ios_;
}

Status UringDevice::Discard(const IoRequest& r) {
  assert(is_block_ && r.op == IoOp::kTrim);
  uint64_t range[2] = {r.offset_bytes, r.length_bytes};
  if (::ioctl(fd_, BLKDISCARD, &range) != 0) return Status::FromErrno(errno, Describe(r, 0));
  return Status::Ok();
}

std::string UringDevice::Describe(const IoRequest& r, uint32_t done_bytes) const {
  if (r.op == IoOp::kFlush) return "flush " + info_.path;
  std::string s = std::string(IoOpName(r.op)) + " " + info_.path + " at offset " +
                  std::to_string(r.offset_bytes + done_bytes) + " length " +
                  std::to_string(r.length_bytes - done_bytes);
  return s;
}

void UringDevice::ReaperLoop() {
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
        assert(data < kDeviceQueueDepth);
        HandleCompletion(static_cast<uint32_t>(data), cqe->res);
      }
    }
    io_uring_cq_advance(&ring_, seen);
    if (stop) return;
  }
}

void UringDevice::HandleCompletion(uint32_t idx, int res) {
  std::unique_lock<std::mutex> l(mu_);
  Slot& s = slots_[idx];
  const IoRequest& r = *s.req;
  if (res < 0) {
    // ECANCELED: the submitting thread exited before io-wq ran the request; resubmitting from
    // this (long-lived) thread makes it ours.
    const bool transient = res == -EAGAIN || res == -EINTR || (res == -ECANCELED && !stopping_);
    if (transient && s.retries < kRetriesMax) {
      ++s.retries;
      PrepLocked(idx);
      SubmitPreparedLocked();
      return;
    }
    Status st = Status::FromErrno(-res, Describe(r, s.done_bytes));
    l.unlock();
    Finish(idx, std::move(st));
    return;
  }
  if (r.op == IoOp::kRead || r.op == IoOp::kWrite) {
    if (res == 0) {
      Status st = Status::IOError(Describe(r, s.done_bytes) + ": transferred 0 bytes");
      l.unlock();
      Finish(idx, std::move(st));
      return;
    }
    assert(static_cast<uint32_t>(res) <= r.length_bytes - s.done_bytes);
    s.done_bytes += static_cast<uint32_t>(res);
    if (s.done_bytes < r.length_bytes) {  // short transfer: go on with the remainder
      PrepLocked(idx);
      SubmitPreparedLocked();
      return;
    }
  }
  l.unlock();
  Finish(idx, Status::Ok());
}

void UringDevice::Finish(uint32_t idx, Status st) {
  IoRequest* r = nullptr;
  {
    std::lock_guard<std::mutex> l(mu_);
    r = slots_[idx].req;
    slots_[idx] = Slot{};
    free_slots_.push_back(idx);
  }
  cv_.notify_all();
  IoWaiter* w = r->waiter;
  r->status = std::move(st);
  w->Done();  // Last touch of *r: its owner may free it now.
}

}  // namespace astra
