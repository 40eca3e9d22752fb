// Internal to net: the request parser settings and error-to-status mapping the server
// and ParseHttpRequest() share, so the fuzzer exercises exactly the server's parsing.
#pragma once

#include <boost/beast/http.hpp>

#include <string>

#include "net/http_message.h"

namespace supercluster::net::internal {

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// Applies the limits to a fresh parser.
void ConfigureRequestParser(RequestParser& parser, size_t max_header_bytes,
                            uint64_t max_body_bytes);

// Beast applies its header limit to each window of input it parses, not to the header
// section as a whole, so the server first collects the whole header section and checks
// its size itself. Given the bytes received so far for a request:
enum class HeaderScan { kNeedMore, kTooLarge, kComplete };
HeaderScan ScanHeaderSection(std::string_view received, size_t max_header_bytes);

// The status the server answers for a parse error: 431, 413 or 400.
int StatusForParseError(const boost::system::error_code& error);

// Checks what Beast accepts but we do not (framing, request-target form) and returns
// the status to answer (0 when acceptable) with a reason in *reason.
int ValidateParsedRequest(const RequestParser& parser, std::string* reason);

// Converts the parsed message into the plain HttpRequest handlers see.
HttpRequest ToHttpRequest(RequestParser& parser);

// Whether `text` is an RFC 9110 token (a method or a header name): not empty, and only
// letters, digits and !#$%&'*+-.^_`|~. ASCII only, without the locale std::isalnum
// consults on every call (a visible cost when every header of every message goes through).
bool IsToken(std::string_view text);

}  // namespace supercluster::net::internal
