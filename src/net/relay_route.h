// The text forms `supercluster relay` takes on its command line and control API: a delay
// ("12ms") and a route ("us-east-1>us-west-2=127.0.0.1:7101=127.0.0.1:7002@65ms"). Kept
// apart from the relay itself so the parsing can be tested on hostile input directly.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "base/status.h"
#include "net/endpoint.h"

namespace supercluster::net {

// The longest delay (round trip or jitter) the relay accepts: anything longer is a typo.
inline constexpr std::chrono::microseconds kMaxRelayDelay = std::chrono::hours(1);

// "12ms", "1.5ms", "250us", "0.065s", "0": a non-negative decimal number with a unit of
// us, ms or s (a bare "0" needs none). Fails, quoting the text, on anything else or on a
// value over kMaxRelayDelay. Sub-microsecond parts are dropped.
base::Result<std::chrono::microseconds> ParseRelayDuration(std::string_view text);

// One relay route: listen here, forward there, adding `rtt` (each direction gets half).
struct RelayRoute {
  std::string name;  // for `?route=NAME` in the control API; the listen text when not given
  Endpoint listen;
  Endpoint target;
  std::chrono::microseconds rtt{0};
};

// "[NAME=]LISTEN=TARGET@RTT", e.g. "east=127.0.0.1:7101=127.0.0.1:7002@12ms". A name is
// letters, digits and ".-_>:" only, so it needs no quoting in a URL or a shell.
base::Result<RelayRoute> ParseRelayRoute(std::string_view text);

// The canonical text of a delay for people and JSON: "12ms", "1.5ms", "250us".
std::string FormatRelayDuration(std::chrono::microseconds duration);

}  // namespace supercluster::net
