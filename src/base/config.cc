// Config: defaults from the built-in schema, overlaid with a user's YAML file and --set
// overrides. The file is read as a stream of yaml-cpp parser events rather than a node
// tree, so that every value keeps its line for error messages, duplicate keys are caught
// (a node tree silently keeps one), and anchors and aliases, which could expand a small
// file into a huge tree, are refused before anything is built.
#include "base/config.h"

#include <yaml-cpp/anchor.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>

#include "base/bounded_read.h"
#include "base/config_schema.h"
#include "base/config_value.h"

namespace supercluster::base {
namespace {

// A config file is a few kilobytes; the cap keeps `--config /dev/zero` from eating memory.
constexpr size_t kMaxConfigFileBytes = size_t{16} << 20;

// Thrown from inside yaml-cpp's callbacks to stop parsing at the first error; it never
// leaves this file.
struct ConfigParseFailure {
  Status status;
};

[[noreturn]] void AbortOnMisuse(const std::string& message) {
  std::cerr << "supercluster: programming error: " << message << "\n";
  std::abort();
}

std::string JoinPath(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return std::string(parent) + "." + std::string(key);
}

std::string KeyContext(std::string_view key) { return "key '" + std::string(key) + "'"; }

// Receives the parser's events for one file and collects the assigned values by dotted
// key. The file's top level is a map; nested maps are sections ("server:" holding
// "max_body_bytes:"), and a key may also be written dotted ("server.max_body_bytes:").
class ConfigFileReader : public YAML::EventHandler {
 public:
  explicit ConfigFileReader(std::string_view source_name) : source_name_(source_name) {}

