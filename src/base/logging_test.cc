// Tests of InitLogging: what the text and JSON formats write to stderr, captured by
// pointing file descriptor 2 at a temporary file while the logger writes.
#include "base/logging.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace supercluster::base {
namespace {

// Redirects stderr to a temporary file for its lifetime; Finish() restores it and returns
// what was written.
class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    file_ = std::tmpfile();
    saved_stderr_ = dup(STDERR_FILENO);
    dup2(fileno(file_), STDERR_FILENO);
  }
  ~StderrCapture() {
    if (file_ != nullptr) Finish();
  }

  std::string Finish() {
    std::fflush(stderr);
    dup2(saved_stderr_, STDERR_FILENO);
    close(saved_stderr_);
    std::string captured;
    std::rewind(file_);
    char buffer[4096];
    size_t count;
    while ((count = std::fread(buffer, 1, sizeof(buffer), file_)) > 0) captured.append(buffer, count);
    std::fclose(file_);
    file_ = nullptr;
    return captured;
  }

 private:
  FILE* file_ = nullptr;
  int saved_stderr_ = -1;
};

// True when `text` has the shape of `pattern`, where each 'D' stands for one digit and
// every other character for itself: "DDDD-DD-DD" matches "2026-11-26".
bool MatchesShape(std::string_view text, std::string_view pattern) {
  if (text.size() != pattern.size()) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    bool digit = text[i] >= '0' && text[i] <= '9';
    if (pattern[i] == 'D' ? !digit : text[i] != pattern[i]) return false;
  }
  return true;
}

int NumberAt(const std::string& text, size_t position, size_t length) {
  return std::stoi(text.substr(position, length));
}

constexpr std::string_view kTextTimestampShape = "DDDD-DD-DD DD:DD:DD.DDD";

// Checks a text log line: the local timestamp, then exactly `rest`.
void ExpectTextLine(const std::string& line, const std::string& rest) {
  EXPECT_TRUE(MatchesShape(std::string_view(line).substr(0, kTextTimestampShape.size()),
                           kTextTimestampShape))
      << line;
  EXPECT_EQ(line.substr(std::min(line.size(), kTextTimestampShape.size())), " " + rest);
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t end = text.find('\n'); end != std::string::npos; end = text.find('\n', start)) {
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  EXPECT_EQ(start, text.size()) << "output does not end with a newline";
  return lines;
}

// Leaves the process with a plain text logger, whatever a test set up.
class LoggingTest : public ::testing::Test {
 protected:
  void TearDown() override { ASSERT_TRUE(InitLogging("text", "info").ok()); }
};

TEST_F(LoggingTest, JsonLinesParseBack) {
  StderrCapture capture;
  ASSERT_TRUE(InitLogging("json", "info", "router").ok());
  auto before = std::chrono::system_clock::now();
  spdlog::info("listening on {}", "127.0.0.1:8080");
  spdlog::debug("not written at info");
  spdlog::warn("slow peer");
  spdlog::error("failed");
  auto after = std::chrono::system_clock::now();
  std::vector<std::string> lines = Lines(capture.Finish());
  ASSERT_EQ(lines.size(), 3u);

  nlohmann::json first = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(first["msg"], "listening on 127.0.0.1:8080");
  EXPECT_EQ(first["level"], "info");
  EXPECT_EQ(first["component"], "router");
  EXPECT_EQ(nlohmann::json::parse(lines[1])["level"], "warn");
  EXPECT_EQ(nlohmann::json::parse(lines[2])["level"], "error");

  std::string time = first["time"];
  ASSERT_TRUE(MatchesShape(time, "DDDD-DD-DDTDD:DD:DD.DDDZ")) << time;
  // The timestamp is UTC and lies between the clock readings around the call.
  std::tm utc{};
  utc.tm_year = NumberAt(time, 0, 4) - 1900;
  utc.tm_mon = NumberAt(time, 5, 2) - 1;
  utc.tm_mday = NumberAt(time, 8, 2);
  utc.tm_hour = NumberAt(time, 11, 2);
  utc.tm_min = NumberAt(time, 14, 2);
  utc.tm_sec = NumberAt(time, 17, 2);
  auto logged = std::chrono::system_clock::from_time_t(timegm(&utc)) +
                std::chrono::milliseconds(NumberAt(time, 20, 3));
  EXPECT_GE(logged, std::chrono::floor<std::chrono::milliseconds>(before));
  EXPECT_LE(logged, after);
}

TEST_F(LoggingTest, JsonEscapesQuotesNewlinesAndControlBytes) {
  StderrCapture capture;
  ASSERT_TRUE(InitLogging("json", "info").ok());
  const std::string message = "say \"hi\"\nthen \\ leave\x01\x1f";
  spdlog::info("{}", message);
  spdlog::info("{}", std::string("not utf-8: \xff\xfe"));
  std::vector<std::string> lines = Lines(capture.Finish());
  ASSERT_EQ(lines.size(), 2u);

  EXPECT_NE(lines[0].find(R"(say \"hi\"\nthen \\ leave\u0001\u001f)"), std::string::npos)
      << lines[0];
  nlohmann::json parsed = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(parsed["msg"], message);
  EXPECT_FALSE(parsed.contains("component"));
  EXPECT_EQ(parsed.size(), 3u);

  nlohmann::json replaced = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(replaced["msg"], "not utf-8: \xef\xbf\xbd\xef\xbf\xbd");
}

TEST_F(LoggingTest, TextLinesWithoutColourWhenNotATerminal) {
  StderrCapture capture;
  ASSERT_TRUE(InitLogging("text", "debug", "worker").ok());
  spdlog::debug("loaded {} layers", 32);
  spdlog::info("line one\nforged line\x01");
  spdlog::trace("not written at debug");
  std::string output = capture.Finish();
  EXPECT_EQ(output.find('\x1b'), std::string::npos) << "colour codes in a file";
  std::vector<std::string> lines = Lines(output);
  ASSERT_EQ(lines.size(), 2u);
  ExpectTextLine(lines[0], "debug [worker] loaded 32 layers");
  ExpectTextLine(lines[1], "info  [worker] line one\\nforged line\\x01");
}

TEST_F(LoggingTest, TextWithoutComponent) {
  StderrCapture capture;
  ASSERT_TRUE(InitLogging("text", "warn").ok());
  spdlog::info("dropped");
  spdlog::warn("kept");
  std::vector<std::string> lines = Lines(capture.Finish());
  ASSERT_EQ(lines.size(), 1u);
  ExpectTextLine(lines[0], "warn  kept");
}

TEST_F(LoggingTest, OffWritesNothing) {
  StderrCapture capture;
  ASSERT_TRUE(InitLogging("json", "off").ok());
  spdlog::critical("nothing");
  EXPECT_EQ(capture.Finish(), "");
}

TEST_F(LoggingTest, BadFormatOrLevelNamesTheValue) {
  Status format = InitLogging("xml", "info");
  EXPECT_EQ(format.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(format.message(), "unknown log format 'xml' (expected text or json)");
  Status level = InitLogging("json", "verbose");
  EXPECT_EQ(level.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(level.message(),
            "unknown log level 'verbose' (expected trace, debug, info, warn, error or off)");
  EXPECT_FALSE(InitLogging("text", "warning").ok());
  EXPECT_FALSE(InitLogging("text", "critical").ok());
}

}  // namespace
}  // namespace supercluster::base
