// Private to base: the built-in schema (config/schema.yaml compiled in) parsed into typed
// key specs, and the checks a value must pass for a key. config.cc builds Config values
// through these; ConfigSchema() in config.h is the public view of the same entries.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/config.h"
#include "base/config_value.h"
#include "base/status.h"

namespace supercluster::base {

struct ConfigKeySpec {
  ConfigKeyInfo info;
  ConfigType type = ConfigType::kString;
  TypedValue default_value;
  std::optional<TypedValue> min;
  std::optional<TypedValue> max;
};

using ConfigKeySpecs = std::map<std::string, ConfigKeySpec, std::less<>>;

// Parses and checks schema text in the format of config/schema.yaml: every default must
// be a valid value of its own key, bounds and defaults written in canonical form, names
// lower_snake_case segments joined by dots. Exposed for tests; the binary uses the
// built-in schema below.
Result<ConfigKeySpecs> ParseConfigSchema(std::string_view schema_yaml);

// The built-in schema, parsed once. If it is broken (a bug caught by any test run), prints
// why to stderr and aborts: no command can run with a schema it cannot trust.
const ConfigKeySpecs& BuiltInConfigKeySpecs();

// The spec of `key`, or null when the built-in schema has no such key.
const ConfigKeySpec* FindConfigKeySpec(std::string_view key);

// True when `path` is a proper prefix of known keys ("server", "server.tls"), i.e. a map
// that holds keys rather than a key itself.
bool IsConfigSection(std::string_view path);

// "unknown key 'server.max_bdy_bytes' (did you mean 'server.max_body_bytes'?)", the
// suggestion only when one known key is close enough to be the likely intent.
std::string UnknownConfigKeyMessage(std::string_view key);

// Parses `text` for `spec` and checks range and choices. The message names neither key
// nor file: "0 is below the minimum 1KiB".
Result<TypedValue> ParseConfigValue(const ConfigKeySpec& spec, std::string_view text);

}  // namespace supercluster::base
