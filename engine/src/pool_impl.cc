#include "pool_impl.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstring>
#include <map>
#include <set>

#include "crc.h"
#include "journal.h"

namespace astra {

namespace {

constexpr uint32_t kRootMagic = 0x544F4F52;  // "ROOT"
constexpr uint64_t kBackgroundFlushMs = 5000;

// One zstd context pair per thread (compression outside the writer lock, decompression on every
// read path); `level` is the pool's compression level.
BlockCodec& ThreadCodec(int level = 1) {
  thread_local BlockCodec codec(1);
  codec.SetLevel(level);
  return codec;
}

// The largest stored extent: a whole compression frame.
constexpr uint32_t kStoredBytesMax = kFrameBlocksMax * kBlockBytes;

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
uint64_t AlignDown(uint64_t v, uint64_t a) { return v / a * a; }

std::string MemberName(uint32_t i, const Device* d) {
  return "member " + std::to_string(i) + (d ? " (" + d->info().path + ")" : "");
}

// Reads both superblock copies; returns the valid one with the highest generation.
Status ReadBestSuperblock(Device& dev, Superblock* out, bool valid[2]) {
  AlignedBuf buf = AllocAligned(kSuperblockBytes);
  Status first_err;
  bool found = false;
  const uint64_t offs[2] = {kSuperblockAOffset, kSuperblockBOffset};
  for (int c = 0; c < 2; c++) {
    valid[c] = false;
    if (offs[c] + kSuperblockBytes > dev.info().size_bytes) continue;
    Status s = dev.Read(offs[c], buf.get(), kSuperblockBytes);
    Superblock sb;
    if (s.ok()) s = DecodeSuperblock(buf.get(), &sb);
    if (!s.ok()) {
      if (first_err.ok()) first_err = s.Annotate(c == 0 ? "superblock A" : "superblock B");
      continue;
    }
    valid[c] = true;
    if (!found || sb.generation > out->generation) *out = sb;
    found = true;
  }
  if (!found) return first_err.ok() ? Status::Corruption("device too small for a superblock") : first_err;
  return Status::Ok();
}

}  // namespace

const char* MemberStateName(MemberState s) {
  switch (s) {
    case MemberState::kOnline: return "online";
    case MemberState::kMissing: return "missing";
    case MemberState::kFailed: return "failed";
    case MemberState::kRebuilding: return "rebuilding";
  }
  return "unknown";
}

Result<MemberIdentity> ProbeMember(Device& dev) {
  Superblock sb;
  bool valid[2];
  ASTRA_RETURN_IF_ERROR(ReadBestSuperblock(dev, &sb, valid));
  MemberIdentity id;
  id.pool_uuid = UuidToString(sb.pool_uuid);
  id.member_index = sb.member_index;
  id.members = sb.members;
  id.generation = sb.generation;
  return id;
}

// ============================================================================================
// Format
// ============================================================================================

Status Pool::Format(std::vector<std::unique_ptr<Device>>& members, const FormatOptions& o) {
  const uint32_t n = uint32_t(members.size());
  if (n == 0) return Status::InvalidArgument("no member devices given");
  if (o.data_shards < 1 || o.data_shards > kDataShardsMax)
    return Status::InvalidArgument("--data-shards must be between 1 and 16");
  if (o.parity_shards > kParityShardsMax)
    return Status::InvalidArgument("--parity-shards must be between 0 and 4");
  if (o.data_shards + o.parity_shards > n)
    return Status::InvalidArgument("k+m = " + std::to_string(o.data_shards + o.parity_shards) +
                                   " is larger than the number of members (" + std::to_string(n) + ")");
  if (n > kMembersMax) return Status::InvalidArgument("at most 64 members");
  if (o.compression_level < 1 || o.compression_level > 19)
    return Status::InvalidArgument("compression level must be 1..19");
  uint64_t min_size = UINT64_MAX;
  for (uint32_t i = 0; i < n; i++) {
    if (!members[i]) return Status::InvalidArgument("member " + std::to_string(i) + " is missing");
    min_size = std::min(min_size, members[i]->info().size_bytes);
    if (!o.force) {
      auto id = ProbeMember(*members[i]);
      if (id.ok())
        return Status::Exists(members[i]->info().path + " already holds AstraFS pool " + id->pool_uuid +
                              " (member " + std::to_string(id->member_index) + "); use --force to overwrite");
    }
  }
  Superblock sb;
  sb.pool_uuid = NewUuid();
  sb.members = n;
  sb.data_shards = o.data_shards;
  sb.parity_shards = o.parity_shards;
  sb.chunk_bytes = o.chunk_bytes;
  sb.segment_column_bytes = o.segment_column_bytes;
  sb.member_size_bytes = AlignDown(min_size, kBlockBytes);
  uint64_t jb = o.journal_bytes;
  if (jb == 0) jb = std::clamp<uint64_t>(AlignDown(min_size / 32, kBlockBytes), 4ull << 20, 64ull << 20);
  if (jb > min_size / 4) jb = std::max<uint64_t>(kJournalBytesMin, AlignDown(min_size / 8, kBlockBytes));
  sb.journal_bytes = AlignDown(jb, kBlockBytes);
  sb.data_offset_bytes = AlignUp(kJournalOffset + sb.journal_bytes, 1u << 20);
  const uint32_t w = o.data_shards + o.parity_shards;
  uint64_t slots = sb.member_size_bytes > sb.data_offset_bytes
                       ? (sb.member_size_bytes - sb.data_offset_bytes) / sb.segment_column_bytes : 0;
  sb.segments = (slots / w) * n;
  if (sb.chunk_bytes < kChunkBytesMin || sb.chunk_bytes > kChunkBytesMax || sb.chunk_bytes % kBlockBytes)
    return Status::InvalidArgument("chunk size must be a multiple of 4 KiB between 4 KiB and 1 MiB");
  if (sb.segment_column_bytes % sb.chunk_bytes || sb.segment_column_bytes < kSegmentColumnBytesMin)
    return Status::InvalidArgument("segment column size must be a multiple of the chunk size, at least 64 KiB");
  const uint64_t need_segments = 8;
  if (sb.segments < need_segments) {
    uint64_t need = sb.data_offset_bytes + AlignUp(need_segments, n) / n * w * sb.segment_column_bytes;
    return Status::InvalidArgument("members are too small: the smallest has " + std::to_string(min_size) +
                                   " bytes, a pool of this geometry needs at least " + std::to_string(need) +
                                   " bytes per member");
  }
  sb.generation = 1;
  sb.checkpoint_root.segment = kNoSegment;
  sb.journal_head_offset = 0;
  sb.journal_head_seq = 1;
  sb.compression = uint8_t(o.compression);
  sb.compression_level = uint8_t(o.compression_level);
  sb.dedup = o.dedup ? 1 : 0;
  sb.created_unix_ns = uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                    std::chrono::system_clock::now().time_since_epoch()).count());
  for (uint32_t i = 0; i < n; i++) sb.member_uuids[i] = NewUuid();
  ASTRA_RETURN_IF_ERROR(ValidateGeometry(sb));

  AlignedBuf buf = AllocAligned(kSuperblockBytes);
  AlignedBuf zero = AllocAligned(1u << 20);
  std::memset(zero.get(), 0, 1u << 20);
  for (uint32_t i = 0; i < n; i++) {
    Device& d = *members[i];
    // Invalidate old superblocks and the journal start first, so a half-formatted member is
    // never mistaken for a member of the previous pool.
    ASTRA_RETURN_IF_ERROR(d.Write(kSuperblockAOffset, zero.get(), kSuperblockBytes).Annotate(d.info().path));
    ASTRA_RETURN_IF_ERROR(d.Write(kSuperblockBOffset, zero.get(), kSuperblockBytes).Annotate(d.info().path));
    ASTRA_RETURN_IF_ERROR(d.Write(kJournalOffset, zero.get(), 1u << 20).Annotate(d.info().path));
  }
  for (uint32_t i = 0; i < n; i++) ASTRA_RETURN_IF_ERROR(members[i]->Flush().Annotate(members[i]->info().path));
  for (uint64_t off : {kSuperblockAOffset, kSuperblockBOffset}) {
    for (uint32_t i = 0; i < n; i++) {
      Superblock m = sb;
      m.member_index = i;
      m.member_uuid = sb.member_uuids[i];
      EncodeSuperblock(m, buf.get());
      ASTRA_RETURN_IF_ERROR(members[i]->Write(off, buf.get(), kSuperblockBytes).Annotate(members[i]->info().path));
    }
    for (uint32_t i = 0; i < n; i++) ASTRA_RETURN_IF_ERROR(members[i]->Flush().Annotate(members[i]->info().path));
  }
  return Status::Ok();
}

// ============================================================================================
// Open / close
// ============================================================================================

Result<std::unique_ptr<Pool>> Pool::Open(std::vector<std::unique_ptr<Device>> members, const OpenOptions& opts) {
  auto p = std::make_unique<PoolImpl>();
  Status s = p->OpenImpl(std::move(members), opts);
  if (!s.ok()) return s;
  return std::unique_ptr<Pool>(std::move(p));
}

PoolImpl::PoolImpl() = default;

PoolImpl::~PoolImpl() {
  if (!closed_) Close().IgnoreError();
}

Status PoolImpl::OpenImpl(std::vector<std::unique_ptr<Device>> devs, const OpenOptions& opts) {
  opts_ = opts;
  if (opts.read_only) read_only_ = true;
  // 1. Superblocks: every given device must be a member of one and the same pool.
  struct Found { std::unique_ptr<Device> dev; Superblock sb; bool valid[2]; };
  std::vector<Found> found;
  std::vector<std::string> unknown;
  for (auto& d : devs) {
    if (!d) continue;
    Found f;
    Status s = ReadBestSuperblock(*d, &f.sb, f.valid);
    if (!s.ok()) {
      // Maybe a member whose superblocks were both destroyed: it counts as missing below.
      unknown.push_back(d->info().path + " (" + s.ToString() + ")");
      continue;
    }
    f.dev = std::move(d);
    found.push_back(std::move(f));
  }
  if (found.empty())
    return Status::InvalidArgument(unknown.empty() ? "no member devices given"
                                                   : unknown[0].substr(0, unknown[0].find(' ')) +
                                                         " is not an AstraFS pool member" + unknown[0].substr(unknown[0].find(' ')));
  size_t best = 0;
  for (size_t i = 1; i < found.size(); i++)
    if (found[i].sb.generation > found[best].sb.generation) best = i;
  sb_ = found[best].sb;
  for (auto& f : found) {
    if (f.sb.pool_uuid != sb_.pool_uuid)
      return Status::InvalidArgument("members of different pools: " + f.dev->info().path + " belongs to pool " +
                                     UuidToString(f.sb.pool_uuid) + ", " + found[best].dev->info().path +
                                     " to pool " + UuidToString(sb_.pool_uuid));
  }
  n_ = sb_.members;
  k_ = sb_.data_shards;
  m_ = sb_.parity_shards;
  w_ = k_ + m_;
  chunk_ = sb_.chunk_bytes;
  std::memcpy(&pool_tag_, sb_.pool_uuid.data(), 8);
  place_ = Placement{n_, w_, sb_.data_offset_bytes, sb_.segment_column_bytes};
  members_.clear();
  for (uint32_t i = 0; i < n_; i++) {
    members_.push_back(std::make_unique<Member>());
    members_[i]->uuid = sb_.member_uuids[i];
  }
  for (auto& f : found) {
    uint32_t i = f.sb.member_index;
    if (i >= n_ || f.sb.member_uuid != sb_.member_uuids[i])
      return Status::InvalidArgument(f.dev->info().path + " is not a current member of pool " +
                                     UuidToString(sb_.pool_uuid) + " (replaced or stale)");
    if (members_[i]->dev)
      return Status::InvalidArgument("member " + std::to_string(i) + " given twice: " +
                                     members_[i]->dev->info().path + " and " + f.dev->info().path);
    if (f.dev->info().size_bytes < sb_.member_size_bytes)
      return Status::InvalidArgument(f.dev->info().path + " is smaller than the pool's member size");
    members_[i]->sb_valid[0] = f.valid[0];
    members_[i]->sb_valid[1] = f.valid[1];
    members_[i]->dev = std::move(f.dev);
    members_[i]->state = MemberState::kOnline;
    if (sb_.failed_members >> i & 1) members_[i]->state = MemberState::kFailed;
    else if (sb_.rebuilding_members >> i & 1) members_[i]->state = MemberState::kRebuilding;
  }
  uint32_t unavailable = 0;
  std::string missing_names;
  for (uint32_t i = 0; i < n_; i++) {
    if (members_[i]->state != MemberState::kOnline) {
      unavailable++;
      missing_names += (missing_names.empty() ? "" : ", ") + std::to_string(i) + " (" +
                       MemberStateName(members_[i]->state) + ")";
    }
  }
  for (auto& u : unknown) spdlog::warn("{}: no valid AstraFS superblock; not used as a member", u);
  if ((unavailable > m_ || unavailable == 0) && !unknown.empty())
    return Status::InvalidArgument(unknown[0].substr(0, unknown[0].find(' ')) + " is not an AstraFS pool member" +
                                   unknown[0].substr(unknown[0].find(' ')) + ", and without it pool " +
                                   UuidToString(sb_.pool_uuid) + " lacks " + std::to_string(unavailable) + " members");
  if (unavailable > m_)
    return Status::InvalidArgument("pool " + UuidToString(sb_.pool_uuid) + " has " + std::to_string(unavailable) +
                                   " members unavailable (" + missing_names + "), but survives only " +
                                   std::to_string(m_) + "; give the missing member devices");
  if (unavailable > 0)
    spdlog::warn("pool {} is degraded: members unavailable: {}", UuidToString(sb_.pool_uuid), missing_names);

  ec_ = std::make_unique<ErasureCode>(k_, m_);
  codec_ = std::make_unique<BlockCodec>(sb_.compression_level ? sb_.compression_level : 1);
  {
    // A frame stores at most 7/8 of its input, so a unit of <= 2 stripes' data spans at most 3
    // stripes: Reconstruct's search over erasure sets stays small.
    const uint64_t by_stripes = std::max<uint64_t>(1, 2 * StripeDataBytes() / kBlockBytes);
    uint32_t unit = opts.compression_unit_blocks ? opts.compression_unit_blocks : kFrameBlocksMax;
    if (unit > kFrameBlocksMax) return Status::InvalidArgument("compression unit above 8 blocks");
    frame_blocks_ = uint32_t(std::min<uint64_t>(unit, by_stripes));
  }
  state_.Init(sb_.segments, sb_.dedup != 0, sb_.segments * SegmentDataBytes());
  stale_.assign(sb_.segments, 0);
  for (uint32_t i = 0; i < n_; i++)
    if (members_[i]->state != MemberState::kOnline)
      for (auto& s : stale_) s |= 1ull << i;
  batch_rows_ = std::max<uint32_t>(1, std::min<uint32_t>(StripesPerSegment(), (256u * 1024) / chunk_));
  // The buffer keeps keep_rows_ written stripes before the write pointer (an extent straddling
  // it starts there: up to a whole frame back), a batch, and room for one more extent.
  keep_rows_ = uint32_t((kStoredBytesMax + StripeDataBytes() - 1) / StripeDataBytes());
  // Room for: keep_rows_ before disk_pos, every batch in flight, the batch being filled, and
  // one more extent (AppendLocked completes batches early if it ever runs short).
  ring_rows_ = (kStripeBatchesInFlight + 1) * batch_rows_ + 2 * keep_rows_ + 1;
  for (auto& st : streams_) st.buf = AllocAligned(RingBytes());
  sealed_at_.assign(sb_.segments, 0);
  for (auto& b : batches_) {
    b = std::make_unique<StripeBatch>();
    for (uint32_t c = 0; c < w_; c++) b->cols.push_back(AllocAligned(uint64_t(batch_rows_) * chunk_));
    b->reqs.resize(w_);
    b->member_of.assign(w_, UINT32_MAX);
  }
  {
    // Every data-path device write comes from a stream's ring (data columns) or a StripeBatch's
    // column buffers (parity, checkpoint rows): register them with each member as fixed buffers
    // (io_uring; no page pinning per I/O). An optimisation only: a member that cannot take them
    // (old kernel, RLIMIT_MEMLOCK) uses plain buffers.
    std::vector<iovec> iov;
    for (auto& st : streams_) iov.push_back(iovec{st.buf.get(), size_t(RingBytes())});
    for (auto& b : batches_)
      for (auto& col : b->cols) iov.push_back(iovec{col.get(), size_t(batch_rows_) * chunk_});
    for (auto& mb : members_) {
      if (!mb->dev) continue;
      Status rs = mb->dev->RegisterBuffers(iov);
      if (!rs.ok()) spdlog::info("{}: I/O buffers not registered (plain ones used): {}", mb->dev->info().path, rs.ToString());
    }
  }

  // 2. Checkpoint, 3. journal replay.
  ASTRA_RETURN_IF_ERROR(LoadCheckpoint());
  uint64_t end_off = 0, next_seq = 0, batches = 0;
  ASTRA_RETURN_IF_ERROR(ReplayJournal(&end_off, &next_seq, &batches));
  journal_head_ = sb_.journal_head_offset;
  journal_pos_ = end_off;
  next_seq_ = next_seq;
  journal_used_ = (journal_pos_ + sb_.journal_bytes - journal_head_) % sb_.journal_bytes;
  spdlog::debug("pool {}: checkpoint seq {}, replayed {} journal batches", UuidToString(sb_.pool_uuid),
                sb_.journal_head_seq, batches);

  // 4. Segments left open by the previous run are sealed at their durable write pointer.
  for (uint32_t s = 0; s < state_.segments(); s++) {
    if (state_.seg(s).state == SegState::kOpen) {
      Encoder e;
      MetaState::RecSegSeal(&e, s);
      Status st = state_.Apply(e.buf().data(), e.size());
      assert(st.ok());
      st.IgnoreError();
    }
  }
  // Rebuilding members: every segment in use is stale on them until rebuilt (the rebuild restarts).
  for (uint32_t i = 0; i < n_; i++)
    if (members_[i]->state == MemberState::kRebuilding)
      for (auto& s : stale_) s |= 1ull << i;

  closed_ = false;
  if (!read_only_) {
    // A fresh checkpoint makes the journal empty again on every member, and records member state.
    std::lock_guard<std::mutex> l(write_mu_);
    for (uint32_t i = 0; i < n_; i++)
      if (members_[i]->state == MemberState::kMissing) sb_.failed_members |= 1ull << i;
    Status s = CheckpointLocked();
    if (!s.ok()) {
      closed_ = true;
      return s.Annotate("initial checkpoint");
    }
    if (opts_.background_checkpoints) bg_ = std::thread([this] { BackgroundLoop(); });
  }
  if (opts_.readahead_bytes >= kBlockBytes) {
    const uint64_t window = std::min<uint64_t>(opts_.readahead_bytes, uint64_t(kBlocksPerIoMax) * kBlockBytes);
    readahead_ = std::make_unique<Readahead>(
        [this](uint64_t obj, uint64_t block, uint32_t count, uint8_t* buf) { return ReadDirect(obj, block, count, buf); },
        uint32_t(window / kBlockBytes), uint32_t(std::max<uint64_t>(1, opts_.readahead_bytes / window)),
        kReadaheadWorkers);
  }
  return Status::Ok();
}

