// libFuzzer target for the HTTP/1.1 request parser: feeds arbitrary bytes to
// net::ParseHttpRequest(), which runs the server's own parser, framing checks and limits.
// Built by tests/fuzz/CMakeLists.txt (SUPERCLUSTER_FUZZ=ON), run by tests/fuzz/run.sh.
//
// The first input byte picks the limits, so both the header limit (431) and the body
// limit (413) are reached with short inputs as well as the server's defaults; the rest is
// the request. Besides "no crash, no leak, no UB", it checks what callers rely on:
//   - an error names the status the server would answer: "400 ", "413 ", "431 " or "501 ";
//   - an accepted request respects the body limit and has a usable method and target;
//   - limits are monotone: what is accepted under smaller limits is accepted, and parsed
//     the same, under the server's defaults;
//   - the request parser's fast path (RequestParser::ParseWhole) takes only what Beast's
//     own request_parser takes, the same number of bytes, with the same result.
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/beast_oracle.h"
#include "net/http_parse.h"
#include "net/http_server.h"

namespace {

constexpr size_t kDefaultHeaderBytes = 16 * 1024;       // server.max_header_bytes default
constexpr uint64_t kDefaultBodyBytes = 8 * 1024 * 1024;  // server.max_body_bytes default

struct Limits {
  size_t max_header_bytes;
  uint64_t max_body_bytes;
};

[[noreturn]] void Fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "http_request_fuzz: %s: %.*s\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

// All limit sets are at most the defaults, which the monotonicity check relies on.
Limits ChooseLimits(uint8_t selector) {
  switch (selector % 4) {
    case 0:
      return {kDefaultHeaderBytes, kDefaultBodyBytes};
    case 1:
      return {1024, 0};  // the smallest header limit the config allows, no body
    case 2:
      return {64, 16};  // tiny: reaches 431 and 413 with short inputs
    default:
      return {256, 1024};
  }
}

bool SameRequest(const supercluster::net::HttpRequest& a,
                 const supercluster::net::HttpRequest& b) {
  return a.method == b.method && a.target == b.target && a.body == b.body &&
         a.headers.Copy() == b.headers.Copy();
}

void CheckFastPathAgainstBeast(std::string_view bytes, const Limits& limits) {
  namespace http = boost::beast::http;
  supercluster::net::internal::RequestParser fast(limits.max_header_bytes, limits.max_body_bytes);
  const size_t fast_used = fast.ParseWhole(bytes);
  if (fast_used == 0) return;  // left to Beast, which the checks above cover

  http::request_parser<http::string_body> beast;
  beast.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
  beast.body_limit(limits.max_body_bytes);
  beast.eager(true);
  boost::system::error_code error;
  const size_t used = supercluster::net::testing::PutFirstMessage(beast, bytes, error);
  if (error || !beast.is_done()) Fail("fast path took what Beast refuses", error.message());
  if (used != fast_used) Fail("fast path took a different length", bytes);
  const auto& message = beast.get();
  supercluster::net::HttpRequest request = fast.TakeRequest();
  const supercluster::net::testing::Fields fields = supercluster::net::testing::FieldsOf(message);
  using supercluster::net::testing::GroupedByName;
  if (request.method != message.method_string() || request.body != message.body() ||
      GroupedByName(request.headers.Copy()) != GroupedByName(fields) ||
      fast.version() != static_cast<int>(message.version()) ||
      fast.KeepAlive() != beast.keep_alive()) {
    Fail("fast path parsed differently from Beast", bytes);
  }
  // The target as sent, unless TakeRequest reduced an absolute form or added a '/'.
  std::string_view target = message.target();
  if (target.starts_with("/") && request.target != target) {
    Fail("fast path read a different target", bytes);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  Limits limits = ChooseLimits(data[0]);
  std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  CheckFastPathAgainstBeast(bytes, limits);

  auto parsed =
      supercluster::net::ParseHttpRequest(bytes, limits.max_header_bytes, limits.max_body_bytes);
  if (!parsed.ok()) {
    const std::string& message = parsed.status().message();
    if (!message.starts_with("400 ") && !message.starts_with("413 ") &&
        !message.starts_with("431 ") && !message.starts_with("501 ")) {
      Fail("error does not start with 400/413/431/501", message);
    }
    return 0;
  }

  const supercluster::net::HttpRequest& request = parsed.value();
  if (request.body.size() > limits.max_body_bytes) Fail("body over the limit", request.method);
  if (request.method.empty()) Fail("empty method", request.target);
  if (request.target.empty() || (request.target.front() != '/' && request.target != "*")) {
    Fail("target neither a path nor *", request.target);
  }
  // What handlers call on every request.
  (void)request.path();
  (void)request.QueryParam("x");
  (void)request.QueryParam("");
  (void)request.headers.Get("content-type");

  if (limits.max_header_bytes != kDefaultHeaderBytes ||
      limits.max_body_bytes != kDefaultBodyBytes) {
    auto with_defaults =
        supercluster::net::ParseHttpRequest(bytes, kDefaultHeaderBytes, kDefaultBodyBytes);
    if (!with_defaults.ok()) {
      Fail("accepted under smaller limits but refused under the defaults",
           with_defaults.status().message());
    }
    if (!SameRequest(request, with_defaults.value())) {
      Fail("parsed differently under the defaults", request.target);
    }
  }
  return 0;
}
