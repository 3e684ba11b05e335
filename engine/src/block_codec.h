// BlockCodec: per-4-KiB-block data reduction primitives.
//  - IsZeroBlock: all 4096 bytes zero (recorded as a hole, nothing stored).
//  - Fingerprint: XXH3-128 of the block (xxHash 0.8), folded to the 64-bit dedup key. The dedup
//    index is a hint; sharing always requires a byte comparison (DESIGN invariant 3).
//  - Compress: zstd at the pool's level; the result is kept only if it saves at least 1/8 of the
//    block (<= 3584 bytes), else the block is stored raw (4096 bytes, no header).
//  - CompressFrame: the same for a run of 1..kFrameBlocksMax consecutive blocks written together,
//    compressed as one zstd frame (kept only if it saves at least 1/8 of the run). Larger units
//    compress better and faster (zstd's per-frame setup is paid once); a random 4 KiB read
//    decompresses at most one frame (32 KiB). Measurements: doc/data-reduction.md.
// Thread safety: a BlockCodec holds zstd contexts; use one per thread (or under a lock).
#pragma once

#include <zstd.h>

#include <cstdint>

namespace astra {

inline constexpr uint32_t kCompressedBytesMax = 4096 - 4096 / 8;

bool IsZeroBlock(const uint8_t* block);
uint64_t Fingerprint(const uint8_t* block);

class BlockCodec {
 public:
  explicit BlockCodec(int level);
  ~BlockCodec();
  BlockCodec(const BlockCodec&) = delete;
  BlockCodec& operator=(const BlockCodec&) = delete;
  // Compresses one 4 KiB block into `out` (capacity >= 4096). Returns the stored length if the
  // block compressed to <= kCompressedBytesMax, else 0 (store raw).
  uint32_t Compress(const uint8_t* block, uint8_t* out) { return CompressFrame(block, 1, out); }
  // Compresses `blocks` consecutive 4 KiB blocks at `src` into `out` (capacity >= blocks x 4096).
  // Returns the stored length if it is <= 7/8 of blocks x 4096, else 0 (store raw).
  uint32_t CompressFrame(const uint8_t* src, uint32_t blocks, uint8_t* out);
  // Decompresses `len` stored bytes into exactly `blocks` x 4096 bytes at `out`. False if the
  // bytes are not a valid zstd frame of exactly that size (corruption).
  bool DecompressFrame(const uint8_t* in, uint32_t len, uint32_t blocks, uint8_t* out);
  bool Decompress(const uint8_t* in, uint32_t len, uint8_t* block) { return DecompressFrame(in, len, 1, block); }
  // Changes the compression level of later Compress calls (no-op if unchanged).
  void SetLevel(int level);

 private:
  int level_;
  ZSTD_CCtx* cctx_;
  ZSTD_DCtx* dctx_;
};

}  // namespace astra