Status PoolImpl::Close() {
  if (readahead_) readahead_->Stop();  // its fills read through the members
  {
    std::lock_guard<std::mutex> l(bg_mu_);
    bg_stop_ = true;
  }
  bg_cv_.notify_all();
  if (bg_.joinable()) bg_.join();
  Status s;
  {
    std::lock_guard<std::mutex> l(write_mu_);
    if (closed_) return Status::Ok();
    if (!read_only_ && fatal_.ok()) s = CheckpointLocked();
    // Nothing may stay in flight into buffers about to be freed (a failed checkpoint, a
    // read-only pool).
    Status d = DrainWritesLocked();
    if (s.ok() && !read_only_) s = d;
    closed_ = true;
  }
  for (auto& m : members_) m->dev.reset();
  return s;
}

void PoolImpl::BackgroundLoop() {
  std::unique_lock<std::mutex> l(bg_mu_);
  while (!bg_stop_) {
    bg_cv_.wait_for(l, std::chrono::milliseconds(kBackgroundFlushMs));
    if (bg_stop_) break;
    l.unlock();
    Status s = Flush();
    if (!s.ok()) spdlog::error("background flush: {}", s.ToString());
    {
      // Background cleaning, a bounded share: at most a few segments per tick, and only when
      // free space runs below a quarter of the pool.
      std::lock_guard<std::mutex> wl(write_mu_);
      if (s.ok() && !read_only_ && !closed_ && state_.free_segments().size() < state_.segments() / 4) {
        Status c = CleanUntilLocked(state_.segments() / 4, kBackgroundCleanSegmentsMax, nullptr);
        if (!c.ok() && !c.IsNoSpace()) spdlog::error("background cleaning: {}", c.ToString());
      }
    }
    l.lock();
  }
}

// ============================================================================================
// Members and geometry
// ============================================================================================

bool PoolImpl::ColumnReadable(uint32_t seg, uint32_t member) const {
  const Member& m = *members_[member];
  if (!m.dev) return false;
  if (m.state != MemberState::kOnline && m.state != MemberState::kRebuilding) return false;
  return !(stale_[seg] >> member & 1);
}

bool PoolImpl::MemberWritable(uint32_t member) const {
  const Member& m = *members_[member];
  return m.dev && (m.state == MemberState::kOnline || m.state == MemberState::kRebuilding);
}

uint32_t PoolImpl::UnavailableMembers() const {
  uint32_t n = 0;
  for (auto& m : members_) if (m->state != MemberState::kOnline) n++;
  return n;
}

Status PoolImpl::CheckWritable() const {
  if (closed_) return Status::InvalidArgument("pool is closed");
  if (read_only_) return fatal_.ok() ? Status::ReadOnly("pool is open read-only") : Status::ReadOnly(fatal_.ToString());
  return Status::Ok();
}

Status PoolImpl::FailMemberLocked(uint32_t index, const Status& why) {
  Member& m = *members_[index];
  if (m.state == MemberState::kFailed) return Status::Ok();
  spdlog::error("{} failed: {}", MemberName(index, m.dev.get()), why.ToString());
  m.state = MemberState::kFailed;
  sb_.failed_members |= 1ull << index;
  sb_.rebuilding_members &= ~(1ull << index);
  for (auto& s : stale_) s |= 1ull << index;
  if (UnavailableMembers() > m_) {
    fatal_ = Status::IOError("more than " + std::to_string(m_) + " members failed; pool is read-only");
    read_only_ = true;
    return fatal_;
  }
  // Record the failure so the member is not trusted again without a rebuild.
  return WriteSuperblocksLocked();
}

Status PoolImpl::FailMember(uint32_t index) {
  if (index >= n_) return Status::InvalidArgument("no member " + std::to_string(index));
  std::lock_guard<std::mutex> l(write_mu_);
  return FailMemberLocked(index, Status::IOError("failed by administrator"));
}

// ============================================================================================
// Segment I/O
// ============================================================================================

Status PoolImpl::StartRowsLocked(uint32_t seg, uint32_t first_row, uint32_t nrows, const uint8_t* data,
                                 OpenSegment* os) {
  assert(nrows >= 1 && nrows <= batch_rows_);
  assert(first_row + nrows <= StripesPerSegment());
  StripeBatch& b = *batches_[next_batch_];
  if (b.busy) ASTRA_RETURN_IF_ERROR(CompleteBatchLocked(b));  // the oldest in flight
  next_batch_ = (next_batch_ + 1) % kStripeBatchesInFlight;
  const uint64_t sdb = StripeDataBytes();
  // Column c's bytes of the batch: nrows consecutive chunks at src[c].
  std::array<uint8_t*, kMembersMax> src{};
  if (os) {
    assert(first_row % ring_rows_ + nrows <= ring_rows_ && "a batch's rows do not wrap the ring");
    assert(uint64_t(first_row) * sdb >= os->buf_base);
    for (uint32_t c = 0; c < k_; c++) src[c] = RingChunk(*os, first_row, c);
  } else {
    for (uint32_t c = 0; c < k_; c++) {
      src[c] = b.cols[c].get();
      for (uint32_t r = 0; r < nrows; r++)
        std::memcpy(src[c] + uint64_t(r) * chunk_, data + r * sdb + uint64_t(c) * chunk_, chunk_);
    }
  }
  for (uint32_t c = 0; c < m_; c++) src[k_ + c] = b.cols[k_ + c].get();
  // Reed-Solomon works byte by byte: the parity of nrows stripes is one encode over columns of
  // nrows chunks.
  ec_->Encode(nrows * chunk_, src.data(), src.data() + k_);
  uint32_t count = 0;
  for (uint32_t c = 0; c < w_; c++) {
    uint32_t mi = place_.MemberOf(seg, c);
    b.member_of[c] = UINT32_MAX;
    if (!MemberWritable(mi)) continue;
    b.reqs[c] = IoRequest{IoOp::kWrite, place_.ColumnOffset(seg, c) + uint64_t(first_row) * chunk_,
                          nrows * chunk_, src[c], {}, &b.waiter};
    b.member_of[c] = mi;
    count++;
  }
  b.os = os;
  b.seg = seg;
  b.nrows = nrows;
  b.busy = true;
  b.waiter.Add(count);
  for (uint32_t c = 0; c < w_; c++) {
    if (b.member_of[c] == UINT32_MAX) continue;
    IoRequest* rp = &b.reqs[c];
    members_[b.member_of[c]]->dev->Submit(&rp, 1);
  }
  return Status::Ok();
}

Status PoolImpl::CompleteBatchLocked(StripeBatch& b) {
  assert(b.busy);
  b.waiter.Wait();
  b.busy = false;
  Status result;
  for (uint32_t c = 0; c < w_; c++) {
    if (b.member_of[c] == UINT32_MAX || b.reqs[c].status.ok()) continue;
    members_[b.member_of[c]]->write_errors++;
    Status s = FailMemberLocked(b.member_of[c], b.reqs[c].status);
    if (result.ok()) result = s;
  }
  if (OpenSegment* os = b.os) {
    assert(os->seg == b.seg && "a stream's batches complete before its segment is sealed");
    const uint64_t sdb = StripeDataBytes();
    std::unique_lock<std::shared_mutex> l(mu_);
    os->disk_pos += uint64_t(b.nrows) * sdb;
    assert(os->disk_pos <= os->sub_pos);
    // The written rows stay in the buffer until AppendLocked needs their room (CompactLocked).
  }
  b.os = nullptr;
  return result;
}

Status PoolImpl::DrainWritesLocked() {
  Status result;
  for (uint32_t i = 0; i < kStripeBatchesInFlight; i++) {
    StripeBatch* b = batches_[(next_batch_ + i) % kStripeBatchesInFlight].get();
    if (!b || !b->busy) continue;
    Status s = CompleteBatchLocked(*b);
    if (result.ok()) result = s;
  }
  return result;
}

void PoolImpl::ReadRow(uint32_t seg, uint32_t row, uint8_t* const* chunks, std::vector<uint32_t>* erased) {
  IoWaiter waiter;
  std::vector<IoRequest> reqs(w_);
  std::vector<bool> issued(w_, false);
  uint32_t count = 0;
  for (uint32_t c = 0; c < w_; c++) {
    uint32_t mi = place_.MemberOf(seg, c);
    if (!ColumnReadable(seg, mi)) continue;
    reqs[c] = IoRequest{IoOp::kRead, place_.ColumnOffset(seg, c) + uint64_t(row) * chunk_, chunk_, chunks[c], {}, &waiter};
    issued[c] = true;
    count++;
  }
  waiter.Add(count);
  for (uint32_t c = 0; c < w_; c++) {
    if (!issued[c]) continue;
    IoRequest* rp = &reqs[c];
    members_[place_.MemberOf(seg, c)]->dev->Submit(&rp, 1);
  }
  waiter.Wait();
  for (uint32_t c = 0; c < w_; c++) {
    if (!issued[c] || !reqs[c].status.ok()) {
      if (issued[c]) members_[place_.MemberOf(seg, c)]->read_errors++;
      erased->push_back(c);
    }
  }
}

Status PoolImpl::ReadStored(uint32_t seg, uint32_t off, uint32_t len, uint32_t crc, uint8_t* out, bool* rebuilt) {
  *rebuilt = false;
  std::vector<StoredRange> one{{seg, off, len, crc, out}};
  std::vector<bool> slow;
  ReadRangesBatch(one, &slow);
  if (!slow[0]) return Status::Ok();
  Status s = Reconstruct(seg, off, len, crc, out);
  if (s.ok()) {
    *rebuilt = true;
    repaired_++;
  }
  return s;
}

Status PoolImpl::Reconstruct(uint32_t seg, uint32_t off, uint32_t len, uint32_t crc, uint8_t* out) {
  const uint64_t sdb = StripeDataBytes();
  const uint32_t row0 = uint32_t(off / sdb), row1 = uint32_t((uint64_t(off) + len - 1) / sdb);
  const uint32_t rows = row1 - row0 + 1;
  // Per row: every erasure set to try (the known-bad chunks plus each small set of suspects,
  // smallest first) and the row it decodes to. A chunk that reads without error can still be
  // wrong (bit rot, a zeroed or misdirected member): the extent checksum tells which is right.
  struct Option { std::vector<uint32_t> erased; std::vector<AlignedBuf> chunks; };
  std::vector<std::vector<Option>> opts(rows);
  for (uint32_t r = 0; r < rows; r++) {
    std::vector<AlignedBuf> raw;
    std::vector<uint8_t*> ptrs(w_);
    for (uint32_t c = 0; c < w_; c++) {
      raw.push_back(AllocAligned(chunk_));
      ptrs[c] = raw[c].get();
    }
    std::vector<uint32_t> known;
    ReadRow(seg, row0 + r, ptrs.data(), &known);
    if (known.size() > m_)
      return Status::Corruption("segment " + std::to_string(seg) + " stripe " + std::to_string(row0 + r) +
                                ": " + std::to_string(known.size()) + " chunks unreadable, more than parity " +
                                std::to_string(m_)).WithDataLoss();
    std::vector<uint32_t> others;
    for (uint32_t c = 0; c < w_; c++)
      if (std::find(known.begin(), known.end(), c) == known.end()) others.push_back(c);
    const uint32_t extra_max = m_ - uint32_t(known.size());
    std::vector<std::vector<uint32_t>> sets{known};
    for (uint32_t e = 1; e <= extra_max; e++) {
      std::vector<uint32_t> idx(e);
      for (uint32_t i = 0; i < e; i++) idx[i] = i;
      while (true) {
        if (e <= others.size()) {
          std::vector<uint32_t> set = known;
          for (uint32_t i : idx) set.push_back(others[i]);
          sets.push_back(set);
        }
        int i = int(e) - 1;
        while (i >= 0 && idx[i] == others.size() - e + uint32_t(i)) i--;
        if (i < 0 || e > others.size()) break;
        idx[i]++;
        for (uint32_t j = uint32_t(i) + 1; j < e; j++) idx[j] = idx[j - 1] + 1;
      }
    }
    for (auto& set : sets) {
      Option o;
      o.erased = set;
      std::vector<uint8_t*> wp(w_);
      for (uint32_t c = 0; c < w_; c++) {
        o.chunks.push_back(AllocAligned(chunk_));
        std::memcpy(o.chunks[c].get(), raw[c].get(), chunk_);
        wp[c] = o.chunks[c].get();
      }
      if (!set.empty() && !ec_->Reconstruct(chunk_, wp.data(), set).ok()) continue;
      opts[r].push_back(std::move(o));
    }
  }
  for (uint32_t r = 0; r < rows; r++)
    if (opts[r].empty()) return Status::Corruption("segment " + std::to_string(seg) + ": stripe cannot be decoded").WithDataLoss();
  // Combinations of per-row options to try, fewest suspected chunks first. Every combination
  // when there are few (an extent or a frame spans at most 3 rows); for long ranges (checkpoint
  // images span many rows, and a missing member gives every row m options) the product explodes,
  // so only combinations that deviate from the known-erasure decode in at most two rows are
  // tried, at most kReconstructTriesMax in all: silent damage in three rows of one range at once
  // is reported as unrepairable rather than searched for without bound.
  constexpr uint64_t kReconstructTriesMax = 20000;
  std::vector<std::vector<uint32_t>> combos;
  uint64_t product = 1;
  for (uint32_t r = 0; r < rows && product <= kReconstructTriesMax; r++) product *= opts[r].size();
  auto weight = [&](const std::vector<uint32_t>& c) {
    size_t wsum = 0;
    for (uint32_t r = 0; r < rows; r++) wsum += opts[r][c[r]].erased.size();
    return wsum;
  };
  if (product <= kReconstructTriesMax) {
    std::vector<uint32_t> cur(rows, 0);
    while (true) {
      combos.push_back(cur);
      uint32_t i = 0;
      while (i < rows && ++cur[i] == opts[i].size()) cur[i++] = 0;
      if (i == rows) break;
    }
    std::stable_sort(combos.begin(), combos.end(), [&](auto& a, auto& b) { return weight(a) < weight(b); });
  } else {
    combos.push_back(std::vector<uint32_t>(rows, 0));
    for (uint32_t r = 0; r < rows; r++)
      for (uint32_t j = 1; j < opts[r].size(); j++) {
        combos.push_back(std::vector<uint32_t>(rows, 0));
        combos.back()[r] = j;
      }
    for (uint32_t r1 = 0; r1 < rows && combos.size() < kReconstructTriesMax; r1++)
      for (uint32_t r2 = r1 + 1; r2 < rows && combos.size() < kReconstructTriesMax; r2++)
        for (uint32_t j1 = 1; j1 < opts[r1].size() && combos.size() < kReconstructTriesMax; j1++)
          for (uint32_t j2 = 1; j2 < opts[r2].size() && combos.size() < kReconstructTriesMax; j2++) {
            combos.push_back(std::vector<uint32_t>(rows, 0));
            combos.back()[r1] = j1;
            combos.back()[r2] = j2;
          }
  }
  for (const auto& combo : combos) {
    for (uint64_t d = off; d < uint64_t(off) + len;) {
      uint32_t r = uint32_t(d / sdb) - row0, c = uint32_t((d % sdb) / chunk_), in = uint32_t(d % chunk_);
      uint32_t plen = uint32_t(std::min<uint64_t>(chunk_ - in, uint64_t(off) + len - d));
      std::memcpy(out + (d - off), opts[r][combo[r]].chunks[c].get() + in, plen);
      d += plen;
    }
    if (Crc32c(out, len) == crc) {
      // The chunks this decode had to leave out, beyond those that failed to read, are proven
      // bad: charge them to their members (a member with too many gets faulted), once per
      // chunk: the blocks of one frame, or a chunk read again before its repair, are one error.
      for (uint32_t r = 0; r < rows; r++)
        for (uint32_t c : opts[r][combo[r]].erased)
          if (std::find(opts[r][0].erased.begin(), opts[r][0].erased.end(), c) == opts[r][0].erased.end()) {
            const uint64_t key = (uint64_t(seg) << 32) | (uint64_t(row0 + r) << 8) | c;
            std::lock_guard<std::mutex> l(charged_mu_);
            if (charged_chunks_.size() >= kChargedChunksMax) charged_chunks_.clear();
            if (charged_chunks_.insert(key).second) members_[place_.MemberOf(seg, c)]->checksum_errors++;
          }
      return Status::Ok();
    }
  }
  return Status::Corruption("segment " + std::to_string(seg) + " offset " + std::to_string(off) +
                            ": checksum mismatch that parity cannot repair").WithDataLoss();
}

