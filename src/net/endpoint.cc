#include "net/endpoint.h"

#include <charconv>

#if __has_include(<linux/vm_sockets.h>)
#define SUPERCLUSTER_HAVE_VSOCK 1
#endif

namespace supercluster::net {
namespace {

constexpr std::string_view kUnixScheme = "unix://";
constexpr std::string_view kVsockScheme = "vsock://";

template <typename Int>
bool ParseNumber(std::string_view text, Int* out) {
  if (text.empty()) return false;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return error == std::errc() && end == text.data() + text.size();
}

base::Result<Endpoint> ParseHostPort(std::string_view text, const std::string& original) {
  Endpoint endpoint;
  endpoint.kind = Endpoint::Kind::kTcp;
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return base::InvalidArgument("endpoint '" + original + "': expected [ipv6]:port");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return base::InvalidArgument("endpoint '" + original + "': expected host:port");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return base::InvalidArgument("endpoint '" + original +
                                   "': an IPv6 address needs brackets, as in [::1]:8080");
    }
  }
  if (host.empty()) {
    return base::InvalidArgument("endpoint '" + original + "': the host is empty");
  }
  if (!ParseNumber(port, &endpoint.port)) {
    return base::InvalidArgument("endpoint '" + original + "': port must be 0..65535");
  }
  endpoint.host = std::string(host);
  return endpoint;
}

}  // namespace

std::string Endpoint::ToString() const {
  switch (kind) {
    case Kind::kUnix:
      return "unix://" + path;
    case Kind::kVsock:
      return "vsock://" + std::to_string(cid) + ":" + std::to_string(port);
    case Kind::kTcp:
      break;
  }
  // Built in one allocation: the upstream client names its connection pool by this, once
  // per request.
  const bool bracketed = host.find(':') != std::string::npos;
  const std::string_view scheme = tls ? "https://" : "tcp://";
  char port_digits[8];
  const std::string_view port_text(
      port_digits,
      static_cast<size_t>(std::to_chars(port_digits, port_digits + sizeof(port_digits), port).ptr -
                          port_digits));
  std::string text;
  text.reserve(scheme.size() + host.size() + (bracketed ? 2 : 0) + 1 + port_text.size());
  text.append(scheme);
  if (bracketed) text.push_back('[');
  text.append(host);
  if (bracketed) text.push_back(']');
  text.push_back(':');
  text.append(port_text);
  return text;
}

base::Result<Endpoint> ParseEndpoint(const std::string& text) {
  std::string_view view = text;
  if (view.starts_with(kUnixScheme)) {
    Endpoint endpoint;
    endpoint.kind = Endpoint::Kind::kUnix;
    endpoint.path = std::string(view.substr(kUnixScheme.size()));
    if (endpoint.path.empty()) {
      return base::InvalidArgument("endpoint '" + text + "': the socket path is empty");
    }
    // sockaddr_un holds at most 107 path bytes plus the terminator.
    if (endpoint.path.size() > 107) {
      return base::InvalidArgument("endpoint '" + text +
                                   "': unix socket paths are limited to 107 bytes");
    }
    return endpoint;
  }
  if (view.starts_with(kVsockScheme)) {
    std::string_view rest = view.substr(kVsockScheme.size());
    size_t colon = rest.find(':');
    Endpoint endpoint;
    endpoint.kind = Endpoint::Kind::kVsock;
    if (colon == std::string_view::npos || !ParseNumber(rest.substr(0, colon), &endpoint.cid) ||
        !ParseNumber(rest.substr(colon + 1), &endpoint.port)) {
      return base::InvalidArgument("endpoint '" + text + "': expected vsock://CID:PORT");
    }
    return endpoint;
  }
  bool tls = false;
  if (view.starts_with("https://")) {
    tls = true;
    view.remove_prefix(8);
  } else if (view.starts_with("http://")) {
    view.remove_prefix(7);
  } else if (view.starts_with("tcp://")) {
    view.remove_prefix(6);
  } else if (view.find("://") != std::string_view::npos) {
    return base::InvalidArgument("endpoint '" + text +
                                 "': unknown scheme (use tcp://, https://, unix:// or vsock://)");
  }
  if (!view.empty() && view.back() == '/') view.remove_suffix(1);
  SC_ASSIGN_OR_RETURN(Endpoint endpoint, ParseHostPort(view, text));
  endpoint.tls = tls;
  return endpoint;
}

bool VsockSupported() {
#ifdef SUPERCLUSTER_HAVE_VSOCK
  return true;
#else
  return false;
#endif
}

}  // namespace supercluster::net
