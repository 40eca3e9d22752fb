// Where the enclave listens and the worker connects, without the net module (the enclave
// binary links as little as possible): "unix:///path/to/socket" or "vsock://CID:PORT"
// (AF_VSOCK, how a Nitro parent instance reaches its enclave).
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace supercluster::enclave {

struct EnclaveAddress {
  enum class Kind { kUnix, kVsock };
  Kind kind = Kind::kUnix;
  std::string path;  // kUnix
  uint32_t cid = 0;  // kVsock
  uint32_t port = 0;

  static base::Result<EnclaveAddress> Parse(const std::string& text);
  std::string ToString() const;
};

// A listening socket (SOCK_STREAM, close-on-exec) bound to `address`; a stale Unix socket
// file is replaced. Returns the fd.
base::Result<int> ListenOn(const EnclaveAddress& address, int backlog);
// A connected socket to `address`.
base::Result<int> ConnectTo(const EnclaveAddress& address);

}  // namespace supercluster::enclave
