// ublk_memdisk: a RAM-backed ublk device on the project's generic ublk machinery (no engine).
// Proves UblkControl / UblkQueue / UblkDevice on their own in the VM suites.
//
//   ublk_memdisk [--size MiB] [--queues N] [--depth D] [--buffer-copy] [--logical 512|4096]
//                -- command args...     (the command gets UBLK_DEV=/dev/ublkbN)
// Exit status: the command's; 1 on setup errors.
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "blockdev/ublk_control.h"
#include "blockdev/ublk_device.h"

namespace {

class MemTarget final : public astra::ublk::BlockTarget {
 public:
  explicit MemTarget(uint64_t bytes) : bytes_(bytes) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) abort();
    mem_ = static_cast<uint8_t*>(p);
  }
  int Serve(const astra::ublk::BlockRequest& r, uint8_t* buf) override {
    using astra::ublk::BlockOp;
    if (r.offset_bytes + r.length_bytes > bytes_) return -EIO;
    switch (r.op) {
      case BlockOp::kRead: memcpy(buf, mem_ + r.offset_bytes, r.length_bytes); return 0;
      case BlockOp::kWrite: memcpy(mem_ + r.offset_bytes, buf, r.length_bytes); return 0;
      case BlockOp::kFlush: return 0;
      case BlockOp::kDiscard:
      case BlockOp::kWriteZeroes: memset(mem_ + r.offset_bytes, 0, r.length_bytes); return 0;
      default: return -EOPNOTSUPP;
    }
  }

 private:
  uint64_t bytes_;
  uint8_t* mem_;
};

}  // namespace

int main(int argc, char** argv) {
  astra::ublk::DeviceOptions opts;
  opts.size_bytes = 64ull << 20;
  int i = 1;
  for (; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--") { i++; break; }
    if (i + 1 >= argc && a != "--buffer-copy") { fprintf(stderr, "missing value for %s\n", a.c_str()); return 1; }
    if (a == "--size") opts.size_bytes = std::strtoull(argv[++i], nullptr, 0) << 20;
    else if (a == "--queues") opts.queues = std::atoi(argv[++i]);
    else if (a == "--depth") opts.depth = std::atoi(argv[++i]);
    else if (a == "--logical") opts.logical_block_bytes = std::atoi(argv[++i]);
    else if (a == "--buffer-copy") opts.user_copy = false;
    else { fprintf(stderr, "unknown option %s\n", a.c_str()); return 1; }
  }
  auto ctrl = astra::ublk::UblkControl::Open();
  if (!ctrl.ok()) { fprintf(stderr, "ublk_memdisk: %s\n", ctrl.status().ToString().c_str()); return 1; }
  printf("ublk features: %s\n", (*ctrl)->FeatureString().c_str());
  MemTarget target(opts.size_bytes);
  auto dev = astra::ublk::UblkDevice::Create(ctrl->get(), opts, &target);
  if (!dev.ok()) { fprintf(stderr, "ublk_memdisk: %s\n", dev.status().ToString().c_str()); return 1; }
  printf("device %s flags 0x%llx (%s)\n", (*dev)->block_path().c_str(),
         (unsigned long long)(*dev)->flags(), (*dev)->user_copy() ? "user-copy" : "buffer-copy");
  fflush(stdout);
  int rc = 0;
  if (i < argc) {
    setenv("UBLK_DEV", (*dev)->block_path().c_str(), 1);
    pid_t pid = fork();
    if (pid == 0) { execvp(argv[i], argv + i); _exit(127); }
    int st = 0;
    waitpid(pid, &st, 0);
    rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  uint64_t n = (*dev)->requests();
  astra::Status s = (*dev)->Stop();
  if (!s.ok()) { fprintf(stderr, "stop: %s\n", s.ToString().c_str()); rc = rc ? rc : 1; }
  s = (*dev)->Delete();
  if (!s.ok()) { fprintf(stderr, "delete: %s\n", s.ToString().c_str()); rc = rc ? rc : 1; }
  printf("served %llu requests, exit %d\n", (unsigned long long)n, rc);
  return rc;
}
