// libFuzzer target for the upstream client's response parser fast path
// (net::internal::ResponseParser::ParseWhole): whatever answer it takes, Beast's own
// response_parser takes too, the same number of bytes, with the same status, fields
// (grouped by name: Beast's container keeps repeats of a name together), body and
// keep-alive. Besides "no crash, no leak, no UB" on any bytes.
// Built by tests/fuzz/CMakeLists.txt (SUPERCLUSTER_FUZZ=ON), run by tests/fuzz/run.sh.
//
// The first input byte picks the limits (head and body), so both are reached with short
// inputs; the rest is the answer.
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
#include "net/response_parser.h"

namespace {

namespace http = boost::beast::http;

[[noreturn]] void Fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "http_response_fuzz: %s: %.*s\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t max_head = data[0] & 1 ? 64 : 64 * 1024;
  const size_t max_body = data[0] & 2 ? 8 : 32 * 1024;
  std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);

  supercluster::net::internal::ResponseParser fast;
  const size_t head = fast.ParseWhole(bytes, max_head, max_body);
  if (head == 0) return 0;
  if (head > bytes.size() || fast.body_length() > max_body ||
      bytes.size() - head < fast.body_length()) {
    Fail("fast path claims bytes that are not there", bytes);
  }
  std::string piece(max_body, '\0');
  fast.SetBodyBuffer(piece.data(), piece.size());
  fast.TakeWholeBody(bytes.data() + head);
  piece.resize(max_body - fast.body_room());

  http::response_parser<http::string_body> beast;
  beast.header_limit(static_cast<std::uint32_t>(max_head));
  beast.body_limit(max_body);
  beast.eager(true);
  boost::system::error_code error;
  const size_t used = supercluster::net::testing::PutFirstMessage(beast, bytes, error);
  if (error || !beast.is_done()) Fail("fast path took what Beast refuses", error.message());
  if (used != head + fast.body_length()) Fail("fast path took a different length", bytes);
  const auto& message = beast.get();
  const supercluster::net::testing::Fields fields = supercluster::net::testing::FieldsOf(message);
  const int status = fast.status();
  const bool keep_alive = fast.KeepAlive();
  supercluster::net::ResponseHead parsed = fast.TakeHead();
  using supercluster::net::testing::GroupedByName;
  if (status != static_cast<int>(message.result_int()) || parsed.status != status ||
      GroupedByName(parsed.headers.Copy()) != GroupedByName(fields) ||
      piece != message.body() || keep_alive != beast.keep_alive()) {
    Fail("fast path parsed differently from Beast", bytes);
  }
  return 0;
}