void PoolImpl::FailNoisyMembersLocked() {
  for (uint32_t i = 0; i < n_; i++) {
    Member& m = *members_[i];
    if (m.state == MemberState::kOnline && m.checksum_errors >= kChecksumErrorsToFail)
      FailMemberLocked(i, Status::Corruption(std::to_string(m.checksum_errors.load()) +
                                             " checksum errors proven on this member")).IgnoreError();
  }
}

Status PoolImpl::DecodeFrame(const Extent& x, const uint8_t* stored, uint8_t* frame) {
  const uint32_t n = FrameBlocks(x);
  if (n == 1) return DecodeBlock(x, stored, frame);
  if (!ExtentShapeValid(x.length, x.flags)) return Status::Corruption("frame extent with a bad shape");
  if (!ThreadCodec().DecompressFrame(stored, x.length, n, frame))
    return Status::Corruption("compressed frame does not decompress to " + std::to_string(n) + " blocks");
  return Status::Ok();
}

Status PoolImpl::DecodeBlock(const Extent& x, const uint8_t* stored, uint8_t* block) {
  if (FrameBlocks(x) > 1) {
    thread_local std::unique_ptr<uint8_t[]> frame(new uint8_t[kStoredBytesMax]);
    ASTRA_RETURN_IF_ERROR(DecodeFrame(x, stored, frame.get()));
    std::memcpy(block, frame.get() + uint64_t(FrameIndex(x)) * kBlockBytes, kBlockBytes);
    return Status::Ok();
  }
  switch (x.flags & kExtentCompressionMask) {
    case kExtentRaw:
      if (x.length != kBlockBytes) return Status::Corruption("raw extent with length " + std::to_string(x.length));
      std::memcpy(block, stored, kBlockBytes);
      return Status::Ok();
    case kExtentZstd:
      if (!ThreadCodec().Decompress(stored, x.length, block))
        return Status::Corruption("compressed extent does not decompress to one block");
      return Status::Ok();
    default:
      return Status::Corruption("unknown compression in extent flags");
  }
}

// ============================================================================================
// Read path
// ============================================================================================

void PoolImpl::ReadExtentsBatch(const std::vector<Extent>& xs, StoredBatch* stored, std::vector<bool>* slow,
                                const std::vector<uint8_t*>* direct) {
  uint64_t total = 0;
  for (size_t i = 0; i < xs.size(); i++)
    if (!direct || !(*direct)[i]) total += xs[i].length;
  if (total) stored->arena.reset(new uint8_t[total]);  // not zeroed: every byte is read
  stored->at.resize(xs.size());
  std::vector<StoredRange> ranges;
  ranges.reserve(xs.size());
  uint64_t at = 0;
  for (size_t i = 0; i < xs.size(); i++) {
    if (direct && (*direct)[i]) {
      stored->at[i] = (*direct)[i];
    } else {
      stored->at[i] = stored->arena.get() + at;
      at += xs[i].length;
    }
    ranges.push_back({xs[i].segment, xs[i].offset, xs[i].length, xs[i].crc, stored->at[i]});
  }
  ReadRangesBatch(ranges, slow);
}

// Device reads of one batch are at most this long: a long sequential read becomes several
// requests per member, so the checks of the first ones overlap the reading of the later ones
// (ReadAllOptions::on_done) instead of all waiting for one request per member. Measured on
// tmpfs, 6 x 128 KiB sequential reads per batch, one thread: 1 MiB runs ~3,900 MiB/s, 128 KiB
// runs ~5,100-5,400 MiB/s (doc/engine.md, "Read path").
constexpr uint64_t kReadRunBytesMax = 128u << 10;

void PoolImpl::ReadRangesBatch(const std::vector<StoredRange>& xs, std::vector<bool>* slow) {
  const uint64_t sdb = StripeDataBytes();
  struct Piece { IoRequest req; uint32_t want, out_off, skip, len, member; };
  std::vector<Piece> pieces;
  slow->assign(xs.size(), false);
  for (uint32_t wi = 0; wi < xs.size(); wi++) {
    const StoredRange& x = xs[wi];
    size_t first = pieces.size();
    for (uint64_t d = x.offset; d < uint64_t(x.offset) + x.length;) {
      uint64_t row = d / sdb, within = d % sdb;
      uint32_t col = uint32_t(within / chunk_), in = uint32_t(within % chunk_);
      uint32_t plen = uint32_t(std::min<uint64_t>(chunk_ - in, uint64_t(x.offset) + x.length - d));
      uint32_t mi = place_.MemberOf(x.segment, col);
      if (!ColumnReadable(x.segment, mi)) { (*slow)[wi] = true; break; }
      uint64_t dev_off = place_.ColumnOffset(x.segment, col) + row * chunk_ + in;
      uint64_t a0 = AlignDown(dev_off, kBlockBytes), a1 = AlignUp(dev_off + plen, kBlockBytes);
      Piece p{};
      p.req.op = IoOp::kRead;
      p.req.offset_bytes = a0;
      p.req.length_bytes = uint32_t(a1 - a0);
      p.want = wi;
      p.out_off = uint32_t(d - x.offset);
      p.skip = uint32_t(dev_off - a0);
      p.len = plen;
      p.member = mi;
      pieces.push_back(p);
      d += plen;
    }
    if ((*slow)[wi]) pieces.resize(first);
  }
  // Coalesce: pieces that touch or overlap on one member become one device request (a
  // sequential read becomes one request per member), all submitted before waiting.
  std::vector<uint32_t> order(pieces.size());
  for (uint32_t i = 0; i < order.size(); i++) order[i] = i;
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return pieces[a].member != pieces[b].member ? pieces[a].member < pieces[b].member
                                                : pieces[a].req.offset_bytes < pieces[b].req.offset_bytes;
  });
  // A run whose pieces are whole, aligned 4 KiB blocks, back to back on the device, each going to
  // an aligned place of its output, is read straight there (a scatter read); the others are read
  // into an arena and copied out.
  // A run's scatter list is the slice [iov_first, +iov_count) of `iovs` (a run's pieces are
  // consecutive in `order`, so their entries are too).
  struct Run { IoRequest req; uint32_t member; bool scatter; uint32_t iov_first, iov_count; };
  std::vector<Run> runs;
  std::vector<iovec> iovs;
  iovs.reserve(pieces.size());
  std::vector<uint32_t> run_first;  // run r's pieces: order[run_first[r], run_first[r + 1])
  std::vector<uint64_t> run_base(pieces.size());
  auto scatterable = [&](const Piece& p) {
    return p.skip == 0 && p.len == p.req.length_bytes &&
           reinterpret_cast<uintptr_t>(xs[p.want].out + p.out_off) % kIoAlignBytes == 0;
  };
  for (uint32_t k = 0; k < order.size(); k++) {
    const uint32_t i = order[k];
    Piece& p = pieces[i];
    const uint64_t a0 = p.req.offset_bytes, a1 = a0 + p.req.length_bytes;
    if (!runs.empty()) {
      Run& r = runs.back();
      const uint64_t r1 = r.req.offset_bytes + r.req.length_bytes;
      if (r.member == p.member && a0 <= r1 && std::max(a1, r1) - r.req.offset_bytes <= kReadRunBytesMax) {
        r.scatter = r.scatter && a0 == r1 && scatterable(p);
        if (r.scatter) {
          iovs.push_back({xs[p.want].out + p.out_off, p.len});
          r.iov_count++;
        }
        r.req.length_bytes = uint32_t(std::max(a1, r1) - r.req.offset_bytes);
        run_base[i] = a0 - r.req.offset_bytes;
        continue;
      }
    }
    Run r;
    r.req.op = IoOp::kRead;
    r.req.offset_bytes = a0;
    r.req.length_bytes = uint32_t(a1 - a0);
    r.member = p.member;
    r.scatter = scatterable(p);
    r.iov_first = uint32_t(iovs.size());
    r.iov_count = 0;
    if (r.scatter) {
      iovs.push_back({xs[p.want].out + p.out_off, p.len});
      r.iov_count = 1;
    }
    runs.push_back(std::move(r));
    run_first.push_back(k);
    run_base[i] = 0;
  }
  run_first.push_back(uint32_t(order.size()));
  uint64_t arena_bytes = 0;
  for (auto& r : runs)
    if (!r.scatter) arena_bytes += r.req.length_bytes;
  AlignedBuf arena = arena_bytes ? AllocAligned(arena_bytes) : nullptr;
  std::vector<Device*> devs(runs.size());
  std::vector<IoRequest*> reqs(runs.size());
  uint64_t at = 0;
  for (size_t i = 0; i < runs.size(); i++) {
    Run& r = runs[i];
    if (r.scatter && r.iov_count == 1) {
      r.req.buf = iovs[r.iov_first].iov_base;  // one destination: a plain read into it
    } else if (r.scatter) {
      r.req.iov = iovs.data() + r.iov_first;
      r.req.iov_count = r.iov_count;
    } else {
      r.req.buf = arena.get() + at;
      at += r.req.length_bytes;
    }
    devs[i] = members_[r.member]->dev.get();
    reqs[i] = &r.req;
  }
  // As each run completes (while later ones are still being read): its pieces are copied out,
  // and a range whose last piece this was is checked against its CRC.
  std::vector<uint32_t> pending(xs.size(), 0);  // pieces of each range not yet in place
  for (const Piece& p : pieces) pending[p.want]++;
  auto on_run = [&](uint32_t ri) {
    const Run& r = runs[ri];
    for (uint32_t k = run_first[ri]; k < run_first[ri + 1]; k++) {
      const uint32_t i = order[k];
      const Piece& p = pieces[i];
      if (!r.req.status.ok()) {
        members_[p.member]->read_errors++;
        (*slow)[p.want] = true;
      } else if (!r.scatter) {
        std::memcpy(xs[p.want].out + p.out_off, static_cast<uint8_t*>(r.req.buf) + run_base[i] + p.skip, p.len);
      }
      const StoredRange& x = xs[p.want];
      if (--pending[p.want] == 0 && x.verify && !(*slow)[p.want] && Crc32c(x.out, x.length) != x.crc)
        (*slow)[p.want] = true;
    }
  };
  ReadAllOptions ro;
  ro.poll_us = opts_.read_poll_us;
  ro.ctx = &on_run;
  ro.on_done = [](void* ctx, uint32_t ri) { (*static_cast<decltype(on_run)*>(ctx))(ri); };
  ReadAll(devs, reqs, ro);  // on this thread's own ring where the member allows it
}

void PoolImpl::ReadCandidatesLocked(const std::vector<Extent>& xs, StoredBatch* stored, std::vector<bool>* slow) {
  DedupWindow& w = dedup_window_;
  if (w.reclaim_gen != reclaim_gen_) w.segment = kNoSegment;
  auto in_window = [&](const Extent& x) {
    return x.segment == w.segment && x.offset >= w.offset && uint64_t(x.offset) + x.length <= uint64_t(w.offset) + w.length;
  };
  // A candidate outside the window that continues from the last one read from the devices
  // (same segment, at or at most a window after its start): read a new window from it, up to
  // what the segment holds on the devices.
  for (const Extent& x : xs) {
    if (in_window(x)) continue;
    const bool sequential = x.segment == w.last_segment && x.offset >= w.last_offset &&
                            x.offset < w.last_offset + kDedupWindowBytes;
    w.last_segment = x.segment;
    w.last_offset = x.offset;
    if (!sequential) continue;
    uint64_t on_disk = uint64_t(state_.seg(x.segment).written_stripes) * StripeDataBytes();
    for (const auto& st : streams_)
      if (st.seg == x.segment) on_disk = st.disk_pos;
    const uint64_t end = std::min<uint64_t>(uint64_t(x.offset) + kDedupWindowBytes, on_disk);
    if (end < uint64_t(x.offset) + x.length) continue;
    if (!w.buf) w.buf = AllocAligned(kDedupWindowBytes);
    std::vector<StoredRange> one{{x.segment, x.offset, uint32_t(end - x.offset), 0, w.buf.get(), /*verify=*/false}};
    std::vector<bool> bad;
    ReadRangesBatch(one, &bad);
    if (bad[0]) {
      w.segment = kNoSegment;  // a member error: the candidates take the ordinary path
      continue;
    }
    w.segment = x.segment;
    w.offset = x.offset;
    w.length = uint32_t(end - x.offset);
    w.reclaim_gen = reclaim_gen_;
  }
  // Candidates in the window are used where they lie (their CRC checked); the rest are read
  // as before, into the batch's arena.
  std::vector<Extent> rest;
  std::vector<uint32_t> rest_of;
  stored->at.assign(xs.size(), nullptr);
  slow->assign(xs.size(), false);
  for (uint32_t i = 0; i < xs.size(); i++) {
    const Extent& x = xs[i];
    if (in_window(x)) {
      stored->at[i] = w.buf.get() + (x.offset - w.offset);
      (*slow)[i] = Crc32c(stored->at[i], x.length) != x.crc;  // then read again, the ordinary way
      if (!(*slow)[i]) dedup_window_hits_++;
    } else {
      rest_of.push_back(i);
      rest.push_back(x);
    }
  }
  if (rest.empty()) return;
  StoredBatch rs;
  std::vector<bool> rslow;
  ReadExtentsBatch(rest, &rs, &rslow);
  stored->arena = std::move(rs.arena);
  for (uint32_t j = 0; j < rest.size(); j++) {
    stored->at[rest_of[j]] = rs.at[j];
    (*slow)[rest_of[j]] = rslow[j];
  }
}

Status PoolImpl::Read(ObjectId obj, uint64_t block, uint32_t count, void* buf) {
  if (count > kBlocksPerIoMax) return Status::InvalidArgument("read of more than 256 blocks");
  if (closed_) return Status::InvalidArgument("pool is closed");
  if (readahead_ && readahead_->TryRead(obj, block, count, static_cast<uint8_t*>(buf))) return Status::Ok();
  return ReadDirect(obj, block, count, buf);
}

Status PoolImpl::ReadBatch(std::span<ReadOp> ops) {
  std::vector<ReadOp*> direct;  // ReadDirectMany sets their status (and refuses a closed pool)
  direct.reserve(ops.size());
  for (ReadOp& op : ops) {
    if (op.count == 0 || op.count > kBlocksPerIoMax) {
      op.status = Status::InvalidArgument("batched read of " + std::to_string(op.count) +
                                          " blocks (1.." + std::to_string(kBlocksPerIoMax) + " allowed)");
      continue;
    }
    direct.push_back(&op);  // no readahead: the batch is the caller's own queue depth
  }
  if (!direct.empty()) ReadDirectMany(direct);
  for (ReadOp& op : ops)
    if (!op.status.ok()) return op.status;
  return Status::Ok();
}

Status PoolImpl::ReadDirect(ObjectId obj, uint64_t block, uint32_t count, void* buf) {
  ReadOp op{obj, block, count, buf, Status::Ok()};
  ReadOp* one = &op;
  ReadDirectMany(std::span<ReadOp* const>(&one, 1));
  return op.status;
}

