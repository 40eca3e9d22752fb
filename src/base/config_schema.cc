// The built-in config schema: parsing and checking config/schema.yaml (compiled in as
// text by config_schema_text.cc.in), key lookup, suggestions for misspelt keys, and the
// range and choice checks every value goes through.
#include "base/config_schema.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <set>
#include <vector>

#include "base/config_schema_text.h"

namespace supercluster::base {
namespace {

// Misspellings within this many single-character edits get a "did you mean".
constexpr size_t kMaxSuggestionDistance = 2;

bool IsValidKeyName(std::string_view key) {
  if (key.empty() || key.front() == '.' || key.back() == '.') return false;
  char previous = '\0';
  for (char c : key) {
    bool allowed = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
    if (!allowed || (c == '.' && previous == '.')) return false;
    previous = c;
  }
  return true;
}

bool IsBounded(ConfigType type) {
  return type == ConfigType::kInt || type == ConfigType::kFloat ||
         type == ConfigType::kDuration || type == ConfigType::kBytes;
}

// Negative when a < b, zero when equal, positive when a > b.
int CompareValues(ConfigType type, const TypedValue& a, const TypedValue& b) {
  if (type == ConfigType::kFloat) return a.number < b.number ? -1 : (a.number > b.number ? 1 : 0);
  return a.integer < b.integer ? -1 : (a.integer > b.integer ? 1 : 0);
}

std::string JoinChoices(const std::vector<std::string>& choices) {
  std::string joined;
  for (size_t i = 0; i < choices.size(); ++i) {
    if (i > 0) joined += (i + 1 == choices.size()) ? " or " : ", ";
    joined += choices[i];
  }
  return joined;
}

// Levenshtein distance, giving up (returning limit + 1) once it must exceed `limit`, so a
// megabyte-long unknown key costs nothing.
size_t EditDistance(std::string_view a, std::string_view b, size_t limit) {
  size_t length_gap = a.size() > b.size() ? a.size() - b.size() : b.size() - a.size();
  if (length_gap > limit) return limit + 1;
  std::vector<size_t> previous(b.size() + 1);
  std::vector<size_t> current(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    size_t row_minimum = current[0];
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitution});
      row_minimum = std::min(row_minimum, current[j]);
    }
    if (row_minimum > limit) return limit + 1;
    std::swap(previous, current);
  }
  return previous[b.size()];
}

std::string_view LastSegment(std::string_view key) {
  size_t dot = key.rfind('.');
  return dot == std::string_view::npos ? key : key.substr(dot + 1);
}

// The known key the user most likely meant, if any: the nearest within a couple of
// typos, otherwise the only key ending in the same name ("max_body_bytes" written at the
// wrong level, or under an invented "net." prefix).
std::optional<std::string> SuggestKey(std::string_view unknown) {
  const ConfigKeySpecs& specs = BuiltInConfigKeySpecs();
  std::optional<std::string> nearest;
  size_t nearest_distance = kMaxSuggestionDistance + 1;
  for (const auto& [key, spec] : specs) {
    size_t distance = EditDistance(unknown, key, kMaxSuggestionDistance);
    if (distance < nearest_distance) {
      nearest_distance = distance;
      nearest = key;
    }
  }
  if (nearest) return nearest;
  std::optional<std::string> same_name;
  for (const auto& [key, spec] : specs) {
    if (LastSegment(key) != LastSegment(unknown)) continue;
    if (same_name) return std::nullopt;  // ambiguous: suggesting one would mislead
    same_name = key;
  }
  return same_name;
}

Status SchemaError(std::string_view key, const std::string& message) {
  return InvalidArgument("key '" + std::string(key) + "': " + message);
}

// A scalar field of a schema entry as text, or an error when it is a list or a map.
Result<std::string> ScalarField(std::string_view key, const YAML::Node& field,
                                std::string_view field_name) {
  if (!field.IsScalar()) {
    return SchemaError(key, std::string(field_name) + " must be a single value");
  }
  return field.Scalar();
}

// Parses a default or bound and insists it is written canonically, so the text in the
// schema, in `config show` and in docs/configuration.md is always the same.
Result<TypedValue> ParseCanonical(std::string_view key, ConfigType type, const std::string& text,
                                  std::string_view field_name) {
  Result<TypedValue> parsed = ParseTypedValue(type, text);
  if (!parsed.ok()) {
    return SchemaError(key, std::string(field_name) + ": " + parsed.status().message());
  }
  if (parsed->text != text) {
    return SchemaError(key, std::string(field_name) + " '" + text +
                                "' is not in canonical form; write '" + parsed->text + "'");
  }
  return parsed;
}

