#include "journal.h"

#include <cstring>

#include "astra/limits.h"
#include "coding.h"
#include "crc.h"

namespace astra {

uint32_t BatchBytes(uint32_t payload_bytes) {
  uint32_t n = kJournalHeaderBytes + payload_bytes;
  return (n + kBlockBytes - 1) / kBlockBytes * kBlockBytes;
}

void EncodeBatch(uint64_t pool_tag, uint64_t seq, const uint8_t* payload, uint32_t payload_bytes,
                 uint32_t records, uint8_t* out) {
  uint32_t total = BatchBytes(payload_bytes);
  std::memset(out, 0, total);
  PutU64(out + 0, kJournalMagic);
  PutU64(out + 8, pool_tag);
  PutU64(out + 16, seq);
  PutU32(out + 24, payload_bytes);
  PutU32(out + 28, total);
  PutU32(out + 32, Crc32c(payload, payload_bytes));
  PutU32(out + 36, records);
  PutU32(out + 60, Crc32c(out, 60));
  std::memcpy(out + kJournalHeaderBytes, payload, payload_bytes);
}

bool DecodeBatchHeader(const uint8_t* in, uint64_t pool_tag, uint64_t expect_seq,
                       uint64_t region_bytes, BatchHeader* h) {
  if (GetU64(in) != kJournalMagic) return false;
  if (GetU32(in + 60) != Crc32c(in, 60)) return false;
  h->pool_tag = GetU64(in + 8);
  h->seq = GetU64(in + 16);
  h->payload_bytes = GetU32(in + 24);
  h->batch_bytes = GetU32(in + 28);
  h->payload_crc = GetU32(in + 32);
  h->records = GetU32(in + 36);
  if (h->pool_tag != pool_tag || h->seq != expect_seq) return false;
  if (h->batch_bytes != BatchBytes(h->payload_bytes) || h->batch_bytes > region_bytes) return false;
  return true;
}

bool VerifyBatchPayload(const BatchHeader& h, const uint8_t* batch) {
  return Crc32c(batch + kJournalHeaderBytes, h.payload_bytes) == h.payload_crc;
}

}  // namespace astra
