#include <iostream>

#include "base/flags.h"
#include "cli/command.h"
#include "cli/commands.h"
#include "cli/version.h"

namespace supercluster::cli {

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
    std::cout << "{\"version\":\"" << kVersion << "\",\"git\":\"" << kGitRevision << "\"}\n";
  } else {
    std::cout << "supercluster " << kVersion << " (" << kGitRevision << ")\n";
  }
  return kExitOk;
}

}  // namespace supercluster::cli
