#include <cstdlib>
#include <iostream>
#include <string>

#ifdef SUPERCLUSTER_MIMALLOC
#include <mimalloc.h>
#endif

#include "base/flags.h"
#include "cli/command.h"
#include "cli/commands.h"
#include "cli/version.h"

namespace supercluster::cli {
namespace {

// The allocator the binary was linked with (SUPERCLUSTER_MALLOC in CMakeLists.txt), as
// found at run time: linked mimalloc serves plain malloc only when it comes before libc in
// the symbol lookup order.
std::string AllocatorName() {
#ifdef SUPERCLUSTER_MIMALLOC
  void* probe = std::calloc(1, 64);
  bool in_use = mi_is_in_heap_region(probe);
  std::free(probe);
  if (!in_use) return "system (mimalloc linked but not serving malloc)";
  int version = mi_version();  // e.g. 209 for 2.0.9
  return "mimalloc " + std::to_string(version / 100) + "." + std::to_string(version / 10 % 10) +
         "." + std::to_string(version % 10);
#else
  return "system";
#endif
}

}  // namespace

int RunVersion(const std::vector<std::string>& args) {
  bool json = false;
  base::FlagSet flags("supercluster version [--json]");
  flags.AddBool("json", &json, "machine-readable output");
  if (base::Status parsed = flags.Parse(args); !parsed.ok()) {
    std::cerr << "supercluster version: " << parsed.message() << "\n";
    return kExitUsage;
  }
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return kExitOk;
  }
  if (json) {
    std::cout << "{\"version\":\"" << kVersion << "\",\"git\":\"" << kGitRevision
              << "\",\"allocator\":\"" << AllocatorName() << "\"}\n";
  } else {
    std::cout << "supercluster " << kVersion << " (" << kGitRevision << "), allocator "
              << AllocatorName() << "\n";
  }
  return kExitOk;
}

}  // namespace supercluster::cli
