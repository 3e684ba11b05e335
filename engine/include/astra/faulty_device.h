// FaultyDevice: wraps another Device and injects faults, for tests (LevelDB's
// fault_injection_test and TigerBeetle's testing/storage.zig are the models).
//
// Faults:
//  - I/O errors by operation, byte range and probability (AddErrorRule);
//  - whole-device death (SetDead: every I/O fails with kIOError) and "zeroed" (reads return 0s);
//  - bit rot on read (a random bit flipped in a read buffer, by probability);
//  - misdirected writes (a write lands `misdirect_offset` bytes away, by probability);
//  - torn writes at power loss, and power loss itself: with SetTrackUnflushed(true), writes since
//    the last completed flush are held in a volatile layer (reads see them); Flush() makes them
//    durable; PowerLoss() keeps a random subset of them (some torn at a 512-byte boundary) and
//    drops the rest, then the device is dead until Revive().
//
// All randomness comes from a seeded generator (SetSeed) so a failing run can be replayed.
// Thread safety: all methods may be called from any thread; I/O is served synchronously.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <vector>

#include "astra/device.h"

namespace astra {

struct ErrorRule {
  IoOp op = IoOp::kRead;
  uint64_t begin_bytes = 0;
  uint64_t end_bytes = UINT64_MAX;  // exclusive
  double probability = 1.0;         // per matching request
};

struct FaultStats {
  uint64_t reads = 0, writes = 0, flushes = 0, trims = 0;
  uint64_t injected_errors = 0, bitrot_flips = 0, misdirected = 0;
  uint64_t writes_dropped = 0, writes_torn = 0;
};

class FaultyDevice final : public Device {
 public:
  // `inner` stays owned by the FaultyDevice. Any device works (MemDevice, UringDevice,
  // NvmeDevice): requests are served through its synchronous helpers, and the writes since the
  // last flush are held here, not in the inner device, so PowerLoss() decides what reaches a real
  // drive (tested on UringDevice files on the host and on NvmeDevice namespaces in the VM suite
  // nvme_engine_suites, doc/nvme.md).
  explicit FaultyDevice(std::shared_ptr<Device> inner);
  ~FaultyDevice() override;

  const DeviceInfo& info() const override { return info_; }
  void Submit(IoRequest* const* reqs, size_t n) override;

  void SetSeed(uint64_t seed);
  void AddErrorRule(const ErrorRule& r);
  void ClearErrorRules();
  void SetDead(bool dead);
  void SetZeroed(bool zeroed);
  void SetBitRotProbability(double p);
  void SetMisdirectProbability(double p, int64_t misdirect_offset_bytes);
  void SetTrackUnflushed(bool on);

  // Simulated power loss: each unflushed write survives with probability `keep_probability`;
  // a survivor is torn (only a prefix of its 512-byte sectors lands) with `tear_probability`.
  // Afterwards every I/O fails until Revive().
  void PowerLoss(double keep_probability = 0.5, double tear_probability = 0.25);
  void Revive();
  // Number of writes waiting for a flush.
  size_t UnflushedWrites() const;
  FaultStats stats() const;
  std::shared_ptr<Device> inner() const { return inner_; }

 private:
  struct Pending {
    uint64_t offset;
    std::vector<uint8_t> data;
  };
  void Serve(IoRequest* r);
  bool RuleFires(IoOp op, uint64_t off, uint64_t len);

  std::shared_ptr<Device> inner_;
  DeviceInfo info_;
  mutable std::mutex mu_;
  std::mt19937_64 rng_{1};
  std::vector<ErrorRule> rules_;
  bool dead_ = false, zeroed_ = false, track_ = false;
  double bitrot_p_ = 0, misdirect_p_ = 0;
  int64_t misdirect_off_ = 0;
  std::vector<Pending> pending_;
  FaultStats stats_;
};

}  // namespace astra
