// Oblivious HTTP message encapsulation (RFC 9458): key configurations, encapsulated requests
// and responses, and the response keys both sides derive from the HPKE exporter.
//
// The client library seals requests with it and the enclave opens them. The payload is
// opaque here; `labels` name what it is, so that a sealed message of one kind cannot be
// opened as another. RFC 9458's own labels are kBinaryHttpLabels; Supercluster's inference
// requests use kInferenceLabels (docs/protocol.md). Streamed responses are in
// chunked_response.h; requests sealed to several recipients at once in multi_recipient.h.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "crypto/bytes.h"
#include "crypto/hpke.h"
#include "crypto/secret.h"

namespace supercluster::crypto {

// The HPKE `info` prefix of requests and the exporter label of responses.
struct OhttpLabels {
  std::string_view request;   // e.g. "message/bhttp request"
  std::string_view response;  // e.g. "message/bhttp response"
};
inline constexpr OhttpLabels kBinaryHttpLabels{"message/bhttp request", "message/bhttp response"};
inline constexpr OhttpLabels kInferenceLabels{"message/supercluster-inference request",
                                              "message/supercluster-inference chunked response"};

// A key configuration (RFC 9458 section 3.1): a key id, a KEM and its public key, and the
// (KDF, AEAD) pairs the holder of the private key accepts.
struct OhttpKeyConfig {
  uint8_t key_id = 0;
  HpkeKem kem = HpkeKem::kX25519Sha256;
  Bytes public_key;
  std::vector<std::pair<HpkeKdf, HpkeAead>> suites;

  Bytes Encode() const;
  // Strict: wrong lengths, an unsupported KEM, no suites or trailing bytes are errors.
  // Unsupported (KDF, AEAD) pairs are skipped; if none is left, it is an error.
  static base::Result<OhttpKeyConfig> Parse(ByteView bytes);
  bool Accepts(const HpkeSuite& suite) const;
};

// The application/ohttp-keys list: each config preceded by its 2-byte length.
Bytes EncodeKeyConfigList(const std::vector<OhttpKeyConfig>& configs);
base::Result<std::vector<OhttpKeyConfig>> ParseKeyConfigList(ByteView bytes);

// The 7-byte request header: key_id, kem_id, kdf_id, aead_id.
struct OhttpHeader {
  uint8_t key_id = 0;
  HpkeSuite suite;

  Bytes Encode() const;
};
// `label` || 0x00 || header: the HPKE info of a request.
Bytes OhttpRequestInfo(std::string_view label, const OhttpHeader& header);

// The client's side of one request: what to send, and the context to open the answer with.
struct OhttpClientRequest {
  Bytes encapsulated;  // header || enc || ciphertext
  Bytes enc;
  HpkeContext context;
};
// Seals `payload` to `config` with `suite` (which the config must accept). `options` is for
// tests that need a fixed ephemeral key.
base::Result<OhttpClientRequest> OhttpEncapsulateRequest(const OhttpKeyConfig& config,
                                                         const HpkeSuite& suite,
                                                         const OhttpLabels& labels,
                                                         ByteView payload,
                                                         const HpkeSenderOptions& options = {});

// The server's side: the opened payload and the context to answer with.
struct OhttpServerRequest {
  OhttpHeader header;
  Bytes enc;
  Bytes payload;
  HpkeContext context;
};
// Opens a request sealed to `key` (whose id and KEM `config` gives). Errors: malformed or
// truncated input (kInvalidArgument), another key id or an unaccepted suite
// (kInvalidArgument, naming them), authentication failure (kPermissionDenied).
base::Result<OhttpServerRequest> OhttpDecapsulateRequest(const OhttpKeyConfig& config,
                                                         const HpkeKeyPair& key,
                                                         const OhttpLabels& labels,
                                                         ByteView encapsulated);

// The response AEAD key and nonce of RFC 9458 section 4.4: secret = Export(label, max(Nn,
// Nk)), salt = enc || response_nonce, prk = Extract(salt, secret), key = Expand(prk, "key",
// Nk), nonce = Expand(prk, "nonce", Nn).
struct OhttpResponseKeys {
  SecretBytes key;
  SecretBytes nonce;
};
// Length of the response nonce: max(Nn, Nk) of the suite's AEAD.
size_t OhttpResponseNonceSize(HpkeAead aead);
base::Result<OhttpResponseKeys> OhttpDeriveResponseKeys(const HpkeContext& context,
                                                        std::string_view response_label,
                                                        ByteView enc, ByteView response_nonce);
// The same from the already exported secret (what a client that saved it for later keeps
// instead of the whole HPKE context).
base::Result<SecretBytes> OhttpExportResponseSecret(const HpkeContext& context,
                                                    std::string_view response_label);
base::Result<OhttpResponseKeys> OhttpResponseKeysFromSecret(HpkeKdf kdf, HpkeAead aead,
                                                            ByteView secret, ByteView enc,
                                                            ByteView response_nonce);

// `given` if set (tests), else max(Nn, Nk) fresh bytes from the CSPRNG.
base::Result<Bytes> OhttpResponseNonce(HpkeAead aead, std::optional<ByteView> given);

// A whole (unchunked) response: response_nonce || Seal(key, nonce, "", payload).
// `response_nonce` is drawn from the CSPRNG unless given (tests).
base::Result<Bytes> OhttpEncapsulateResponse(const HpkeContext& context, const OhttpLabels& labels,
                                             ByteView enc, ByteView payload,
                                             std::optional<ByteView> response_nonce = {});
base::Result<Bytes> OhttpDecapsulateResponse(const HpkeContext& context, const OhttpLabels& labels,
                                             ByteView enc, ByteView encapsulated);

}  // namespace supercluster::crypto
