// ErasureCode: Reed-Solomon k+m over GF(2^8) with ISA-L, Cauchy generator matrix
// (gf_gen_cauchy1_matrix; any k of the k+m rows are invertible, so any m erasures are decodable).
//
// Shards are equal-length byte buffers: k data then m parity. Encode computes parity from data.
// Reconstruct rebuilds the listed erased shards (data or parity) from any k surviving ones.
// Thread safety: const methods are safe from many threads at once (tables are read-only).
#pragma once

#include <cstdint>
#include <vector>

#include "astra/status.h"

namespace astra {

class ErasureCode {
 public:
  ErasureCode(uint32_t k, uint32_t m);
  uint32_t k() const { return k_; }
  uint32_t m() const { return m_; }
  // data[0..k) -> parity[0..m), each `len` bytes.
  void Encode(uint32_t len, const uint8_t* const* data, uint8_t* const* parity) const;
  // shards[0..k+m): erased ones (listed in `erased`, at most m) are overwritten with rebuilt
  // bytes; the others must hold valid bytes. kInvalidArgument if more than m are erased.
  Status Reconstruct(uint32_t len, uint8_t* const* shards, const std::vector<uint32_t>& erased) const;

 private:
  uint32_t k_, m_;
  std::vector<uint8_t> matrix_;   // (k+m) x k
  std::vector<uint8_t> tables_;   // ec_init_tables for the parity rows
};

}  // namespace astra
