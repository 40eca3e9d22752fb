// The enclave's socket server: accepts worker connections on a Unix socket or AF_VSOCK and
// answers each frame with EnclaveCore. A thread per connection (connections are few: one
// worker, a handful of connections); a peer that sends a malformed or oversized frame, or
// stalls inside one, is disconnected, and the others are served on.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "base/status.h"
#include "enclave/enclave_core.h"
#include "enclave/socket_address.h"

namespace supercluster::enclave {

struct EnclaveServerOptions {
  EnclaveAddress listen;
  size_t max_frame_bytes = kDefaultMaxFrameBytes;
  size_t max_connections = 64;
  std::chrono::milliseconds frame_timeout{std::chrono::seconds(10)};
};

class EnclaveServer {
 public:
  // Starts listening and accepting. `core` must outlive the server.
  static base::Result<std::unique_ptr<EnclaveServer>> Start(const EnclaveServerOptions& options,
                                                            EnclaveCore* core);
  ~EnclaveServer();  // Stop()s

  // Stops accepting, disconnects every peer and joins every thread. Idempotent.
  void Stop();

  // Connections dropped for a protocol violation (tests and logs).
  uint64_t peers_dropped() const;

 private:
  struct Impl;
  explicit EnclaveServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace supercluster::enclave
