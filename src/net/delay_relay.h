// A userspace TCP relay that adds an inter-region round-trip time, for running a whole
// multi-region cluster on one machine where the kernel has no netem qdisc.
// `supercluster relay` runs one or more of these (src/cli/relay_command.cc); net's tests
// use it to check timeouts and failover against a slow or broken link.
//
// A DelayRelay listens on one address and connects every accepted connection to one target
// address, forwarding bytes both ways. Each direction is a queue: a piece of data read at
// time t is written out at t + one_way_delay (+ a random extra in [0, jitter]), never before
// the piece ahead of it, so ordering holds and delays do not add up piece by piece. A new
// connection also pays for the TCP handshake it skipped: its first bytes reach the target
// no earlier than accept + 3 x one_way_delay (SYN, SYN-ACK, then the data), so the first
// request on a fresh connection costs two round trips, as across a real WAN. (The client's
// connect() itself returns at once: the local kernel completes the handshake.)
//
// Memory is bounded per connection: at most max_buffered_bytes are held per direction; when
// a direction's queue is full the relay stops reading from its source, and TCP flow control
// pushes back on the sender. The throughput of one connection is therefore at most
// max_buffered_bytes / one_way_delay. Idle connections hold no buffers.
//
// Faults, changeable at any time from any thread:
//   Cut()       every open connection is reset (RST to both ends) and every new one is
//               reset as soon as it is accepted: a region that is cut off and says so.
//   Blackhole() connections stay open and are read, but nothing is forwarded or answered:
//               a region that stops answering, so callers' timeouts are exercised. Data
//               already queued is discarded; new connections are accepted and never
//               connected to the target.
//   Restore()   normal forwarding for new connections; connections that were blackholed
//               have lost bytes and are reset. Also sets the drop probability back to 0.
//   SetDropProbability(p)  each new connection is reset at accept with probability p.
//               A userspace relay cannot drop single packets without corrupting the byte
//               stream (the kernel has already acknowledged them), so "drop" means losing
//               the whole connection, which is what callers see when a lossy link makes a
//               connection fail.
//   SetDelay()  new one-way delay and jitter, for data read from now on.
//
// The target being down (connect refused, or no answer within connect_timeout) closes the
// client's connection at once with a reset.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "base/config.h"
#include "base/status.h"
#include "net/endpoint.h"

namespace supercluster::net {

struct RelayOptions {
  Endpoint listen;  // TCP port 0 picks a free port; see DelayRelay::listen_endpoint()
  Endpoint target;
  std::chrono::microseconds one_way_delay{0};
  std::chrono::microseconds jitter{0};  // extra one-way delay, uniform in [0, jitter]
  // Per connection and direction; must be > 0.
  size_t max_buffered_bytes = 0;
  std::chrono::milliseconds connect_timeout{0};
  // Connections open at once; beyond it new ones are reset at accept.
  size_t max_connections = 0;
  int io_threads = 1;

  // Reads the relay.* keys (see docs/configuration.md): buffer cap, connect timeout,
  // connection limit and io threads. listen, target and the delays stay to be filled in.
  static RelayOptions FromConfig(const base::Config& config);
};

enum class RelayMode { kForward, kCut, kBlackhole };

// "forward", "cut" or "blackhole".
const char* RelayModeName(RelayMode mode);

// Counters since Start(), for `GET /status` and tests.
struct RelayStats {
  RelayMode mode = RelayMode::kForward;
  std::chrono::microseconds one_way_delay{0};
  std::chrono::microseconds jitter{0};
  double drop_probability = 0;
  uint64_t connections_accepted = 0;  // every accepted connection, whatever became of it
  uint64_t connections_open = 0;
  uint64_t connections_refused = 0;   // reset at accept: cut, or over max_connections
  uint64_t connections_dropped = 0;   // reset at accept by the drop probability
  uint64_t connections_reset = 0;     // open connections reset by Cut() or Restore()
  uint64_t target_connect_failures = 0;
  uint64_t bytes_to_target = 0;       // read from clients (forwarded or not)
  uint64_t bytes_to_client = 0;       // read from the target
  uint64_t buffered_bytes = 0;        // held in the delay queues right now, all connections
};

class DelayRelay {
 public:
  // Precondition: options.max_buffered_bytes > 0, options.io_threads >= 1.
  explicit DelayRelay(RelayOptions options);
  ~DelayRelay();  // Stop()s
  DelayRelay(const DelayRelay&) = delete;
  DelayRelay& operator=(const DelayRelay&) = delete;

  // Resolves the target, binds the listen address and starts the io threads. Fails (naming
  // the address) when the target does not resolve or the address cannot be bound.
  base::Status Start();
  // Closes the listener and resets every connection; blocks until the io threads exit.
  // Safe to call more than once.
  void Stop();

  // Where the relay listens (the bound port when port 0 was asked for). After Start().
  Endpoint listen_endpoint() const;
  const Endpoint& target() const;

  void Cut();
  void Blackhole();
  void Restore();
  // Precondition: 0 <= probability <= 1 (clamped otherwise).
  void SetDropProbability(double probability);
  void SetDelay(std::chrono::microseconds one_way_delay, std::chrono::microseconds jitter);

  RelayStats Stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace supercluster::net
