// The enclave's state and operations, without any I/O: what runs inside the attested
// boundary. The socket server (enclave_server.h) feeds it decoded requests.
//
// At creation it generates its HPKE key pair and its receipt-signing key; neither private
// key ever leaves this object. It answers:
//   Attest(nonce, user_data)  -> a document whose public_key is the EnclaveIdentity
//   Open(format, sealed)      -> the plaintext request and a response context id, after
//                                checking freshness (the timestamp sealed inside) and replay
//                                (a cache of `enc` values seen within the freshness window)
//   Seal(context, chunk, final) -> a sealed response chunk; the final one ends the context
//   Close(context)            -> discards a context (the client went away)
//   Wipe()                    -> destroys every key and context; returns a signed receipt.
//                                Everything after a wipe is refused (kFailedPrecondition).
//
// Thread-safe: one mutex guards the state. The sealed payload inside a request is
//   created_at_ms (8 bytes, big-endian, Unix epoch) || body
// and Open returns the body.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "attest/attestor.h"
#include "base/status.h"
#include "crypto/bytes.h"
#include "crypto/ohttp.h"
#include "enclave/protocol.h"

namespace supercluster::enclave {

struct EnclaveOptions {
  // Requests sealed longer ago than this (or this far in the future) are refused; the
  // replay cache remembers each request this long.
  std::chrono::milliseconds freshness_window{std::chrono::seconds(60)};
  size_t max_contexts = 4096;        // open response contexts at once
  // A context not used (opened, or a chunk sealed) for this long is dropped when a new
  // request needs its room: a worker that never closes its contexts (a bug, or a crash in
  // mid-answer) cannot fill max_contexts for good.
  std::chrono::milliseconds context_idle_timeout{std::chrono::minutes(10)};
  size_t max_replay_entries = 1 << 20;
  uint8_t key_id = 1;                // the OHTTP key id clients address
  // Wall-clock milliseconds since the Unix epoch; tests substitute their own.
  std::function<int64_t()> clock_ms;
};

struct EnclaveStats {
  uint64_t contexts_opened = 0;
  uint64_t contexts_closed = 0;
  uint64_t contexts_open = 0;
  uint64_t requests_refused = 0;
  bool wiped = false;
};

// Prepends the created-at timestamp the enclave checks (what a client seals).
Bytes TimestampedPayload(int64_t created_at_ms, ByteView body);

class EnclaveCore {
 public:
  static base::Result<std::unique_ptr<EnclaveCore>> Create(
      EnclaveOptions options, std::unique_ptr<attest::Attestor> attestor);
  ~EnclaveCore();

  base::Result<Bytes> Attest(ByteView nonce, ByteView user_data);
  struct Opened {
    uint64_t context_id = 0;
    Bytes payload;
  };
  base::Result<Opened> Open(SealedFormat format, ByteView sealed);
  base::Result<Bytes> Seal(uint64_t context_id, ByteView chunk, bool final);
  base::Status Close(uint64_t context_id);
  base::Result<Bytes> Wipe();

  // Runs one decoded request (the server's entry point).
  Reply Handle(const Request& request);

  // The public identity clients learn from the attestation document.
  Bytes IdentityBytes() const;
  EnclaveStats Stats() const;

 private:
  struct State;
  explicit EnclaveCore(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace supercluster::enclave
