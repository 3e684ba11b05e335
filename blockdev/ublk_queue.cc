#include "blockdev/ublk_queue.h"

#include <liburing.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "blockdev/ublk_uapi.h"
#include "blockdev/user_data.h"

namespace astra::ublk {
namespace {

constexpr size_t kPageBytes = 4096;
constexpr size_t RoundUp(size_t v, size_t to) { return (v + to - 1) / to * to; }
// The kernel places queue q's descriptor array at q * (the array size for the deepest queue).
constexpr uint64_t DescArrayStride() {
  return RoundUp(kMaxQueueDepth * sizeof(ublksrv_io_desc), kPageBytes);
}

// Moves `len` bytes between buf and /dev/ublkcN at `pos` (USER_COPY); false on error or EOF.
bool CopyAll(bool to_kernel, int fd, uint8_t* buf, size_t len, uint64_t pos) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = to_kernel ? ::pwrite(fd, buf + done, len - done, static_cast<off_t>(pos + done))
                          : ::pread(fd, buf + done, len - done, static_cast<off_t>(pos + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

UblkQueue::UblkQueue(const QueueConfig& cfg, BlockTarget* target) : cfg_(cfg), target_(target) {
  assert(cfg.depth >= 1 && cfg.depth <= kQueueDepthMax);
  assert(cfg.workers >= 1 && cfg.workers <= kWorkersPerQueueMax);
  assert(cfg.max_io_bytes >= kPageBytes && cfg.max_io_bytes <= kIoBytesMax);
  assert(cfg.cdev_fd >= 0 && target != nullptr);
  tags_.resize(cfg.depth);
  results_.resize(cfg.depth);
  fetched_ns_.resize(cfg.depth);
  served_ns_.resize(cfg.depth);
  pending_.reserve(cfg.depth);
  done_.reserve(cfg.depth);
}

UblkQueue::~UblkQueue() {
  assert(!thread_.joinable() && "Join() before destroying a queue");
  if (buffers_) munmap(buffers_, buffers_bytes_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

uint8_t* UblkQueue::TagBuffer(uint16_t tag) const {
  assert(tag < cfg_.depth);
  return buffers_ + static_cast<size_t>(tag) * cfg_.max_io_bytes;
}

Status UblkQueue::Start() {
  wake_fd_ = eventfd(0, EFD_CLOEXEC);
  if (wake_fd_ < 0) return Status::FromErrno(errno, "eventfd for a ublk queue");
  buffers_bytes_ = static_cast<size_t>(cfg_.depth) * cfg_.max_io_bytes;
  void* p = mmap(nullptr, buffers_bytes_, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    buffers_ = nullptr;
    return Status::FromErrno(errno, "allocate ublk queue buffers");
  }
  buffers_ = static_cast<uint8_t*>(p);
  for (uint32_t i = 0; i < cfg_.workers; i++) workers_.emplace_back([this] { WorkerThread(); });
  thread_ = std::thread([this] { QueueThread(); });
  std::unique_lock<std::mutex> lock(start_mu_);
  start_cv_.wait(lock, [&] { return started_; });
  return start_status_;
}

void UblkQueue::RequestStop() {
  stop_.store(true);
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    ssize_t n = write(wake_fd_, &one, sizeof(one));
    (void)n;  // an eventfd write of 1 cannot fail short of overflow
  }
}

void UblkQueue::Join() {
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_workers_ = true;
  }
  work_cv_.notify_all();
  for (auto& w : workers_) w.join();
  workers_.clear();
}

Status UblkQueue::SetUpRing() {
  ring_ = std::make_unique<io_uring>();
  // Depth + 1 SQEs can be outstanding (one io command per tag, plus the eventfd read).
  const unsigned entries = cfg_.depth + 2u;
  int r = -EINVAL;
#ifdef IORING_SETUP_COOP_TASKRUN
  r = io_uring_queue_init(entries, ring_.get(),
                          IORING_SETUP_SQE128 | IORING_SETUP_COOP_TASKRUN |
                              IORING_SETUP_SINGLE_ISSUER);
#endif
  if (r == -EINVAL) r = io_uring_queue_init(entries, ring_.get(), IORING_SETUP_SQE128);
  if (r < 0) {
    ring_.reset();
    return Status::FromErrno(-r, "io_uring setup for ublk queue " + std::to_string(cfg_.queue_id));
  }
  descs_bytes_ = RoundUp(cfg_.depth * sizeof(ublksrv_io_desc), kPageBytes);
  void* p = mmap(nullptr, descs_bytes_, PROT_READ, MAP_SHARED | MAP_POPULATE, cfg_.cdev_fd,
                 static_cast<off_t>(UBLKSRV_CMD_BUF_OFFSET + cfg_.queue_id * DescArrayStride()));
  if (p == MAP_FAILED) {
    return Status::FromErrno(errno, "mmap the descriptors of ublk queue " +
                                        std::to_string(cfg_.queue_id));
  }
  descs_ = static_cast<const ublksrv_io_desc*>(p);
  return Status::Ok();
}

void UblkQueue::PrepIoCmd(IoCmd cmd, uint16_t tag, int32_t result) {
  io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
  if (sqe == nullptr) {  // the ring holds depth + 2 SQEs; at most depth + 1 are ever outstanding
    fprintf(stderr, "astrafs-ublk: queue %u: submission ring full\n", cfg_.queue_id);
    abort();
  }
  memset(sqe, 0, 2 * sizeof(*sqe));
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = cfg_.cdev_fd;
  sqe->cmd_op = IoCmdOp(cmd, cfg_.ioctl_encode);
  sqe->user_data = EncodeUserData(tag, CqeKind::kIoCmd);
  auto* c = reinterpret_cast<ublksrv_io_cmd*>(sqe->cmd);
  c->q_id = cfg_.queue_id;
  c->tag = tag;
  c->result = result;
  // Buffer-copy mode: the kernel copies to/from this address. USER_COPY: must be 0.
  c->addr = cfg_.user_copy ? 0 : reinterpret_cast<uintptr_t>(TagBuffer(tag));
  tags_[tag].state = TagState::kInKernel;
}

void UblkQueue::PrepWakeupRead() {
  io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
  if (sqe == nullptr) abort();  // see PrepIoCmd
  io_uring_prep_read(sqe, wake_fd_, &wake_value_, sizeof(wake_value_), 0);
  sqe->user_data = EncodeUserData(0, CqeKind::kWakeup);
}

void UblkQueue::QueueThread() {
  Status st = SetUpRing();
  if (st.ok()) {
    for (uint16_t t = 0; t < cfg_.depth; t++) PrepIoCmd(IoCmd::kFetchReq, t, 0);
    PrepWakeupRead();
    int r = io_uring_submit(ring_.get());
    if (r < 0) st = Status::FromErrno(-r, "submit FETCH_REQ on ublk queue " +
                                              std::to_string(cfg_.queue_id));
  }
  {
    std::lock_guard<std::mutex> lock(start_mu_);
    start_status_ = st;
    started_ = true;
  }
  start_cv_.notify_all();
  if (!st.ok()) {
    if (ring_) io_uring_queue_exit(ring_.get());
    return;
  }

  uint32_t gone = 0, serving = 0;
  while (gone < cfg_.depth) {
    if (stop_.load() && serving == 0) break;
    int r = io_uring_submit_and_wait(ring_.get(), 1);
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
      fprintf(stderr, "astrafs-ublk: queue %u: io_uring_submit_and_wait: %s\n", cfg_.queue_id,
              strerror(-r));
      break;
    }
    bool wakeup = false;
    uint32_t fetched = 0;
    const uint64_t reaped_ns = MonotonicNs();
    unsigned head, seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(ring_.get(), head, cqe) {
      seen++;
      const uint64_t ud = cqe->user_data;
      assert(UserDataValid(ud));
      if (UserDataKind(ud) == CqeKind::kWakeup) {
        wakeup = true;
        continue;
      }
      const uint16_t tag = UserDataTag(ud);
      assert(tag < cfg_.depth);
      Tag& t = tags_[tag];
      assert(t.state == TagState::kInKernel && "a CQE for a tag the kernel does not hold");
      if (cqe->res == kIoResOk) {
        t.state = TagState::kServing;
        serving++;
        fetched_ns_[tag] = reaped_ns;
        std::lock_guard<std::mutex> lock(mu_);
        assert(pending_.size() < cfg_.depth);
        pending_.push_back(tag);
        fetched++;
      } else {
        // UBLK_IO_RES_ABORT: the device is stopping or going away; anything else is a
        // server bug the kernel refused (logged) — in both cases the kernel no longer holds
        // the tag and will not give it back.
        if (cqe->res != kIoResAbort) {
          fprintf(stderr, "astrafs-ublk: queue %u tag %u: io command failed: %s\n",
                  cfg_.queue_id, tag, strerror(-cqe->res));
        }
        t.state = TagState::kGone;
        gone++;
      }
    }
    io_uring_cq_advance(ring_.get(), seen);
    // Workers are woken once per reap, so the first one finds every request fetched in it
    // (reads are then served as one batch).
    if (fetched == 1) work_cv_.notify_one();
    if (fetched > 1) work_cv_.notify_all();
    if (wakeup) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        const uint64_t now = MonotonicNs();  // after every served_ns_ of done_ (under mu_)
        for (uint16_t tag : done_) {
          stats_.complete_ns.fetch_add(now - served_ns_[tag], std::memory_order_relaxed);
          assert(tags_[tag].state == TagState::kServing);
          tags_[tag].state = TagState::kDone;
          assert(serving > 0);
          serving--;
          PrepIoCmd(IoCmd::kCommitAndFetchReq, tag, results_[tag]);
        }
        done_.clear();
      }
      PrepWakeupRead();
    }
  }
  io_uring_queue_exit(ring_.get());  // cancels the fetches still held by the kernel
  ring_.reset();
  munmap(const_cast<ublksrv_io_desc*>(descs_), descs_bytes_);
  descs_ = nullptr;
}

BlockOp UblkQueue::TagOp(uint16_t tag) const {
  return static_cast<BlockOp>(ublksrv_get_op(&descs_[tag]));
}

void UblkQueue::WorkerThread() {
  std::vector<uint16_t> batch;  // a batch of READs, or of WRITEs (op)
  batch.reserve(kBatchMax);
  for (;;) {
    uint16_t tag;
    BlockOp op;
    batch.clear();
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stop_workers_ || !pending_.empty(); });
      if (pending_.empty()) return;
      tag = pending_.front();
      op = TagOp(tag);
      if (op == BlockOp::kRead || op == BlockOp::kWrite) {
        // Every pending request of the front one's kind (READ or WRITE), up to the batch limit,
        // in fetch order; the rest stay pending. Requests the kernel has in flight together
        // carry no order among themselves.
        size_t kept = 0;
        for (size_t i = 0; i < pending_.size(); i++) {
          if (batch.size() < kBatchMax && TagOp(pending_[i]) == op) {
            batch.push_back(pending_[i]);
          } else {
            pending_[kept++] = pending_[i];
          }
        }
        pending_.resize(kept);
        if (!pending_.empty()) work_cv_.notify_one();  // other kinds behind them: another worker
      } else {
        pending_.erase(pending_.begin());  // depth is small; a deque would allocate
      }
    }
    if (batch.empty()) {
      ServeTag(tag);
      served_ns_[tag] = MonotonicNs();
    } else {
      ServeBatchTags(batch, op);
      const uint64_t now = MonotonicNs();
      for (uint16_t t : batch) served_ns_[t] = now;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (batch.empty()) {
        assert(done_.size() < cfg_.depth);
        done_.push_back(tag);
      } else {
        assert(done_.size() + batch.size() <= cfg_.depth);
        done_.insert(done_.end(), batch.begin(), batch.end());
      }
    }
    uint64_t one = 1;
    ssize_t n = write(wake_fd_, &one, sizeof(one));
    (void)n;
  }
}

