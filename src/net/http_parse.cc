#include "net/http_parse.h"

#include <array>
#include <iterator>

#include "net/http_server.h"

namespace supercluster::net {
namespace internal {

namespace http = boost::beast::http;

void ConfigureRequestParser(RequestParser& parser, size_t max_header_bytes,
                            uint64_t max_body_bytes) {
  parser.header_limit(static_cast<std::uint32_t>(max_header_bytes));
  parser.body_limit(max_body_bytes);
  parser.eager(true);
}

HeaderScan ScanHeaderSection(std::string_view received, size_t max_header_bytes) {
  // A bare LF line end is an error the parser reports at once (400); waiting for a CRLF
  // CRLF that will never come would hold the connection until the read timeout.
  for (size_t lf = received.find('\n'); lf != std::string_view::npos;
       lf = received.find('\n', lf + 1)) {
    if (lf == 0 || received[lf - 1] != '\r') return HeaderScan::kComplete;
  }
  size_t end = received.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    return received.size() >= max_header_bytes ? HeaderScan::kTooLarge : HeaderScan::kNeedMore;
  }
  return end + 4 > max_header_bytes ? HeaderScan::kTooLarge : HeaderScan::kComplete;
}

int StatusForParseError(const boost::system::error_code& error) {
  if (error == http::error::header_limit) return 431;
  if (error == http::error::body_limit) return 413;
  return 400;
}

int ValidateParsedRequest(const RequestParser& parser, std::string* reason) {
  // Beast itself refuses versions other than 1.0 and 1.1 (bad_version, answered 400).
  const auto& message = parser.get();
  // Beast treats a body as chunked only when chunked is the last coding, and otherwise
  // falls back to Content-Length or no body; another server on the path may frame the
  // same bytes differently, which is request smuggling. RFC 9112 6.3 says: answer 400.
  if (message.find(http::field::transfer_encoding) != message.end() && !parser.chunked()) {
    *reason = "Transfer-Encoding must end with chunked";
    return 400;
  }
  std::string_view target = message.target();
  bool origin_form = !target.empty() && target.front() == '/';
  bool asterisk_form = target == "*" && message.method() == http::verb::options;
  bool absolute_form = target.starts_with("http://") || target.starts_with("https://");
  if (!origin_form && !asterisk_form && !absolute_form) {
    *reason = "request target must be a path starting with '/'";
    return 400;
  }
  if (message.version() == 11 && message.find(http::field::host) == message.end()) {
    *reason = "HTTP/1.1 requests need a Host header";
    return 400;
  }
  return 0;
}

HttpRequest ToHttpRequest(RequestParser& parser) {
  auto& message = parser.get();
  HttpRequest request;
  request.method = std::string(message.method_string());
  std::string_view target = message.target();
  // Absolute-form ("http://host/path") is reduced to its path, as RFC 9112 3.2.2 asks of
  // a server that is not a proxy.
  if (!target.starts_with("/") && target != "*") {
    size_t authority_start = target.find("://") + 3;
    size_t path_start = target.find_first_of("/?", authority_start);
    target = path_start == std::string_view::npos ? "" : target.substr(path_start);
  }
  request.target = target.empty() || target.front() == '?' ? "/" + std::string(target)
                                                           : std::string(target);
  // Room for the fields plus the few a proxy or handler adds, in one allocation.
  request.headers.Reserve(static_cast<size_t>(std::distance(message.begin(), message.end())) + 4);
  for (const auto& field : message) {
    request.headers.Add(std::string(field.name_string()), std::string(field.value()));
  }
  request.body = std::move(message.body());
  return request;
}

namespace {

// tchar of RFC 9110, section 5.6.2, as a table: every header name of every request and
// response goes through IsToken.
constexpr std::array<bool, 256> kTokenChars = [] {
  std::array<bool, 256> table{};
  for (int c = 'a'; c <= 'z'; ++c) table[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) table[c] = true;
  for (int c = '0'; c <= '9'; ++c) table[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) table[static_cast<unsigned char>(c)] = true;
  return table;
}();

}  // namespace

bool IsToken(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!kTokenChars[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

}  // namespace internal

base::Result<HttpRequest> ParseHttpRequest(std::string_view bytes, size_t max_header_bytes,
                                           uint64_t max_body_bytes) {
  switch (internal::ScanHeaderSection(bytes, max_header_bytes)) {
    case internal::HeaderScan::kTooLarge:
      return base::InvalidArgument("431 header section over " + std::to_string(max_header_bytes) +
                                   " bytes");
    case internal::HeaderScan::kNeedMore:
      return base::InvalidArgument("400 truncated request");
    case internal::HeaderScan::kComplete:
      break;
  }
  internal::RequestParser parser;
  internal::ConfigureRequestParser(parser, max_header_bytes, max_body_bytes);
  boost::system::error_code error;
  size_t consumed = 0;
  while (!parser.is_done() && consumed < bytes.size()) {
    size_t used = parser.put(boost::asio::buffer(bytes.data() + consumed, bytes.size() - consumed),
                             error);
    consumed += used;
    if (error == boost::beast::http::error::need_more) {
      if (used == 0) break;  // needs bytes that are not there
      error = {};
      continue;
    }
    if (error) {
      return base::InvalidArgument(std::to_string(internal::StatusForParseError(error)) + " " +
                                   error.message());
    }
  }
  if (!parser.is_done()) {
    // A body delimited by end of stream is not allowed in requests, so put_eof() only
    // turns a truncated message into an error.
    parser.put_eof(error);
    if (error || !parser.is_done()) return base::InvalidArgument("400 truncated request");
  }
  std::string reason;
  if (int status = internal::ValidateParsedRequest(parser, &reason); status != 0) {
    return base::InvalidArgument(std::to_string(status) + " " + reason);
  }
  return internal::ToHttpRequest(parser);
}

}  // namespace supercluster::net