void PoolImpl::ReadDirectMany(std::span<ReadOp* const> ops) {
  if (closed_) {
    for (ReadOp* op : ops) op->status = Status::InvalidArgument("pool is closed");
    return;
  }
  auto where = [&](uint32_t o, uint32_t i) {
    return "object " + std::to_string(ops[o]->obj) + " block " + std::to_string(ops[o]->block + i);
  };
  // Blocks to fetch from the devices, grouped by stored range: the blocks of one compression
  // frame are read, checked and decompressed once.
  struct Want { uint32_t op; uint32_t i; uint32_t id; uint32_t range; uint32_t index; };
  std::vector<Want> wants;
  std::vector<Extent> ranges;  // one extent per distinct stored range
  std::vector<std::pair<uint32_t, uint32_t>> relocate;  // (id, range) rebuilt: repair later
  auto frame_buf = [] {
    thread_local std::unique_ptr<uint8_t[]> f(new uint8_t[kStoredBytesMax]);
    return f.get();
  };
  for (ReadOp* op : ops) op->status = Status::Ok();
  std::shared_lock<std::shared_mutex> reclaim(reclaim_mu_);
  {
    std::shared_lock<std::shared_mutex> l(mu_);
    for (uint32_t o = 0; o < ops.size(); o++) {
      ReadOp& op = *ops[o];
      auto* out = static_cast<uint8_t*>(op.buf);
      for (uint32_t i = 0; i < op.count && op.status.ok(); i++) {
        uint32_t id = state_.Lookup(op.obj, op.block + i);
        uint8_t* dst = out + uint64_t(i) * kBlockBytes;
        if (id == kHoleId) {
          std::memset(dst, 0, kBlockBytes);
          continue;
        }
        const Extent& x = state_.extent(id);
        if (const OpenSegment* os = BufferedStream(x)) {
          // Still in the write buffer (not on the devices yet).
          thread_local std::unique_ptr<uint8_t[]> tmp(new uint8_t[kStoredBytesMax]);
          CopyFromRing(*os, x.offset, x.length, tmp.get());
          if (Crc32c(tmp.get(), x.length) != x.crc) {
            op.status = Status::Corruption("write buffer checksum mismatch").Annotate(where(o, i));
            break;
          }
          op.status = DecodeBlock(x, tmp.get(), dst);
          if (!op.status.ok()) op.status = op.status.Annotate(where(o, i));
          continue;
        }
        uint32_t r = uint32_t(ranges.size());
        if (!ranges.empty() && ranges.back().segment == x.segment && ranges.back().offset == x.offset)
          r--;  // the next block of the same frame (the common case: frames are written in order)
        else
          ranges.push_back(x);
        wants.push_back({o, i, id, r, FrameIndex(x)});
      }
    }
  }
  if (wants.empty()) return;
  // Device reads, all ranges of the batch in flight at once. A raw block wanted once is read
  // (and CRC-checked) straight into the caller's buffer; other ranges go to an arena and are
  // decoded from there.
  std::vector<uint32_t> wanted(ranges.size(), 0);
  for (const Want& w : wants) wanted[w.range]++;
  std::vector<uint8_t*> direct(ranges.size(), nullptr);
  for (const Want& w : wants) {
    const Extent& x = ranges[w.range];
    if (wanted[w.range] == 1 && FrameBlocks(x) == 1 && (x.flags & kExtentCompressionMask) == kExtentRaw &&
        x.length == kBlockBytes)
      direct[w.range] = static_cast<uint8_t*>(ops[w.op]->buf) + uint64_t(w.i) * kBlockBytes;
  }
  StoredBatch stored;
  std::vector<bool> slow;
  ReadExtentsBatch(ranges, &stored, &slow, &direct);
  // Ranges that could not be read or failed their CRC: rebuilt from the other chunks. A range
  // that cannot be rebuilt fails the ops that want it (each op's error names its first block
  // stored there).
  // Only when something is slow (the bookkeeping is not allocated on the common path).
  std::vector<Status> rebuilt;
  if (std::find(slow.begin(), slow.end(), true) != slow.end()) {
    rebuilt.resize(ranges.size());
    std::vector<bool> tried(ranges.size(), false);
    for (const Want& w : wants) {
      if (!slow[w.range] || tried[w.range]) continue;
      tried[w.range] = true;
      const Extent& x = ranges[w.range];
      rebuilt[w.range] = Reconstruct(x.segment, x.offset, x.length, x.crc, stored.at[w.range]);
      if (rebuilt[w.range].ok()) repaired_++;
    }
  }
  uint32_t decoded = UINT32_MAX;  // the range whose frame is in frame_buf()
  for (const Want& w : wants) {
    ReadOp& op = *ops[w.op];
    if (!op.status.ok()) continue;
    if (!rebuilt.empty() && !rebuilt[w.range].ok()) {
      op.status = rebuilt[w.range].Annotate(where(w.op, w.i));  // names this op's first bad block
      continue;
    }
    const Extent& x = ranges[w.range];
    uint8_t* dst = static_cast<uint8_t*>(op.buf) + uint64_t(w.i) * kBlockBytes;
    Status s;
    if (direct[w.range]) {
      // Already in place, checked against its CRC (or rebuilt there).
    } else if (FrameBlocks(x) == 1) {
      s = DecodeBlock(x, stored.at[w.range], dst);
    } else {
      if (decoded != w.range) {
        s = DecodeFrame(x, stored.at[w.range], frame_buf());
        decoded = s.ok() ? w.range : UINT32_MAX;
      }
      // Each block of the frame has its own extent; the frame index comes from this one.
      if (s.ok()) std::memcpy(dst, frame_buf() + uint64_t(w.index) * kBlockBytes, kBlockBytes);
    }
    if (!s.ok()) {
      op.status = s.Annotate(where(w.op, w.i));
      continue;
    }
    if (slow[w.range]) relocate.emplace_back(w.id, w.range);
  }
  // Repair: rewrite rebuilt extents elsewhere (never in place), after the read locks drop.
  if (!relocate.empty() && !read_only_) {
    // Per rebuilt range: its stored bytes and the ids of this batch that point at it.
    std::vector<std::pair<std::vector<uint32_t>, std::vector<uint8_t>>> todo;
    absl::flat_hash_map<uint32_t, size_t> todo_of_range;
    for (auto& [id, r] : relocate) {
      auto [it, fresh] = todo_of_range.try_emplace(r, todo.size());
      if (fresh) todo.push_back({{}, std::vector<uint8_t>(stored.at[r], stored.at[r] + ranges[r].length)});
      todo[it->second].first.push_back(id);
    }
    reclaim.unlock();
    std::lock_guard<std::mutex> wl(write_mu_);
    for (auto& [ids, bytes] : todo) {
      Status s = RelocateFrameLocked(ids, bytes.data(), uint32_t(bytes.size()), /*repack=*/false);
      if (!s.ok()) spdlog::warn("repair of extent {}: {}", ids[0], s.ToString());
    }
    FailNoisyMembersLocked();
  }
}

Status PoolImpl::ReadExtentBlockLocked(uint32_t id, uint8_t* block) {
  Extent x;
  thread_local std::unique_ptr<uint8_t[]> buf(new uint8_t[kStoredBytesMax]);
  uint8_t* stored = buf.get();
  {
    std::shared_lock<std::shared_mutex> l(mu_);
    x = state_.extent(id);
    if (const OpenSegment* os = BufferedStream(x)) {
      CopyFromRing(*os, x.offset, x.length, stored);
      if (Crc32c(stored, x.length) != x.crc) return Status::Corruption("write buffer checksum mismatch");
      return DecodeBlock(x, stored, block);
    }
  }
  bool rebuilt = false;
  ASTRA_RETURN_IF_ERROR(ReadStored(x.segment, x.offset, x.length, x.crc, stored, &rebuilt));
  ASTRA_RETURN_IF_ERROR(DecodeBlock(x, stored, block));
  if (rebuilt && !read_only_) {
    RelocateFrameLocked({id}, stored, x.length, /*repack=*/false).IgnoreError();
    FailNoisyMembersLocked();
  }
  return Status::Ok();
}

// ============================================================================================
// Write path
// ============================================================================================

void PoolImpl::ApplyLocked(Encoder& rec) {
  {
    std::unique_lock<std::shared_mutex> l(mu_);
    size_t pos = 0;
    const auto& b = rec.buf();
    while (pos < b.size()) {
      uint32_t body = GetU32(b.data() + pos + 1);
      Status s = state_.Apply(b.data() + pos, 5 + body);
      assert(s.ok() && "live records always apply");
      s.IgnoreError();
      pos += 5 + body;
      pending_records_++;
    }
  }
  pending_.Bytes(rec.buf().data(), rec.size());
  rec.Clear();
}

uint32_t PoolImpl::CheckpointReserveSegments() const {
  // Room for a checkpoint image (estimated from the metadata size) and one spare segment.
  uint64_t meta = state_.used_extents() * 40 + state_.mapped_blocks() * 6 + state_.catalog().size() * 96 +
                  state_.segments() * 6 + 4096;
  return uint32_t(meta / SegmentDataBytes() + 2);
}

uint32_t PoolImpl::ReserveSegments() const {
  // User writes stop here; the rest is for checkpoints and for the cleaner to make progress.
  return CheckpointReserveSegments() + kCleanerReserveSegments;
}

const PoolImpl::OpenSegment* PoolImpl::BufferedStream(const Extent& x) const {
  for (const auto& st : streams_)
    if (x.segment == st.seg && x.offset + x.length > st.disk_pos) {
      assert(x.offset >= st.buf_base && "the buffer keeps every extent straddling disk_pos");
      return &st;
    }
  return nullptr;
}

uint64_t PoolImpl::UserCapacityBytes() const {
  const uint64_t segs = state_.segments(), reserve = ReserveSegments();
  const uint64_t usable = segs > reserve ? (segs - reserve) * SegmentDataBytes() : 0;
  return usable / 100 * (100 - kOverProvisionPercent);
}

Status PoolImpl::EnsureSpaceLocked(uint64_t bytes, uint64_t freed_bytes) {
  // Logical limit first: live stored bytes stay within the capacity users see, so the cleaner
  // always has over-provisioned room to work in (and "80% full" means 80% of what df shows).
  if (state_.stored_bytes() + bytes > UserCapacityBytes() + freed_bytes)
    return Status::NoSpace("pool " + UuidToString(sb_.pool_uuid) + " is full");
  auto available = [&]() -> uint64_t {
    uint64_t free_segs = state_.free_segments().size();
    uint64_t reserve = ReserveSegments();
    const OpenSegment& hot = streams_[kHot];
    uint64_t in_open = hot.seg == kNoSegment ? 0 : SegmentDataBytes() - hot.pos;
    return (free_segs > reserve ? (free_segs - reserve) * SegmentDataBytes() : 0) + in_open;
  };
  if (available() >= bytes) return Status::Ok();
  // Segments freed since the last checkpoint become reusable after the next one.
  bool pending_free = false;
  for (uint32_t s = 0; s < state_.segments() && !pending_free; s++)
    pending_free = state_.seg(s).state == SegState::kFreePending;
  if (pending_free) {
    ASTRA_RETURN_IF_ERROR(FlushLocked());
    if (available() >= bytes) return Status::Ok();
  }
  // Foreground cleaning: relocate the live data of partly dead segments.
  uint64_t want = ReserveSegments() + (bytes + SegmentDataBytes() - 1) / SegmentDataBytes() + 1;
  Status s = CleanUntilLocked(want, /*max_victims=*/64, nullptr);
  if (!s.ok() && !s.IsNoSpace()) return s;
  if (available() >= bytes) return Status::Ok();
  return Status::NoSpace("pool " + UuidToString(sb_.pool_uuid) + " is full");
}

Status PoolImpl::OpenNewSegmentLocked(OpenSegment& os) {
  // The cold stream (cleaner, repair) may use the cleaner's reserve; user writes may not.
  const uint32_t reserve = &os == &streams_[kCold] ? CheckpointReserveSegments() : ReserveSegments();
  if (state_.free_segments().size() <= reserve) return Status::NoSpace("no free segment");
  uint32_t s = *state_.free_segments().begin();
  {
    // Its chunks are new: errors charged for its previous contents do not cover them.
    std::lock_guard<std::mutex> l(charged_mu_);
    if (!charged_chunks_.empty())
      absl::erase_if(charged_chunks_, [s](uint64_t key) { return uint32_t(key >> 32) == s; });
  }
  Encoder e;
  MetaState::RecSegOpen(&e, s, SegKind::kData);
  {
    std::unique_lock<std::shared_mutex> l(mu_);
    // Columns on members that get this segment's writes are valid from now on.
    for (uint32_t i = 0; i < n_; i++)
      if (MemberWritable(i) && members_[i]->state == MemberState::kOnline) stale_[s] &= ~(1ull << i);
      else stale_[s] |= 1ull << i;
    os.seg = s;
    os.pos = os.sub_pos = os.disk_pos = os.buf_base = 0;
  }
  ApplyLocked(e);
  return Status::Ok();
}

Status PoolImpl::WriteOutLocked(OpenSegment& os, bool pad_partial) {
  if (os.seg == kNoSegment) return Status::Ok();
  const uint64_t sdb = StripeDataBytes();
  if (pad_partial && os.pos % sdb) {
    uint64_t padded = AlignUp(os.pos, sdb);
    ForEachRingPiece(os, os.pos, padded - os.pos, [](uint8_t* p, uint32_t n) { std::memset(p, 0, n); });
    os.pos = padded;
  }
  const uint64_t full = AlignDown(os.pos, sdb);
  while (os.sub_pos < full) {
    uint32_t first_row = uint32_t(os.sub_pos / sdb);
    // A batch stops at the ring's end: its columns are contiguous there.
    uint32_t nrows = uint32_t(std::min<uint64_t>({(full - os.sub_pos) / sdb, batch_rows_,
                                                  ring_rows_ - first_row % ring_rows_}));
    ASTRA_RETURN_IF_ERROR(StartRowsLocked(os.seg, first_row, nrows, nullptr, &os));
    os.sub_pos += uint64_t(nrows) * sdb;
    dirty_ = true;
  }
  // Padding is asked for where the rows must be on the devices (flush, seal, checkpoint).
  if (pad_partial) return DrainWritesLocked();
  return Status::Ok();
}

Status PoolImpl::WriteOutAllLocked() {
  for (auto& os : streams_) {
    if (os.seg == kNoSegment) continue;
    ASTRA_RETURN_IF_ERROR(WriteOutLocked(os, /*pad_partial=*/true));
    if (os.disk_pos / StripeDataBytes() > state_.seg(os.seg).written_stripes) {
      Encoder e;
      MetaState::RecSegAdvance(&e, os.seg, uint32_t(os.disk_pos / StripeDataBytes()));
      ApplyLocked(e);
    }
  }
  return Status::Ok();
}

Status PoolImpl::SealOpenSegmentLocked(OpenSegment& os) {
  if (os.seg == kNoSegment) return Status::Ok();
  ASTRA_RETURN_IF_ERROR(WriteOutLocked(os, /*pad_partial=*/true));
  Encoder e;
  MetaState::RecSegAdvance(&e, os.seg, uint32_t(os.disk_pos / StripeDataBytes()));
  MetaState::RecSegSeal(&e, os.seg);
  sealed_at_[os.seg] = ++seal_clock_;
  ApplyLocked(e);
  std::unique_lock<std::shared_mutex> l(mu_);
  os.seg = kNoSegment;
  os.pos = os.sub_pos = os.disk_pos = os.buf_base = 0;
  return Status::Ok();
}

void PoolImpl::CompactLocked(OpenSegment& os) {
  // Keep keep_rows_ written stripes in the buffer: an extent (<= one frame) straddling disk_pos
  // starts there.
  const uint64_t keep = uint64_t(keep_rows_) * StripeDataBytes();
  const uint64_t new_base = os.disk_pos >= keep ? os.disk_pos - keep : 0;
  if (new_base <= os.buf_base) return;
  std::unique_lock<std::shared_mutex> l(mu_);  // readers of buffered extents use buf_base
  os.buf_base = new_base;
}

Status PoolImpl::AppendLocked(OpenSegment& os, const uint8_t* bytes, uint32_t len, uint32_t* seg, uint32_t* off) {
  if (os.seg != kNoSegment && os.pos + len > SegmentDataBytes()) ASTRA_RETURN_IF_ERROR(SealOpenSegmentLocked(os));
  if (os.seg == kNoSegment) ASTRA_RETURN_IF_ERROR(OpenNewSegmentLocked(os));
  if (os.pos + len - os.buf_base > RingBytes()) {
    ASTRA_RETURN_IF_ERROR(WriteOutLocked(os, false));
    CompactLocked(os);
    // Rows in flight stay buffered until they complete (not expected: the buffer has room).
    if (os.pos + len - os.buf_base > RingBytes()) {
      ASTRA_RETURN_IF_ERROR(DrainWritesLocked());
      CompactLocked(os);
    }
  }
  assert(os.pos + len - os.buf_base <= RingBytes());
  ForEachRingPiece(os, os.pos, len, [&](uint8_t* p, uint32_t n) {
    std::memcpy(p, bytes, n);
    bytes += n;
  });
  *seg = os.seg;
  *off = uint32_t(os.pos);
  os.pos += len;  // published to readers only through the extent record applied later
  if (os.pos - os.sub_pos >= uint64_t(batch_rows_) * StripeDataBytes())
    ASTRA_RETURN_IF_ERROR(WriteOutLocked(os, false));
  return Status::Ok();
}

