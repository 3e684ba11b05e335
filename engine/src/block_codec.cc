#include "block_codec.h"

#include <xxhash.h>

#include <cstring>

#include "astra/limits.h"

namespace astra {

bool IsZeroBlock(const uint8_t* block) {
  uint64_t acc = 0;
  for (uint32_t i = 0; i < kBlockBytes; i += 64) {
    uint64_t w[8];
    std::memcpy(w, block + i, 64);
    acc |= w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7];
    if (acc) return false;
  }
  return acc == 0;
}

uint64_t Fingerprint(const uint8_t* block) {
  XXH128_hash_t h = XXH3_128bits(block, kBlockBytes);
  uint64_t fp = h.low64 ^ (h.high64 * 0x9E3779B97F4A7C15ull);
  return fp == 0 ? 1 : fp;  // 0 means "no fingerprint" in the extent table
}

BlockCodec::BlockCodec(int level) : level_(level), cctx_(ZSTD_createCCtx()), dctx_(ZSTD_createDCtx()) {
  ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, level_);
  ZSTD_CCtx_setParameter(cctx_, ZSTD_c_checksumFlag, 0);
  ZSTD_CCtx_setParameter(cctx_, ZSTD_c_contentSizeFlag, 1);
}

BlockCodec::~BlockCodec() {
  ZSTD_freeCCtx(cctx_);
  ZSTD_freeDCtx(dctx_);
}

void BlockCodec::SetLevel(int level) {
  if (level == level_) return;
  level_ = level;
  ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, level_);
}

uint32_t BlockCodec::CompressFrame(const uint8_t* src, uint32_t blocks, uint8_t* out) {
  const size_t in = size_t(blocks) * kBlockBytes;
  const size_t keep = in - in / 8;
  size_t n = ZSTD_compress2(cctx_, out, in, src, in);
  if (ZSTD_isError(n) || n > keep) return 0;
  return uint32_t(n);
}

bool BlockCodec::DecompressFrame(const uint8_t* in, uint32_t len, uint32_t blocks, uint8_t* out) {
  const size_t want = size_t(blocks) * kBlockBytes;
  size_t n = ZSTD_decompressDCtx(dctx_, out, want, in, len);
  return !ZSTD_isError(n) && n == want;
}

}  // namespace astra
