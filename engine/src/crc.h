// CRC-32C (Castagnoli) over bytes, via ISA-L's crc32_iscsi (runtime-dispatched SSE4.2/PCLMUL/AVX).
// Seed 0xFFFFFFFF, no final inversion; every checksum in the on-disk format uses this function.
#pragma once

#include <cstddef>
#include <cstdint>

namespace astra {
uint32_t Crc32c(const void* data, size_t len, uint32_t seed = 0xFFFFFFFFu);
}  // namespace astra