Status PoolImpl::RelocateFrameLocked(const std::vector<uint32_t>& ids, const uint8_t* stored, uint32_t len,
                                     bool repack) {
  ASTRA_RETURN_IF_ERROR(CheckWritable());
  const uint32_t crc = Crc32c(stored, len);
  // Only extents that still point at these very bytes (the cleaner or a repair may have moved
  // them since the caller read them).
  Extent first;
  std::vector<uint32_t> keep;
  {
    std::shared_lock<std::shared_mutex> l(mu_);
    for (uint32_t id : ids) {
      if (!state_.ExtentUsed(id)) continue;
      const Extent& x = state_.extent(id);
      if (x.crc != crc || x.length != len) continue;
      if (keep.empty()) first = x;
      else if (x.segment != first.segment || x.offset != first.offset) continue;
      if (std::find(keep.begin(), keep.end(), id) == keep.end()) keep.push_back(id);
    }
  }
  if (keep.empty()) return Status::Ok();
  Encoder e;
  const uint32_t n = FrameBlocks(first);
  if (n == 1 || keep.size() == n || !repack) {
    // Every block of the frame is live (or it is a single block, or the caller does not know
    // all the live blocks): move the bytes as they are.
    uint32_t seg, off;
    ASTRA_RETURN_IF_ERROR(AppendLocked(streams_[kCold], stored, len, &seg, &off));
    for (uint32_t id : keep) MetaState::RecExtentMove(&e, id, seg, off);
    ApplyLocked(e);
    return Status::Ok();
  }
  // Some blocks of the frame are dead: re-pack the live ones, so the dead bytes are reclaimed
  // with the victim instead of being carried along forever.
  std::unique_ptr<uint8_t[]> frame(new uint8_t[kStoredBytesMax]), live(new uint8_t[kStoredBytesMax]),
      packed(new uint8_t[kStoredBytesMax]);
  ASTRA_RETURN_IF_ERROR(DecodeFrame(first, stored, frame.get()));
  std::vector<std::pair<uint32_t, uint32_t>> order;  // (frame index, id)
  {
    std::shared_lock<std::shared_mutex> l(mu_);
    for (uint32_t id : keep) order.emplace_back(FrameIndex(state_.extent(id)), id);
  }
  std::sort(order.begin(), order.end());
  const uint32_t m = uint32_t(order.size());
  for (uint32_t j = 0; j < m; j++)
    std::memcpy(live.get() + uint64_t(j) * kBlockBytes, frame.get() + uint64_t(order[j].first) * kBlockBytes, kBlockBytes);
  BlockCodec& codec = ThreadCodec(sb_.compression_level ? sb_.compression_level : 1);
  uint32_t plen = codec.CompressFrame(live.get(), m, packed.get());
  if (plen) {
    Extent y;
    y.length = uint16_t(plen);
    y.crc = Crc32c(packed.get(), plen);
    ASTRA_RETURN_IF_ERROR(AppendLocked(streams_[kCold], packed.get(), plen, &y.segment, &y.offset));
    for (uint32_t j = 0; j < m; j++) {
      y.flags = FrameFlags(kExtentZstd, j, m);
      MetaState::RecExtentRelocate(&e, order[j].second, y);
    }
    ApplyLocked(e);
    return Status::Ok();
  }
  for (uint32_t j = 0; j < m; j++) {
    const uint8_t* b = live.get() + uint64_t(j) * kBlockBytes;
    Extent y;
    uint32_t l1 = m > 1 ? codec.Compress(b, packed.get()) : 0;
    const uint8_t* bytes = l1 ? packed.get() : b;
    y.length = uint16_t(l1 ? l1 : kBlockBytes);
    y.flags = l1 ? kExtentZstd : kExtentRaw;
    y.crc = Crc32c(bytes, y.length);
    ASTRA_RETURN_IF_ERROR(AppendLocked(streams_[kCold], bytes, y.length, &y.segment, &y.offset));
    MetaState::RecExtentRelocate(&e, order[j].second, y);
    ApplyLocked(e);
  }
  return Status::Ok();
}

// ============================================================================================
// Segment cleaner
// ============================================================================================

uint32_t PoolImpl::PickVictimLocked(double max_utilization) const {
  const double segb = double(SegmentDataBytes());
  uint32_t best = kNoSegment;
  double best_score = -1;
  for (uint32_t s = 0; s < state_.segments(); s++) {
    const SegmentInfo& g = state_.seg(s);
    if (g.state != SegState::kSealed || g.kind != SegKind::kData) continue;
    const double u = double(g.live_bytes) / segb;
    if (u > max_utilization) continue;
    double score;
    if (opts_.cleaner_policy == CleanerPolicy::kGreedy) {
      score = 1.0 - u;
    } else {
      // Sprite LFS cost-benefit: free space gained (1 - u) times its age, per cost (read the
      // segment, write back u of it).
      const double age = double(seal_clock_ + 1 - std::min(seal_clock_, sealed_at_[s]));
      score = (1.0 - u) * age / (1.0 + u);
    }
    if (score > best_score) {
      best_score = score;
      best = s;
    }
  }
  return best;
}

Status PoolImpl::CleanSegmentLocked(uint32_t victim, uint64_t* moved_bytes) {
  // Live extents by offset: the blocks of one compression frame share one stored range.
  std::vector<std::pair<uint32_t, uint32_t>> ids;  // (offset, id)
  for (uint32_t id = 0; id < state_.ExtentCount(); id++)
    if (state_.ExtentUsed(id) && state_.extent(id).segment == victim) ids.emplace_back(state_.extent(id).offset, id);
  std::sort(ids.begin(), ids.end());
  std::unique_ptr<uint8_t[]> stored(new uint8_t[kStoredBytesMax]);
  std::vector<uint32_t> group;
  for (size_t i = 0; i < ids.size();) {
    group.clear();
    size_t j = i;
    for (; j < ids.size() && ids[j].first == ids[i].first; j++) group.push_back(ids[j].second);
    i = j;
    Extent x = state_.extent(group[0]);
    bool rebuilt;
    // Verified read (rebuilt from parity if need be): the cleaner never copies bad bytes.
    ASTRA_RETURN_IF_ERROR(ReadStored(x.segment, x.offset, x.length, x.crc, stored.get(), &rebuilt)
                              .Annotate("cleaning segment " + std::to_string(victim)));
    ASTRA_RETURN_IF_ERROR(RelocateFrameLocked(group, stored.get(), x.length, /*repack=*/true));
    *moved_bytes += x.length;
  }
  cleaner_.segments_cleaned++;
  cleaner_.bytes_relocated += *moved_bytes;
  return Status::Ok();
}

Status PoolImpl::CleanUntilLocked(uint64_t free_target, uint32_t max_victims, const ProgressFn& progress) {
  cleaner_.passes++;
  uint32_t cleaned = 0;
  while (state_.free_segments().size() < free_target && cleaned < max_victims) {
    // Cleaning a segment u full costs u of a cold segment: never pick one that cannot pay off.
    uint32_t v = PickVictimLocked(0.95);
    if (v == kNoSegment) break;
    // The cold stream needs room for what it moves; stop before eating the checkpoint reserve.
    const uint64_t cold_room = (streams_[kCold].seg == kNoSegment ? 0 : SegmentDataBytes() - streams_[kCold].pos) +
                               (state_.free_segments().size() > CheckpointReserveSegments()
                                    ? (state_.free_segments().size() - CheckpointReserveSegments()) * SegmentDataBytes()
                                    : 0);
    if (state_.seg(v).live_bytes + kBlockBytes > cold_room) break;
    uint64_t moved = 0;
    ASTRA_RETURN_IF_ERROR(CleanSegmentLocked(v, &moved));
    cleaned++;
    if (progress) progress(cleaned, max_victims, "clean");
    // Victims are free once the journal batch recording their moves is durable.
    if (cleaned % 4 == 0 || state_.free_segments().size() <= CheckpointReserveSegments() + 1)
      ASTRA_RETURN_IF_ERROR(FlushLocked());
  }
  if (cleaned) ASTRA_RETURN_IF_ERROR(FlushLocked());
  return cleaned ? Status::Ok() : Status::NoSpace("nothing to clean");
}

Result<CleanerStats> PoolImpl::CollectGarbage(const ProgressFn& progress) {
  std::lock_guard<std::mutex> wl(write_mu_);
  ASTRA_RETURN_IF_ERROR(CheckWritable());
  ASTRA_RETURN_IF_ERROR(FlushLocked());  // frees what is already dead
  Status s = CleanUntilLocked(state_.segments(), uint32_t(state_.segments()), progress);
  if (!s.ok() && !s.IsNoSpace()) return s;
  return cleaner_;
}

Status PoolImpl::Write(ObjectId obj, uint64_t block, uint32_t count, const void* buf) {
  WriteOp op{obj, block, count, buf, {}};
  return WriteBatch(std::span<WriteOp>(&op, 1));
}

Status PoolImpl::WriteBatch(std::span<WriteOp> ops) {
  std::vector<PreparedWrite> ws(ops.size());
  bool any = false;
  for (size_t i = 0; i < ops.size(); i++) {
    ops[i].status = PrepareWrite(ops[i].obj, ops[i].block, ops[i].count, ops[i].buf, &ws[i]);
    any = any || (ops[i].status.ok() && ops[i].count > 0);
  }
  if (any) {
    std::lock_guard<std::mutex> wl(write_mu_);
    for (size_t i = 0; i < ops.size(); i++) {
      if (!ops[i].status.ok() || ops[i].count == 0) continue;
      ops[i].status = WriteLocked(ws[i]);
      // As Write: the object's readahead is dropped after the change, before we return.
      if (readahead_) readahead_->Invalidate(ops[i].obj);
    }
    if (pending_.size() > JournalBatchTarget()) {
      // The journal batch that records them failed: none of them is known to be recorded.
      Status s = FlushLocked();
      if (!s.ok())
        for (size_t i = 0; i < ops.size(); i++)
          if (ops[i].status.ok() && ops[i].count > 0) ops[i].status = s;
    }
  }
  for (const WriteOp& op : ops)
    if (!op.status.ok()) return op.status;
  return Status::Ok();
}

Status PoolImpl::PrepareWrite(ObjectId obj, uint64_t block, uint32_t count, const void* buf, PreparedWrite* w) {
  if (count == 0) return Status::Ok();
  if (count > kBlocksPerIoMax) return Status::InvalidArgument("write of more than 256 blocks");
  if (block > (UINT64_MAX >> 13) - count) return Status::InvalidArgument("block number out of range");
  if (buf == nullptr) return Status::InvalidArgument("write without a buffer");
  const auto* in = static_cast<const uint8_t*>(buf);
  w->obj = obj;
  w->block = block;
  w->count = count;
  w->in = in;
  // Outside the writer lock (pure functions of the bytes, so concurrent writers overlap them):
  // zero detection, fingerprints, and compression of the blocks that look new.
  std::vector<uint8_t>& zero = w->zero;
  std::vector<uint64_t>& fps = w->fps;
  zero.assign(count, 0);
  fps.assign(count, 0);
  for (uint32_t i = 0; i < count; i++) {
    const uint8_t* b = in + uint64_t(i) * kBlockBytes;
    zero[i] = IsZeroBlock(b);
    if (!zero[i] && sb_.dedup) fps[i] = opts_.force_fingerprint ? *opts_.force_fingerprint : Fingerprint(b);
  }
  // A block is new if the dedup index has no candidate for it now and it does not repeat an
  // earlier block of this write. Runs of consecutive new blocks are compressed together, in
  // frames of up to frame_blocks_ blocks. The index may change before the writer lock is taken:
  // a block that became a duplicate meanwhile is stored anyway (dedup is best effort, never wrong).
  std::vector<uint8_t>& is_new = w->is_new;
  is_new.assign(count, 0);
  if (sb_.dedup) {
    // Only the dedup index needs the metadata lock: without dedup a writer waiting for the
    // writer lock does not take it at all (a shared acquisition here against the exclusive ones
    // of the writer applying its batch made the two threads wake each other, ~10 times per batch).
    std::shared_lock<std::shared_mutex> l(mu_);
    std::vector<uint64_t> seen;
    for (uint32_t i = 0; i < count; i++) {
      if (zero[i]) continue;
      if (fps[i]) {
        if (state_.DedupLookup(fps[i]) != kHoleId) continue;
        if (std::find(seen.begin(), seen.end(), fps[i]) != seen.end()) continue;
        seen.push_back(fps[i]);
      }
      is_new[i] = 1;
    }
  } else {
    for (uint32_t i = 0; i < count; i++) is_new[i] = !zero[i];
  }
  std::vector<PreparedWrite::Frame>& frames = w->frames;
  std::vector<int32_t>& frame_of = w->frame_of;
  frame_of.assign(count, -1);
  std::unique_ptr<uint8_t[]>& packed = w->packed;
  const bool compress = sb_.compression == uint8_t(Compression::kZstd);
  {
    BlockCodec* codec = compress ? &ThreadCodec(sb_.compression_level ? sb_.compression_level : 1) : nullptr;
    for (uint32_t i = 0; i < count;) {
      if (!is_new[i]) {
        i++;
        continue;
      }
      uint32_t n = 1;
      while (n < frame_blocks_ && i + n < count && is_new[i + n]) n++;
      PreparedWrite::Frame f{i, n, 0, 0};
      if (codec && !packed) packed.reset(new uint8_t[uint64_t(count) * kBlockBytes]);
      if (codec) f.len = codec->CompressFrame(in + uint64_t(i) * kBlockBytes, n, packed.get() + uint64_t(i) * kBlockBytes);
      if (f.len) {
        f.crc = Crc32c(packed.get() + uint64_t(i) * kBlockBytes, f.len);
      } else {
        if (w->crcs.empty()) w->crcs.assign(count, 0);
        for (uint32_t j = 0; j < n; j++) {
          const uint8_t* b = in + uint64_t(i + j) * kBlockBytes;
          if (i + j + 1 < count) PrefetchForRead(b + kBlockBytes, kBlockBytes);
          w->crcs[i + j] = Crc32c(b, kBlockBytes);
        }
      }
      for (uint32_t j = 0; j < n; j++) frame_of[i + j] = int32_t(frames.size());
      frames.push_back(f);
      i += n;
    }
  }
  return Status::Ok();
}