  const std::map<std::string, TypedValue>& values() const { return values_; }

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents_ > 1) {
      Fail(mark, "a config file holds one YAML document; a second one starts here");
    }
  }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    RefuseAnchor(mark, anchor);
    if (maps_.empty()) return;  // an empty document: every key keeps its default
    MapFrame& map = maps_.back();
    if (map.expecting_key) Fail(mark, "a key has no name");
    std::string path = JoinPath(map.path, map.key);
    // The null's own mark is where the next token starts, often the next line; the key's
    // line is the one to point at.
    if (const ConfigKeySpec* spec = FindConfigKeySpec(path)) {
      std::string hint = spec->type == ConfigType::kString ? " (write \"\" for an empty string)"
                                                           : "";
      FailAt(map.key_line, KeyContext(path) + " has no value" + hint);
    }
    // "server:" with every key under it commented out is a section left empty, not a mistake.
    if (!IsConfigSection(path)) FailAt(map.key_line, UnknownConfigKeyMessage(path));
    map.expecting_key = true;
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { FailOnAnchors(mark); }

  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                const std::string& value) override {
    RefuseAnchor(mark, anchor);
    if (maps_.empty()) {
      Fail(mark, "expected keys and values (a YAML map) at the top level, got '" +
                     PrintableForMessage(value) + "'");
    }
    MapFrame& map = maps_.back();
    if (map.expecting_key) {
      TakeKey(map, mark, value);
      return;
    }
    AssignScalar(map, mark, value);
    map.expecting_key = true;
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    RefuseAnchor(mark, anchor);
    RefuseContainer(mark, "a list");
  }
  // Never reached: a list is refused when it starts.
  void OnSequenceEnd() override {}

  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    RefuseAnchor(mark, anchor);
    if (maps_.empty()) {
      maps_.push_back(MapFrame{});
      return;
    }
    MapFrame& parent = maps_.back();
    std::string path = JoinPath(parent.path, parent.key);
    if (parent.expecting_key || FindConfigKeySpec(path) != nullptr) RefuseContainer(mark, "a map");
    // A map under an unknown name is reported at its first key, where the full dotted
    // name gives the best "did you mean"; an empty one is reported when it ends.
    MapFrame child;
    child.path = std::move(path);
    child.opened_on_line = parent.key_line;
    maps_.push_back(std::move(child));
  }

  void OnMapEnd() override {
    MapFrame finished = std::move(maps_.back());
    maps_.pop_back();
    if (finished.keys_seen.empty() && !finished.path.empty() && !IsConfigSection(finished.path)) {
      FailAt(finished.opened_on_line, UnknownConfigKeyMessage(finished.path));
    }
    if (!maps_.empty()) maps_.back().expecting_key = true;
  }

 private:
  struct MapFrame {
    std::string path;  // dotted path of this map; "" at the top level
    int opened_on_line = 0;
    bool expecting_key = true;
    std::string key;  // the key whose value comes next
    int key_line = 0;
    std::map<std::string, int> keys_seen;  // key -> line, to refuse duplicates
  };

  static int LineOf(const YAML::Mark& mark) { return mark.line + 1; }

  [[noreturn]] void FailAt(int line, const std::string& message) const {
    throw ConfigParseFailure{
        InvalidArgument(source_name_ + ":" + std::to_string(line) + ": " + message)};
  }
  [[noreturn]] void Fail(const YAML::Mark& mark, const std::string& message) const {
    FailAt(LineOf(mark), message);
  }

  [[noreturn]] void FailOnAnchors(const YAML::Mark& mark) const {
    Fail(mark, "anchors (&name) and aliases (*name) are not supported in config files");
  }
  void RefuseAnchor(const YAML::Mark& mark, YAML::anchor_t anchor) const {
    if (anchor != YAML::NullAnchor) FailOnAnchors(mark);
  }

  void TakeKey(MapFrame& map, const YAML::Mark& mark, const std::string& key) {
    auto [seen, inserted] = map.keys_seen.emplace(key, LineOf(mark));
    if (!inserted) {
      Fail(mark, "duplicate key '" + PrintableForMessage(JoinPath(map.path, key)) +
                     "' (first on line " + std::to_string(seen->second) + ")");
    }
    map.key = key;
    map.key_line = LineOf(mark);
    map.expecting_key = false;
  }

  void AssignScalar(const MapFrame& map, const YAML::Mark& mark, const std::string& text) {
    std::string path = JoinPath(map.path, map.key);
    const ConfigKeySpec* spec = FindConfigKeySpec(path);
    if (spec == nullptr) {
      if (IsConfigSection(path)) {
        Fail(mark, KeyContext(path) + " is a section: expected the keys under it, got '" +
                       PrintableForMessage(text) + "'");
      }
      FailAt(map.key_line, UnknownConfigKeyMessage(path));
    }
    Result<TypedValue> value = ParseConfigValue(*spec, text);
    if (!value.ok()) Fail(mark, KeyContext(path) + ": " + value.status().message());
    // The same key may be reached twice through different spellings
    // ("server.max_body_bytes:" and "server: {max_body_bytes: ...}").
    auto [first, inserted] = lines_assigned_.emplace(path, LineOf(mark));
    if (!inserted) {
      Fail(mark, KeyContext(path) + " is set twice (first on line " +
                     std::to_string(first->second) + ")");
    }
    values_[path] = std::move(value).value();
  }

  // A list or map where a key name or a single value belongs.
  [[noreturn]] void RefuseContainer(const YAML::Mark& mark, const std::string& what) const {
    if (maps_.empty()) {
      Fail(mark, "expected keys and values (a YAML map) at the top level, got " + what);
    }
    const MapFrame& map = maps_.back();
    if (map.expecting_key) Fail(mark, "a key must be a plain name, not " + what);
    std::string path = JoinPath(map.path, map.key);
    if (const ConfigKeySpec* spec = FindConfigKeySpec(path)) {
      Fail(mark, KeyContext(path) + ": expected " + ConfigTypeExpectation(spec->type) +
                     ", got " + what);
    }
    if (IsConfigSection(path)) {
      Fail(mark, KeyContext(path) + " is a section: expected the keys under it, got " + what);
    }
    FailAt(map.key_line, UnknownConfigKeyMessage(path));
  }

  std::string source_name_;
  int documents_ = 0;
  std::vector<MapFrame> maps_;
  std::map<std::string, int> lines_assigned_;
  std::map<std::string, TypedValue> values_;
};

// base::ReadFileAtMost, with the codes config errors have always had: a missing or
// unreadable file as such, anything else an invalid argument.
Result<std::string> ReadConfigFile(const std::string& path) {
  Result<std::string> contents = ReadFileAtMost(path, kMaxConfigFileBytes);
  if (contents.ok()) return contents;
  const Status& status = contents.status();
  switch (status.code()) {
    case StatusCode::kNotFound:
    case StatusCode::kPermissionDenied:
      return status;
    case StatusCode::kOutOfRange:
      return InvalidArgument(status.message() + ", which is no config file");
    default:
      return InvalidArgument(status.message());
  }
}

}  // namespace

// Builds Config values; a friend of Config so that the parsing above needs no access to it.
class ConfigLoader {
 public:
  static void Store(Config& config, const std::string& key, const TypedValue& typed) {
    config.values_[key] = Config::Value{typed.text, typed.integer, typed.number};
  }

  static Config BuildDefaults() {
    Config config;
    for (const auto& [key, spec] : BuiltInConfigKeySpecs()) {
      Store(config, key, spec.default_value);
    }
    return config;
  }

