// The `supercluster` subcommand table.
//
// Each command lives in its own cli/<name>_command.cc and is listed once in
// command_list.cc. A command gets its arguments without the program and command names
// and returns the process exit status: 0 success, 1 failure (one line on stderr saying
// why), 2 bad usage.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace supercluster::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

struct Command {
  std::string name;     // as typed: "serve"
  std::string summary;  // one line for `supercluster --help`
  std::function<int(const std::vector<std::string>& args)> run;
};

// Every command the binary knows, in the order --help lists them.
const std::vector<Command>& AllCommands();

// Entry point of the `supercluster` binary.
int Main(int argc, char** argv);

}  // namespace supercluster::cli