Status PoolImpl::WriteLocked(PreparedWrite& w) {
  const ObjectId obj = w.obj;
  const uint64_t block = w.block;
  const uint32_t count = w.count;
  const uint8_t* in = w.in;
  const std::vector<uint8_t>& zero = w.zero;
  const std::vector<uint64_t>& fps = w.fps;
  const std::vector<uint8_t>& is_new = w.is_new;
  const std::vector<PreparedWrite::Frame>& frames = w.frames;
  const std::vector<int32_t>& frame_of = w.frame_of;
  const std::unique_ptr<uint8_t[]>& packed = w.packed;
  const bool compress = sb_.compression == uint8_t(Compression::kZstd);
  ASTRA_RETURN_IF_ERROR(CheckWritable());
  {
    // An overwrite frees what it replaces (when nothing else shares it): a full pool still
    // accepts overwrites.
    uint64_t freed = 0;
    for (uint32_t i = 0; i < count; i++) {
      uint32_t old = state_.Lookup(obj, block + i);
      if (old != kHoleId && state_.extent(old).refs == 1) freed += ExtentCharge(state_.extent(old));
    }
    ASTRA_RETURN_IF_ERROR(EnsureSpaceLocked(uint64_t(count) * kBlockBytes, freed));
  }
  // Dedup candidates already on the devices are read in one coalesced batch, not one by one.
  // Candidates in one frame share one read and one decompression.
  absl::flat_hash_map<uint32_t, std::array<uint8_t, kBlockBytes>> prefetched;
  if (sb_.dedup) {
    std::vector<uint32_t> ids;
    std::vector<Extent> ranges;
    std::vector<uint32_t> range_of;  // per id
    absl::flat_hash_map<uint64_t, uint32_t> range_at;  // segment << 32 | offset -> range
    for (uint32_t i = 0; i < count; i++) {
      if (!fps[i] || is_new[i]) continue;
      uint32_t c = state_.DedupLookup(fps[i]);
      if (c == kHoleId || std::find(ids.begin(), ids.end(), c) != ids.end()) continue;
      const Extent& x = state_.extent(c);
      auto [it, fresh] = range_at.try_emplace((uint64_t(x.segment) << 32) | x.offset, uint32_t(ranges.size()));
      if (fresh) ranges.push_back(x);
      ids.push_back(c);
      range_of.push_back(it->second);
    }
    if (!ids.empty()) {
      // Ranges still in a stream's buffer are copied from it (write_mu_ is held: the buffers
      // cannot change); the others are read from the devices in one batch.
      std::vector<Extent> dev_ranges;
      std::vector<uint32_t> dev_index(ranges.size(), UINT32_MAX);
      for (uint32_t r = 0; r < ranges.size(); r++)
        if (!BufferedStream(ranges[r])) {
          dev_index[r] = uint32_t(dev_ranges.size());
          dev_ranges.push_back(ranges[r]);
        }
      StoredBatch from_dev;
      std::vector<bool> dev_slow;
      if (!dev_ranges.empty()) ReadCandidatesLocked(dev_ranges, &from_dev, &dev_slow);
      // Device ranges are used where they were read; buffered ones are copied out of the ring
      // (their chunks are not contiguous there) and checked.
      std::vector<const uint8_t*> at(ranges.size());
      std::vector<bool> slow(ranges.size(), false);
      uint64_t ring_bytes = 0;
      for (uint32_t r = 0; r < ranges.size(); r++)
        if (dev_index[r] == UINT32_MAX) ring_bytes += ranges[r].length;
      std::unique_ptr<uint8_t[]> from_ring(ring_bytes ? new uint8_t[ring_bytes] : nullptr);
      uint8_t* next = from_ring.get();
      for (uint32_t r = 0; r < ranges.size(); r++) {
        const Extent& x = ranges[r];
        if (dev_index[r] != UINT32_MAX) {
          at[r] = from_dev.at[dev_index[r]];
          slow[r] = dev_slow[dev_index[r]];
          continue;
        }
        CopyFromRing(*BufferedStream(x), x.offset, x.length, next);
        at[r] = next;
        next += x.length;
        slow[r] = Crc32c(at[r], x.length) != x.crc;
      }
      std::unique_ptr<uint8_t[]> frame(new uint8_t[kStoredBytesMax]);
      uint32_t decoded = UINT32_MAX;
      for (size_t j = 0; j < ids.size(); j++) {
        const uint32_t r = range_of[j];
        if (slow[r]) continue;  // the slow path (rebuild and repair) handles it below
        const Extent& x = state_.extent(ids[j]);
        if (FrameBlocks(x) == 1) {
          if (!DecodeBlock(x, at[r], prefetched[ids[j]].data()).ok()) prefetched.erase(ids[j]);
          continue;
        }
        if (decoded != r) {
          if (!DecodeFrame(x, at[r], frame.get()).ok()) continue;
          decoded = r;
        }
        std::memcpy(prefetched[ids[j]].data(), frame.get() + uint64_t(FrameIndex(x)) * kBlockBytes, kBlockBytes);
      }
    }
  }
  std::vector<uint32_t> ids(count, kHoleId);
  uint64_t zeros = 0;
  Encoder rec;
  uint8_t cbuf[kBlockBytes];
  uint8_t cmp[kBlockBytes];
  // Stores `len` bytes, whose CRC-32C is `crc`, as the extents of blocks [first, first + blocks)
  // (a frame when blocks > 1).
  auto store = [&](uint32_t first, uint32_t blocks, const uint8_t* bytes, uint32_t len, uint32_t crc,
                   uint8_t compression) -> Status {
    assert(crc == Crc32c(bytes, len));
    Extent x;
    x.length = uint16_t(len);
    x.crc = crc;
    Status s = AppendLocked(streams_[kHot], bytes, len, &x.segment, &x.offset);
    if (!s.ok()) {
      // Map what is already stored, so no extent is left without a reference.
      if (first > 0) {
        MetaState::RecMap(&rec, obj, block, ids.data(), first);
        ApplyLocked(rec);
      }
      return s;
    }
    for (uint32_t j = 0; j < blocks; j++) {
      // The free-id list is the writer's alone (write_mu_ is held; readers never look at it).
      const uint32_t id = state_.PeekFreeExtentId();
      if (id >= kExtentsMax) {
        MetaState::RecMap(&rec, obj, block, ids.data(), first + j);
        ApplyLocked(rec);
        return Status::NoSpace("extent table full");
      }
      x.flags = FrameFlags(compression, j, blocks);
      MetaState::RecNewExtent(&rec, id, x, fps[first + j]);
      ApplyLocked(rec);
      ids[first + j] = id;
    }
    return Status::Ok();
  };
  for (uint32_t i = 0; i < count; i++) {
    const uint8_t* b = in + uint64_t(i) * kBlockBytes;
    if (zero[i]) {
      zeros++;
      continue;
    }
    if (frame_of[i] >= 0) {
      const PreparedWrite::Frame& f = frames[frame_of[i]];
      if (f.len) {
        ASTRA_RETURN_IF_ERROR(
            store(f.first, f.blocks, packed.get() + uint64_t(f.first) * kBlockBytes, f.len, f.crc, kExtentZstd));
      } else {
        for (uint32_t j = 0; j < f.blocks; j++)
          ASTRA_RETURN_IF_ERROR(store(f.first + j, 1, in + uint64_t(f.first + j) * kBlockBytes, kBlockBytes,
                                      w.crcs[f.first + j], kExtentRaw));
      }
      i = f.first + f.blocks - 1;
      continue;
    }
    const uint64_t fp = fps[i];
    if (fp) {
      uint32_t cand = state_.DedupLookup(fp);  // again: may be a block of this very write
      if (cand != kHoleId) {
        // The index is a hint: share only after comparing the bytes (invariant 3).
        auto it = prefetched.find(cand);
        Status s = Status::Ok();
        const uint8_t* have = cmp;
        if (it != prefetched.end()) have = it->second.data();
        else s = ReadExtentBlockLocked(cand, cmp);
        if (s.ok() && std::memcmp(have, b, kBlockBytes) == 0) {
          ids[i] = cand;
          continue;
        }
        if (!s.ok()) spdlog::warn("dedup candidate extent {} unreadable: {}", cand, s.ToString());
      }
    }
    // Looked like a duplicate but is not (a collision, or the candidate went away): one block.
    uint32_t len = compress ? codec_->Compress(b, cbuf) : 0;
    if (len) ASTRA_RETURN_IF_ERROR(store(i, 1, cbuf, len, Crc32c(cbuf, len), kExtentZstd));
    else ASTRA_RETURN_IF_ERROR(store(i, 1, b, kBlockBytes, Crc32c(b, kBlockBytes), kExtentRaw));
  }
  MetaState::RecMap(&rec, obj, block, ids.data(), count);
  if (zeros) MetaState::RecZeroBlocks(&rec, zeros);
  ApplyLocked(rec);
  return Status::Ok();
}

Status PoolImpl::Trim(ObjectId obj, uint64_t block, uint64_t count) {
  if (count == 0) return Status::Ok();
  std::lock_guard<std::mutex> wl(write_mu_);
  InvalidateOnExit invalidate(readahead_.get(), obj);
  ASTRA_RETURN_IF_ERROR(CheckWritable());
  Encoder rec;
  MetaState::RecTrim(&rec, obj, block, count);
  ApplyLocked(rec);
  if (pending_.size() > JournalBatchTarget()) return FlushLocked();
  return Status::Ok();
}

Status PoolImpl::CloneRange(ObjectId src, uint64_t src_block, ObjectId dst, uint64_t dst_block, uint64_t count) {
  if (count == 0) return Status::Ok();
  std::lock_guard<std::mutex> wl(write_mu_);
  InvalidateOnExit invalidate(readahead_.get(), dst);
  ASTRA_RETURN_IF_ERROR(CheckWritable());
  Encoder rec;
  MetaState::RecClone(&rec, src, src_block, dst, dst_block, count);
  ApplyLocked(rec);
  if (pending_.size() > JournalBatchTarget()) return FlushLocked();
  return Status::Ok();
}

uint64_t PoolImpl::ObjectBlockEnd(ObjectId obj) {
  std::shared_lock<std::shared_mutex> l(mu_);
  return state_.map().BlockEnd(obj);
}

std::optional<uint64_t> PoolImpl::NextMappedBlock(ObjectId obj, uint64_t block) {
  std::shared_lock<std::shared_mutex> l(mu_);
  return state_.map().NextMapped(obj, block);
}

uint64_t PoolImpl::ObjectMappedBlocks(ObjectId obj) {
  std::shared_lock<std::shared_mutex> l(mu_);
  return state_.ObjectMappedBlocks(obj);
}

// ============================================================================================
// Catalogue
// ============================================================================================

Result<std::string> PoolImpl::Get(std::string_view key) {
  std::shared_lock<std::shared_mutex> l(mu_);
  auto it = state_.catalog().find(std::string(key));
  if (it == state_.catalog().end()) return Status::NotFound("no catalogue key");
  return it->second;
}

Status PoolImpl::Scan(std::string_view begin, std::string_view end,
                      const std::function<bool(std::string_view, std::string_view)>& fn) {
  // Copy out in chunks so fn may call back into the pool.
  std::string from(begin);
  bool first = true;
  while (true) {
    std::vector<std::pair<std::string, std::string>> batch;
    {
      std::shared_lock<std::shared_mutex> l(mu_);
      const auto& c = state_.catalog();
      auto it = first ? c.lower_bound(from) : c.upper_bound(from);
      for (; it != c.end() && batch.size() < 256; ++it) {
        if (!end.empty() && std::string_view(it->first) >= end) break;
        batch.emplace_back(it->first, it->second);
      }
    }
    first = false;
    if (batch.empty()) return Status::Ok();
    for (auto& [k, v] : batch)
      if (!fn(k, v)) return Status::Ok();
    if (batch.size() < 256) return Status::Ok();
    from = batch.back().first;
  }
}

Status PoolImpl::Commit(const CatalogTxn& txn) {
  for (const auto& op : txn.ops) {
    if (op.key.size() > kCatalogKeyBytesMax) return Status::InvalidArgument("catalogue key too long");
    if (op.value.size() > kCatalogValueBytesMax) return Status::InvalidArgument("catalogue value too long");
  }
  std::lock_guard<std::mutex> wl(write_mu_);
  ASTRA_RETURN_IF_ERROR(CheckWritable());
  {
    std::shared_lock<std::shared_mutex> l(mu_);
    for (const auto& k : txn.expect_absent)
      if (state_.catalog().count(k)) return Status::Aborted("catalogue key exists");
  }
  Encoder rec;
  MetaState::RecCatalog(&rec, txn);
  ApplyLocked(rec);
  if (readahead_)
    for (const auto& op : txn.ops)
      if (op.kind == CatalogOp::Kind::kDeleteObject || op.kind == CatalogOp::Kind::kTruncateObject)
        readahead_->Invalidate(op.object);
  if (pending_.size() > JournalBatchTarget()) return FlushLocked();
  return Status::Ok();
}

Result<uint64_t> PoolImpl::AllocateId() {
  std::lock_guard<std::mutex> wl(write_mu_);
  ASTRA_RETURN_IF_ERROR(CheckWritable());
  uint64_t id = state_.next_id();
  Encoder rec;
  MetaState::RecNextId(&rec, id + 1);
  ApplyLocked(rec);
  return id;
}

// ============================================================================================
// Flush, journal, checkpoint, superblocks
// ============================================================================================

Status PoolImpl::Flush() {
  std::lock_guard<std::mutex> wl(write_mu_);
  if (closed_) return Status::InvalidArgument("pool is closed");
  if (read_only_) return fatal_.ok() ? Status::Ok() : fatal_;
  return FlushLocked();
}

std::vector<std::pair<uint32_t, Status>> PoolImpl::ToEveryMemberLocked(IoOp op, uint64_t offset_bytes,
                                                                      uint32_t length_bytes, void* buf) {
  IoWaiter waiter;
  std::vector<IoRequest> reqs(n_);
  std::vector<uint32_t> targets;
  for (uint32_t i = 0; i < n_; i++)
    if (MemberWritable(i)) {
      reqs[i] = IoRequest{op, offset_bytes, length_bytes, buf, {}, &waiter};
      targets.push_back(i);
    }
  waiter.Add(uint32_t(targets.size()));
  for (uint32_t i : targets) {
    IoRequest* rp = &reqs[i];
    members_[i]->dev->Submit(&rp, 1);
  }
  waiter.Wait();
  std::vector<std::pair<uint32_t, Status>> failed;
  for (uint32_t i : targets)
    if (!reqs[i].status.ok()) failed.emplace_back(i, reqs[i].status);
  return failed;
}

Status PoolImpl::FlushLocked() {
  bool buffered = false;
  for (const auto& st : streams_) buffered |= st.seg != kNoSegment && st.pos != st.disk_pos;
  if (pending_records_ == 0 && !dirty_ && !buffered) return Status::Ok();
  // 1. Data: pad the open stripes and write them out; then make them stable on every member.
  // Skipped when no data was written since the last flush (metadata-only batches: catalogue
  // transactions, trims): the flush after the journal write covers everything else.
  ASTRA_RETURN_IF_ERROR(WriteOutAllLocked());
  if (dirty_) {
    for (auto& [i, st] : ToEveryMemberLocked(IoOp::kFlush, 0, 0, nullptr))
      ASTRA_RETURN_IF_ERROR(FailMemberLocked(i, st));
    dirty_ = false;
  }
  // 2. Metadata: the journal batch that references the data, on every member, then stable.
  ASTRA_RETURN_IF_ERROR(WriteJournalBatchLocked());
  if (journal_used_ > sb_.journal_bytes / 2) return CheckpointLocked();
  return Status::Ok();
}

Status PoolImpl::WriteJournalBatchLocked() {
  if (pending_records_ == 0) return Status::Ok();
  uint32_t payload = uint32_t(pending_.size());
  uint32_t bytes = BatchBytes(payload);
  uint64_t pos = journal_pos_;
  uint64_t waste = 0;
  if (pos + bytes > sb_.journal_bytes) {
    waste = sb_.journal_bytes - pos;
    pos = 0;
  }
  // Never overwrite batches the newest checkpoint still needs: checkpoint instead.
  if (bytes > std::min<uint64_t>(sb_.journal_bytes / 4, kJournalProbeBytes) ||
      journal_used_ + waste + bytes > sb_.journal_bytes - kBlockBytes)
    return CheckpointLocked();
  AlignedBuf buf = AllocAligned(bytes);
  EncodeBatch(pool_tag_, next_seq_, pending_.buf().data(), payload, pending_records_, buf.get());
  for (auto& [i, st] : ToEveryMemberLocked(IoOp::kWrite, sb_.journal_offset_bytes + pos, bytes, buf.get())) {
    members_[i]->write_errors++;
    ASTRA_RETURN_IF_ERROR(FailMemberLocked(i, st));
  }
  for (auto& [i, st] : ToEveryMemberLocked(IoOp::kFlush, 0, 0, nullptr)) ASTRA_RETURN_IF_ERROR(FailMemberLocked(i, st));
  journal_pos_ = pos + bytes;
  if (journal_pos_ >= sb_.journal_bytes) journal_pos_ = 0;
  journal_used_ += waste + bytes;
  next_seq_++;
  pending_.Clear();
  pending_records_ = 0;
  // Everything applied so far is durable now, including the records that killed the
  // free-pending segments: they may be reused (no checkpoint needed; see doc/space.md).
  std::vector<uint32_t> freed;
  {
    std::unique_lock<std::shared_mutex> rl(reclaim_mu_);
    reclaim_gen_++;
    std::unique_lock<std::shared_mutex> l(mu_);
    freed = state_.ReleaseFreePending();
  }
  TrimSegmentsLocked(freed);
  return Status::Ok();
}

Status PoolImpl::WriteSuperblocksLocked() {
  sb_.generation++;
  AlignedBuf buf = AllocAligned(kSuperblockBytes);
  for (uint64_t off : {kSuperblockAOffset, kSuperblockBOffset}) {
    IoWaiter waiter;
    std::vector<IoRequest> reqs(n_);
    std::vector<AlignedBuf> bufs(n_);
    std::vector<bool> issued(n_, false);
    uint32_t count = 0;
    for (uint32_t i = 0; i < n_; i++) {
      if (!MemberWritable(i)) continue;
      Superblock m = sb_;
      m.member_index = i;
      m.member_uuid = members_[i]->uuid;
      bufs[i] = AllocAligned(kSuperblockBytes);
      EncodeSuperblock(m, bufs[i].get());
      reqs[i] = IoRequest{IoOp::kWrite, off, kSuperblockBytes, bufs[i].get(), {}, &waiter};
      issued[i] = true;
      count++;
    }
    waiter.Add(count);
    for (uint32_t i = 0; i < n_; i++)
      if (issued[i]) { IoRequest* rp = &reqs[i]; members_[i]->dev->Submit(&rp, 1); }
    waiter.Wait();
    uint32_t ok = 0;
    for (uint32_t i = 0; i < n_; i++) {
      if (!issued[i]) continue;
      Status s = reqs[i].status;
      if (s.ok()) s = members_[i]->dev->Flush();
      if (s.ok()) { ok++; members_[i]->sb_valid[off == kSuperblockAOffset ? 0 : 1] = true; continue; }
      members_[i]->write_errors++;
      // Mark failed without recursing into another superblock write: the next one records it.
      members_[i]->state = MemberState::kFailed;
      sb_.failed_members |= 1ull << i;
      for (auto& st : stale_) st |= 1ull << i;
    }
    if (UnavailableMembers() > m_ || ok == 0) {
      fatal_ = Status::IOError("cannot write superblocks to enough members; pool is read-only");
      read_only_ = true;
      return fatal_;
    }
  }
  return Status::Ok();
}

