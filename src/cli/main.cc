#include <iostream>

#include "cli/command.h"

namespace supercluster::cli {
namespace {

void PrintHelp(std::ostream& out) {
  out << "supercluster: a confidential, multi-region GPU inference cluster\n\n"
         "usage: supercluster <command> [flags]\n\ncommands:\n";
  for (const Command& command : AllCommands()) {
    std::string name = "  " + command.name;
    out << name << std::string(name.size() < 14 ? 14 - name.size() : 1, ' ')
        << command.summary << "\n";
  }
  out << "\nRun 'supercluster <command> --help' for a command's flags.\n";
}

}  // namespace

int Main(int argc, char** argv) {
  if (argc < 2) {
    PrintHelp(std::cerr);
    return kExitUsage;
  }
  std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    PrintHelp(std::cout);
    return kExitOk;
  }
  if (name == "--version") name = "version";
  for (const Command& command : AllCommands()) {
    if (command.name == name) {
      return command.run(std::vector<std::string>(argv + 2, argv + argc));
    }
  }
  std::cerr << "supercluster: unknown command '" << name
            << "' (run 'supercluster --help' for the list)\n";
  return kExitUsage;
}

}  // namespace supercluster::cli
