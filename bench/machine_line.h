// The "machine: <processor>, N cores" line that the C++ benchmarks print above their
// results, as the shell scripts under bench/ do, so that every number says where it ran.
#pragma once

#include <fstream>
#include <string>
#include <thread>

namespace supercluster::bench {

inline std::string MachineLine() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string cpu = "unknown processor";
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.starts_with("model name")) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  }
  return "machine: " + cpu + ", " + std::to_string(std::thread::hardware_concurrency()) + " cores";
}

}  // namespace supercluster::bench