void PoolImpl::TrimSegmentsLocked(const std::vector<uint32_t>& freed) {
  // Trim reaches the devices: discard every column of the freed segments (sparse member files
  // shrink; SSDs learn the space is free). Best effort: a failed trim loses nothing.
  if (freed.empty()) return;
  IoWaiter waiter;
  std::vector<IoRequest> reqs;
  std::vector<uint32_t> owner;
  reqs.reserve(freed.size() * w_);
  for (uint32_t seg : freed)
    for (uint32_t c = 0; c < w_; c++) {
      uint32_t mi = place_.MemberOf(seg, c);
      if (!MemberWritable(mi) || !members_[mi]->dev->info().supports_trim) continue;
      reqs.push_back(IoRequest{IoOp::kTrim, place_.ColumnOffset(seg, c), uint32_t(sb_.segment_column_bytes), nullptr, {}, &waiter});
      owner.push_back(mi);
    }
  waiter.Add(uint32_t(reqs.size()));
  for (size_t i = 0; i < reqs.size(); i++) {
    IoRequest* rp = &reqs[i];
    members_[owner[i]]->dev->Submit(&rp, 1);
  }
  waiter.Wait();
  for (auto& r : reqs)
    if (!r.status.ok()) spdlog::debug("trim of a freed segment: {}", r.status.ToString());
  cleaner_.segments_trimmed += freed.size();
}

Status PoolImpl::CheckpointLocked() {
  ASTRA_RETURN_IF_ERROR(CheckWritable());
  // 1. Data stable (the checkpoint image references it).
  ASTRA_RETURN_IF_ERROR(WriteOutAllLocked());
  // 2. Image of everything applied so far (the pending journal records included).
  Encoder img;
  state_.Serialize(&img);
  const uint64_t sdb = StripeDataBytes(), segb = SegmentDataBytes();
  const uint64_t body = img.size();
  const uint32_t root_bytes = 64 + 16 * uint32_t(body / segb + 2);
  const uint64_t total = AlignUp(body, sdb) + AlignUp(root_bytes, sdb);
  const uint32_t nsegs = uint32_t((total + segb - 1) / segb);
  if (state_.free_segments().size() < nsegs)
    return Status::NoSpace("no free segments for a checkpoint (" + std::to_string(nsegs) + " needed)");
  std::vector<uint32_t> segs;
  {
    std::unique_lock<std::shared_mutex> l(mu_);
    auto it = state_.free_segments().begin();
    for (uint32_t i = 0; i < nsegs; i++) segs.push_back(*it++);
    for (uint32_t s : segs) {
      state_.MarkCheckpointSegment(s);
      for (uint32_t i = 0; i < n_; i++) {
        if (members_[i]->state == MemberState::kOnline) stale_[s] &= ~(1ull << i);
        else stale_[s] |= 1ull << i;
      }
    }
  }
  // Lay the image out: body pieces fill segments in order; the root follows the body.
  struct PieceLoc { uint32_t seg, off, len, crc; };
  std::vector<PieceLoc> pieces;
  std::vector<uint8_t> layout(size_t(nsegs) * segb, 0);
  uint64_t at = 0;
  for (uint64_t done = 0; done < body;) {
    uint64_t seg_i = at / segb, in = at % segb;
    uint32_t len = uint32_t(std::min<uint64_t>(segb - in, body - done));
    std::memcpy(&layout[at], img.buf().data() + done, len);
    pieces.push_back({segs[seg_i], uint32_t(in), len, Crc32c(img.buf().data() + done, len)});
    done += len;
    at += len;
  }
  at = AlignUp(at, sdb);
  if (at % segb + root_bytes > segb) at = AlignUp(at, segb);
  Encoder root;
  root.U32(kRootMagic);
  root.U64(next_seq_);
  root.U64(body);
  root.U32(Crc32c(img.buf().data(), body));
  root.U32(uint32_t(pieces.size()));
  for (auto& p : pieces) { root.U32(p.seg); root.U32(p.off); root.U32(p.len); root.U32(p.crc); }
  assert(root.size() <= root_bytes);
  ExtentLoc root_loc{segs[at / segb], uint32_t(at % segb), uint32_t(root.size()), Crc32c(root.buf().data(), root.size())};
  std::memcpy(&layout[at], root.buf().data(), root.size());
  uint64_t used_end = at + root.size();
  for (uint32_t si = 0; si < nsegs; si++) {
    uint64_t seg_used = std::min<uint64_t>(segb, used_end > uint64_t(si) * segb ? used_end - uint64_t(si) * segb : 0);
    uint32_t rows = uint32_t(AlignUp(seg_used, sdb) / sdb);
    for (uint32_t r = 0; r < rows; r += batch_rows_) {
      uint32_t nr = std::min(batch_rows_, rows - r);
      // The batch copies the rows at once: `layout` may change before the write completes.
      ASTRA_RETURN_IF_ERROR(StartRowsLocked(segs[si], r, nr, &layout[uint64_t(si) * segb + uint64_t(r) * sdb], nullptr));
    }
  }
  ASTRA_RETURN_IF_ERROR(DrainWritesLocked());
  for (auto& [i, st] : ToEveryMemberLocked(IoOp::kFlush, 0, 0, nullptr)) ASTRA_RETURN_IF_ERROR(FailMemberLocked(i, st));
  // 3. Switch: superblocks name the new checkpoint; the journal restarts where it stands.
  Superblock prev = sb_;
  sb_.checkpoint_root = root_loc;
  sb_.journal_head_offset = journal_pos_;
  sb_.journal_head_seq = next_seq_;
  Status s = WriteSuperblocksLocked();
  if (!s.ok()) {
    sb_.checkpoint_root = prev.checkpoint_root;
    sb_.journal_head_offset = prev.journal_head_offset;
    sb_.journal_head_seq = prev.journal_head_seq;
    return s;
  }
  pending_.Clear();
  pending_records_ = 0;
  journal_head_ = journal_pos_;
  journal_used_ = 0;
  // 4. What the old checkpoint and the old journal pinned is free now.
  std::vector<uint32_t> freed;
  {
    std::unique_lock<std::shared_mutex> rl(reclaim_mu_);
    reclaim_gen_++;
    std::unique_lock<std::shared_mutex> l(mu_);
    freed = state_.ReleaseAfterCheckpoint(ckpt_segments_);
  }
  ckpt_segments_ = segs;
  TrimSegmentsLocked(freed);
  return Status::Ok();
}

Status PoolImpl::Checkpoint() {
  std::lock_guard<std::mutex> wl(write_mu_);
  return CheckpointLocked();
}

Status PoolImpl::LoadCheckpoint() {
  const ExtentLoc& r = sb_.checkpoint_root;
  if (r.segment == kNoSegment) return Status::Ok();  // a new pool
  const uint64_t segb = SegmentDataBytes();
  if (r.length < 24 || r.length > 1u << 20 || uint64_t(r.offset) + r.length > segb)
    return Status::Corruption("superblock: checkpoint root location out of range");
  std::vector<uint8_t> root(r.length);
  bool rebuilt;
  ASTRA_RETURN_IF_ERROR(ReadStored(r.segment, r.offset, r.length, r.crc, root.data(), &rebuilt)
                            .Annotate("checkpoint root (segment " + std::to_string(r.segment) + ")"));
  Decoder d(root.data(), root.size());
  if (d.U32() != kRootMagic) return Status::Corruption("checkpoint root: bad magic");
  uint64_t seq = d.U64(), body = d.U64();
  uint32_t crc = d.U32(), np = d.U32();
  if (!d.ok() || seq != sb_.journal_head_seq || np > sb_.segments || body > uint64_t(np) * segb)
    return Status::Corruption("checkpoint root: fields out of range");
  std::vector<uint8_t> img(body);
  uint64_t at = 0;
  std::vector<uint32_t> segs{r.segment};
  for (uint32_t i = 0; i < np; i++) {
    uint32_t s = d.U32(), off = d.U32(), len = d.U32();
    if (s >= sb_.segments || uint64_t(off) + len > segb || at + len > body)
      return Status::Corruption("checkpoint root: piece out of range");
    uint32_t pcrc = d.U32();
    if (!d.ok()) return Status::Corruption("checkpoint root: truncated");
    ASTRA_RETURN_IF_ERROR(ReadStored(s, off, len, pcrc, &img[at], &rebuilt)
                              .Annotate("checkpoint piece in segment " + std::to_string(s)));
    at += len;
    if (std::find(segs.begin(), segs.end(), s) == segs.end()) segs.push_back(s);
  }
  if (at != body) return Status::Corruption("checkpoint root: pieces do not cover the image");
  if (Crc32c(img.data(), body) != crc) return Status::Corruption("checkpoint image checksum mismatch");
  ASTRA_RETURN_IF_ERROR(state_.Deserialize(img.data(), body));
  for (uint32_t s : segs) state_.MarkCheckpointSegment(s);
  ckpt_segments_ = segs;
  return Status::Ok();
}

Status PoolImpl::ReplayJournal(uint64_t* end_offset, uint64_t* next_seq, uint64_t* batches) {
  // Follow each online member's chain; take the longest (a flush completes on all members).
  struct Chain { uint32_t member; uint64_t end; std::vector<std::vector<uint8_t>> batches; };
  Chain best{UINT32_MAX, sb_.journal_head_offset, {}};
  const uint64_t J = sb_.journal_bytes;
  uint64_t later_seq = 0;
  for (uint32_t i = 0; i < n_; i++) {
    if (members_[i]->state != MemberState::kOnline) continue;
    Chain c{i, sb_.journal_head_offset, {}};
    uint64_t pos = sb_.journal_head_offset, seq = sb_.journal_head_seq;
    AlignedBuf hdr = AllocAligned(kBlockBytes);
    for (int wrapped = 0; c.batches.size() < 1000000;) {
      BatchHeader h;
      bool ok = members_[i]->dev->Read(sb_.journal_offset_bytes + pos, hdr.get(), kBlockBytes).ok() &&
                DecodeBatchHeader(hdr.get(), pool_tag_, seq, J, &h) && pos + h.batch_bytes <= J;
      if (!ok) {
        if (pos != 0 && !wrapped) { pos = 0; wrapped = 1; continue; }
        break;
      }
      AlignedBuf b = AllocAligned(h.batch_bytes);
      if (!members_[i]->dev->Read(sb_.journal_offset_bytes + pos, b.get(), h.batch_bytes).ok() ||
          !VerifyBatchPayload(h, b.get())) {
        if (pos != 0 && !wrapped) { pos = 0; wrapped = 1; continue; }
        break;
      }
      wrapped = 0;
      c.batches.emplace_back(b.get(), b.get() + h.batch_bytes);
      pos += h.batch_bytes;
      if (pos >= J) pos = 0;
      c.end = pos;
      seq++;
    }
    // Is this the end of the journal, or a damaged batch with later ones behind it? Only the
    // newest batch can be torn (the next is written after it is stable on every member). A
    // batch is at most kJournalProbeBytes, so the next one starts within that much (or at 0).
    {
      const uint64_t span = std::min<uint64_t>(J - pos, kJournalProbeBytes + kBlockBytes);
      AlignedBuf probe = AllocAligned(span);
      if (members_[i]->dev->Read(sb_.journal_offset_bytes + pos, probe.get(), uint32_t(span)).ok()) {
        BatchHeader h;
        for (uint64_t at = kBlockBytes; at < span; at += kBlockBytes)
          if (DecodeBatchHeader(probe.get() + at, pool_tag_, seq + 1, J, &h)) later_seq = std::max(later_seq, seq + 1);
      }
      BatchHeader h;
      if (pos != 0 && members_[i]->dev->Read(sb_.journal_offset_bytes, hdr.get(), kBlockBytes).ok() &&
          DecodeBatchHeader(hdr.get(), pool_tag_, seq + 1, J, &h))
        later_seq = std::max(later_seq, seq + 1);
    }
    if (best.member == UINT32_MAX || c.batches.size() > best.batches.size()) best = std::move(c);
  }
  if (later_seq > sb_.journal_head_seq + best.batches.size())
    return Status::Corruption("journal batch " + std::to_string(sb_.journal_head_seq + best.batches.size()) +
                              " is damaged on every member, but later batches exist: opening would lose "
                              "acknowledged writes; the member journals need repair")
        .WithDataLoss();
  uint64_t seq = sb_.journal_head_seq;
  for (auto& b : best.batches) {
    BatchHeader h;
    DecodeBatchHeader(b.data(), pool_tag_, seq, J, &h);
    Status s = state_.ApplyAll(b.data() + kJournalHeaderBytes, h.payload_bytes, h.records);
    if (!s.ok()) return s.Annotate("journal batch " + std::to_string(seq));
    seq++;
  }
  *end_offset = best.end;
  *next_seq = seq;
  *batches = best.batches.size();
  return Status::Ok();
}

// ============================================================================================
// Check / scrub / rebuild / status
// ============================================================================================

