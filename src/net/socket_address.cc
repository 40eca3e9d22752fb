#include "net/socket_address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/un.h>

#include <cstring>

#if __has_include(<linux/vm_sockets.h>)
#include <linux/vm_sockets.h>
#define SUPERCLUSTER_HAVE_VSOCK 1
#endif

namespace supercluster::net::internal {

base::Result<std::vector<Protocol::endpoint>> ResolveEndpoint(const Endpoint& endpoint) {
  std::vector<Protocol::endpoint> addresses;
  switch (endpoint.kind) {
    case Endpoint::Kind::kUnix: {
      sockaddr_un address{};
      address.sun_family = AF_UNIX;
      if (endpoint.path.size() >= sizeof(address.sun_path)) {
        return base::InvalidArgument("unix socket path too long: " + endpoint.path);
      }
      std::memcpy(address.sun_path, endpoint.path.data(), endpoint.path.size());
      socklen_t length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) +
                                                endpoint.path.size() + 1);
      addresses.emplace_back(&address, length);
      return addresses;
    }
    case Endpoint::Kind::kVsock: {
#ifdef SUPERCLUSTER_HAVE_VSOCK
      sockaddr_vm address{};
      address.svm_family = AF_VSOCK;
      address.svm_cid = endpoint.cid;
      address.svm_port = endpoint.port;
      addresses.emplace_back(&address, sizeof(address));
      return addresses;
#else
      return base::FailedPrecondition("this build has no AF_VSOCK support");
#endif
    }
    case Endpoint::Kind::kTcp:
      break;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
  addrinfo* results = nullptr;
  std::string port = std::to_string(endpoint.port);
  int error = getaddrinfo(endpoint.host.c_str(), port.c_str(), &hints, &results);
  if (error != 0) {
    return base::Unavailable("cannot resolve '" + endpoint.host + "': " + gai_strerror(error));
  }
  for (addrinfo* entry = results; entry != nullptr; entry = entry->ai_next) {
    addresses.emplace_back(entry->ai_addr, entry->ai_addrlen);
  }
  freeaddrinfo(results);
  if (addresses.empty()) return base::Unavailable("no address for '" + endpoint.host + "'");
  return addresses;
}

Endpoint EndpointFromAddress(const Protocol::endpoint& address, const Endpoint& requested) {
  Endpoint endpoint = requested;
  const sockaddr* raw = address.data();
  if (raw->sa_family == AF_INET) {
    endpoint.port = ntohs(reinterpret_cast<const sockaddr_in*>(raw)->sin_port);
  } else if (raw->sa_family == AF_INET6) {
    endpoint.port = ntohs(reinterpret_cast<const sockaddr_in6*>(raw)->sin6_port);
  }
  return endpoint;
}

std::string PeerText(const Protocol::endpoint& address) {
  const sockaddr* raw = address.data();
  char text[INET6_ADDRSTRLEN] = {};
  if (raw->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(raw);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
    return std::string(text) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (raw->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(raw);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
    return "[" + std::string(text) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
#ifdef SUPERCLUSTER_HAVE_VSOCK
  if (raw->sa_family == AF_VSOCK) {
    return "vsock:" + std::to_string(reinterpret_cast<const sockaddr_vm*>(raw)->svm_cid);
  }
#endif
  return "unix";
}

bool IsTcp(const Protocol::endpoint& address) {
  int family = address.data()->sa_family;
  return family == AF_INET || family == AF_INET6;
}

}  // namespace supercluster::net::internal
