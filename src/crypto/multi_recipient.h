// Requests sealed to several recipients at once, so that a router may hand the request to
// any one of the enclaves the client verified, without being able to read it.
//
// One random content key seals the payload once; the content key is wrapped, with HPKE, to
// each recipient's key. The envelope (docs/protocol.md has the byte layout):
//   version=1 (1) | content_aead_id (2) | count (1, 1..16) |
//   count x [ header (7: key_id, kem, kdf, aead) | enc (Nenc) | wrapped key (Nk + Nt) ] |
//   sealed payload  (AEAD(content key, nonce 0^Nn, aad = every byte before it))
// Each wrapped key is HPKE-sealed with info = labels.request || " content key" || 0x00 ||
// header and aad = the first 4 bytes, so it cannot be lifted into another envelope; the
// payload's AAD covers the whole recipient list, so a router cannot add, drop or swap
// recipients without the opening failing.
//
// The answering recipient j streams its response as in chunked_response.h with prefix = j
// (one byte) and the keys derived from its own HPKE context and enc_j; the client, which
// kept every recipient's exported response secret, picks secret j from that byte.
#pragma once

#include <vector>

#include "base/status.h"
#include "crypto/bytes.h"
#include "crypto/chunked_response.h"
#include "crypto/hpke.h"
#include "crypto/ohttp.h"

namespace supercluster::crypto {

inline constexpr uint8_t kMultiRecipientVersion = 1;
inline constexpr size_t kMaxRecipients = 16;

// What the client keeps to open the answer.
struct MultiRecipientClientRequest {
  Bytes sealed;
  struct Recipient {
    Bytes enc;
    HpkeContext context;
  };
  std::vector<Recipient> recipients;  // in envelope order
};

// Seals `payload` to each of `recipients` (1..kMaxRecipients) with `content_aead`, which
// every recipient's config must accept (each uses it for its HPKE suite as well).
base::Result<MultiRecipientClientRequest> SealForRecipients(
    const std::vector<OhttpKeyConfig>& recipients, HpkeAead content_aead,
    const OhttpLabels& labels, ByteView payload);

// The recipient's view: the payload, which entry was ours, and our context for answering.
struct MultiRecipientServerRequest {
  uint8_t recipient_index = 0;
  Bytes enc;
  Bytes payload;
  HpkeContext context;
};

// Opens an envelope as the holder of `key` (with id and suites from `config`): tries each
// entry with our key id (ids are one byte, so several enclaves may share one). Errors:
// malformed envelope (kInvalidArgument), no entry for us (kNotFound), altered envelope or
// payload (kPermissionDenied).
base::Result<MultiRecipientServerRequest> OpenAsRecipient(const OhttpKeyConfig& config,
                                                          const HpkeKeyPair& key,
                                                          const OhttpLabels& labels,
                                                          ByteView sealed);

// The response stream from recipient `request.recipient_index`.
base::Result<ChunkedResponseSealer> StartMultiRecipientResponse(
    const MultiRecipientServerRequest& request, const OhttpLabels& labels);

// What the client needs to open the answer from recipient i: its suite, enc_i and the
// secret exported from its HPKE context. Kept instead of the contexts, so that it can be
// saved (the `supercluster seal --keep` file) and the contexts dropped.
struct RecipientResponseSecret {
  HpkeKdf kdf = HpkeKdf::kHkdfSha256;
  HpkeAead aead = HpkeAead::kAes128Gcm;
  Bytes enc;
  SecretBytes secret;
};
base::Result<std::vector<RecipientResponseSecret>> ExportResponseSecrets(
    const MultiRecipientClientRequest& request, const OhttpLabels& labels);

// Opens the response stream at the client. Precondition: `secrets` is not empty and all
// share one AEAD (SealForRecipients guarantees both).
ChunkedResponseOpener OpenMultiRecipientResponse(std::vector<RecipientResponseSecret> secrets,
                                                 size_t max_chunk_bytes = 1 << 20);

}  // namespace supercluster::crypto