void UblkQueue::ServeBatchTags(const std::vector<uint16_t>& tags, BlockOp op) {
  assert(op == BlockOp::kRead || op == BlockOp::kWrite);
  if (tags.size() == 1) return ServeTag(tags[0]);
  const bool read = op == BlockOp::kRead;
  const uint64_t t0 = MonotonicNs();
  std::vector<BlockRequest> reqs(tags.size());
  std::vector<uint8_t*> bufs(tags.size());
  std::vector<int> results(tags.size(), 0);
  // Requests within max_io_bytes (and, for writes, whose data was copied in): the others fail
  // alone.
  std::vector<BlockRequest> valid;
  std::vector<uint8_t*> valid_bufs;
  std::vector<size_t> valid_of;
  for (size_t i = 0; i < tags.size(); i++) {
    const ublksrv_io_desc d = descs_[tags[i]];  // stable while we own the tag
    reqs[i].op = op;
    reqs[i].flags = ublksrv_get_flags(&d);
    reqs[i].offset_bytes = d.start_sector << 9;
    reqs[i].length_bytes = static_cast<uint64_t>(d.nr_sectors) << 9;
    bufs[i] = TagBuffer(tags[i]);
    if (reqs[i].length_bytes > cfg_.max_io_bytes) {
      results[i] = -EINVAL;  // the kernel honours max_sectors; never expected
      continue;
    }
    if (!read && cfg_.user_copy &&
        !CopyAll(false, cfg_.cdev_fd, bufs[i], reqs[i].length_bytes, UserCopyPos(cfg_.queue_id, tags[i], 0))) {
      results[i] = -EIO;
      continue;
    }
    valid.push_back(reqs[i]);
    valid_bufs.push_back(bufs[i]);
    valid_of.push_back(i);
  }
  std::vector<int> vres(valid.size(), 0);
  const uint64_t t1 = MonotonicNs();
  if (!valid.empty()) {
    if (read) target_->ServeReads(valid, valid_bufs.data(), vres.data());
    else target_->ServeWrites(valid, valid_bufs.data(), vres.data());
  }
  const uint64_t t2 = MonotonicNs();
  for (size_t j = 0; j < valid.size(); j++) results[valid_of[j]] = vres[j];
  for (size_t i = 0; i < tags.size(); i++) {
    const uint16_t tag = tags[i];
    int r = results[i];
    if (read && r == 0 && cfg_.user_copy &&
        !CopyAll(true, cfg_.cdev_fd, bufs[i], reqs[i].length_bytes, UserCopyPos(cfg_.queue_id, tag, 0)))
      r = -EIO;
    const int32_t result = r < 0 ? r : static_cast<int32_t>(reqs[i].length_bytes);
    stats_.dispatch_ns.fetch_add(t0 - fetched_ns_[tag], std::memory_order_relaxed);
    stats_.requests.fetch_add(1, std::memory_order_relaxed);
    if (result < 0) stats_.errors.fetch_add(1, std::memory_order_relaxed);
    if (result > 0) (read ? stats_.bytes_read : stats_.bytes_written).fetch_add(result);
    results_[tag] = result;
  }
  // The batch's engine time and copies, added once: the sums stay time spent, so a per-request
  // average (sum / requests) counts a batch's time once for all of its requests.
  stats_.target_ns.fetch_add(t2 - t1, std::memory_order_relaxed);
  stats_.copy_ns.fetch_add((t1 - t0) + (MonotonicNs() - t2), std::memory_order_relaxed);
}

