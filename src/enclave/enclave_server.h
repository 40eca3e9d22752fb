// The enclave's socket server: accepts worker connections on a Unix socket or AF_VSOCK and
// answers each frame with EnclaveCore. A thread per connection (connections are few: one
// worker, a handful of connections); a peer that sends a malformed or oversized frame,
// stalls inside one, or does not take its reply in time, is disconnected, and the others
// are served on. With max_connections open, a new connection replaces the one that has
// waited longest for its next frame; it is refused only when none is waiting.
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
  // How long a peer may take to send the rest of a frame it began, and to take in a reply.
  std::chrono::milliseconds frame_timeout{std::chrono::seconds(10)};
  // Lines a minute about peers refused, dropped or closed and calls refused (the rest are
  // counted and left out: base::LogLimiter).
  int peer_log_lines_per_minute = 60;
};

class EnclaveServer {
 public:
  // Starts listening and accepting. `core` must outlive the server.
  static base::Result<std::unique_ptr<EnclaveServer>> Start(const EnclaveServerOptions& options,
                                                            EnclaveCore* core);
  ~EnclaveServer();  // Stop()s

  // Stops accepting, disconnects every peer and joins every thread. Idempotent.
  void Stop();

  // Connections dropped for a protocol violation or a timeout (tests and logs); not those
  // closed to make room for a new one.
  uint64_t peers_dropped() const;
  // Connections waiting for their next frame, the ones a new connection may replace (tests).
  size_t idle_connections() const;

 private:
  struct Impl;
  explicit EnclaveServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace supercluster::enclave