Status ReadChoices(std::string_view key, const YAML::Node& field, ConfigKeySpec& spec) {
  if (!field.IsSequence() || field.size() == 0) {
    return SchemaError(key, "choices must be a non-empty list");
  }
  for (const YAML::Node& choice : field) {
    if (!choice.IsScalar()) return SchemaError(key, "each choice must be a single value");
    spec.info.choices.push_back(choice.Scalar());
  }
  return Status::Ok();
}

Result<ConfigKeySpec> ParseSchemaEntry(const std::string& key, const YAML::Node& entry) {
  if (!IsValidKeyName(key)) {
    return SchemaError(key, "names are lower_snake_case segments joined by dots");
  }
  if (!entry.IsMap()) return SchemaError(key, "an entry must be a map of type, default, doc");
  ConfigKeySpec spec;
  spec.info.key = key;
  bool has_default = false;
  std::optional<std::string> min_text;
  std::optional<std::string> max_text;
  std::set<std::string, std::less<>> seen;
  for (const auto& field : entry) {
    const std::string name = field.first.Scalar();
    // YAML's parser keeps a repeated field, and the later one would silently win.
    if (!seen.insert(name).second) return SchemaError(key, "field '" + name + "' given twice");
    if (name == "choices") {
      SC_RETURN_IF_ERROR(ReadChoices(key, field.second, spec));
      continue;
    }
    SC_ASSIGN_OR_RETURN(std::string text, ScalarField(key, field.second, name));
    if (name == "type") {
      spec.info.type = text;
    } else if (name == "default") {
      spec.info.default_value = text;
      has_default = true;
    } else if (name == "min") {
      min_text = text;
    } else if (name == "max") {
      max_text = text;
    } else if (name == "doc") {
      spec.info.description = text;
    } else {
      return SchemaError(key, "unknown field '" + name + "'");
    }
  }
  std::optional<ConfigType> type = ConfigTypeFromName(spec.info.type);
  if (!type) return SchemaError(key, "type '" + spec.info.type + "' is not one of int, float, "
                                     "bool, string, duration, bytes");
  spec.type = *type;
  if (!has_default) return SchemaError(key, "needs a default");
  if (spec.info.description.empty() || spec.info.description.back() != '.' ||
      spec.info.description.find('\n') != std::string::npos) {
    return SchemaError(key, "doc must be one sentence on one line, ending with '.'");
  }
  if ((min_text || max_text) && !IsBounded(spec.type)) {
    return SchemaError(key, "min and max apply only to int, float, duration and bytes");
  }
  if (!spec.info.choices.empty() && spec.type != ConfigType::kString) {
    return SchemaError(key, "choices apply only to string keys");
  }
  if (min_text) {
    SC_ASSIGN_OR_RETURN(spec.min, ParseCanonical(key, spec.type, *min_text, "min"));
    spec.info.min = *min_text;
  }
  if (max_text) {
    SC_ASSIGN_OR_RETURN(spec.max, ParseCanonical(key, spec.type, *max_text, "max"));
    spec.info.max = *max_text;
  }
  if (spec.min && spec.max && CompareValues(spec.type, *spec.min, *spec.max) > 0) {
    return SchemaError(key, "min " + spec.info.min + " is above max " + spec.info.max);
  }
  SC_ASSIGN_OR_RETURN(spec.default_value,
                      ParseCanonical(key, spec.type, spec.info.default_value, "default"));
  Result<TypedValue> in_range = ParseConfigValue(spec, spec.info.default_value);
  if (!in_range.ok()) return SchemaError(key, "default: " + in_range.status().message());
  return spec;
}

// A key that is also the section of another ("server.tls" and "server.tls.ca_file") could
// not be written in a nested file, so the schema may not have both.
Status CheckNoKeyIsASection(const ConfigKeySpecs& specs) {
  for (const auto& [key, spec] : specs) {
    auto next = specs.upper_bound(key);
    if (next != specs.end() && next->first.rfind(key + ".", 0) == 0) {
      return SchemaError(key, "is both a key and the section of '" + next->first + "'");
    }
  }
  return Status::Ok();
}

