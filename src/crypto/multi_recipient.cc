#include "crypto/multi_recipient.h"

#include <memory>
#include <string>

#include "crypto/aead.h"
#include "crypto/random.h"
#include "crypto/wire.h"

namespace supercluster::crypto {
namespace {

using base::InvalidArgument;
using base::Result;

constexpr size_t kPreambleSize = 4;  // version, content_aead_id, count

Bytes WrapInfo(std::string_view request_label, const OhttpHeader& header) {
  return OhttpRequestInfo(std::string(request_label) + " content key", header);
}

// The payload is sealed under a single-use key, so a fixed nonce is safe.
Bytes ZeroNonce(HpkeAead aead) { return Bytes(HpkeAeadNonceSize(aead), 0); }

// Every recipient uses the content AEAD for its HPKE suite too, so that whichever one
// answers, the client opens the response with the same AEAD.
Result<HpkeSuite> SuiteWithAead(const OhttpKeyConfig& config, HpkeAead aead) {
  for (const auto& [kdf, config_aead] : config.suites) {
    if (config_aead == aead) return HpkeSuite{config.kem, kdf, aead};
  }
  return InvalidArgument("key config " + std::to_string(config.key_id) +
                         " does not accept AEAD " + std::to_string(static_cast<int>(aead)));
}

}  // namespace

Result<MultiRecipientClientRequest> SealForRecipients(
    const std::vector<OhttpKeyConfig>& recipients, HpkeAead content_aead,
    const OhttpLabels& labels, ByteView payload) {
  if (recipients.empty() || recipients.size() > kMaxRecipients) {
    return InvalidArgument("a sealed request needs 1 to " + std::to_string(kMaxRecipients) +
                           " recipients, got " + std::to_string(recipients.size()));
  }
  if (content_aead == HpkeAead::kExportOnly) {
    return InvalidArgument("the content AEAD cannot be export-only");
  }
  WireWriter envelope;
  envelope.U8(kMultiRecipientVersion);
  envelope.U16(static_cast<uint16_t>(content_aead));
  envelope.U8(static_cast<uint8_t>(recipients.size()));
  Bytes preamble = envelope.Take();
  envelope.Append(preamble);

  SC_ASSIGN_OR_RETURN(Bytes key_bytes, RandomBytes(HpkeAeadKeySize(content_aead)));
  SecretBytes content_key(key_bytes);
  Zeroize(key_bytes.data(), key_bytes.size());

  MultiRecipientClientRequest request;
  for (const OhttpKeyConfig& config : recipients) {
    SC_ASSIGN_OR_RETURN(HpkeSuite suite, SuiteWithAead(config, content_aead));
    OhttpHeader header{config.key_id, suite};
    SC_ASSIGN_OR_RETURN(HpkeSenderSetup setup,
                        HpkeSetupSender(suite, config.public_key, WrapInfo(labels.request, header)));
    SC_ASSIGN_OR_RETURN(Bytes wrapped, setup.context.Seal(preamble, content_key.view()));
    envelope.Append(header.Encode());
    envelope.Append(setup.enc);
    envelope.Append(wrapped);
    request.recipients.push_back({std::move(setup.enc), std::move(setup.context)});
  }
  Bytes sealed = envelope.Take();
  Bytes aad = Concat({AsBytes(labels.request), sealed});
  SC_ASSIGN_OR_RETURN(Bytes ciphertext, AeadSeal(content_aead, content_key.view(),
                                                 ZeroNonce(content_aead), aad, payload));
  sealed.insert(sealed.end(), ciphertext.begin(), ciphertext.end());
  request.sealed = std::move(sealed);
  return request;
}

Result<MultiRecipientServerRequest> OpenAsRecipient(const OhttpKeyConfig& config,
                                                    const HpkeKeyPair& key,
                                                    const OhttpLabels& labels, ByteView sealed) {
  WireReader reader(sealed);
  uint8_t version = 0, count = 0;
  uint16_t content_aead_id = 0;
  if (!reader.ReadU8(&version) || !reader.ReadU16(&content_aead_id) || !reader.ReadU8(&count)) {
    return InvalidArgument("sealed request: truncated preamble");
  }
  if (version != kMultiRecipientVersion) {
    return InvalidArgument("sealed request: unknown version " + std::to_string(version));
  }
  auto content_suite = HpkeSuite::FromIds(static_cast<uint16_t>(HpkeKem::kX25519Sha256),
                                          static_cast<uint16_t>(HpkeKdf::kHkdfSha256),
                                          content_aead_id);
  if (!content_suite.ok() || content_suite->aead == HpkeAead::kExportOnly) {
    return InvalidArgument("sealed request: unsupported content AEAD " +
                           std::to_string(content_aead_id));
  }
  HpkeAead content_aead = content_suite->aead;
  if (count == 0 || count > kMaxRecipients) {
    return InvalidArgument("sealed request: recipient count " + std::to_string(count) +
                           " is outside 1.." + std::to_string(kMaxRecipients));
  }
  ByteView preamble = sealed.first(kPreambleSize);

  std::optional<MultiRecipientServerRequest> opened;
  SecretBytes content_key;
  bool saw_our_key_id = false;
  for (uint8_t index = 0; index < count; ++index) {
    uint8_t key_id = 0;
    uint16_t kem = 0, kdf = 0, aead = 0;
    if (!reader.ReadU8(&key_id) || !reader.ReadU16(&kem) || !reader.ReadU16(&kdf) ||
        !reader.ReadU16(&aead)) {
      return InvalidArgument("sealed request: recipient " + std::to_string(index) +
                             " header is truncated");
    }
    auto suite = HpkeSuite::FromIds(kem, kdf, aead);
    if (!suite.ok() || suite->aead == HpkeAead::kExportOnly) {
      return InvalidArgument("sealed request: recipient " + std::to_string(index) +
                             " uses an unsupported HPKE suite");
    }
    ByteView enc, wrapped;
    if (!reader.ReadBytes(HpkeEncSize(suite->kem), &enc) ||
        !reader.ReadBytes(HpkeAeadKeySize(content_aead) + HpkeAeadTagSize(suite->aead),
                          &wrapped)) {
      return InvalidArgument("sealed request: recipient " + std::to_string(index) +
                             " is truncated");
    }
    if (opened || key_id != config.key_id || !config.Accepts(*suite)) continue;
    saw_our_key_id = true;
    OhttpHeader header{key_id, *suite};
    auto context = HpkeSetupRecipient(*suite, enc, key, WrapInfo(labels.request, header));
    if (!context.ok()) continue;  // another enclave's entry with the same key id
    auto unwrapped = context->Open(preamble, wrapped);
    if (!unwrapped.ok()) continue;
    content_key = SecretBytes(*unwrapped);
    Zeroize(unwrapped->data(), unwrapped->size());
    opened.emplace(MultiRecipientServerRequest{index, Bytes(enc.begin(), enc.end()), {},
                                               std::move(*context)});
  }
  if (!opened) {
    return base::NotFound(saw_our_key_id
                              ? "sealed request: no recipient entry opens with this enclave's key"
                              : "sealed request: not sealed to key id " +
                                    std::to_string(config.key_id));
  }
  size_t header_size = reader.offset();
  ByteView ciphertext = reader.Rest();
  Bytes aad = Concat({AsBytes(labels.request), sealed.first(header_size)});
  auto payload =
      AeadOpen(content_aead, content_key.view(), ZeroNonce(content_aead), aad, ciphertext);
  if (!payload.ok()) {
    return base::PermissionDenied(
        "sealed request: the payload or recipient list was altered (decryption failed)");
  }
  opened->payload = std::move(*payload);
  return std::move(*opened);
}

Result<ChunkedResponseSealer> StartMultiRecipientResponse(
    const MultiRecipientServerRequest& request, const OhttpLabels& labels) {
  Bytes prefix{request.recipient_index};
  return ChunkedResponseSealer::Start(request.context, labels, request.enc, prefix);
}

Result<std::vector<RecipientResponseSecret>> ExportResponseSecrets(
    const MultiRecipientClientRequest& request, const OhttpLabels& labels) {
  std::vector<RecipientResponseSecret> secrets;
  for (const auto& recipient : request.recipients) {
    SC_ASSIGN_OR_RETURN(SecretBytes secret,
                        OhttpExportResponseSecret(recipient.context, labels.response));
    secrets.push_back({recipient.context.suite().kdf, recipient.context.suite().aead,
                       recipient.enc, std::move(secret)});
  }
  return secrets;
}

ChunkedResponseOpener OpenMultiRecipientResponse(std::vector<RecipientResponseSecret> secrets,
                                                 size_t max_chunk_bytes) {
  HpkeAead aead = secrets.front().aead;
  auto shared = std::make_shared<std::vector<RecipientResponseSecret>>(std::move(secrets));
  return ChunkedResponseOpener(
      aead, 1 + OhttpResponseNonceSize(aead),
      [shared, aead](ByteView preamble) -> Result<OhttpResponseKeys> {
        uint8_t index = preamble[0];
        if (index >= shared->size()) {
          return InvalidArgument("response names recipient " + std::to_string(index) +
                                 " of " + std::to_string(shared->size()));
        }
        const RecipientResponseSecret& recipient = (*shared)[index];
        if (recipient.aead != aead) {
          return InvalidArgument("response from a recipient with a different AEAD");
        }
        return OhttpResponseKeysFromSecret(recipient.kdf, recipient.aead, recipient.secret.view(),
                                           recipient.enc, preamble.subspan(1));
      },
      max_chunk_bytes);
}

}  // namespace supercluster::crypto
