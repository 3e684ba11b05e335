#include "meta_state.h"

#include <cassert>

namespace astra {

namespace {
constexpr uint32_t kCheckpointMagic = 0x4B504341;  // "ACPK"
// One extent entry of the checkpoint image: id u32, segment u32, offset u32, length u16,
// flags u8, crc u32, refs u32, fingerprint u64 (doc/format/).
constexpr size_t kImageExtentBytes = 31;
constexpr uint32_t kCheckpointVersion = 1;

void BeginRec(Encoder* e, RecordType t, size_t* len_pos) {
  e->U8(uint8_t(t));
  *len_pos = e->size();
  e->U32(0);
}
void EndRec(Encoder* e, size_t len_pos) {
  PutU32(e->buf().data() + len_pos, uint32_t(e->size() - len_pos - 4));
}
}  // namespace

void MetaState::Init(uint64_t segments, bool dedup, uint64_t capacity_bytes) {
  dedup_enabled_ = dedup;
  // Smallest possible stored extent is a few bytes; bound ids so a corrupt id cannot make the
  // extent table allocate more than the pool could ever hold.
  max_extents_ = std::min<uint64_t>(kExtentsMax, capacity_bytes / 8 + 1024);
  segs_.assign(segments, SegmentInfo{});
  free_segs_.clear();
  for (uint32_t s = 0; s < segments; s++) free_segs_.insert(s);
}

bool ExtentShapeValid(uint32_t length, uint8_t flags) {
  const uint32_t n = FlagsFrameBlocks(flags), i = FlagsFrameIndex(flags);
  const uint8_t c = flags & kExtentCompressionMask;
  if (i >= n || length == 0 || (c != kExtentRaw && c != kExtentZstd)) return false;
  if (n == 1) return c == kExtentRaw ? length == kBlockBytes : length <= kBlockBytes;
  return c == kExtentZstd && length <= n * kBlockBytes;
}

// ---------------- record builders ----------------

void MetaState::RecNewExtent(Encoder* e, uint32_t id, const Extent& x, uint64_t fingerprint) {
  size_t p;
  BeginRec(e, RecordType::kNewExtent, &p);
  e->U32(id); e->U32(x.segment); e->U32(x.offset); e->U32(x.length); e->U8(x.flags);
  e->U32(x.crc); e->U64(fingerprint);
  EndRec(e, p);
}
void MetaState::RecMap(Encoder* e, uint64_t obj, uint64_t block, const uint32_t* ids, uint32_t count) {
  size_t p;
  BeginRec(e, RecordType::kMapBlocks, &p);
  e->U64(obj); e->U64(block); e->U32(count);
  for (uint32_t i = 0; i < count; i++) e->U32(ids[i]);
  EndRec(e, p);
}
void MetaState::RecTrim(Encoder* e, uint64_t obj, uint64_t block, uint64_t count) {
  size_t p;
  BeginRec(e, RecordType::kTrimBlocks, &p);
  e->U64(obj); e->U64(block); e->U64(count);
  EndRec(e, p);
}
void MetaState::RecCatalog(Encoder* e, const CatalogTxn& txn) {
  size_t p;
  BeginRec(e, RecordType::kCatalogTxn, &p);
  e->U32(uint32_t(txn.ops.size()));
  for (const auto& op : txn.ops) {
    e->U8(uint8_t(op.kind)); e->Str(op.key); e->Str(op.value); e->U64(op.object); e->U64(op.block);
  }
  EndRec(e, p);
}
void MetaState::RecSegOpen(Encoder* e, uint32_t seg, SegKind kind) {
  size_t p;
  BeginRec(e, RecordType::kSegmentOpen, &p);
  e->U32(seg); e->U8(uint8_t(kind));
  EndRec(e, p);
}
void MetaState::RecSegAdvance(Encoder* e, uint32_t seg, uint32_t stripes) {
  size_t p;
  BeginRec(e, RecordType::kSegmentAdvance, &p);
  e->U32(seg); e->U32(stripes);
  EndRec(e, p);
}
void MetaState::RecSegSeal(Encoder* e, uint32_t seg) {
  size_t p;
  BeginRec(e, RecordType::kSegmentSeal, &p);
  e->U32(seg);
  EndRec(e, p);
}
void MetaState::RecNextId(Encoder* e, uint64_t next) {
  size_t p;
  BeginRec(e, RecordType::kNextId, &p);
  e->U64(next);
  EndRec(e, p);
}
void MetaState::RecClone(Encoder* e, uint64_t src, uint64_t sb, uint64_t dst, uint64_t db, uint64_t n) {
  size_t p;
  BeginRec(e, RecordType::kCloneRange, &p);
  e->U64(src); e->U64(sb); e->U64(dst); e->U64(db); e->U64(n);
  EndRec(e, p);
}
void MetaState::RecExtentMove(Encoder* e, uint32_t id, uint32_t seg, uint32_t off) {
  size_t p;
  BeginRec(e, RecordType::kExtentMove, &p);
  e->U32(id); e->U32(seg); e->U32(off);
  EndRec(e, p);
}
void MetaState::RecExtentRelocate(Encoder* e, uint32_t id, const Extent& x) {
  size_t p;
  BeginRec(e, RecordType::kExtentRelocate, &p);
  e->U32(id); e->U32(x.segment); e->U32(x.offset); e->U32(x.length); e->U8(x.flags); e->U32(x.crc);
  EndRec(e, p);
}
void MetaState::RecZeroBlocks(Encoder* e, uint64_t count) {
  size_t p;
  BeginRec(e, RecordType::kZeroBlocks, &p);
  e->U64(count);
  EndRec(e, p);
}

// ---------------- apply ----------------

void MetaState::AddRef(uint32_t id) {
  assert(id < extents_.size() && extents_[id].used());
  extents_[id].refs++;
}

void MetaState::DropRef(uint32_t id) {
  Extent& x = extents_[id];
  assert(x.used() && x.refs > 0);
  if (--x.refs > 0) return;
  // Last reference gone: the stored bytes are dead.
  SegmentInfo& s = segs_[x.segment];
  s.live_bytes -= ExtentCharge(x);
  stored_bytes_ -= ExtentCharge(x);
  used_extents_--;
  if (id < fingerprints_.size() && fingerprints_[id] != 0) {
    auto it = dedup_.find(fingerprints_[id]);
    if (it != dedup_.end() && it->second == id) dedup_.erase(it);
    fingerprints_[id] = 0;
  }
  x = Extent{};
  free_ids_.push_back(id);
  SegmentMaybeFree(uint32_t(&s - segs_.data()));
}

void MetaState::SegmentMaybeFree(uint32_t s) {
  SegmentInfo& g = segs_[s];
  if (g.state == SegState::kSealed && g.live_bytes == 0 && g.kind == SegKind::kData)
    g.state = SegState::kFreePending;
}

void MetaState::CountBlocks(uint64_t obj, int64_t delta) {
  uint64_t& n = obj_blocks_[obj];
  n = uint64_t(int64_t(n) + delta);
  if (n == 0) obj_blocks_.erase(obj);
}

void MetaState::SetMap(uint64_t obj, uint64_t block, uint32_t id) {
  if (id != kHoleId) AddRef(id);
  const uint32_t old = map_.Set(obj, block, id);
  if (old == kHoleId && id != kHoleId) CountBlocks(obj, 1);
  if (old != kHoleId && id == kHoleId) CountBlocks(obj, -1);
  if (old != kHoleId) DropRef(old);
}

void MetaState::DropRange(uint64_t obj, uint64_t block, uint64_t end_block) {
  const uint64_t dropped = map_.Erase(obj, block, end_block, [&](uint32_t id) { DropRef(id); });
  if (dropped) CountBlocks(obj, -int64_t(dropped));
}

Status MetaState::ApplyAll(const uint8_t* payload, size_t len, uint32_t count) {
  size_t pos = 0;
  for (uint32_t i = 0; i < count; i++) {
    if (len - pos < 5) return Status::Corruption("journal batch: record header truncated");
    uint32_t body = GetU32(payload + pos + 1);
    if (body > len - pos - 5) return Status::Corruption("journal batch: record length out of range");
    ASTRA_RETURN_IF_ERROR(Apply(payload + pos, 5 + body));
    pos += 5 + body;
  }
  if (pos != len) return Status::Corruption("journal batch: trailing bytes after the last record");
  return Status::Ok();
}

Status MetaState::Apply(const uint8_t* rec, size_t len) {
  Decoder d(rec, len);
  auto type = RecordType(d.U8());
  uint32_t body = d.U32();
  if (!d.ok() || body != d.remaining()) return Status::Corruption("record length mismatch");
  auto bad = [&](const char* what) { return Status::Corruption(std::string("record: ") + what); };
  switch (type) {
    case RecordType::kNewExtent: {
      uint32_t id = d.U32();
      Extent x;
      x.segment = d.U32(); x.offset = d.U32();
      uint32_t l = d.U32();
      x.flags = d.U8(); x.crc = d.U32();
      const uint64_t fp = d.U64();
      if (!d.ok()) return bad("new-extent truncated");
      // Ids are handed out densely (a free id, or the next new one), never beyond.
      if (id > extents_.size() || id >= max_extents_ || x.segment >= segs_.size() ||
          !ExtentShapeValid(l, x.flags))
        return bad("new-extent out of range");
      if (segs_[x.segment].state != SegState::kOpen) return bad("new-extent in a segment that is not open");
      x.length = uint16_t(l);
      if (id >= extents_.size()) extents_.resize(size_t(id) + 1);
      if (extents_[id].used()) return bad("new-extent id already in use");
      x.refs = 0;
      extents_[id] = x;
      if (dedup_enabled_) {
        if (id >= fingerprints_.size()) fingerprints_.resize(extents_.size());
        fingerprints_[id] = fp;
      }
      segs_[x.segment].live_bytes += ExtentCharge(x);
      stored_bytes_ += ExtentCharge(x);
      used_extents_++;
      if (dedup_enabled_ && fp != 0) dedup_.try_emplace(fp, id);
      return Status::Ok();
    }
    case RecordType::kMapBlocks: {
      uint64_t obj = d.U64(), block = d.U64();
      uint32_t n = d.U32();
      if (!d.ok() || n > kBlocksPerIoMax || d.remaining() != size_t(n) * 4) return bad("map truncated");
      std::vector<uint32_t> ids(n);
      for (uint32_t i = 0; i < n; i++) {
        ids[i] = d.U32();
        if (ids[i] != kHoleId && !ExtentUsed(ids[i])) return bad("map references a free extent");
      }
      // Pin the new extents first: one block of this run may share (dedup) an extent that another
      // block of the same run is dropping its last reference to.
      for (uint32_t id : ids) if (id != kHoleId) AddRef(id);
      for (uint32_t i = 0; i < n; i++) SetMap(obj, block + i, ids[i]);
      for (uint32_t id : ids) if (id != kHoleId) DropRef(id);
      return Status::Ok();
    }
    case RecordType::kTrimBlocks: {
      uint64_t obj = d.U64(), block = d.U64(), n = d.U64();
      if (!d.ok()) return bad("trim truncated");
      DropRange(obj, block, n > UINT64_MAX - block ? UINT64_MAX : block + n);
      return Status::Ok();
    }
    case RecordType::kCatalogTxn: {
      uint32_t n = d.U32();
      for (uint32_t i = 0; i < n && d.ok(); i++) {
        auto kind = CatalogOp::Kind(d.U8());
        std::string key = d.Str(kCatalogKeyBytesMax);
        std::string value = d.Str(kCatalogValueBytesMax);
        uint64_t obj = d.U64(), block = d.U64();
        if (!d.ok()) break;
        switch (kind) {
          case CatalogOp::Kind::kPut: catalog_[key] = std::move(value); break;
          case CatalogOp::Kind::kDelete: catalog_.erase(key); break;
          case CatalogOp::Kind::kDeleteObject: DropRange(obj, 0, UINT64_MAX); break;
          case CatalogOp::Kind::kTruncateObject: DropRange(obj, block, UINT64_MAX); break;
          default: return bad("catalogue op kind");
        }
      }
      if (!d.ok()) return bad("catalogue transaction truncated");
      return Status::Ok();
    }
    case RecordType::kSegmentOpen: {
      uint32_t s = d.U32();
      uint8_t kind = d.U8();
      if (!d.ok() || s >= segs_.size() || kind > 1) return bad("segment-open out of range");
      // A free-pending segment (no live extent left) is reused as soon as the journal batch
      // that killed it is durable; replay meets it free-pending, which is just as dead.
      if (segs_[s].state != SegState::kFree && segs_[s].state != SegState::kFreePending)
        return bad("segment-open of a segment in use");
      segs_[s] = SegmentInfo{SegState::kOpen, SegKind(kind), 0, 0};
      free_segs_.erase(s);
      return Status::Ok();
    }
    case RecordType::kSegmentAdvance: {
      uint32_t s = d.U32(), stripes = d.U32();
      if (!d.ok() || s >= segs_.size()) return bad("segment-advance out of range");
      segs_[s].written_stripes = std::max(segs_[s].written_stripes, stripes);
      return Status::Ok();
    }
    case RecordType::kSegmentSeal: {
      uint32_t s = d.U32();
      if (!d.ok() || s >= segs_.size()) return bad("segment-seal out of range");
      if (segs_[s].state == SegState::kOpen) segs_[s].state = SegState::kSealed;
      SegmentMaybeFree(s);
      return Status::Ok();
    }
    case RecordType::kNextId: {
      uint64_t v = d.U64();
      if (!d.ok()) return bad("next-id truncated");
      next_id_ = std::max(next_id_, v);
      return Status::Ok();
    }
    case RecordType::kCloneRange: {
      uint64_t src = d.U64(), sb = d.U64(), dst = d.U64(), db = d.U64(), n = d.U64();
      if (!d.ok()) return bad("clone truncated");
      // Collect first: src and dst ranges may overlap in the same object.
      std::vector<std::pair<uint64_t, uint32_t>> runs;
      map_.ForEachIn(src, sb, n > UINT64_MAX - sb ? UINT64_MAX : sb + n,
                     [&](uint64_t b, uint32_t id) { runs.emplace_back(b - sb, id); });
      for (auto& r : runs) AddRef(r.second);  // keep sources alive across the drop below
      DropRange(dst, db, db + n);
      for (auto& r : runs) {
        SetMap(dst, db + r.first, r.second);
        DropRef(r.second);
      }
      return Status::Ok();
    }
    case RecordType::kExtentMove: {
      uint32_t id = d.U32(), s = d.U32(), off = d.U32();
      if (!d.ok() || !ExtentUsed(id) || s >= segs_.size()) return bad("extent-move out of range");
      if (segs_[s].state != SegState::kOpen) return bad("extent-move into a segment that is not open");
      Extent& x = extents_[id];
      uint32_t old = x.segment;
      segs_[old].live_bytes -= ExtentCharge(x);
      segs_[s].live_bytes += ExtentCharge(x);
      x.segment = s;
      x.offset = off;
      SegmentMaybeFree(old);
      return Status::Ok();
    }
    case RecordType::kExtentRelocate: {
      uint32_t id = d.U32(), s = d.U32(), off = d.U32(), l = d.U32();
      uint8_t flags = d.U8();
      uint32_t crc = d.U32();
      if (!d.ok() || !ExtentUsed(id) || s >= segs_.size() || !ExtentShapeValid(l, flags))
        return bad("extent-relocate out of range");
      if (segs_[s].state != SegState::kOpen) return bad("extent-relocate into a segment that is not open");
      Extent& x = extents_[id];
      uint32_t old = x.segment;
      segs_[old].live_bytes -= ExtentCharge(x);
      stored_bytes_ -= ExtentCharge(x);
      x.segment = s;
      x.offset = off;
      x.length = uint16_t(l);
      x.flags = flags;
      x.crc = crc;
      segs_[s].live_bytes += ExtentCharge(x);
      stored_bytes_ += ExtentCharge(x);
      SegmentMaybeFree(old);
      return Status::Ok();
    }
    case RecordType::kZeroBlocks: {
      uint64_t n = d.U64();
      if (!d.ok()) return bad("zero-blocks truncated");
      zero_blocks_ += n;
      return Status::Ok();
    }
  }
  return bad("unknown record type");
}

// ---------------- queries ----------------

uint32_t MetaState::Lookup(uint64_t obj, uint64_t block) const {
  return map_.Get(obj, block);
}

uint32_t MetaState::PeekFreeExtentId() {
  while (!free_ids_.empty()) {
    uint32_t id = free_ids_.back();
    if (id < extents_.size() && !extents_[id].used()) return id;
    free_ids_.pop_back();  // stale entry (re-used during replay)
  }
  return uint32_t(extents_.size());
}

uint32_t MetaState::DedupLookup(uint64_t fp) const {
  auto it = dedup_.find(fp);
  return it == dedup_.end() ? kHoleId : it->second;
}

void MetaState::MarkCheckpointSegment(uint32_t s) {
  segs_[s] = SegmentInfo{SegState::kCheckpoint, SegKind::kCheckpoint, 0, 0};
  free_segs_.erase(s);
}

std::vector<uint32_t> MetaState::ReleaseFreePending() {
  std::vector<uint32_t> freed;
  for (uint32_t s = 0; s < segs_.size(); s++) {
    if (segs_[s].state == SegState::kFreePending) {
      segs_[s] = SegmentInfo{};
      free_segs_.insert(s);
      freed.push_back(s);
    }
  }
  return freed;
}

std::vector<uint32_t> MetaState::ReleaseAfterCheckpoint(const std::vector<uint32_t>& old_ckpt_segs) {
  std::vector<uint32_t> freed;
  for (uint32_t s = 0; s < segs_.size(); s++) {
    if (segs_[s].state == SegState::kFreePending) {
      segs_[s] = SegmentInfo{};
      free_segs_.insert(s);
      freed.push_back(s);
    }
  }
  for (uint32_t s : old_ckpt_segs) {
    if (s < segs_.size() && segs_[s].state == SegState::kCheckpoint) {
      segs_[s] = SegmentInfo{};
      free_segs_.insert(s);
      freed.push_back(s);
    }
  }
  return freed;
}

uint64_t MetaState::MemoryBytes() const {
  // btree nodes hold ~(key+value) per slot at ~90% fill; flat_hash_map slots + 1 control byte.
  return extents_.capacity() * sizeof(Extent) + fingerprints_.capacity() * 8 + free_ids_.capacity() * 4 +
         map_.MemoryBytes() +
         dedup_.bucket_count() * (sizeof(std::pair<uint64_t, uint32_t>) + 1) +
         segs_.capacity() * sizeof(SegmentInfo);
}

// ---------------- checkpoint image ----------------

void MetaState::Serialize(Encoder* e) const {
  // The image's size is known but for the catalogue's part: reserved at once, the buffer is not
  // copied as it grows.
  e->Reserve(64 + segs_.size() * 6 + used_extents_ * kImageExtentBytes + map_.blocks() * 5 + map_.runs() * 16 +
             catalog_.size() * 64);
  e->U32(kCheckpointMagic);
  e->U32(kCheckpointVersion);
  e->U64(next_id_);
  e->U64(zero_blocks_);
  e->U64(segs_.size());
  for (const auto& s : segs_) {
    bool keep = s.state == SegState::kOpen || s.state == SegState::kSealed;
    e->U8(uint8_t(keep ? s.state : SegState::kFree));
    e->U8(uint8_t(keep ? s.kind : SegKind::kData));
    e->U32(keep ? s.written_stripes : 0);
  }
  e->U64(extents_.size());  // table size: ids of free slots stay valid for replayed records
  e->U64(used_extents_);
  for (uint32_t id = 0; id < extents_.size(); id++) {
    const Extent& x = extents_[id];
    if (!x.used()) continue;
    // The same fields as U32/U16/U8/U64 calls would append, filled in place and appended once.
    uint8_t r[kImageExtentBytes];
    PutU32(r, id); PutU32(r + 4, x.segment); PutU32(r + 8, x.offset); PutU16(r + 12, x.length);
    r[14] = x.flags;
    PutU32(r + 15, x.crc); PutU32(r + 19, x.refs); PutU64(r + 23, fingerprint(id));
    e->Bytes(r, sizeof(r));
  }
  e->U64(map_.blocks());
  uint64_t prev_obj = UINT64_MAX, prev_block = 0;
  map_.ForEach([&](uint64_t obj, uint64_t block, uint32_t id) {
    // Delta coding: runs of consecutive blocks of one object cost 5 bytes an entry.
    uint8_t r[21];
    size_t n;
    if (obj == prev_obj && block == prev_block + 1) {
      r[0] = 1;
      n = 1;
    } else {
      r[0] = 0;
      PutU64(r + 1, obj);
      PutU64(r + 9, block);
      n = 17;
    }
    PutU32(r + n, id);
    e->Bytes(r, n + 4);
    prev_obj = obj;
    prev_block = block;
  });
  e->U64(catalog_.size());
  for (const auto& [k, v] : catalog_) { e->Str(k); e->Str(v); }
  e->U32(kCheckpointMagic);
}

Status MetaState::Deserialize(const uint8_t* p, size_t n) {
  Decoder d(p, n);
  auto bad = [](const std::string& w) { return Status::Corruption("checkpoint: " + w); };
  if (d.U32() != kCheckpointMagic) return bad("bad magic");
  if (d.U32() != kCheckpointVersion) return bad("unsupported version");
  next_id_ = d.U64();
  zero_blocks_ = d.U64();
  uint64_t nsegs = d.U64();
  if (!d.ok() || nsegs != segs_.size()) return bad("segment count does not match the superblock");
  for (auto& s : segs_) {
    uint8_t st = d.U8(), kind = d.U8();
    s.written_stripes = d.U32();
    if (st > 2 || kind > 1) return bad("segment state out of range");
    s.state = SegState(st);
    s.kind = SegKind(kind);
    s.live_bytes = 0;
  }
  uint64_t table = d.U64();
  uint64_t nx = d.U64();
  if (!d.ok() || table > max_extents_ || nx > table || nx > d.remaining() / kImageExtentBytes) return bad("extent count");
  extents_.clear();
  extents_.resize(table);
  fingerprints_.clear();
  if (dedup_enabled_) fingerprints_.resize(table);
  std::vector<uint32_t> stored_refs;
  for (uint64_t i = 0; i < nx && d.ok(); i++) {
    uint32_t id = d.U32();
    Extent x;
    x.segment = d.U32(); x.offset = d.U32(); x.length = d.U16(); x.flags = d.U8();
    x.crc = d.U32(); x.refs = d.U32();
    const uint64_t fp = d.U64();
    if (!d.ok()) break;
    if (id >= table || x.segment >= segs_.size() || !ExtentShapeValid(x.length, x.flags))
      return bad("extent " + std::to_string(id) + " out of range");
    if (segs_[x.segment].state != SegState::kOpen && segs_[x.segment].state != SegState::kSealed)
      return bad("extent " + std::to_string(id) + " lives in a segment not in use");
    if (extents_[id].used()) return bad("extent " + std::to_string(id) + " listed twice");
    extents_[id] = x;
    if (dedup_enabled_) fingerprints_[id] = fp;
  }
  uint64_t nm = d.U64();
  map_.Clear();
  uint64_t obj = 0, block = 0;
  for (uint64_t i = 0; i < nm && d.ok(); i++) {
    uint8_t run = d.U8();
    if (run == 1 && i > 0) {
      block++;
    } else if (run == 0) {
      obj = d.U64();
      block = d.U64();
    } else {
      return bad("map entry tag");
    }
    uint32_t id = d.U32();
    if (!d.ok()) break;
    if (!ExtentUsed(id)) return bad("map entry references a missing extent");
    if (map_.Set(obj, block, id) != kHoleId) return bad("map entry listed twice");
  }
  uint64_t nc = d.U64();
  catalog_.clear();
  for (uint64_t i = 0; i < nc && d.ok(); i++) {
    std::string k = d.Str(kCatalogKeyBytesMax);
    std::string v = d.Str(kCatalogValueBytesMax);
    if (d.ok()) catalog_.emplace_hint(catalog_.end(), std::move(k), std::move(v));
  }
  if (d.U32() != kCheckpointMagic || !d.ok()) return bad("truncated or trailing magic missing");
  RecomputeDerived();
  return Status::Ok();
}

void MetaState::RecomputeDerived() {
  for (auto& x : extents_) x.refs = 0;
  obj_blocks_.clear();
  map_.ForEach([&](uint64_t obj, uint64_t, uint32_t id) {
    extents_[id].refs++;
    obj_blocks_[obj]++;
  });
  free_ids_.clear();
  dedup_.clear();
  stored_bytes_ = 0;
  used_extents_ = 0;
  for (auto& s : segs_) s.live_bytes = 0;
  for (uint32_t id = 0; id < extents_.size(); id++) {
    Extent& x = extents_[id];
    if (x.used() && x.refs == 0) x = Extent{};  // unreferenced: dead (cannot happen when consistent)
    if (!x.used()) {
      if (id < fingerprints_.size()) fingerprints_[id] = 0;
      free_ids_.push_back(id);
      continue;
    }
    segs_[x.segment].live_bytes += ExtentCharge(x);
    stored_bytes_ += ExtentCharge(x);
    used_extents_++;
    if (dedup_enabled_ && fingerprint(id) != 0) dedup_.try_emplace(fingerprint(id), id);
  }
  std::reverse(free_ids_.begin(), free_ids_.end());
  free_segs_.clear();
  for (uint32_t s = 0; s < segs_.size(); s++) {
    if (segs_[s].state == SegState::kFree) free_segs_.insert(s);
    else SegmentMaybeFree(s);
  }
}

uint64_t MetaState::VerifyDerived(std::vector<std::string>* problems) const {
  uint64_t errors = 0;
  std::vector<uint32_t> refs(extents_.size(), 0);
  std::vector<uint64_t> live(segs_.size(), 0);
  map_.ForEach([&](uint64_t obj, uint64_t block, uint32_t id) {
    if (!ExtentUsed(id)) {
      errors++;
      problems->push_back("object " + std::to_string(obj) + " block " + std::to_string(block) +
                          " maps to free extent " + std::to_string(id));
      return;
    }
    refs[id]++;
  });
  for (uint32_t id = 0; id < extents_.size(); id++) {
    const Extent& x = extents_[id];
    if (!x.used()) continue;
    live[x.segment] += ExtentCharge(x);
    if (x.refs != refs[id]) {
      errors++;
      problems->push_back("extent " + std::to_string(id) + " reference count " + std::to_string(x.refs) +
                          ", maps say " + std::to_string(refs[id]));
    }
    if (segs_[x.segment].state != SegState::kOpen && segs_[x.segment].state != SegState::kSealed) {
      errors++;
      problems->push_back("extent " + std::to_string(id) + " lives in segment " +
                          std::to_string(x.segment) + " which is not in use");
    }
  }
  for (uint32_t s = 0; s < segs_.size(); s++) {
    if (segs_[s].live_bytes != live[s]) {
      errors++;
      problems->push_back("segment " + std::to_string(s) + " live bytes " +
                          std::to_string(segs_[s].live_bytes) + ", extents say " + std::to_string(live[s]));
    }
  }
  absl::flat_hash_map<uint64_t, uint64_t> per_obj;
  map_.ForEach([&](uint64_t obj, uint64_t, uint32_t) { per_obj[obj]++; });
  if (per_obj != obj_blocks_) {
    errors++;
    problems->push_back("per-object mapped block counts disagree with the block map");
  }
  for (const auto& [fp, id] : dedup_) {
    if (!ExtentUsed(id) || fingerprint(id) != fp) {
      errors++;
      problems->push_back("dedup index entry points to extent " + std::to_string(id) + " with another fingerprint");
    }
  }
  return errors;
}

}  // namespace astra
