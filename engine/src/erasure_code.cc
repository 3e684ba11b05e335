#include "erasure_code.h"

#include <isa-l/erasure_code.h>

#include <algorithm>
#include <cassert>
#include <cstring>

namespace astra {

ErasureCode::ErasureCode(uint32_t k, uint32_t m) : k_(k), m_(m) {
  assert(k >= 1 && k + m <= 32);
  matrix_.resize(size_t(k + m) * k);
  gf_gen_cauchy1_matrix(matrix_.data(), int(k + m), int(k));
  tables_.resize(size_t(k) * std::max(m, 1u) * 32);
  if (m > 0) ec_init_tables(int(k), int(m), &matrix_[size_t(k) * k], tables_.data());
}

void ErasureCode::Encode(uint32_t len, const uint8_t* const* data, uint8_t* const* parity) const {
  if (m_ == 0) return;
  ec_encode_data(int(len), int(k_), int(m_), const_cast<uint8_t*>(tables_.data()),
                 const_cast<uint8_t**>(data), const_cast<uint8_t**>(parity));
}

Status ErasureCode::Reconstruct(uint32_t len, uint8_t* const* shards,
                                const std::vector<uint32_t>& erased) const {
  if (erased.empty()) return Status::Ok();
  if (erased.size() > m_) return Status::InvalidArgument("more erasures than parity shards");
  const uint32_t w = k_ + m_;
  std::vector<bool> is_erased(w, false);
  for (uint32_t e : erased) {
    if (e >= w) return Status::InvalidArgument("erased shard index out of range");
    is_erased[e] = true;
  }
  // Pick the first k surviving shards and invert their rows of the generator matrix.
  std::vector<uint32_t> survivors;
  for (uint32_t i = 0; i < w && survivors.size() < k_; i++)
    if (!is_erased[i]) survivors.push_back(i);
  if (survivors.size() < k_) return Status::InvalidArgument("not enough surviving shards");
  std::vector<uint8_t> b(size_t(k_) * k_), inv(size_t(k_) * k_);
  for (uint32_t r = 0; r < k_; r++)
    std::memcpy(&b[size_t(r) * k_], &matrix_[size_t(survivors[r]) * k_], k_);
  if (gf_invert_matrix(b.data(), inv.data(), int(k_)) < 0)
    return Status::Corruption("erasure-code decode matrix is singular");
  // Row for each erased shard: data shard e -> inv row e; parity shard e -> matrix row e * inv.
  std::vector<uint8_t> dec(size_t(erased.size()) * k_);
  for (size_t i = 0; i < erased.size(); i++) {
    uint32_t e = erased[i];
    if (e < k_) {
      std::memcpy(&dec[i * k_], &inv[size_t(e) * k_], k_);
    } else {
      for (uint32_t j = 0; j < k_; j++) {
        uint8_t s = 0;
        for (uint32_t t = 0; t < k_; t++) s ^= gf_mul(matrix_[size_t(e) * k_ + t], inv[size_t(t) * k_ + j]);
        dec[i * k_ + j] = s;
      }
    }
  }
  std::vector<uint8_t> tbl(size_t(k_) * erased.size() * 32);
  ec_init_tables(int(k_), int(erased.size()), dec.data(), tbl.data());
  std::vector<uint8_t*> src(k_), out(erased.size());
  for (uint32_t r = 0; r < k_; r++) src[r] = shards[survivors[r]];
  for (size_t i = 0; i < erased.size(); i++) out[i] = shards[erased[i]];
  ec_encode_data(int(len), int(k_), int(erased.size()), tbl.data(), src.data(), out.data());
  return Status::Ok();
}

}  // namespace astra
