// Journal batch encoding and validation (format: journal_format.h, doc/format/journal.md).
// Thread safety: stateless functions.
#pragma once

#include <cstdint>
#include <vector>

#include "astra/device.h"
#include "astra/status.h"
#include "journal_format.h"

namespace astra {

struct BatchHeader {
  uint64_t pool_tag = 0;
  uint64_t seq = 0;
  uint32_t payload_bytes = 0;
  uint32_t batch_bytes = 0;
  uint32_t payload_crc = 0;
  uint32_t records = 0;
};

// Bytes a batch with `payload_bytes` of records occupies (header + payload, 4 KiB multiple).
uint32_t BatchBytes(uint32_t payload_bytes);
// Writes header + payload into `out` (capacity >= BatchBytes(payload.size())), zero padded.
void EncodeBatch(uint64_t pool_tag, uint64_t seq, const uint8_t* payload, uint32_t payload_bytes,
                 uint32_t records, uint8_t* out);
// Validates the 64-byte header: magic, header CRC, pool tag, expected seq, sizes within
// `region_bytes`. Never trusts a field before its CRC has been checked.
bool DecodeBatchHeader(const uint8_t* in, uint64_t pool_tag, uint64_t expect_seq,
                       uint64_t region_bytes, BatchHeader* h);
// Checks the payload CRC of a batch whose header decoded.
bool VerifyBatchPayload(const BatchHeader& h, const uint8_t* batch);

}  // namespace astra
