// Parsing of the C++ benchmarks' `--threads LIST` option ("1,2,4"): the thread counts to
// run, in the order given.
#pragma once

#include <cstdlib>
#include <optional>
#include <vector>

namespace supercluster::bench {

// The counts in `list`, or nullopt unless it is one or more integers from 1 to 1024
// separated by single commas.
inline std::optional<std::vector<int>> ParseThreadCounts(const char* list) {
  std::vector<int> counts;
  for (const char* p = list; *p != '\0';) {
    char* end = nullptr;
    const long threads = std::strtol(p, &end, 10);
    if (end == p || threads <= 0 || threads > 1024 || (*end != ',' && *end != '\0')) {
      return std::nullopt;
    }
    counts.push_back(static_cast<int>(threads));
    p = *end == ',' ? end + 1 : end;
    if (*end == ',' && *p == '\0') return std::nullopt;  // a trailing comma
  }
  if (counts.empty()) return std::nullopt;
  return counts;
}

}  // namespace supercluster::bench
