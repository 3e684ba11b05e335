#include "readahead.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "astra/limits.h"

namespace astra {

Readahead::Readahead(FillFn fill, uint32_t window_blocks, uint32_t windows_ahead, uint32_t workers)
    : fill_(std::move(fill)),
      window_blocks_(std::clamp<uint32_t>(window_blocks, 1, kBlocksPerIoMax)),
      windows_ahead_(std::max<uint32_t>(windows_ahead, 1)) {
  streams_.reserve(kStreamsMax);
  for (uint32_t i = 0; i < std::max<uint32_t>(workers, 1); i++) workers_.emplace_back([this] { Worker(); });
}

Readahead::~Readahead() { Stop(); }

void Readahead::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stop_) return;
    stop_ = true;
    for (auto& s : streams_)
      for (auto& w : s.windows) DropWindowLocked(w);
    streams_.clear();
    queue_.clear();
  }
  work_cv_.notify_all();
  done_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

ReadaheadStats Readahead::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  ReadaheadStats st = stats_;
  st.pending_windows = uint32_t(queue_.size()) + filling_;
  return st;
}

Readahead::Stream* Readahead::FindStreamLocked(uint64_t obj, uint64_t block) {
  for (auto& s : streams_)
    if (s.obj == obj && s.next == block) return &s;
  return nullptr;
}

void Readahead::DropWindowLocked(const std::shared_ptr<Window>& w) {
  if (w->cancelled) return;
  w->cancelled = true;
  if (w->state == State::kQueued) {
    auto it = std::find(queue_.begin(), queue_.end(), w);
    if (it != queue_.end()) queue_.erase(it);
  }
  if (w->state == State::kReady) {
    stats_.dropped_blocks += w->count - w->served;
    w->buf.reset();
  }
  // kFilling: the worker still writes into buf; it frees it when the fill returns.
}

bool Readahead::TryRead(uint64_t obj, uint64_t block, uint32_t count, uint8_t* out) {
  if (count == 0) return false;
  std::unique_lock<std::mutex> l(mu_);
  if (stop_) return false;
  const uint64_t end = block + count;
  bool hit = false;
  if (Stream* s = FindStreamLocked(obj, block)) {
    // Sequential: serve from the stream's windows if they hold every block.
    std::vector<std::shared_ptr<Window>> use;
    uint64_t b = block;
    for (const auto& w : s->windows) {
      if (b >= end) break;
      if (w->first <= b && b < w->first + w->count) {
        use.push_back(w);
        b = std::min<uint64_t>(end, w->first + w->count);
      }
    }
    hit = b >= end;
    for (const auto& w : use) {
      if (!hit) break;
      // A queued window would be read no sooner by a worker than by the caller itself.
      if (w->state == State::kQueued) hit = false;
      else if (w->state == State::kFilling)
        done_cv_.wait(l, [&] { return stop_ || w->cancelled || w->state != State::kFilling; });
      if (!hit || stop_ || w->cancelled || w->state != State::kReady ||
          w->epoch != epoch(obj).load(std::memory_order_acquire))
        hit = false;
    }
    if (hit) {
      b = block;
      for (const auto& w : use) {
        uint64_t n = std::min<uint64_t>(end, w->first + w->count) - b;
        std::memcpy(out + (b - block) * kBlockBytes, w->buf.get() + (b - w->first) * kBlockBytes, n * kBlockBytes);
        w->served += uint32_t(n);
        b += n;
      }
      stats_.hit_blocks += count;
    }
    if (stop_) return hit;
  }
  // Record the access. The stream may have changed while this thread waited: look it up again.
  clock_++;
  Stream* s = FindStreamLocked(obj, block);
  const bool sequential = s != nullptr;
  if (!s) {
    if (streams_.size() < kStreamsMax) {
      s = &streams_.emplace_back();
    } else {
      s = &*std::min_element(streams_.begin(), streams_.end(),
                             [](const Stream& a, const Stream& b) { return a.last_use < b.last_use; });
      for (auto& w : s->windows) DropWindowLocked(w);
      s->windows.clear();
    }
    s->obj = obj;
    s->frontier = end;
    s->run = 0;
  } else {
    s->run++;
  }
  s->next = end;
  s->last_use = clock_;
  // Windows wholly behind the reader are done with; stale ones would only be missed.
  const uint64_t cur = epoch(obj).load(std::memory_order_acquire);
  auto& ws = s->windows;
  for (auto it = ws.begin(); it != ws.end();) {
    Window& w = **it;
    bool stale = w.state == State::kReady && w.epoch != cur;
    if (w.first + w.count <= end || stale || w.state == State::kFailed) {
      DropWindowLocked(*it);
      it = ws.erase(it);
    } else {
      ++it;
    }
  }
  if (!sequential || s->run < kRunToPrefetch) return hit;
  // Keep windows_ahead_ windows queued or filled ahead of the reader (re-fetching from where
  // a dropped stale window was).
  uint64_t frontier = end;
  for (const auto& w : ws) frontier = std::max<uint64_t>(frontier, w->first + w->count);
  if (ws.empty()) frontier = end;
  s->frontier = frontier;
  const uint64_t target = end + uint64_t(windows_ahead_) * window_blocks_;
  bool queued = false;
  while (s->frontier < target && ws.size() < windows_ahead_ + 1) {
    auto w = std::make_shared<Window>();
    w->obj = obj;
    w->first = s->frontier;
    w->count = window_blocks_;
    s->frontier += window_blocks_;
    ws.push_back(w);
    queue_.push_back(std::move(w));
    queued = true;
  }
  if (queued) work_cv_.notify_all();
  return hit;
}

void Readahead::Worker() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    work_cv_.wait(l, [&] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    std::shared_ptr<Window> w = std::move(queue_.front());
    queue_.pop_front();
    if (w->cancelled) continue;
    w->state = State::kFilling;
    // Before the fill looks anything up: a mutation applied after that lookup bumps the epoch
    // past this value (see the header).
    w->epoch = epoch(w->obj).load(std::memory_order_acquire);
    w->buf = AllocAligned(uint64_t(w->count) * kBlockBytes);
    filling_++;
    l.unlock();
    Status s = fill_(w->obj, w->first, w->count, w->buf.get());
    l.lock();
    filling_--;
    w->state = s.ok() ? State::kReady : State::kFailed;
    stats_.filled_blocks += w->count;
    if (w->cancelled || !s.ok()) {
      if (s.ok()) stats_.dropped_blocks += w->count;
      w->buf.reset();
    }
    done_cv_.notify_all();
  }
}

}  // namespace astra