  static Result<Config> Load(std::string_view yaml, std::string_view source_name) {
    std::string source(source_name);
    // yaml-cpp would take a UTF-16 or UTF-32 byte order mark as an encoding, and NUL bytes
    // and other binary as text; a config file is UTF-8 text, and anything else (a binary
    // given by mistake) is refused here, naming where it stops being text.
    if (std::optional<size_t> bad = FirstNonTextByte(yaml)) {
      const size_t line =
          1 + static_cast<size_t>(std::count(yaml.begin(), yaml.begin() + *bad, '\n'));
      return InvalidArgument(source + ":" + std::to_string(line) + ": not UTF-8 text (byte " +
                             PrintableForMessage(yaml.substr(*bad, 1)) + "); a config file is "
                             "UTF-8 YAML");
    }
    ConfigFileReader reader(source);
    try {
      std::istringstream stream{std::string(yaml)};
      YAML::Parser parser(stream);
      while (parser.HandleNextDocument(reader)) {
      }
    } catch (const ConfigParseFailure& failure) {
      return failure.status;
    } catch (const YAML::Exception& error) {
      std::string line = error.mark.is_null() ? "" : std::to_string(error.mark.line + 1) + ":";
      // yaml-cpp may quote the offending bytes in its message.
      return InvalidArgument(source + ":" + line + " invalid YAML: " +
                             PrintableForMessage(error.msg, 200));
    } catch (const std::exception& error) {
      return InvalidArgument(source + ": cannot parse: " + PrintableForMessage(error.what(), 200));
    }
    Config config = Config::Defaults();
    for (const auto& [key, value] : reader.values()) Store(config, key, value);
    return config;
  }
};

Config Config::Defaults() {
  static const Config* const defaults = new Config(ConfigLoader::BuildDefaults());
  return *defaults;
}

Result<Config> Config::LoadFile(const std::string& path) {
  SC_ASSIGN_OR_RETURN(std::string contents, ReadConfigFile(path));
  return ConfigLoader::Load(contents, path);
}

Result<Config> Config::LoadString(std::string_view yaml, std::string_view source_name) {
  return ConfigLoader::Load(yaml, source_name);
}

Status Config::Set(std::string_view key, std::string_view value) {
  const ConfigKeySpec* spec = FindConfigKeySpec(key);
  if (spec == nullptr) return InvalidArgument(UnknownConfigKeyMessage(key));
  Result<TypedValue> parsed = ParseConfigValue(*spec, value);
  if (!parsed.ok()) return parsed.status().WithContext(KeyContext(key));
  ConfigLoader::Store(*this, spec->info.key, *parsed);
  return Status::Ok();
}

Status Config::SetFromFlag(std::string_view assignment) {
  size_t equals = assignment.find('=');
  if (equals == std::string_view::npos) {
    return InvalidArgument("--set '" + PrintableForMessage(assignment) +
                           "': expected key=value, e.g. server.max_body_bytes=16MiB");
  }
  return Set(assignment.substr(0, equals), assignment.substr(equals + 1));
}

const Config::Value& Config::Lookup(std::string_view key, std::string_view wanted_type) const {
  const ConfigKeySpec* spec = FindConfigKeySpec(key);
  if (spec == nullptr) AbortOnMisuse("read of unknown config key '" + std::string(key) + "'");
  // Byte counts are integers to the code that reads them.
  bool type_matches = spec->info.type == wanted_type ||
                      (wanted_type == "int" && spec->type == ConfigType::kBytes);
  if (!type_matches) {
    AbortOnMisuse("config key '" + std::string(key) + "' is a " + spec->info.type +
                  ", read as " + std::string(wanted_type));
  }
  auto found = values_.find(key);
  if (found == values_.end()) {
    AbortOnMisuse("config key '" + std::string(key) +
                  "' read from a Config not made by Defaults(), LoadFile() or LoadString()");
  }
  return found->second;
}

int64_t Config::GetInt(std::string_view key) const { return Lookup(key, "int").integer; }

double Config::GetFloat(std::string_view key) const { return Lookup(key, "float").number; }

bool Config::GetBool(std::string_view key) const { return Lookup(key, "bool").integer != 0; }

const std::string& Config::GetString(std::string_view key) const {
  return Lookup(key, "string").text;
}

std::chrono::milliseconds Config::GetDuration(std::string_view key) const {
  return std::chrono::milliseconds(Lookup(key, "duration").integer);
}

std::vector<std::pair<std::string, std::string>> Config::Dump() const {
  std::vector<std::pair<std::string, std::string>> entries;
  entries.reserve(values_.size());
  for (const auto& [key, value] : values_) entries.emplace_back(key, value.text);
  return entries;
}

}  // namespace supercluster::base
