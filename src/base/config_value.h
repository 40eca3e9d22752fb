// Private to base: the value types of config keys (int, float, bool, string, duration,
// bytes), how their text is parsed and how each is written back in canonical form.
// Used by config.cc for user values and by config_schema.cc for the built-in defaults and
// bounds, so both read "16KiB" or "30s" the same way.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace supercluster::base {

enum class ConfigType { kInt, kFloat, kBool, kString, kDuration, kBytes };

// "int", "float", ... as written in config/schema.yaml.
std::string_view ConfigTypeName(ConfigType type);
std::optional<ConfigType> ConfigTypeFromName(std::string_view name);

// What a value of the type looks like, for messages: "expected <this>, got ...".
std::string ConfigTypeExpectation(ConfigType type);

// A parsed value. `integer` holds int, bytes, duration (milliseconds) and bool (0 or 1);
// `number` holds float; `text` is the canonical form ("30s", "1MiB", "true").
struct TypedValue {
  std::string text;
  int64_t integer = 0;
  double number = 0;
};

// Parses `text` as a value of `type`. The error message says what was expected and quotes
// what was given, without naming a key or a file (the caller adds those).
Result<TypedValue> ParseTypedValue(ConfigType type, std::string_view text);

// Canonical forms: the largest unit that divides the value exactly ("90s", "1m", "1MiB").
std::string FormatDuration(int64_t milliseconds);
std::string FormatBytes(int64_t bytes);

// `text` made safe to quote in a one-line message: control characters and bytes that are
// not UTF-8 escaped as \xNN, anything past `max_length` bytes replaced by "...". Config
// values come from files a user may have got wrong in any way (or from a binary file given
// by mistake), and the message must stay one readable line.
std::string PrintableForMessage(std::string_view text, size_t max_length = 64);

// The offset of the first byte of `text` that is not part of printable UTF-8 text, tab,
// line feed or carriage return (a NUL, another control character, a byte that is not
// well-formed UTF-8); nullopt when there is none. A config file must be such text.
std::optional<size_t> FirstNonTextByte(std::string_view text);

}  // namespace supercluster::base
