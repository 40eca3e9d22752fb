// RFC 9458 encapsulation. Byte layouts are in docs/protocol.md.
#include "crypto/ohttp.h"

#include <algorithm>
#include <string>

#include "crypto/aead.h"
#include "crypto/hkdf.h"
#include "crypto/random.h"
#include "crypto/wire.h"

namespace supercluster::crypto {
namespace {

using base::InvalidArgument;
using base::Result;
using base::Status;

base::Result<OhttpHeader> ParseHeader(WireReader& reader) {
  OhttpHeader header;
  uint8_t key_id = 0;
  uint16_t kem = 0, kdf = 0, aead = 0;
  if (!reader.ReadU8(&key_id) || !reader.ReadU16(&kem) || !reader.ReadU16(&kdf) ||
      !reader.ReadU16(&aead)) {
    return InvalidArgument("encapsulated request: truncated header (" +
                           std::to_string(reader.size()) + " bytes, need 7)");
  }
  header.key_id = key_id;
  auto suite = HpkeSuite::FromIds(kem, kdf, aead);
  if (!suite.ok()) return suite.status().WithContext("encapsulated request header");
  header.suite = *suite;
  return header;
}

}  // namespace

Bytes OhttpKeyConfig::Encode() const {
  WireWriter out;
  out.U8(key_id);
  out.U16(static_cast<uint16_t>(kem));
  out.Append(public_key);
  out.U16(static_cast<uint16_t>(suites.size() * 4));
  for (const auto& [kdf, aead] : suites) {
    out.U16(static_cast<uint16_t>(kdf));
    out.U16(static_cast<uint16_t>(aead));
  }
  return out.Take();
}

Result<OhttpKeyConfig> OhttpKeyConfig::Parse(ByteView bytes) {
  WireReader reader(bytes);
  OhttpKeyConfig config;
  uint16_t kem = 0, suites_length = 0;
  if (!reader.ReadU8(&config.key_id) || !reader.ReadU16(&kem)) {
    return InvalidArgument("key config: truncated before the KEM id");
  }
  if (kem != static_cast<uint16_t>(HpkeKem::kX25519Sha256)) {
    return InvalidArgument("key config: unsupported KEM id " + std::to_string(kem) +
                           " (supported: 32, DHKEM(X25519, HKDF-SHA256))");
  }
  config.kem = HpkeKem::kX25519Sha256;
  ByteView public_key;
  if (!reader.ReadBytes(HpkePublicKeySize(config.kem), &public_key)) {
    return InvalidArgument("key config: truncated public key");
  }
  config.public_key.assign(public_key.begin(), public_key.end());
  if (!reader.ReadU16(&suites_length)) {
    return InvalidArgument("key config: truncated before the suites length");
  }
  if (suites_length == 0 || suites_length % 4 != 0) {
    return InvalidArgument("key config: suites length " + std::to_string(suites_length) +
                           " is not a positive multiple of 4");
  }
  if (reader.size() != suites_length) {
    return InvalidArgument("key config: suites length " + std::to_string(suites_length) +
                           " but " + std::to_string(reader.size()) + " bytes follow");
  }
  for (size_t i = 0; i < suites_length / 4u; ++i) {
    uint16_t kdf = 0, aead = 0;
    reader.ReadU16(&kdf);
    reader.ReadU16(&aead);
    auto suite = HpkeSuite::FromIds(kem, kdf, aead);
    if (!suite.ok() || suite->aead == HpkeAead::kExportOnly) continue;  // not ours to use
    config.suites.emplace_back(suite->kdf, suite->aead);
  }
  if (config.suites.empty()) {
    return InvalidArgument("key config: none of its (KDF, AEAD) suites is supported");
  }
  return config;
}

bool OhttpKeyConfig::Accepts(const HpkeSuite& suite) const {
  return suite.kem == kem &&
         std::find(suites.begin(), suites.end(), std::make_pair(suite.kdf, suite.aead)) !=
             suites.end();
}

Bytes EncodeKeyConfigList(const std::vector<OhttpKeyConfig>& configs) {
  WireWriter out;
  for (const OhttpKeyConfig& config : configs) {
    Bytes encoded = config.Encode();
    out.U16(static_cast<uint16_t>(encoded.size()));
    out.Append(encoded);
  }
  return out.Take();
}

Result<std::vector<OhttpKeyConfig>> ParseKeyConfigList(ByteView bytes) {
  WireReader reader(bytes);
  std::vector<OhttpKeyConfig> configs;
  while (reader.size() > 0) {
    uint16_t length = 0;
    ByteView encoded;
    if (!reader.ReadU16(&length) || !reader.ReadBytes(length, &encoded)) {
      return InvalidArgument("key config list: entry " + std::to_string(configs.size()) +
                             " is truncated");
    }
    auto config = OhttpKeyConfig::Parse(encoded);
    if (!config.ok()) {
      return config.status().WithContext("key config list entry " +
                                         std::to_string(configs.size()));
    }
    configs.push_back(std::move(*config));
  }
  if (configs.empty()) return InvalidArgument("key config list is empty");
  return configs;
}

Bytes OhttpHeader::Encode() const {
  WireWriter out;
  out.U8(key_id);
  out.U16(static_cast<uint16_t>(suite.kem));
  out.U16(static_cast<uint16_t>(suite.kdf));
  out.U16(static_cast<uint16_t>(suite.aead));
  return out.Take();
}

Bytes OhttpRequestInfo(std::string_view label, const OhttpHeader& header) {
  Bytes info = ToBytes(label);
  info.push_back(0);
  Bytes encoded = header.Encode();
  info.insert(info.end(), encoded.begin(), encoded.end());
  return info;
}

Result<OhttpClientRequest> OhttpEncapsulateRequest(const OhttpKeyConfig& config,
                                                   const HpkeSuite& suite,
                                                   const OhttpLabels& labels, ByteView payload,
                                                   const HpkeSenderOptions& options) {
  if (!config.Accepts(suite)) {
    return InvalidArgument("key config " + std::to_string(config.key_id) +
                           " does not accept the requested HPKE suite");
  }
  OhttpHeader header{config.key_id, suite};
  Bytes info = OhttpRequestInfo(labels.request, header);
  SC_ASSIGN_OR_RETURN(HpkeSenderSetup setup,
                      HpkeSetupSender(suite, config.public_key, info, options));
  SC_ASSIGN_OR_RETURN(Bytes ciphertext, setup.context.Seal({}, payload));
  Bytes encapsulated = Concat({header.Encode(), setup.enc, ciphertext});
  return OhttpClientRequest{std::move(encapsulated), std::move(setup.enc),
                            std::move(setup.context)};
}

Result<OhttpServerRequest> OhttpDecapsulateRequest(const OhttpKeyConfig& config,
                                                   const HpkeKeyPair& key,
                                                   const OhttpLabels& labels,
                                                   ByteView encapsulated) {
  WireReader reader(encapsulated);
  SC_ASSIGN_OR_RETURN(OhttpHeader header, ParseHeader(reader));
  if (header.key_id != config.key_id) {
    return InvalidArgument("encapsulated request is for key id " +
                           std::to_string(header.key_id) + ", this key is " +
                           std::to_string(config.key_id));
  }
  if (!config.Accepts(header.suite)) {
    return InvalidArgument("encapsulated request uses an HPKE suite this key does not accept");
  }
  ByteView enc;
  if (!reader.ReadBytes(HpkeEncSize(header.suite.kem), &enc)) {
    return InvalidArgument("encapsulated request: truncated encapsulated key");
  }
  ByteView ciphertext = reader.Rest();
  if (ciphertext.size() < HpkeAeadTagSize(header.suite.aead)) {
    return InvalidArgument("encapsulated request: ciphertext shorter than the AEAD tag");
  }
  Bytes info = OhttpRequestInfo(labels.request, header);
  SC_ASSIGN_OR_RETURN(HpkeContext context, HpkeSetupRecipient(header.suite, enc, key, info));
  SC_ASSIGN_OR_RETURN(Bytes payload, context.Open({}, ciphertext));
  return OhttpServerRequest{header, Bytes(enc.begin(), enc.end()), std::move(payload),
                            std::move(context)};
}

size_t OhttpResponseNonceSize(HpkeAead aead) {
  return std::max(HpkeAeadKeySize(aead), HpkeAeadNonceSize(aead));
}

Result<SecretBytes> OhttpExportResponseSecret(const HpkeContext& context,
                                              std::string_view response_label) {
  HpkeAead aead = context.suite().aead;
  if (aead == HpkeAead::kExportOnly) {
    return InvalidArgument("an export-only HPKE suite cannot carry a response");
  }
  return context.Export(AsBytes(response_label), OhttpResponseNonceSize(aead));
}

Result<OhttpResponseKeys> OhttpResponseKeysFromSecret(HpkeKdf kdf, HpkeAead aead,
                                                      ByteView secret, ByteView enc,
                                                      ByteView response_nonce) {
  if (aead == HpkeAead::kExportOnly) {
    return InvalidArgument("an export-only HPKE suite cannot carry a response");
  }
  size_t secret_size = OhttpResponseNonceSize(aead);
  if (response_nonce.size() != secret_size || secret.size() != secret_size) {
    return InvalidArgument("response nonce and secret must be " + std::to_string(secret_size) +
                           " bytes for this suite");
  }
  Bytes salt = Concat({enc, response_nonce});
  SC_ASSIGN_OR_RETURN(SecretBytes prk, HkdfExtract(kdf, salt, secret));
  SC_ASSIGN_OR_RETURN(SecretBytes key,
                      HkdfExpand(kdf, prk.view(), AsBytes("key"), HpkeAeadKeySize(aead)));
  SC_ASSIGN_OR_RETURN(SecretBytes nonce,
                      HkdfExpand(kdf, prk.view(), AsBytes("nonce"), HpkeAeadNonceSize(aead)));
  return OhttpResponseKeys{std::move(key), std::move(nonce)};
}

Result<OhttpResponseKeys> OhttpDeriveResponseKeys(const HpkeContext& context,
                                                  std::string_view response_label, ByteView enc,
                                                  ByteView response_nonce) {
  SC_ASSIGN_OR_RETURN(SecretBytes secret, OhttpExportResponseSecret(context, response_label));
  return OhttpResponseKeysFromSecret(context.suite().kdf, context.suite().aead, secret.view(),
                                     enc, response_nonce);
}

Result<Bytes> OhttpResponseNonce(HpkeAead aead, std::optional<ByteView> given) {
  if (given) return Bytes(given->begin(), given->end());
  return RandomBytes(OhttpResponseNonceSize(aead));
}

Result<Bytes> OhttpEncapsulateResponse(const HpkeContext& context, const OhttpLabels& labels,
                                       ByteView enc, ByteView payload,
                                       std::optional<ByteView> response_nonce) {
  SC_ASSIGN_OR_RETURN(Bytes nonce, OhttpResponseNonce(context.suite().aead, response_nonce));
  SC_ASSIGN_OR_RETURN(OhttpResponseKeys keys,
                      OhttpDeriveResponseKeys(context, labels.response, enc, nonce));
  SC_ASSIGN_OR_RETURN(Bytes ciphertext, AeadSeal(context.suite().aead, keys.key.view(),
                                                 keys.nonce.view(), {}, payload));
  return Concat({nonce, ciphertext});
}

Result<Bytes> OhttpDecapsulateResponse(const HpkeContext& context, const OhttpLabels& labels,
                                       ByteView enc, ByteView encapsulated) {
  HpkeAead aead = context.suite().aead;
  size_t nonce_size = OhttpResponseNonceSize(aead);
  if (encapsulated.size() < nonce_size + HpkeAeadTagSize(aead)) {
    return InvalidArgument("encapsulated response: " + std::to_string(encapsulated.size()) +
                           " bytes is too short for a nonce and a tag");
  }
  ByteView nonce = encapsulated.first(nonce_size);
  SC_ASSIGN_OR_RETURN(OhttpResponseKeys keys,
                      OhttpDeriveResponseKeys(context, labels.response, enc, nonce));
  return AeadOpen(aead, keys.key.view(), keys.nonce.view(), {},
                  encapsulated.subspan(nonce_size));
}

}  // namespace supercluster::crypto
