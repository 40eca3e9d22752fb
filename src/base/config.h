// Configuration: one schema of typed keys with their defaults, loaded from YAML files and
// `--set key=value` overrides, validated before anything starts.
//
// The schema lives in one place, config/schema.yaml, compiled into the binary; it is the
// only place a default is written, and docs/configuration.md is checked against it by a
// test. A user's file is nested YAML ("server:\n  max_body_bytes: 1MiB"); keys are named
// by their dotted path ("server.max_body_bytes"). An unknown key, a value of the wrong
// type, or a value out of range is an error naming the file, the line and the key.
//
// Value types: int, float, bool, string (optionally one of fixed choices), duration
// ("250ms", "30s", "5m", "1h"; stored as milliseconds), bytes ("512", "64KiB", "8MiB",
// "1GiB"; stored as a byte count).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace supercluster::base {

// One key of the schema, as written in config/schema.yaml.
struct ConfigKeyInfo {
  std::string key;            // dotted path
  std::string type;           // int | float | bool | string | duration | bytes
  std::string default_value;  // as written in the schema
  std::string min;            // "" when unbounded (int, float, duration, bytes)
  std::string max;            // "" when unbounded
  std::vector<std::string> choices;  // string keys with a fixed set of values
  std::string description;
};

// Every key the binary knows, sorted by key.
const std::vector<ConfigKeyInfo>& ConfigSchema();

class Config {
 public:
  // All keys at their defaults.
  static Config Defaults();
  // The defaults overlaid with a YAML file.
  static Result<Config> LoadFile(const std::string& path);
  // As LoadFile, with `source_name` standing for the file name in error messages.
  static Result<Config> LoadString(std::string_view yaml, std::string_view source_name);

  // Overrides one key from text ("server.max_body_bytes", "1MiB"), validated as a file
  // value would be; errors name the key. Used for `--set key=value`.
  Status Set(std::string_view key, std::string_view value);
  // Parses "key=value" and calls Set.
  Status SetFromFlag(std::string_view assignment);

  // Typed reads. Precondition: the key is in the schema with a matching type (int reads
  // int and bytes keys); breaking it is a programming error and aborts with the key named.
  int64_t GetInt(std::string_view key) const;
  double GetFloat(std::string_view key) const;
  bool GetBool(std::string_view key) const;
  const std::string& GetString(std::string_view key) const;
  std::chrono::milliseconds GetDuration(std::string_view key) const;

  // Every key with its current value as text, sorted; for `supercluster config show`.
  std::vector<std::pair<std::string, std::string>> Dump() const;

 private:
  struct Value {
    std::string text;     // canonical text form
    int64_t integer = 0;  // int, bytes, duration (ms), bool (0/1)
    double number = 0;    // float
  };
  const Value& Lookup(std::string_view key, std::string_view wanted_type) const;
  friend class ConfigLoader;

  std::map<std::string, Value, std::less<>> values_;
};

}  // namespace supercluster::base
