// Streamed responses as a sequence of sealed chunks (the construction of the IETF
// chunked-OHTTP draft, draft-ietf-ohai-chunked-ohttp, applied to responses).
//
// The enclave seals each piece of an answer as it is generated; the client opens them as
// they arrive. The stream is: preamble || chunk*, final_chunk where
//   preamble     = prefix || response_nonce        (prefix: see multi_recipient.h; else empty)
//   chunk        = varint(len(ciphertext)) || ciphertext     (len > 0)
//   final_chunk  = varint(0) || ciphertext                  (to the end of the stream)
// Chunk i (from 0) is sealed with nonce = aead_nonce XOR i (big-endian, right-aligned) and
// AAD "" (or "final" for the final chunk), under the OHTTP response key (ohttp.h). So a
// reordered, replayed, dropped or altered chunk fails to open, and a stream cut before its
// final chunk is reported as truncated, never taken for a complete answer.
#pragma once

#include <functional>
#include <optional>

#include "base/status.h"
#include "crypto/bytes.h"
#include "crypto/hpke.h"
#include "crypto/ohttp.h"

namespace supercluster::crypto {

class ChunkedResponseSealer {
 public:
  // Begins the response to a request whose recipient context and `enc` are given. The
  // response nonce is drawn from the CSPRNG unless given (tests). `prefix` is emitted, in
  // clear, before the nonce.
  static base::Result<ChunkedResponseSealer> Start(const HpkeContext& context,
                                                   const OhttpLabels& labels, ByteView enc,
                                                   ByteView prefix = {},
                                                   std::optional<ByteView> response_nonce = {});

  // The next framed chunk; the first also carries the preamble. After the final chunk every
  // call fails (kFailedPrecondition).
  base::Result<Bytes> Seal(ByteView plaintext, bool final);

  bool finished() const { return finished_; }
  uint64_t chunks_sealed() const { return counter_; }

 private:
  ChunkedResponseSealer(HpkeAead aead, OhttpResponseKeys keys, Bytes preamble);
  HpkeAead aead_;
  OhttpResponseKeys keys_;
  Bytes preamble_;  // emitted with the first chunk, then cleared
  uint64_t counter_ = 0;
  bool finished_ = false;
};

class ChunkedResponseOpener {
 public:
  // Derives the response keys from the preamble (its first `preamble_size` bytes).
  using KeyResolver = std::function<base::Result<OhttpResponseKeys>(ByteView preamble)>;

  // For a response to a single-recipient OHTTP request. `context` must outlive the opener.
  static ChunkedResponseOpener ForRequest(const HpkeContext& context, const OhttpLabels& labels,
                                          ByteView enc, size_t max_chunk_bytes = 1 << 20);
  ChunkedResponseOpener(HpkeAead aead, size_t preamble_size, KeyResolver resolver,
                        size_t max_chunk_bytes);

  // Feeds the next bytes of the stream (any split); appends the plaintext of each chunk
  // that is now complete to `out`. Any error poisons the opener: later calls fail too.
  base::Status Feed(ByteView bytes, std::vector<Bytes>* out);
  // The stream has ended: opens the final chunk. kDataLoss if there was none (truncated).
  base::Status Finish(std::vector<Bytes>* out);

  bool complete() const { return state_ == State::kComplete; }

 private:
  enum class State { kPreamble, kLength, kBody, kFinalBody, kComplete, kFailed };
  base::Status Fail(base::Status status);
  base::Status OpenChunk(ByteView ciphertext, bool final, std::vector<Bytes>* out);

  HpkeAead aead_;
  size_t preamble_size_;
  KeyResolver resolver_;
  size_t max_chunk_bytes_;
  std::optional<OhttpResponseKeys> keys_;
  State state_ = State::kPreamble;
  Bytes pending_;       // bytes of the current preamble, length or body
  uint64_t body_size_ = 0;
  uint64_t counter_ = 0;
  base::Status failure_;
};

}  // namespace supercluster::crypto
