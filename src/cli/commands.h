// The run functions of the subcommands, one per cli/<name>_command.cc; command_list.cc
// puts them in the table that cli::Main dispatches on.
#pragma once

#include <string>
#include <vector>

namespace supercluster::cli {

int RunVersion(const std::vector<std::string>& args);
int RunServe(const std::vector<std::string>& args);
int RunConfig(const std::vector<std::string>& args);
int RunStore(const std::vector<std::string>& args);
int RunDevCa(const std::vector<std::string>& args);
int RunAttest(const std::vector<std::string>& args);
int RunModel(const std::vector<std::string>& args);
int RunGenerate(const std::vector<std::string>& args);
int RunSeal(const std::vector<std::string>& args);
int RunOpen(const std::vector<std::string>& args);
int RunEnclave(const std::vector<std::string>& args);
int RunUp(const std::vector<std::string>& args);
int RunDown(const std::vector<std::string>& args);
int RunStatus(const std::vector<std::string>& args);
int RunInfer(const std::vector<std::string>& args);
int RunWorker(const std::vector<std::string>& args);
int RunRouter(const std::vector<std::string>& args);
int RunRelay(const std::vector<std::string>& args);

}  // namespace supercluster::cli
