// Parsing and canonical printing of config values; see config_value.h.
#include "base/config_value.h"

#include <array>
#include <charconv>
#include <cmath>
#include <limits>

#include "base/utf8.h"

namespace supercluster::base {
namespace {

constexpr int64_t kMillisecondsPerSecond = 1000;
constexpr int64_t kMillisecondsPerMinute = 60 * kMillisecondsPerSecond;
constexpr int64_t kMillisecondsPerHour = 60 * kMillisecondsPerMinute;
constexpr int64_t kKibibyte = int64_t{1} << 10;
constexpr int64_t kMebibyte = int64_t{1} << 20;
constexpr int64_t kGibibyte = int64_t{1} << 30;

struct Unit {
  std::string_view suffix;
  int64_t multiplier;
};

// Largest first: formatting picks the first unit that divides the value exactly.
constexpr std::array<Unit, 4> kDurationUnits = {{
    {"h", kMillisecondsPerHour},
    {"m", kMillisecondsPerMinute},
    {"s", kMillisecondsPerSecond},
    {"ms", 1},
}};
constexpr std::array<Unit, 3> kByteUnits = {{
    {"GiB", kGibibyte},
    {"MiB", kMebibyte},
    {"KiB", kKibibyte},
}};

enum class DigitsResult { kOk, kMalformed, kTooLarge };

// Reads a non-empty run of decimal digits as a non-negative int64. Signs, spaces and any
// other character make it malformed, so "1e3", " 5" and "0x10" are all rejected.
DigitsResult ParseDigits(std::string_view digits, int64_t* value) {
  if (digits.empty()) return DigitsResult::kMalformed;
  int64_t result = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return DigitsResult::kMalformed;
    int digit = c - '0';
    if (result > (std::numeric_limits<int64_t>::max() - digit) / 10) {
      return DigitsResult::kTooLarge;
    }
    result = result * 10 + digit;
  }
  *value = result;
  return DigitsResult::kOk;
}

// Splits "250ms" into "250" and "ms".
std::pair<std::string_view, std::string_view> SplitNumberAndSuffix(std::string_view text) {
  size_t digits_end = 0;
  while (digits_end < text.size() && text[digits_end] >= '0' && text[digits_end] <= '9') {
    ++digits_end;
  }
  return {text.substr(0, digits_end), text.substr(digits_end)};
}

Status Expected(ConfigType type, std::string_view got, std::string_view hint = "") {
  std::string message = "expected " + ConfigTypeExpectation(type) + ", got '" +
                        PrintableForMessage(got) + "'";
  if (!hint.empty()) message += " (" + std::string(hint) + ")";
  return InvalidArgument(std::move(message));
}

Status TooLarge(std::string_view got) {
  return InvalidArgument("'" + PrintableForMessage(got) + "' is too large");
}

Result<TypedValue> ParseInt(std::string_view text) {
  bool negative = !text.empty() && text[0] == '-';
  std::string_view digits = negative ? text.substr(1) : text;
  // Accumulating the magnitude as a positive int64 cannot hold INT64_MIN; nobody writes
  // that as a config value, so it is reported as out of range like any larger number.
  int64_t magnitude = 0;
  switch (ParseDigits(digits, &magnitude)) {
    case DigitsResult::kMalformed:
      return Expected(ConfigType::kInt, text);
    case DigitsResult::kTooLarge:
      return InvalidArgument("'" + PrintableForMessage(text) +
                             "' is out of range for a 64-bit integer");
    case DigitsResult::kOk:
      break;
  }
  TypedValue value;
  value.integer = negative ? -magnitude : magnitude;
  value.text = std::to_string(value.integer);
  return value;
}

std::string FormatFloat(double number) {
  std::array<char, 64> buffer{};
  auto [end, error] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), number);
  if (error != std::errc()) return std::to_string(number);
  return std::string(buffer.data(), end);
}

Result<TypedValue> ParseFloat(std::string_view text) {
  double number = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (text.empty() || error == std::errc::invalid_argument || end != text.data() + text.size()) {
    return Expected(ConfigType::kFloat, text);
  }
  if (error == std::errc::result_out_of_range) return TooLarge(text);
  // from_chars accepts "inf" and "nan"; no limit or ratio is meaningful as either.
  if (!std::isfinite(number)) return Expected(ConfigType::kFloat, text);
  TypedValue value;
  value.number = number;
  value.text = FormatFloat(number);
  return value;
}

Result<TypedValue> ParseBool(std::string_view text) {
  // Only the two spellings: YAML 1.1's yes/no/on/off surprise people ("NO" as a country).
  if (text != "true" && text != "false") return Expected(ConfigType::kBool, text);
  TypedValue value;
  value.integer = text == "true" ? 1 : 0;
  value.text = std::string(text);
  return value;
}

Result<TypedValue> ParseDuration(std::string_view text) {
  auto [digits, suffix] = SplitNumberAndSuffix(text);
  if (suffix.empty() && !digits.empty()) {
    return Expected(ConfigType::kDuration, text, "a unit is required: ms, s, m or h");
  }
  for (const Unit& unit : kDurationUnits) {
    if (suffix != unit.suffix) continue;
    int64_t count = 0;
    switch (ParseDigits(digits, &count)) {
      case DigitsResult::kMalformed:
        return Expected(ConfigType::kDuration, text);
      case DigitsResult::kTooLarge:
        return TooLarge(text);
      case DigitsResult::kOk:
        break;
    }
    if (count > std::numeric_limits<int64_t>::max() / unit.multiplier) return TooLarge(text);
    TypedValue value;
    value.integer = count * unit.multiplier;
    value.text = FormatDuration(value.integer);
    return value;
  }
  return Expected(ConfigType::kDuration, text);
}

