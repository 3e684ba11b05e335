#include "uring_device.h"

#include <fcntl.h>
#include <sched.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <climits>
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

std::string DescribeIo(const std::string& path, const IoRequest& r, uint32_t done_bytes) {
  if (r.op == IoOp::kFlush) return "flush " + path;
  return std::string(IoOpName(r.op)) + " " + path + " at offset " + std::to_string(r.offset_bytes + done_bytes) +
         " length " + std::to_string(r.length_bytes - done_bytes);
}

std::string UringDevice::Describe(const IoRequest& r, uint32_t done_bytes) const {
  return DescribeIo(info_.path, r, done_bytes);
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

// ============================================================================================
// ReadAll: batches of reads on the calling thread's own ring
// ============================================================================================

namespace astra {

namespace {

// The calling thread's ring for ReadAll. SINGLE_ISSUER | DEFER_TASKRUN (Linux 6.1+): only this
// thread submits, and completion work runs when it waits, so a batch wakes it once, when the
// number of completions it waits for has arrived. Falls back to a plain ring on older kernels.
class ThreadRing {
 public:
  static constexpr unsigned kEntries = 128;
  ThreadRing() {
    io_uring_params p{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    int ret = io_uring_queue_init_params(kEntries, &ring_, &p);
    if (ret < 0) ret = io_uring_queue_init(kEntries, &ring_, 0);
    ok_ = ret == 0;
  }
  ~ThreadRing() {
    if (ok_) io_uring_queue_exit(&ring_);
  }
  ThreadRing(const ThreadRing&) = delete;
  ThreadRing& operator=(const ThreadRing&) = delete;
  bool ok() const { return ok_; }
  io_uring* ring() { return &ring_; }

  // ReadAll's bookkeeping, kept between calls. One entry per request issued on the ring.
  struct Inline {
    uint32_t i;
    int fd;
    uint32_t done = 0;
    uint32_t retries = 0;
    std::vector<iovec> rest;  // a scatter read's remainder after a short read
  };
  std::vector<Inline> inl;
  std::vector<uint32_t> queue;  // indexes into inl waiting for an SQE
  std::vector<uint32_t> via_submit;  // indexes into reqs that went through Device::Submit()
  std::vector<uint32_t> completed;   // indexes into reqs completed by the last reap

 private:
  io_uring ring_{};
  bool ok_ = false;
};

ThreadRing& ThisThreadRing() {
  thread_local ThreadRing r;
  return r;
}

// Validates a scatter list against its request (see IoRequest::iov).
Status CheckScatter(const Device& d, const IoRequest& r) {
  uint64_t sum = 0;
  for (uint32_t v = 0; v < r.iov_count; v++) {
    const iovec& x = r.iov[v];
    if (reinterpret_cast<uintptr_t>(x.iov_base) % kIoAlignBytes != 0 || x.iov_len % kIoAlignBytes != 0 ||
        x.iov_len == 0)
      return Status::InvalidArgument(d.info().path + ": scatter read buffer " + std::to_string(v) +
                                     " not aligned to " + std::to_string(kIoAlignBytes) + " bytes");
    sum += x.iov_len;
  }
  if (r.iov_count == 0 || r.iov_count > IOV_MAX || sum != r.length_bytes)
    return Status::InvalidArgument(d.info().path + ": scatter list of " + std::to_string(r.iov_count) +
                                   " buffers, " + std::to_string(sum) + " bytes, for a read of " +
                                   std::to_string(r.length_bytes));
  return Status::Ok();
}

}  // namespace

void ReadAll(std::span<Device* const> devs, std::span<IoRequest* const> reqs) {
  ReadAll(devs, reqs, ReadAllOptions{});
}

void ReadAll(std::span<Device* const> devs, std::span<IoRequest* const> reqs, const ReadAllOptions& opts) {
  assert(devs.size() == reqs.size());
  auto done = [&](uint32_t i) {
    if (opts.on_done != nullptr) opts.on_done(opts.ctx, i);
  };
  IoWaiter waiter;  // requests that go through Submit()
  ThreadRing& tr = ThisThreadRing();
  // The thread's scratch (ReadAll does not call back into itself): no allocation per batch.
  std::vector<ThreadRing::Inline>& inl = tr.inl;
  std::vector<uint32_t>& queue = tr.queue;
  std::vector<uint32_t>& via_submit = tr.via_submit;
  inl.clear();
  queue.clear();
  via_submit.clear();
  std::vector<std::pair<uint32_t, AlignedBuf>> bounced;  // scatter reads through Submit()
  for (uint32_t i = 0; i < reqs.size(); i++) {
    IoRequest* r = reqs[i];
    assert(r->op == IoOp::kRead);
    r->waiter = &waiter;
    if (r->iov != nullptr) {
      Status s = CheckScatter(*devs[i], *r);
      if (s.ok()) {
        IoRequest probe = *r;  // the range checks of CheckRequest, with an aligned buffer
        probe.buf = r->iov[0].iov_base;
        s = CheckRequest(devs[i]->info(), probe);
      }
      if (!s.ok()) {
        r->status = std::move(s);
        done(i);
        continue;
      }
    }
    const int fd = tr.ok() ? devs[i]->InlineReadFd() : -1;
    if (fd < 0) {
      if (r->iov != nullptr) {
        bounced.emplace_back(i, AllocAligned(r->length_bytes));
        r->buf = bounced.back().second.get();
      }
      waiter.Add(1);
      via_submit.push_back(i);
      devs[i]->Submit(&reqs[i], 1);
      continue;
    }
    if (r->iov == nullptr) {
      Status s = CheckRequest(devs[i]->info(), *r);
      if (!s.ok()) {
        r->status = std::move(s);
        done(i);
        continue;
      }
    }
    inl.push_back({i, fd, 0, 0, {}});
  }
  io_uring* ring = tr.ring();
  for (uint32_t j = inl.size(); j > 0; j--) queue.push_back(j - 1);
  uint32_t inflight = 0;
  int failures = 0;
  std::vector<uint32_t>& completed = tr.completed;
  completed.clear();
  while (!queue.empty() || inflight > 0) {
    while (!queue.empty()) {
      io_uring_sqe* sqe = io_uring_get_sqe(ring);
      if (sqe == nullptr) break;
      ThreadRing::Inline& x = inl[queue.back()];
      const IoRequest& r = *reqs[x.i];
      const uint64_t off = r.offset_bytes + x.done;
      if (r.iov == nullptr) {
        io_uring_prep_read(sqe, x.fd, static_cast<uint8_t*>(r.buf) + x.done, r.length_bytes - x.done, off);
      } else if (x.done == 0) {
        io_uring_prep_readv(sqe, x.fd, r.iov, r.iov_count, off);
      } else {
        // The remainder of a short scatter read: the buffers from byte `done` on.
        x.rest.clear();
        uint64_t skip = x.done;
        for (uint32_t v = 0; v < r.iov_count; v++) {
          if (skip >= r.iov[v].iov_len) {
            skip -= r.iov[v].iov_len;
            continue;
          }
          x.rest.push_back({static_cast<uint8_t*>(r.iov[v].iov_base) + skip, r.iov[v].iov_len - skip});
          skip = 0;
        }
        io_uring_prep_readv(sqe, x.fd, x.rest.data(), unsigned(x.rest.size()), off);
      }
      io_uring_sqe_set_data64(sqe, queue.back());
      queue.pop_back();
      inflight++;
    }
    int ret;
    if (opts.poll_us == 0) {
      // Everything submitted is waited for at once: the kernel wakes this thread once.
      ret = io_uring_submit_and_wait(ring, inflight);
    } else {
      // Hybrid polling (ReadAllOptions::poll_us): run the ring's completion work without
      // sleeping until something completes; sleep for the rest only after poll_us without one.
      ret = io_uring_submit_and_get_events(ring);
      const auto t0 = std::chrono::steady_clock::now();
      while (ret >= 0 && inflight > 0 && io_uring_cq_ready(ring) == 0) {
        if (std::chrono::steady_clock::now() - t0 >= std::chrono::microseconds(opts.poll_us)) {
          ret = io_uring_submit_and_wait(ring, inflight);
          break;
        }
        sched_yield();
        ret = io_uring_get_events(ring);
      }
    }
    if (ret < 0 && ret != -EINTR) {
      if (ret != -EAGAIN && ret != -EBUSY && ret != -ENOMEM) Fatal("io_uring_submit_and_wait", ret);
      if (++failures > kSubmitAttemptsMax) Fatal("io_uring_submit_and_wait makes no progress", ret);
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    io_uring_cqe* cqe = nullptr;
    unsigned head = 0, seen = 0;
    io_uring_for_each_cqe(ring, head, cqe) {
      ++seen;
      inflight--;
      const uint32_t j = static_cast<uint32_t>(io_uring_cqe_get_data64(cqe));
      ThreadRing::Inline& x = inl[j];
      IoRequest& r = *reqs[x.i];
      const int res = cqe->res;
      if (res < 0) {
        if ((res == -EAGAIN || res == -EINTR) && x.retries < kRetriesMax) {
          x.retries++;
          queue.push_back(j);
        } else {
          r.status = Status::FromErrno(-res, DescribeIo(devs[x.i]->info().path, r, x.done));
          completed.push_back(x.i);
        }
      } else if (res == 0) {
        r.status = Status::IOError(DescribeIo(devs[x.i]->info().path, r, x.done) + ": transferred 0 bytes");
        completed.push_back(x.i);
      } else {
        x.done += static_cast<uint32_t>(res);
        if (x.done < r.length_bytes) {
          queue.push_back(j);  // short read: the remainder
        } else {
          r.status = Status::Ok();
          completed.push_back(x.i);
        }
      }
    }
    io_uring_cq_advance(ring, seen);
    // The caller's work on these overlaps the device's work on the rest.
    for (uint32_t i : completed) done(i);
    completed.clear();
  }
  waiter.Wait();
  for (auto& [i, bounce] : bounced) {
    IoRequest& r = *reqs[i];
    r.buf = nullptr;
    if (!r.status.ok()) continue;
    uint64_t at = 0;
    for (uint32_t v = 0; v < r.iov_count; v++) {
      std::memcpy(r.iov[v].iov_base, bounce.get() + at, r.iov[v].iov_len);
      at += r.iov[v].iov_len;
    }
  }
  for (uint32_t i : via_submit) done(i);
}

}  // namespace astra