void UblkQueue::ServeTag(uint16_t tag) {
  // The descriptor is stable while we own the tag (until COMMIT_AND_FETCH_REQ).
  const ublksrv_io_desc d = descs_[tag];
  BlockRequest req;
  req.op = static_cast<BlockOp>(ublksrv_get_op(&d));
  req.flags = ublksrv_get_flags(&d);
  req.offset_bytes = d.start_sector << 9;
  req.length_bytes = static_cast<uint64_t>(d.nr_sectors) << 9;
  uint8_t* buf = TagBuffer(tag);
  const bool has_data = req.op == BlockOp::kRead || req.op == BlockOp::kWrite;
  int32_t result;
  const uint64_t t0 = MonotonicNs();
  uint64_t copy_ns = 0, target_ns = 0;
  if (has_data && req.length_bytes > cfg_.max_io_bytes) {
    result = -EINVAL;  // the kernel honours max_sectors; never expected
  } else if (req.op == BlockOp::kWrite && cfg_.user_copy &&
             !CopyAll(false, cfg_.cdev_fd, buf, req.length_bytes,
                      UserCopyPos(cfg_.queue_id, tag, 0))) {
    result = -EIO;
  } else {
    const uint64_t t1 = MonotonicNs();
    int r = target_->Serve(req, buf);
    const uint64_t t2 = MonotonicNs();
    if (r == 0 && req.op == BlockOp::kRead && cfg_.user_copy &&
        !CopyAll(true, cfg_.cdev_fd, buf, req.length_bytes, UserCopyPos(cfg_.queue_id, tag, 0))) {
      r = -EIO;
    }
    copy_ns = (t1 - t0) + (MonotonicNs() - t2);
    target_ns = t2 - t1;
    // READ and WRITE complete with the byte count (a short count makes the kernel requeue).
    result = r < 0 ? r : (has_data ? static_cast<int32_t>(req.length_bytes) : 0);
  }
  stats_.dispatch_ns.fetch_add(t0 - fetched_ns_[tag], std::memory_order_relaxed);
  stats_.copy_ns.fetch_add(copy_ns, std::memory_order_relaxed);
  stats_.target_ns.fetch_add(target_ns, std::memory_order_relaxed);
  stats_.requests.fetch_add(1, std::memory_order_relaxed);
  if (result < 0) stats_.errors.fetch_add(1, std::memory_order_relaxed);
  if (result > 0 && req.op == BlockOp::kRead) stats_.bytes_read.fetch_add(result);
  if (result > 0 && req.op == BlockOp::kWrite) stats_.bytes_written.fetch_add(result);
  results_[tag] = result;
}

}  // namespace astra::ublk
