// FaultyDevice: see astra/faulty_device.h for the fault model.
//
// Every request is served synchronously inside Submit(), under mu_, through the inner device's
// synchronous helpers: requests are atomic with respect to each other and to the fault controls,
// and with a fixed seed and a single submitting thread a run is exactly reproducible.
//
// Details the header leaves open:
//  - Checks run in this order: request validation (kInvalidArgument), dead, error rules.
//  - A flush matches every kFlush error rule regardless of its byte range.
//  - "Zeroed" reads return zeros (unflushed writes included); zeroed writes are accepted and lost.
//  - A misdirected write lands `misdirect_offset` bytes away only if that range is aligned and
//    inside the device; otherwise it lands where it was aimed.
//  - With tracking on, a trim of up to kTrimAsWriteBytesMax becomes an unflushed write of zeros;
//    a larger one first applies the unflushed writes to the inner device (as a flush would, minus
//    the inner flush) and then trims the inner device directly.
//  - A torn write lands a prefix of r whole 512-byte sectors, r uniform in [0, sectors); when the
//    inner device's block is larger, the rest of the last block keeps the inner device's bytes.
//  - SetTrackUnflushed(false) and destruction apply unflushed writes to the inner device (a clean
//    shutdown); call PowerLoss() first to simulate a crash.
#include "astra/faulty_device.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <string>

#include "astra/limits.h"

namespace astra {

namespace {

constexpr uint64_t kTrimAsWriteBytesMax = 4u << 20;


// A uniform double in [0, 1) from the top 53 bits: the same on every platform, unlike the
// standard distributions.
double Uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// True with probability p. Consumes no randomness when p <= 0, so a disabled fault does not
// shift the random stream of the others.
bool Chance(std::mt19937_64& rng, double p) {
  if (p <= 0) return false;
  return Uniform(rng) < p;
}

// Uniform in [0, n), n > 0.
uint64_t Below(std::mt19937_64& rng, uint64_t n) {
  assert(n > 0);
  return rng() % n;
}

// Writes the unflushed writes `pending` (FaultyDevice::Pending: offset, data) to `inner` in order
// and erases those that landed; stops at the first error and returns it. A template only because
// Pending is private to FaultyDevice. Requires the FaultyDevice's mu_ held.
template <typename PendingT>
Status ApplyPending(Device& inner, std::vector<PendingT>& pending) {
  size_t applied = 0;
  Status s;
  AlignedBuf buf;
  size_t buf_bytes = 0;
  for (const PendingT& p : pending) {
    if (p.data.size() > buf_bytes) {  // inner devices want kIoAlignBytes-aligned buffers
      buf_bytes = p.data.size();
      buf = AllocAligned(buf_bytes);
    }
    std::memcpy(buf.get(), p.data.data(), p.data.size());
    s = inner.Write(p.offset, buf.get(), static_cast<uint32_t>(p.data.size()));
    if (!s.ok()) break;
    ++applied;
  }
  pending.erase(pending.begin(), pending.begin() + static_cast<ptrdiff_t>(applied));
  return s;
}

}  // namespace

FaultyDevice::FaultyDevice(std::shared_ptr<Device> inner) : inner_(std::move(inner)) {
  assert(inner_ != nullptr);
  info_ = inner_->info();
  info_.backend = "faulty(" + info_.backend + ")";
}

FaultyDevice::~FaultyDevice() {
  std::lock_guard<std::mutex> l(mu_);
  // A clean shutdown: what the volatile layer holds reaches the inner device. Errors are ignored
  // because there is no one left to report them to.
  if (!dead_) ApplyPending(*inner_, pending_).IgnoreError();
}

void FaultyDevice::SetSeed(uint64_t seed) {
  std::lock_guard<std::mutex> l(mu_);
  rng_.seed(seed);
}

void FaultyDevice::AddErrorRule(const ErrorRule& r) {
  assert(r.begin_bytes <= r.end_bytes);
  std::lock_guard<std::mutex> l(mu_);
  rules_.push_back(r);
}

void FaultyDevice::ClearErrorRules() {
  std::lock_guard<std::mutex> l(mu_);
  rules_.clear();
}

void FaultyDevice::SetDead(bool dead) {
  std::lock_guard<std::mutex> l(mu_);
  dead_ = dead;
}

void FaultyDevice::SetZeroed(bool zeroed) {
  std::lock_guard<std::mutex> l(mu_);
  zeroed_ = zeroed;
}

void FaultyDevice::SetBitRotProbability(double p) {
  std::lock_guard<std::mutex> l(mu_);
  bitrot_p_ = p;
}

void FaultyDevice::SetMisdirectProbability(double p, int64_t misdirect_offset_bytes) {
  std::lock_guard<std::mutex> l(mu_);
  misdirect_p_ = p;
  misdirect_off_ = misdirect_offset_bytes;
}

void FaultyDevice::SetTrackUnflushed(bool on) {
  std::lock_guard<std::mutex> l(mu_);
  if (!on && track_) ApplyPending(*inner_, pending_).IgnoreError();
  track_ = on;
}

void FaultyDevice::PowerLoss(double keep_probability, double tear_probability) {
  std::lock_guard<std::mutex> l(mu_);
  const uint32_t block = inner_->info().logical_block_bytes;
  for (const Pending& p : pending_) {
    const uint64_t len = p.data.size();
    if (!Chance(rng_, keep_probability)) {
      ++stats_.writes_dropped;
      continue;
    }
    uint64_t land = len;
    if (Chance(rng_, tear_probability)) {
      ++stats_.writes_torn;
      land = Below(rng_, len / kSectorBytes) * kSectorBytes;
    }
    if (land == 0) continue;
    // Round up to the inner block; the tail of the last block keeps what the inner device holds.
    const uint64_t whole = (land + block - 1) / block * block;
    AlignedBuf buf = AllocAligned(whole);
    if (whole != land) {
      const uint64_t last = whole - block;
      if (!inner_->Read(p.offset + last, buf.get() + last, block).ok()) continue;
    }
    std::memcpy(buf.get(), p.data.data(), land);
    inner_->Write(p.offset, buf.get(), static_cast<uint32_t>(whole)).IgnoreError();
  }
  pending_.clear();
  dead_ = true;
}

void FaultyDevice::Revive() {
  std::lock_guard<std::mutex> l(mu_);
  dead_ = false;
}

size_t FaultyDevice::UnflushedWrites() const {
  std::lock_guard<std::mutex> l(mu_);
  return pending_.size();
}

FaultStats FaultyDevice::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

void FaultyDevice::Submit(IoRequest* const* reqs, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    IoRequest* r = reqs[i];
    assert(r != nullptr && r->waiter != nullptr);
    {
      std::lock_guard<std::mutex> l(mu_);
      Serve(r);
    }
    r->waiter->Done();  // Outside mu_; last touch of *r.
  }
}