// Suffixes people reach for that mean something else or nothing here.
bool LooksLikeOtherByteUnit(std::string_view suffix) {
  for (std::string_view other : {"K", "M", "G", "KB", "MB", "GB", "k", "kb", "mb", "gb",
                                 "kB", "Ki", "Mi", "Gi", "kib", "mib", "gib", "B"}) {
    if (suffix == other) return true;
  }
  return false;
}

Result<TypedValue> ParseBytes(std::string_view text) {
  auto [digits, suffix] = SplitNumberAndSuffix(text);
  int64_t multiplier = 0;
  if (suffix.empty()) multiplier = 1;
  for (const Unit& unit : kByteUnits) {
    if (suffix == unit.suffix) multiplier = unit.multiplier;
  }
  if (multiplier == 0) {
    if (!digits.empty() && LooksLikeOtherByteUnit(suffix)) {
      return Expected(ConfigType::kBytes, text, "the units are KiB, MiB and GiB");
    }
    return Expected(ConfigType::kBytes, text);
  }
  int64_t count = 0;
  switch (ParseDigits(digits, &count)) {
    case DigitsResult::kMalformed:
      return Expected(ConfigType::kBytes, text);
    case DigitsResult::kTooLarge:
      return TooLarge(text);
    case DigitsResult::kOk:
      break;
  }
  if (count > std::numeric_limits<int64_t>::max() / multiplier) return TooLarge(text);
  TypedValue value;
  value.integer = count * multiplier;
  value.text = FormatBytes(value.integer);
  return value;
}

// The length of the printable UTF-8 character `text` starts with, or 0 when it starts with
// a control character (C0, DEL or C1: a terminal may act on them) or with bytes that are
// not well-formed UTF-8.
size_t PrintableCharacterLength(std::string_view text) {
  if (text.empty()) return 0;
  const auto lead = static_cast<unsigned char>(text[0]);
  if (lead < 0x20 || lead == 0x7f) return 0;
  if (lead == 0xc2 && text.size() > 1 && static_cast<unsigned char>(text[1]) <= 0x9f) {
    return 0;  // C1 controls, U+0080 to U+009F
  }
  return Utf8SequenceLength(text);
}

template <size_t N>
std::string FormatWithUnits(int64_t value, const std::array<Unit, N>& units,
                            std::string_view zero) {
  if (value == 0) return std::string(zero);
  for (const Unit& unit : units) {
    if (value % unit.multiplier == 0) {
      return std::to_string(value / unit.multiplier) + std::string(unit.suffix);
    }
  }
  return std::to_string(value);
}

}  // namespace

std::string_view ConfigTypeName(ConfigType type) {
  switch (type) {
    case ConfigType::kInt: return "int";
    case ConfigType::kFloat: return "float";
    case ConfigType::kBool: return "bool";
    case ConfigType::kString: return "string";
    case ConfigType::kDuration: return "duration";
    case ConfigType::kBytes: return "bytes";
  }
  return "unknown";
}

std::optional<ConfigType> ConfigTypeFromName(std::string_view name) {
  for (ConfigType type : {ConfigType::kInt, ConfigType::kFloat, ConfigType::kBool,
                          ConfigType::kString, ConfigType::kDuration, ConfigType::kBytes}) {
    if (ConfigTypeName(type) == name) return type;
  }
  return std::nullopt;
}

std::string ConfigTypeExpectation(ConfigType type) {
  switch (type) {
    case ConfigType::kInt: return "an integer";
    case ConfigType::kFloat: return "a number";
    case ConfigType::kBool: return "true or false";
    case ConfigType::kString: return "a string";
    case ConfigType::kDuration: return "a duration like 30s or 250ms";
    case ConfigType::kBytes: return "a byte count like 512, 64KiB or 8MiB";
  }
  return "a value";
}

Result<TypedValue> ParseTypedValue(ConfigType type, std::string_view text) {
  switch (type) {
    case ConfigType::kInt: return ParseInt(text);
    case ConfigType::kFloat: return ParseFloat(text);
    case ConfigType::kBool: return ParseBool(text);
    case ConfigType::kDuration: return ParseDuration(text);
    case ConfigType::kBytes: return ParseBytes(text);
    case ConfigType::kString: {
      TypedValue value;
      value.text = std::string(text);
      return value;
    }
  }
  return Internal("unknown config type");
}

std::string FormatDuration(int64_t milliseconds) {
  return FormatWithUnits(milliseconds, kDurationUnits, "0s");
}

std::string FormatBytes(int64_t bytes) { return FormatWithUnits(bytes, kByteUnits, "0"); }

std::optional<size_t> FirstNonTextByte(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    size_t length =
        c == '\t' || c == '\n' || c == '\r' ? 1 : PrintableCharacterLength(text.substr(i));
    if (length == 0) return i;
    i += length;
  }
  return std::nullopt;
}

std::string PrintableForMessage(std::string_view text, size_t max_length) {
  static constexpr char kHexDigits[] = "0123456789abcdef";
  std::string_view shown = text.substr(0, max_length);
  std::string printable;
  size_t i = 0;
  while (i < shown.size()) {
    size_t length = PrintableCharacterLength(shown.substr(i));
    if (length > 0) {
      printable.append(shown.substr(i, length));
      i += length;
      continue;
    }
    auto byte = static_cast<unsigned char>(shown[i]);
    printable += "\\x";
    printable += kHexDigits[byte >> 4];
    printable += kHexDigits[byte & 0xf];
    ++i;
  }
  if (text.size() > max_length) printable += "...";
  return printable;
}

}  // namespace supercluster::base
