// Flags every long-running service shares (--config, --set, --log-format, --log-level)
// and the start-up they drive: load and validate the configuration, then set up logging.
// The `supercluster` service commands and the `supercluster-enclave` binary call these
// first so they all behave the same.
#pragma once

#include <string>
#include <vector>

#include "base/config.h"
#include "base/flags.h"

namespace supercluster::base {

struct ServiceFlags {
  std::string config_file;
  std::vector<std::string> overrides;
  std::string log_format;  // empty: use log.format from the config
  std::string log_level;   // empty: use log.level from the config

  void Register(FlagSet& flags);

  // Defaults, then --config, then each --set in order; then logging from the result
  // (the --log-* flags win over the log.* keys). `component` names the service in logs.
  Result<Config> LoadConfig(const std::string& component) const;
};

}  // namespace supercluster::base