bool FaultyDevice::RuleFires(IoOp op, uint64_t off, uint64_t len) {
  for (const ErrorRule& rule : rules_) {
    if (rule.op != op) continue;
    const bool overlaps =
        op == IoOp::kFlush || (off < rule.end_bytes && rule.begin_bytes < off + len);
    if (overlaps && Chance(rng_, rule.probability)) return true;
  }
  return false;
}

void FaultyDevice::Serve(IoRequest* r) {
  switch (r->op) {
    case IoOp::kRead:
      ++stats_.reads;
      break;
    case IoOp::kWrite:
      ++stats_.writes;
      break;
    case IoOp::kFlush:
      ++stats_.flushes;
      break;
    case IoOp::kTrim:
      ++stats_.trims;
      break;
  }
  r->status = CheckRequest(info_, *r);
  if (!r->status.ok()) return;
  const uint64_t off = r->offset_bytes;
  const uint32_t len = r->length_bytes;
  auto* buf = static_cast<uint8_t*>(r->buf);
  if (dead_) {
    r->status = Status::IOError(info_.path + ": " + IoOpName(r->op) + ": device is dead (injected)");
    return;
  }
  if (RuleFires(r->op, off, len)) {
    ++stats_.injected_errors;
    r->status =
        Status::IOError(info_.path + ": " + IoOpName(r->op) + " at offset " + std::to_string(off) +
                        " length " + std::to_string(len) + ": injected I/O error");
    return;
  }
  switch (r->op) {
    case IoOp::kRead: {
      if (zeroed_) {
        std::memset(buf, 0, len);
        return;
      }
      r->status = inner_->Read(off, buf, len);
      if (!r->status.ok()) return;
      for (const Pending& p : pending_) {  // in order: later writes win
        const uint64_t b = std::max(off, p.offset);
        const uint64_t e = std::min(off + len, p.offset + p.data.size());
        if (b < e) std::memcpy(buf + (b - off), p.data.data() + (b - p.offset), e - b);
      }
      if (Chance(rng_, bitrot_p_)) {
        const uint64_t bit = Below(rng_, uint64_t{len} * 8);
        buf[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
        ++stats_.bitrot_flips;
      }
      return;
    }
    case IoOp::kWrite: {
      if (zeroed_) return;
      uint64_t target = off;
      if (misdirect_off_ != 0 && Chance(rng_, misdirect_p_)) {
        const int64_t moved = static_cast<int64_t>(off) + misdirect_off_;
        const uint64_t block = info_.logical_block_bytes;
        if (moved >= 0 && static_cast<uint64_t>(moved) % block == 0 &&
            static_cast<uint64_t>(moved) <= info_.size_bytes - len) {
          target = static_cast<uint64_t>(moved);
          ++stats_.misdirected;
        }
      }
      if (track_) {
        pending_.push_back(Pending{target, std::vector<uint8_t>(buf, buf + len)});
      } else {
        r->status = inner_->Write(target, buf, len);
      }
      return;
    }
    case IoOp::kFlush:
      if (track_) {
        r->status = ApplyPending(*inner_, pending_);
        if (!r->status.ok()) return;
      }
      r->status = inner_->Flush();
      return;
    case IoOp::kTrim:
      if (track_ && len <= kTrimAsWriteBytesMax) {
        pending_.push_back(Pending{off, std::vector<uint8_t>(len, 0)});
        return;
      }
      if (track_) {
        r->status = ApplyPending(*inner_, pending_);
        if (!r->status.ok()) return;
      }
      r->status = inner_->Trim(off, len);
      return;
  }
}

}  // namespace astra
