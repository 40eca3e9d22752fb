// Where a server listens or a client connects: TCP, a Unix-domain socket, or AF_VSOCK
// (the channel between a Nitro Enclave and its parent instance).
//
// Accepted forms:
//   127.0.0.1:8080  [::1]:8080  localhost:8080  tcp://host:port   (TCP)
//   https://host:port  http://host:port      (TCP; https only says TLS is expected)
//   unix:///run/supercluster/enclave.sock    (Unix-domain socket, absolute or relative path)
//   vsock://CID:PORT                         (AF_VSOCK; only where the kernel headers exist)
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace supercluster::net {

struct Endpoint {
  enum class Kind { kTcp, kUnix, kVsock };
  Kind kind = Kind::kTcp;
  std::string host;       // kTcp: name or address (no brackets)
  uint16_t port = 0;      // kTcp, kVsock
  std::string path;       // kUnix
  uint32_t cid = 0;       // kVsock
  bool tls = false;       // given as https://

  // The canonical text form, e.g. "tcp://127.0.0.1:8080" or "unix:///tmp/x.sock".
  std::string ToString() const;
};

base::Result<Endpoint> ParseEndpoint(const std::string& text);

// Whether this build can open AF_VSOCK sockets.
bool VsockSupported();

}  // namespace supercluster::net
