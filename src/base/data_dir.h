// The default data directory of a local cluster (`--data-dir`): its state database, keys,
// development CA, sockets and logs. ~/.local/share/supercluster, as docs/architecture.md says.
#pragma once

#include <cstdlib>
#include <string>

namespace supercluster::base {

inline std::string DefaultDataDir() {
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.local/share/supercluster";
}

}  // namespace supercluster::base
