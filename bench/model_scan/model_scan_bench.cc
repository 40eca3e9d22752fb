// model_scan_bench: how long the router takes to find the "model" of an OpenAI-style
// request body (ReadRequestedModel: a check of the whole JSON text that keeps only that
// string) next to a full nlohmann::json parse of the same body, the anchor, in the same
// run. Bodies: the 50-byte one that bench/router and bench/instructions send, and chat
// requests with prompts of 1, 4 and 64 KiB of English text. Prints one table row per body:
// nanoseconds per body and per byte for each, and scan / parse.
//
// Usage: model_scan_bench [--seconds S]   (S per measurement, default 0.5)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "machine_line.h"
#include "router/requested_model.h"

namespace {

using Clock = std::chrono::steady_clock;

std::string ChatBody(size_t prompt_bytes) {
  static const char* const kWords[] = {"In ",      "the ",    "beginning ", "God ",
                                       "created ", "heaven ", "and ",       "earth. "};
  std::string prompt;
  for (size_t i = 0; prompt.size() < prompt_bytes; ++i) prompt += kWords[i % 8];
  prompt.resize(prompt_bytes);
  return R"({"model":"kjv","messages":[{"role":"user","content":")" + prompt +
         R"("}],"max_tokens":64,"stream":true})";
}

// Nanoseconds per call of `work` on `body`, run for about `seconds` after a warm-up.
template <typename Work>
double NanosecondsPerCall(const std::string& body, double seconds, Work work) {
  size_t sink = 0;
  for (int i = 0; i < 100; ++i) sink += work(body);
  size_t calls = 0;
  const Clock::time_point start = Clock::now();
  const Clock::time_point end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  Clock::time_point now = start;
  while (now < end) {
    for (int i = 0; i < 64; ++i) sink += work(body);
    calls += 64;
    now = Clock::now();
  }
  if (sink == 1) std::puts("");  // keeps the calls from being optimized away
  return std::chrono::duration<double, std::nano>(now - start).count() / static_cast<double>(calls);
}

size_t Scan(const std::string& body) {
  return supercluster::router::ReadRequestedModel(body).model.size();
}

size_t FullParse(const std::string& body) {
  const nlohmann::json parsed = nlohmann::json::parse(body, nullptr, false);
  return parsed.is_object() ? parsed.value("model", std::string()).size() : 0;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 0.5;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: model_scan_bench [--seconds S]\n");
      return 2;
    }
  }
  if (!(seconds > 0)) {
    std::fprintf(stderr, "model_scan_bench: --seconds must be positive\n");
    return 2;
  }
  struct Case {
    const char* name;
    std::string body;
  };
  const std::vector<Case> cases = {
      {"bench body", R"({"model":"bench","prompt":"hello","max_tokens":1})"},
      {"chat, 1 KiB prompt", ChatBody(1024)},
      {"chat, 4 KiB prompt", ChatBody(4096)},
      {"chat, 64 KiB prompt", ChatBody(65536)},
  };
  std::printf("%s; %.1f s per measurement, one thread\n\n",
              supercluster::bench::MachineLine().c_str(), seconds);
  std::printf(
      "| body | bytes | scan ns | scan ns/byte | full parse ns | parse ns/byte | scan/parse |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
  for (const Case& c : cases) {
    if (Scan(c.body) != FullParse(c.body) || Scan(c.body) == 0) {
      std::fprintf(stderr, "model_scan_bench: scan and parse disagree on '%s'\n", c.name);
      return 1;
    }
    const double scan = NanosecondsPerCall(c.body, seconds, Scan);
    const double parse = NanosecondsPerCall(c.body, seconds, FullParse);
    const double bytes = static_cast<double>(c.body.size());
    std::printf("| %s | %zu | %.0f | %.3f | %.0f | %.3f | %.3f |\n", c.name, c.body.size(), scan,
                scan / bytes, parse, parse / bytes, scan / parse);
  }
  return 0;
}
