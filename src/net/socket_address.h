// Internal to net: turns an Endpoint into socket addresses for asio's generic stream
// protocol, so one code path serves TCP, Unix-domain and vsock sockets alike.
#pragma once

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>

#include <string>
#include <vector>

#include "base/status.h"
#include "net/endpoint.h"

namespace supercluster::net::internal {

using Protocol = boost::asio::generic::stream_protocol;

// Resolves the endpoint (TCP names through the system resolver) into addresses to bind or
// connect to, in the resolver's order.
base::Result<std::vector<Protocol::endpoint>> ResolveEndpoint(const Endpoint& endpoint);

// The Endpoint an address stands for (after binding port 0, for example).
Endpoint EndpointFromAddress(const Protocol::endpoint& address, const Endpoint& requested);

// "ip:port" for TCP peers, "unix" or "vsock:CID" otherwise.
std::string PeerText(const Protocol::endpoint& address);

// Whether an address is TCP (IPv4 or IPv6), where TCP_NODELAY applies.
bool IsTcp(const Protocol::endpoint& address);

}  // namespace supercluster::net::internal