Result<CheckReport> PoolImpl::Check(bool repair, const ProgressFn& progress) {
  std::lock_guard<std::mutex> wl(write_mu_);
  if (closed_) return Status::InvalidArgument("pool is closed");
  const bool fix = repair && !read_only_;
  if (fix) ASTRA_RETURN_IF_ERROR(WriteOutAllLocked());
  CheckReport rep;
  auto problem = [&](std::string p) {
    if (rep.problems.size() < 1000) rep.problems.push_back(std::move(p));
  };
  // Superblock copies.
  for (uint32_t i = 0; i < n_; i++) {
    if (members_[i]->state != MemberState::kOnline) continue;
    for (int c = 0; c < 2; c++)
      if (!members_[i]->sb_valid[c]) {
        rep.other_errors++;
        problem(MemberName(i, members_[i]->dev.get()) + ": superblock " + (c ? "B" : "A") + " invalid");
      }
  }
  if (fix && rep.other_errors) {
    ASTRA_RETURN_IF_ERROR(WriteSuperblocksLocked());
    rep.repaired += rep.other_errors;
  }
  // Derived metadata: reference counts, live bytes, dedup index.
  {
    std::shared_lock<std::shared_mutex> l(mu_);
    std::vector<std::string> p;
    rep.refcount_errors = state_.VerifyDerived(&p);
    for (auto& x : p) problem(std::move(x));
    rep.blocks_mapped = state_.mapped_blocks();
  }
  const uint64_t sdb = StripeDataBytes();
  auto row_key = [](uint32_t seg, uint32_t row) { return (uint64_t(seg) << 32) | row; };
  std::set<uint64_t> bad_rows;
  // Extents grouped by segment, so every segment is read once, in large sequential I/Os.
  std::vector<std::vector<uint32_t>> by_seg(state_.segments());
  for (uint32_t id = 0; id < state_.ExtentCount(); id++)
    if (state_.ExtentUsed(id)) by_seg[state_.extent(id).segment].push_back(id);
  uint64_t total = 0, done = 0;
  for (uint32_t s = 0; s < state_.segments(); s++) {
    total += by_seg[s].size();
    // By offset: the blocks of a frame are neighbours, so the frame is decoded once.
    std::sort(by_seg[s].begin(), by_seg[s].end(), [&](uint32_t a, uint32_t b) {
      return state_.extent(a).offset != state_.extent(b).offset ? state_.extent(a).offset < state_.extent(b).offset : a < b;
    });
  }
  std::unique_ptr<uint8_t[]> stored_buf(new uint8_t[kStoredBytesMax]), frame_buf(new uint8_t[kStoredBytesMax]);
  uint8_t* const stored = stored_buf.get();
  uint8_t* const frame = frame_buf.get();
  uint8_t block[kBlockBytes];
  // The frame whose decoded bytes are in `frame` (segment, offset, crc), if any.
  struct { uint32_t seg = kNoSegment, off = 0, crc = 0; } decoded;
  std::vector<AlignedBuf> cols(w_);
  for (uint32_t c = 0; c < w_; c++) cols[c] = AllocAligned(sb_.segment_column_bytes);
  std::vector<AlignedBuf> parity(m_);
  for (uint32_t c = 0; c < m_; c++) parity[c] = AllocAligned(chunk_);
  // Verifies one extent whose stored bytes are in `stored`; `rebuilt` if they needed parity.
  auto verify_extent = [&](uint32_t id, const Extent& x, Status s, bool rebuilt) {
    rep.extents_checked++;
    if (s.ok() && FrameBlocks(x) > 1) {
      if (!(decoded.seg == x.segment && decoded.off == x.offset && decoded.crc == x.crc)) {
        decoded.seg = kNoSegment;
        s = DecodeFrame(x, stored, frame);
        if (s.ok()) decoded = {x.segment, x.offset, x.crc};
      }
      if (s.ok()) std::memcpy(block, frame + uint64_t(FrameIndex(x)) * kBlockBytes, kBlockBytes);
    } else if (s.ok()) {
      s = DecodeBlock(x, stored, block);
    }
    if (!s.ok()) {
      rep.checksum_errors++;
      problem("extent " + std::to_string(id) + " (segment " + std::to_string(x.segment) + " offset " +
              std::to_string(x.offset) + "): " + s.ToString());
      return;
    }
    if (rebuilt) {
      rep.checksum_errors++;
      problem("extent " + std::to_string(id) + " (segment " + std::to_string(x.segment) +
              "): bad chunk, rebuilt from parity");
      const uint32_t r0 = uint32_t(x.offset / sdb), r1 = uint32_t((uint64_t(x.offset) + x.length - 1) / sdb);
      for (uint32_t r = r0; r <= r1; r++) bad_rows.insert(row_key(x.segment, r));
    }
    const uint64_t fp = state_.fingerprint(id);
    if (fp != 0 && sb_.dedup && !opts_.force_fingerprint && Fingerprint(block) != fp) {
      rep.other_errors++;
      problem("extent " + std::to_string(id) + ": stored block does not match its dedup fingerprint");
    }
  };
  for (uint32_t s = 0; s < state_.segments(); s++) {
    const SegmentInfo& g = state_.seg(s);
    if (g.state != SegState::kOpen && g.state != SegState::kSealed) continue;
    if (by_seg[s].empty()) continue;  // dead segment: nothing to verify or protect
    if (progress) progress(done, total, "segments");
    uint32_t rows = g.written_stripes;
    for (const auto& st : streams_)
      if (s == st.seg) rows = uint32_t(st.disk_pos / sdb);
    // Read every column of the written rows: one request per MiB per member, all in flight.
    std::vector<bool> col_ok(w_, false);
    if (rows > 0) {
      IoWaiter waiter;
      std::vector<IoRequest> reqs;
      std::vector<uint32_t> req_col;
      const uint64_t bytes = uint64_t(rows) * chunk_;
      for (uint32_t c = 0; c < w_; c++) {
        uint32_t mi = place_.MemberOf(s, c);
        if (!ColumnReadable(s, mi)) continue;
        col_ok[c] = true;
        for (uint64_t o = 0; o < bytes; o += kDeviceIoBytesMax) {
          reqs.push_back(IoRequest{IoOp::kRead, place_.ColumnOffset(s, c) + o,
                                   uint32_t(std::min<uint64_t>(kDeviceIoBytesMax, bytes - o)),
                                   cols[c].get() + o, {}, &waiter});
          req_col.push_back(c);
        }
      }
      waiter.Add(uint32_t(reqs.size()));
      for (size_t i = 0; i < reqs.size(); i++) {
        IoRequest* rp = &reqs[i];
        members_[place_.MemberOf(s, req_col[i])]->dev->Submit(&rp, 1);
      }
      waiter.Wait();
      for (size_t i = 0; i < reqs.size(); i++)
        if (!reqs[i].status.ok()) {
          col_ok[req_col[i]] = false;
          members_[place_.MemberOf(s, req_col[i])]->read_errors++;
        }
    }
    // Parity of every written row that holds live data.
    std::set<uint32_t> live;
    for (uint32_t id : by_seg[s]) {
      const Extent& x = state_.extent(id);
      const uint32_t r0 = uint32_t(x.offset / sdb), r1 = uint32_t((uint64_t(x.offset) + x.length - 1) / sdb);
      for (uint32_t r = r0; r <= r1 && r < rows; r++) live.insert(r);
    }
    bool all_cols = true;
    for (uint32_t c = 0; c < w_; c++) all_cols = all_cols && col_ok[c];
    if (all_cols) {
      std::vector<uint8_t*> dp(k_), pp(m_);
      for (uint32_t c = 0; c < m_; c++) pp[c] = parity[c].get();
      for (uint32_t r : live) {
        for (uint32_t c = 0; c < k_; c++) dp[c] = cols[c].get() + uint64_t(r) * chunk_;
        rep.stripes_checked++;
        ec_->Encode(chunk_, dp.data(), pp.data());
        for (uint32_t c = 0; c < m_; c++)
          if (std::memcmp(pp[c], cols[k_ + c].get() + uint64_t(r) * chunk_, chunk_) != 0) {
            rep.parity_errors++;
            problem("segment " + std::to_string(s) + " stripe " + std::to_string(r) + ": parity " +
                    std::to_string(c) + " does not match the data");
            bad_rows.insert(row_key(s, r));
            break;
          }
      }
    }
    // Every extent from the column buffers; the reconstructing read path only where that fails.
    // The previous extent's stored range, when its bytes (in `stored`) were verified: the other
    // blocks of that frame need no second read (and a bad chunk is reported once).
    struct { uint32_t off = UINT32_MAX, crc = 0; } have;
    for (uint32_t id : by_seg[s]) {
      done++;
      Extent x = state_.extent(id);
      if (x.offset == have.off && x.crc == have.crc) {
        verify_extent(id, x, Status::Ok(), false);
        continue;
      }
      have.off = UINT32_MAX;
      if (const OpenSegment* os = BufferedStream(x)) {
        CopyFromRing(*os, x.offset, x.length, stored);
        verify_extent(id, x, Crc32c(stored, x.length) == x.crc ? Status::Ok()
                                                               : Status::Corruption("buffered extent checksum"), false);
        continue;
      }
      bool from_cols = true;
      for (uint64_t d = x.offset; d < uint64_t(x.offset) + x.length && from_cols;) {
        const uint64_t row = d / sdb;
        const uint32_t c = uint32_t((d % sdb) / chunk_), in = uint32_t(d % chunk_);
        const uint32_t plen = uint32_t(std::min<uint64_t>(chunk_ - in, uint64_t(x.offset) + x.length - d));
        if (row >= rows || !col_ok[c]) {
          from_cols = false;
          break;
        }
        std::memcpy(stored + (d - x.offset), cols[c].get() + row * chunk_ + in, plen);
        d += plen;
      }
      if (from_cols && Crc32c(stored, x.length) == x.crc) {
        verify_extent(id, x, Status::Ok(), false);
        have = {x.offset, x.crc};
        continue;
      }
      // Here either a column is unavailable (degraded: rebuilding is expected, not an error) or
      // the bytes read do not match their checksum (an error, repaired from parity if possible).
      bool rebuilt = false;
      Status rs = ReadStored(x.segment, x.offset, x.length, x.crc, stored, &rebuilt);
      verify_extent(id, x, rs, from_cols);
      if (rs.ok()) have = {x.offset, x.crc};
    }
  }
  if (fix && !bad_rows.empty()) {
    // Restore redundancy by moving every live extent out of a damaged stripe (never in place);
    // the stripe is dead afterwards and its segment is reclaimed like any other.
    // Grouped by stored range, so a frame moves once with all its live blocks.
    std::map<std::pair<uint32_t, uint32_t>, std::vector<uint32_t>> hits;
    for (uint32_t id = 0; id < state_.ExtentCount(); id++) {
      if (!state_.ExtentUsed(id)) continue;
      Extent x = state_.extent(id);
      const uint32_t r0 = uint32_t(x.offset / sdb), r1 = uint32_t((uint64_t(x.offset) + x.length - 1) / sdb);
      bool hit = false;
      for (uint32_t r = r0; r <= r1 && !hit; r++) hit = bad_rows.count(row_key(x.segment, r)) > 0;
      if (hit) hits[{x.segment, x.offset}].push_back(id);
    }
    for (const auto& [where, ids] : hits) {
      Extent x = state_.extent(ids[0]);
      bool rebuilt;
      if (ReadStored(x.segment, x.offset, x.length, x.crc, stored, &rebuilt).ok() &&
          RelocateFrameLocked(ids, stored, x.length, /*repack=*/true).ok())
        rep.repaired += ids.size();
    }
  }
  if (progress) progress(total, total, "done");
  if (fix) FailNoisyMembersLocked();
  if (fix && rep.repaired) ASTRA_RETURN_IF_ERROR(FlushLocked());
  return rep;
}

Result<CheckReport> PoolImpl::Scrub(const ProgressFn& progress) { return Check(true, progress); }

Status PoolImpl::ReplaceMember(uint32_t index, std::unique_ptr<Device> dev, const ProgressFn& progress) {
  if (index >= n_) return Status::InvalidArgument("no member " + std::to_string(index));
  if (!dev) return Status::InvalidArgument("no replacement device");
  if (dev->info().size_bytes < sb_.member_size_bytes)
    return Status::InvalidArgument(dev->info().path + " is smaller than the pool's member size (" +
                                   std::to_string(sb_.member_size_bytes) + " bytes)");
  std::vector<uint32_t> todo;
  {
    std::lock_guard<std::mutex> wl(write_mu_);
    ASTRA_RETURN_IF_ERROR(CheckWritable());
    for (auto& st : streams_) ASTRA_RETURN_IF_ERROR(SealOpenSegmentLocked(st));
    ASTRA_RETURN_IF_ERROR(FlushLocked());
    Member& m = *members_[index];
    {
      std::unique_lock<std::shared_mutex> rl(reclaim_mu_);
      reclaim_gen_++;
      std::unique_lock<std::shared_mutex> l(mu_);
      m.dev = std::move(dev);
      m.read_errors = m.write_errors = m.checksum_errors = 0;
      m.uuid = NewUuid();
      sb_.member_uuids[index] = m.uuid;
      m.state = MemberState::kRebuilding;
      for (auto& s : stale_) s |= 1ull << index;
      sb_.failed_members &= ~(1ull << index);
      sb_.rebuilding_members |= 1ull << index;
    }
    // Its journal region must not hold another pool's batches; its superblocks name it.
    AlignedBuf zero = AllocAligned(1u << 20);
    std::memset(zero.get(), 0, 1u << 20);
    ASTRA_RETURN_IF_ERROR(m.dev->Write(sb_.journal_offset_bytes, zero.get(), 1u << 20));
    ASTRA_RETURN_IF_ERROR(CheckpointLocked());
    for (uint32_t s = 0; s < state_.segments(); s++) {
      auto st = state_.seg(s).state;
      if ((st == SegState::kSealed || st == SegState::kCheckpoint || st == SegState::kOpen) &&
          place_.ColumnOn(s, index) >= 0 && (stale_[s] >> index & 1))
        todo.push_back(s);
    }
  }
  uint64_t done = 0;
  std::vector<AlignedBuf> chunks(w_);
  for (uint32_t c = 0; c < w_; c++) chunks[c] = AllocAligned(chunk_);
  std::vector<uint8_t*> cp(w_);
  for (uint32_t c = 0; c < w_; c++) cp[c] = chunks[c].get();
  for (uint32_t s : todo) {
    if (progress) progress(done, todo.size(), "rebuild");
    done++;
    std::lock_guard<std::mutex> wl(write_mu_);
    ASTRA_RETURN_IF_ERROR(CheckWritable());
    const SegmentInfo& g = state_.seg(s);
    if (!(stale_[s] >> index & 1)) continue;
    uint32_t rows = g.written_stripes;
    if (g.state == SegState::kCheckpoint || g.state == SegState::kFree || g.state == SegState::kFreePending)
      rows = g.state == SegState::kCheckpoint ? StripesPerSegment() : 0;
    int col = place_.ColumnOn(s, index);
    for (uint32_t r = 0; r < rows; r++) {
      std::vector<uint32_t> erased;
      ReadRow(s, r, cp.data(), &erased);  // the stale column is reported erased
      if (std::find(erased.begin(), erased.end(), uint32_t(col)) == erased.end()) erased.push_back(col);
      Status st = ec_->Reconstruct(chunk_, cp.data(), erased);
      if (!st.ok()) return st.Annotate("rebuild of segment " + std::to_string(s) + " stripe " + std::to_string(r));
      st = members_[index]->dev->Write(place_.ColumnOffset(s, col) + uint64_t(r) * chunk_, cp[col], chunk_);
      if (!st.ok()) return st.Annotate("rebuild write to the new member");
    }
    std::unique_lock<std::shared_mutex> l(mu_);
    stale_[s] &= ~(1ull << index);
  }
  std::lock_guard<std::mutex> wl(write_mu_);
  ASTRA_RETURN_IF_ERROR(members_[index]->dev->Flush());
  {
    std::unique_lock<std::shared_mutex> l(mu_);
    for (auto& s : stale_) s &= ~(1ull << index);
    members_[index]->state = MemberState::kOnline;
    sb_.rebuilding_members &= ~(1ull << index);
  }
  if (progress) progress(todo.size(), todo.size(), "rebuild");
  return CheckpointLocked();
}

ObjectSpaceStats PoolImpl::GetObjectSpace(ObjectId obj) {
  ObjectSpaceStats o;
  std::shared_lock<std::shared_mutex> l(mu_);
  double stored = 0, dedup = 0, comp = 0;
  state_.map().ForEachIn(obj, 0, UINT64_MAX, [&](uint64_t, uint32_t id) {
    const Extent& x = state_.extent(id);
    const double refs = std::max<uint32_t>(x.refs, 1), charge = ExtentCharge(x);
    o.logical_bytes += kBlockBytes;
    stored += charge / refs;
    dedup += kBlockBytes * (refs - 1) / refs;
    comp += (double(kBlockBytes) - std::min<double>(charge, kBlockBytes)) / refs;
    if (x.refs <= 1) o.exclusive_stored_bytes += uint64_t(charge);
  });
  o.stored_bytes = uint64_t(stored + 0.5);
  o.dedup_saved_bytes = uint64_t(dedup + 0.5);
  o.compression_saved_bytes = uint64_t(comp + 0.5);
  o.data_reduction_ratio = o.stored_bytes ? double(o.logical_bytes) / double(o.stored_bytes) : 1.0;
  return o;
}

PoolStatus PoolImpl::GetStatus() {
  PoolStatus st;
  std::shared_lock<std::shared_mutex> l(mu_);
  st.pool_uuid = UuidToString(sb_.pool_uuid);
  st.data_shards = k_;
  st.parity_shards = m_;
  st.members = n_;
  st.generation = sb_.generation;
  st.read_only = read_only_;
  st.compression = Compression(sb_.compression);
  st.compression_level = sb_.compression_level;
  st.dedup = sb_.dedup != 0;
  for (uint32_t i = 0; i < n_; i++) {
    MemberStatus ms;
    ms.index = i;
    ms.state = members_[i]->state;
    if (members_[i]->dev) {
      ms.path = members_[i]->dev->info().path;
      ms.backend = members_[i]->dev->info().backend;
    }
    ms.read_errors = members_[i]->read_errors;
    ms.write_errors = members_[i]->write_errors;
    ms.checksum_errors = members_[i]->checksum_errors;
    if (ms.state != MemberState::kOnline) st.degraded = true;
    st.member_status.push_back(ms);
  }
  SpaceStats& sp = st.space;
  sp.logical_bytes = state_.mapped_blocks() * kBlockBytes;
  sp.stored_bytes = state_.stored_bytes();
  sp.zero_saved_bytes = state_.zero_blocks() * kBlockBytes;
  sp.dedup_saved_bytes = state_.shared_blocks() * kBlockBytes;
  sp.compression_saved_bytes = state_.used_extents() * kBlockBytes - std::min(state_.used_extents() * kBlockBytes, state_.stored_bytes());
  sp.raw_bytes = sp.stored_bytes * w_ / k_;
  sp.capacity_bytes = UserCapacityBytes();
  uint64_t free_segs = state_.free_segments().size(), pend = 0, reclaim = 0;
  for (uint32_t s = 0; s < state_.segments(); s++) {
    const auto& g = state_.seg(s);
    if (g.state == SegState::kFreePending) pend++;
    if (g.state == SegState::kSealed) reclaim += uint64_t(g.written_stripes) * StripeDataBytes() - std::min<uint64_t>(g.live_bytes, uint64_t(g.written_stripes) * StripeDataBytes());
  }
  uint64_t reserve = ReserveSegments();
  uint64_t usable = free_segs + pend > reserve ? free_segs + pend - reserve : 0;
  const OpenSegment& hot = streams_[kHot];
  const uint64_t physical_free = usable * SegmentDataBytes() + (hot.seg == kNoSegment ? 0 : SegmentDataBytes() - hot.pos);
  const uint64_t logical_free = sp.capacity_bytes > sp.stored_bytes ? sp.capacity_bytes - sp.stored_bytes : 0;
  // What the cleaner can still turn into free segments counts as free for users.
  sp.free_bytes = std::max(std::min(logical_free, physical_free + reclaim), std::min(logical_free, physical_free));
  sp.reclaimable_bytes = reclaim + pend * SegmentDataBytes();
  sp.data_reduction_ratio = sp.stored_bytes ? double(sp.logical_bytes) / double(sp.stored_bytes) : 1.0;
  st.segments_total = state_.segments();
  st.segments_free = free_segs;
  st.journal_seq = next_seq_;
  st.checkpoint_seq = sb_.journal_head_seq;
  st.repaired_blocks = repaired_;
  st.dedup_window_hits = dedup_window_hits_;
  st.cleaner = cleaner_;
  st.read_poll_us = opts_.read_poll_us;
  if (readahead_) {
    ReadaheadStats ra = readahead_->stats();
    st.readahead_hit_blocks = ra.hit_blocks;
    st.readahead_filled_blocks = ra.filled_blocks;
    st.readahead_dropped_blocks = ra.dropped_blocks;
    st.readahead_pending_windows = ra.pending_windows;
  }
  return st;
}

}  // namespace astra
