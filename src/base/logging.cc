// InitLogging: the process-wide spdlog logger writing text or JSON lines to stderr.
//
// Both formats escape control characters in messages, so a message built from untrusted
// input (a header value, a file name) can never start a forged line of its own.
#include "base/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace supercluster::base {
namespace {

using spdlog::level::level_enum;

struct LevelName {
  level_enum level;
  std::string_view name;
};

// Our names, not spdlog's ("warning", "critical" differ); the same in both formats and
// the same that --log-level and log.level accept.
constexpr std::array<LevelName, 7> kLevelNames = {{
    {level_enum::trace, "trace"},
    {level_enum::debug, "debug"},
    {level_enum::info, "info"},
    {level_enum::warn, "warn"},
    {level_enum::err, "error"},
    {level_enum::critical, "critical"},
    {level_enum::off, "off"},
}};

std::string_view NameOfLevel(level_enum level) {
  for (const LevelName& entry : kLevelNames) {
    if (entry.level == level) return entry.name;
  }
  return "unknown";
}

// "critical" is a level messages may have but not one to filter at.
std::optional<level_enum> LevelFromName(std::string_view name) {
  for (const LevelName& entry : kLevelNames) {
    if (entry.name == name && entry.level != level_enum::critical) return entry.level;
  }
  return std::nullopt;
}

std::string_view Payload(const spdlog::details::log_msg& message) {
  return std::string_view(message.payload.data(), message.payload.size());
}

void Append(spdlog::memory_buf_t& destination, std::string_view text) {
  destination.append(text.data(), text.data() + text.size());
}

// A JSON string literal, quotes included. Bytes that are not UTF-8 become U+FFFD rather
// than an exception: a log line must never be lost because of what it quotes.
std::string JsonString(std::string_view text) {
  return nlohmann::json(std::string(text))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// "2026-11-26T18:50:01.123Z"
std::string Rfc3339Utc(spdlog::log_clock::time_point time) {
  auto since_epoch = std::chrono::floor<std::chrono::milliseconds>(time.time_since_epoch());
  auto seconds = std::chrono::floor<std::chrono::seconds>(since_epoch);
  auto milliseconds = (since_epoch - seconds).count();
  std::time_t whole_seconds = static_cast<std::time_t>(seconds.count());
  std::tm utc{};
  gmtime_r(&whole_seconds, &utc);
  std::array<char, 40> buffer{};
  int length = std::snprintf(buffer.data(), buffer.size(), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                             utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour,
                             utc.tm_min, utc.tm_sec, static_cast<int>(milliseconds));
  return std::string(buffer.data(), static_cast<size_t>(std::max(length, 0)));
}

// One JSON object per line: {"time":...,"level":...,"msg":...,"component":...}.
class JsonLineFormatter final : public spdlog::formatter {
 public:
  explicit JsonLineFormatter(std::string component)
      : component_(std::move(component)),
        component_json_(component_.empty() ? "" : JsonString(component_)) {}

  void format(const spdlog::details::log_msg& message, spdlog::memory_buf_t& destination) override {
    Append(destination, "{\"time\":\"");
    Append(destination, Rfc3339Utc(message.time));
    Append(destination, "\",\"level\":\"");
    Append(destination, NameOfLevel(message.level));
    Append(destination, "\",\"msg\":");
    Append(destination, JsonString(Payload(message)));
    if (!component_json_.empty()) {
      Append(destination, ",\"component\":");
      Append(destination, component_json_);
    }
    Append(destination, "}\n");
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonLineFormatter>(component_);
  }

 private:
  std::string component_;
  std::string component_json_;
};

// Text format flag: the level name padded to a fixed width so messages line up.
class PaddedLevelFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& message, const std::tm&,
              spdlog::memory_buf_t& destination) override {
    std::string_view name = NameOfLevel(message.level);
    Append(destination, name);
    for (size_t width = name.size(); width < 5; ++width) destination.push_back(' ');
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<PaddedLevelFlag>();
  }
};

// Text format flag: the message with control characters written as \n, \t, \xNN.
class EscapedMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& message, const std::tm&,
              spdlog::memory_buf_t& destination) override {
    static constexpr char kHexDigits[] = "0123456789abcdef";
    for (char c : Payload(message)) {
      auto byte = static_cast<unsigned char>(c);
      if (byte >= 0x20 && byte != 0x7f) {
        destination.push_back(c);
      } else if (c == '\n') {
        Append(destination, "\\n");
      } else if (c == '\t') {
        Append(destination, "\\t");
      } else {
        Append(destination, "\\x");
        destination.push_back(kHexDigits[byte >> 4]);
        destination.push_back(kHexDigits[byte & 0xf]);
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<EscapedMessageFlag>();
  }
};

// Text format flag: "[component] " when a component is set, nothing otherwise.
class ComponentFlag final : public spdlog::custom_flag_formatter {
 public:
  explicit ComponentFlag(std::string component) : component_(std::move(component)) {}
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& destination) override {
    if (component_.empty()) return;
    destination.push_back('[');
    Append(destination, component_);
    Append(destination, "] ");
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<ComponentFlag>(component_);
  }

 private:
  std::string component_;
};

// "2026-11-26 18:50:01.123 info  [router] listening on ...", local time; %^..%$ is the
// part a colour sink colours by level.
std::unique_ptr<spdlog::formatter> MakeTextFormatter(const std::string& component) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<PaddedLevelFlag>('*')
      .add_flag<EscapedMessageFlag>('~')
      .add_flag<ComponentFlag>('&', component);
  formatter->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%*%$ %&%~");
  return formatter;
}

spdlog::sink_ptr MakeStderrSink(bool text) {
  // Colour codes only for a person at a terminal; in files and pipes they are noise.
  if (text && isatty(STDERR_FILENO) == 1) {
    return std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  }
  return std::make_shared<spdlog::sinks::stderr_sink_mt>();
}

}  // namespace

Status InitLogging(std::string_view format, std::string_view level, std::string_view component) {
  if (format != "text" && format != "json") {
    return InvalidArgument("unknown log format '" + std::string(format) +
                           "' (expected text or json)");
  }
  std::optional<level_enum> threshold = LevelFromName(level);
  if (!threshold) {
    return InvalidArgument("unknown log level '" + std::string(level) +
                           "' (expected trace, debug, info, warn, error or off)");
  }
  bool text = format == "text";
  spdlog::sink_ptr sink = MakeStderrSink(text);
  if (text) {
    sink->set_formatter(MakeTextFormatter(std::string(component)));
  } else {
    sink->set_formatter(std::make_unique<JsonLineFormatter>(std::string(component)));
  }
  auto logger = std::make_shared<spdlog::logger>("supercluster", std::move(sink));
  logger->set_level(*threshold);
  spdlog::set_default_logger(std::move(logger));
  return Status::Ok();
}

}  // namespace supercluster::base