Result<ConfigKeySpecs> ParseSchemaDocument(const YAML::Node& root) {
  if (!root.IsMap() || root.size() == 0) {
    return InvalidArgument("the schema must be a non-empty map of dotted keys");
  }
  ConfigKeySpecs specs;
  for (const auto& entry : root) {
    if (!entry.first.IsScalar()) return InvalidArgument("a schema key must be a name");
    const std::string key = entry.first.Scalar();
    SC_ASSIGN_OR_RETURN(ConfigKeySpec spec, ParseSchemaEntry(key, entry.second));
    if (!specs.emplace(key, std::move(spec)).second) return SchemaError(key, "is defined twice");
  }
  SC_RETURN_IF_ERROR(CheckNoKeyIsASection(specs));
  return specs;
}

std::set<std::string, std::less<>> CollectSections(const ConfigKeySpecs& specs) {
  std::set<std::string, std::less<>> sections;
  for (const auto& [key, spec] : specs) {
    for (size_t dot = key.find('.'); dot != std::string::npos; dot = key.find('.', dot + 1)) {
      sections.insert(key.substr(0, dot));
    }
  }
  return sections;
}

const std::set<std::string, std::less<>>& BuiltInSections() {
  static const auto* const sections =
      new std::set<std::string, std::less<>>(CollectSections(BuiltInConfigKeySpecs()));
  return *sections;
}

}  // namespace

Result<ConfigKeySpecs> ParseConfigSchema(std::string_view schema_yaml) {
  try {
    return ParseSchemaDocument(YAML::Load(std::string(schema_yaml)));
  } catch (const YAML::Exception& error) {
    return InvalidArgument("line " + std::to_string(error.mark.line + 1) + ": " + error.msg);
  }
}

const ConfigKeySpecs& BuiltInConfigKeySpecs() {
  // Never destroyed: config may still be read while other statics are torn down at exit.
  static const ConfigKeySpecs* const specs = [] {
    Result<ConfigKeySpecs> parsed = ParseConfigSchema(ConfigSchemaText());
    if (!parsed.ok()) {
      std::cerr << "supercluster: the built-in config schema (config/schema.yaml) is broken: "
                << parsed.status().message() << "\n";
      std::abort();
    }
    return new ConfigKeySpecs(std::move(parsed).value());
  }();
  return *specs;
}

const ConfigKeySpec* FindConfigKeySpec(std::string_view key) {
  const ConfigKeySpecs& specs = BuiltInConfigKeySpecs();
  auto found = specs.find(key);
  return found == specs.end() ? nullptr : &found->second;
}

bool IsConfigSection(std::string_view path) { return BuiltInSections().contains(path); }

std::string UnknownConfigKeyMessage(std::string_view key) {
  std::string message = "unknown key '" + PrintableForMessage(key) + "'";
  if (std::optional<std::string> suggestion = SuggestKey(key)) {
    message += " (did you mean '" + *suggestion + "'?)";
  }
  return message;
}

Result<TypedValue> ParseConfigValue(const ConfigKeySpec& spec, std::string_view text) {
  SC_ASSIGN_OR_RETURN(TypedValue value, ParseTypedValue(spec.type, text));
  if (!spec.info.choices.empty() &&
      std::find(spec.info.choices.begin(), spec.info.choices.end(), value.text) ==
          spec.info.choices.end()) {
    return InvalidArgument("expected " + JoinChoices(spec.info.choices) + ", got '" +
                           PrintableForMessage(text) + "'");
  }
  if (spec.min && CompareValues(spec.type, value, *spec.min) < 0) {
    return InvalidArgument(PrintableForMessage(text) + " is below the minimum " + spec.info.min);
  }
  if (spec.max && CompareValues(spec.type, value, *spec.max) > 0) {
    return InvalidArgument(PrintableForMessage(text) + " is above the maximum " + spec.info.max);
  }
  return value;
}

const std::vector<ConfigKeyInfo>& ConfigSchema() {
  static const auto* const infos = [] {
    auto* result = new std::vector<ConfigKeyInfo>();
    for (const auto& [key, spec] : BuiltInConfigKeySpecs()) result->push_back(spec.info);
    return result;
  }();
  return *infos;
}

}  // namespace supercluster::base
