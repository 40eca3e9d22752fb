#include "net/relay_route.h"

#include <cstdint>


namespace supercluster::net {

namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsNameCharacter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c) || c == '.' ||
         c == '-' || c == '_' || c == '>' || c == ':';
}

// The text quoted for a one-line message: control bytes become '?', long text is cut.
std::string Quoted(std::string_view text) {
  std::string quoted = "'";
  for (char c : text.substr(0, 64)) {
    quoted += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  if (text.size() > 64) quoted += "...";
  return quoted + "'";
}

}  // namespace

base::Result<std::chrono::microseconds> ParseRelayDuration(std::string_view text) {
  auto bad = [&] {
    return base::InvalidArgument("expected a delay such as 12ms, 1.5ms, 250us or 0.065s, got " +
                                 Quoted(text));
  };
  if (text == "0") return std::chrono::microseconds(0);
  size_t position = 0;
  // Whole and fractional parts, at most 9 digits each: no overflow below, and nothing that
  // long is a sensible delay.
  uint64_t whole = 0;
  size_t whole_digits = 0;
  while (position < text.size() && IsDigit(text[position])) {
    if (++whole_digits > 9) return bad();
    whole = whole * 10 + static_cast<uint64_t>(text[position++] - '0');
  }
  uint64_t fraction = 0;
  uint64_t fraction_scale = 1;
  size_t fraction_digits = 0;
  if (position < text.size() && text[position] == '.') {
    ++position;
    while (position < text.size() && IsDigit(text[position])) {
      if (++fraction_digits > 9) return bad();
      fraction = fraction * 10 + static_cast<uint64_t>(text[position++] - '0');
      fraction_scale *= 10;
    }
    if (fraction_digits == 0) return bad();
  }
  if (whole_digits == 0) return bad();
  std::string_view unit = text.substr(position);
  uint64_t unit_us = 0;
  if (unit == "us") {
    unit_us = 1;
  } else if (unit == "ms") {
    unit_us = 1000;
  } else if (unit == "s") {
    unit_us = 1000000;
  } else {
    return bad();
  }
  uint64_t micros = whole * unit_us + fraction * unit_us / fraction_scale;
  if (whole > static_cast<uint64_t>(kMaxRelayDelay.count()) ||
      micros > static_cast<uint64_t>(kMaxRelayDelay.count())) {
    return base::InvalidArgument("delay " + Quoted(text) + " is over the limit of 1h");
  }
  return std::chrono::microseconds(static_cast<int64_t>(micros));
}

std::string FormatRelayDuration(std::chrono::microseconds duration) {
  int64_t micros = duration.count();
  if (micros % 1000 != 0) {
    if (micros < 1000) return std::to_string(micros) + "us";
    std::string fraction = std::to_string(micros % 1000);
    fraction.insert(0, 3 - fraction.size(), '0');
    while (fraction.back() == '0') fraction.pop_back();
    return std::to_string(micros / 1000) + "." + fraction + "ms";
  }
  return std::to_string(micros / 1000) + "ms";
}

base::Result<RelayRoute> ParseRelayRoute(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return base::InvalidArgument("route " + Quoted(text) + ": " + why +
                                 " (expected [NAME=]LISTEN=TARGET@RTT, e.g. "
                                 "east=127.0.0.1:7101=127.0.0.1:7002@12ms)");
  };
  size_t at = text.rfind('@');
  if (at == std::string_view::npos) return bad("no @RTT");
  auto rtt = ParseRelayDuration(text.substr(at + 1));
  if (!rtt.ok()) return bad(rtt.status().message());
  std::string_view addresses = text.substr(0, at);
  std::string_view parts[3];
  size_t count = 0;
  while (true) {
    size_t equals = addresses.find('=');
    if (count == 2 || equals == std::string_view::npos) {
      if (equals != std::string_view::npos) return bad("too many '='");
      parts[count++] = addresses;
      break;
    }
    parts[count++] = addresses.substr(0, equals);
    addresses.remove_prefix(equals + 1);
  }
  if (count < 2) return bad("no '=' between LISTEN and TARGET");
  RelayRoute route;
  route.rtt = *rtt;
  std::string_view listen = parts[count - 2];
  std::string_view target = parts[count - 1];
  if (count == 3) {
    std::string_view name = parts[0];
    if (name.empty() || name.size() > 64) return bad("the name must be 1 to 64 characters");
    for (char c : name) {
      if (!IsNameCharacter(c)) return bad("the name may hold only letters, digits and .-_>:");
    }
    route.name = std::string(name);
  } else {
    route.name = std::string(listen);
  }
  auto listen_endpoint = ParseEndpoint(std::string(listen));
  if (!listen_endpoint.ok()) return bad("LISTEN: " + listen_endpoint.status().message());
  auto target_endpoint = ParseEndpoint(std::string(target));
  if (!target_endpoint.ok()) return bad("TARGET: " + target_endpoint.status().message());
  route.listen = *listen_endpoint;
  route.target = *target_endpoint;
  return route;
}

}  // namespace supercluster::net
