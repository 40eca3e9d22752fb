#include "base/service_flags.h"

#include "base/logging.h"

namespace supercluster::base {

void ServiceFlags::Register(FlagSet& flags) {
  flags.AddString("config", &config_file, "YAML configuration file (see docs/configuration.md)");
  flags.AddRepeated("set", &overrides, "override one config key: --set server.max_body_bytes=1MiB");
  flags.AddString("log-format", &log_format, "text or json (overrides log.format)");
  flags.AddString("log-level", &log_level, "trace, debug, info, warn, error or off");
}

Result<Config> ServiceFlags::LoadConfig(const std::string& component) const {
  Config config = Config::Defaults();
  if (!config_file.empty()) {
    SC_ASSIGN_OR_RETURN(config, Config::LoadFile(config_file));
  }
  for (const std::string& assignment : overrides) {
    SC_RETURN_IF_ERROR(config.SetFromFlag(assignment).WithContext("--set"));
  }
  std::string format = log_format.empty() ? config.GetString("log.format") : log_format;
  std::string level = log_level.empty() ? config.GetString("log.level") : log_level;
  SC_RETURN_IF_ERROR(InitLogging(format, level, component));
  return config;
}

}  // namespace supercluster::base
