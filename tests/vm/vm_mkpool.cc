// vm_mkpool: formats a pool for the VM suites (until mkfs.astrafs exists, and to keep the suites
// independent of it).   vm_mkpool [--k K] [--m M] [--create-size BYTES] PATH...
// Regular files that do not exist are created sparse at --create-size.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "astra/device.h"
#include "astra/pool.h"

int main(int argc, char** argv) {
  astra::FormatOptions fo;
  fo.force = true;
  uint64_t create = 0;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--k" && i + 1 < argc) fo.data_shards = std::atoi(argv[++i]);
    else if (a == "--m" && i + 1 < argc) fo.parity_shards = std::atoi(argv[++i]);
    else if (a == "--create-size" && i + 1 < argc) create = std::strtoull(argv[++i], nullptr, 0);
    else paths.push_back(a);
  }
  std::vector<std::unique_ptr<astra::Device>> devs;
  for (const auto& p : paths) {
    auto d = astra::OpenDevice(p, create);
    if (!d.ok()) {
      fprintf(stderr, "vm_mkpool: %s: %s\n", p.c_str(), d.status().ToString().c_str());
      return 1;
    }
    devs.push_back(std::move(d.value()));
  }
  astra::Status st = astra::Pool::Format(devs, fo);
  if (!st.ok()) {
    fprintf(stderr, "vm_mkpool: %s\n", st.ToString().c_str());
    return 1;
  }
  printf("formatted %zu members as %u+%u\n", paths.size(), fo.data_shards, fo.parity_shards);
  return 0;
}
