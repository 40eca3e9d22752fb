// HPKE (RFC 9180): suites, the key schedule, encryption contexts and the setup and
// single-shot functions of hpke.h. The KEM is in dhkem.cc, the labeled KDF calls in
// hpke_labels.cc.
#include "crypto/hpke.h"

#include <string>

#include "crypto/aead.h"
#include "crypto/hkdf.h"
#include "crypto/hpke_internal.h"

namespace supercluster::crypto {

struct HpkeContext::State {
  HpkeSuite suite;
  HpkeMode mode = HpkeMode::kBase;
  bool is_sender = false;
  SecretBytes key;          // Nk bytes; empty for export-only
  SecretBytes base_nonce;   // Nn bytes; empty for export-only
  SecretBytes exporter_secret;
  uint64_t sequence = 0;    // the next message's sequence number
};

base::Result<HpkeSuite> HpkeSuite::FromIds(uint16_t kem, uint16_t kdf, uint16_t aead) {
  if (kem != static_cast<uint16_t>(HpkeKem::kX25519Sha256)) {
    return base::InvalidArgument("unsupported HPKE KEM id " + std::to_string(kem) +
                                 " (supported: 0x0020 DHKEM(X25519, HKDF-SHA256))");
  }
  if (kdf < 1 || kdf > 3) {
    return base::InvalidArgument("unsupported HPKE KDF id " + std::to_string(kdf) +
                                 " (supported: 1 HKDF-SHA256, 2 HKDF-SHA384, 3 HKDF-SHA512)");
  }
  if (!(aead >= 1 && aead <= 3) && aead != 0xFFFF) {
    return base::InvalidArgument("unsupported HPKE AEAD id " + std::to_string(aead) +
                                 " (supported: 1 AES-128-GCM, 2 AES-256-GCM, "
                                 "3 ChaCha20-Poly1305, 0xFFFF export-only)");
  }
  HpkeSuite suite;
  suite.kem = static_cast<HpkeKem>(kem);
  suite.kdf = static_cast<HpkeKdf>(kdf);
  suite.aead = static_cast<HpkeAead>(aead);
  return suite;
}

size_t HpkeEncSize(HpkeKem kem) { return kem == HpkeKem::kX25519Sha256 ? 32 : 0; }
size_t HpkePublicKeySize(HpkeKem kem) { return kem == HpkeKem::kX25519Sha256 ? 32 : 0; }

size_t HpkeAeadKeySize(HpkeAead aead) {
  switch (aead) {
    case HpkeAead::kAes128Gcm: return 16;
    case HpkeAead::kAes256Gcm: return 32;
    case HpkeAead::kChaCha20Poly1305: return 32;
    case HpkeAead::kExportOnly: return 0;
  }
  return 0;
}

size_t HpkeAeadNonceSize(HpkeAead aead) {
  return aead == HpkeAead::kExportOnly || HpkeAeadKeySize(aead) == 0 ? 0 : 12;
}

size_t HpkeAeadTagSize(HpkeAead aead) {
  return aead == HpkeAead::kExportOnly || HpkeAeadKeySize(aead) == 0 ? 0 : 16;
}

namespace internal {

base::Status VerifyPskInputs(HpkeMode mode, ByteView psk, ByteView psk_id) {
  bool got_psk = !psk.empty();
  bool got_psk_id = !psk_id.empty();
  if (got_psk != got_psk_id) {
    return base::InvalidArgument(
        "HPKE psk and psk_id must be given together (RFC 9180 section 5.1): got " +
        std::string(got_psk ? "a psk without a psk_id" : "a psk_id without a psk"));
  }
  bool psk_mode = mode == HpkeMode::kPsk || mode == HpkeMode::kAuthPsk;
  if (got_psk && !psk_mode) {
    return base::InvalidArgument("HPKE psk given for a mode that does not use one");
  }
  if (!got_psk && psk_mode) {
    return base::InvalidArgument("HPKE psk mode needs a psk and a psk_id");
  }
  return base::Status::Ok();
}

Bytes ComputeNonce(ByteView base_nonce, uint64_t sequence) {
  Bytes nonce(base_nonce.begin(), base_nonce.end());
  // I2OSP(seq, Nn) is zero but for its last eight bytes, so only those change.
  for (size_t i = 0; i < 8; ++i) {
    nonce[nonce.size() - 1 - i] ^= static_cast<uint8_t>(sequence >> (8 * i));
  }
  return nonce;
}

}  // namespace internal

base::Result<HpkeContext> HpkeContextBuilder::KeySchedule(const HpkeSuite& suite,
                                                          HpkeMode mode, bool is_sender,
                                                          ByteView shared_secret,
                                                          ByteView info, ByteView psk,
                                                          ByteView psk_id) {
  SC_RETURN_IF_ERROR(internal::VerifyPskInputs(mode, psk, psk_id));
  Bytes suite_id = internal::HpkeSuiteId(suite);
  HpkeKdf kdf = suite.kdf;
  SC_ASSIGN_OR_RETURN(SecretBytes psk_id_hash,
                      internal::LabeledExtract(kdf, suite_id, {}, "psk_id_hash", psk_id));
  SC_ASSIGN_OR_RETURN(SecretBytes info_hash,
                      internal::LabeledExtract(kdf, suite_id, {}, "info_hash", info));
  const uint8_t mode_byte = static_cast<uint8_t>(mode);
  Bytes key_schedule_context =
      Concat({ByteView(&mode_byte, 1), psk_id_hash.view(), info_hash.view()});
  SC_ASSIGN_OR_RETURN(SecretBytes secret,
                      internal::LabeledExtract(kdf, suite_id, shared_secret, "secret", psk));

  auto state = std::make_unique<HpkeContext::State>();
  state->suite = suite;
  state->mode = mode;
  state->is_sender = is_sender;
  if (suite.aead != HpkeAead::kExportOnly) {
    SC_ASSIGN_OR_RETURN(state->key,
                        internal::LabeledExpand(kdf, suite_id, secret.view(), "key",
                                                key_schedule_context,
                                                HpkeAeadKeySize(suite.aead)));
    SC_ASSIGN_OR_RETURN(state->base_nonce,
                        internal::LabeledExpand(kdf, suite_id, secret.view(), "base_nonce",
                                                key_schedule_context,
                                                HpkeAeadNonceSize(suite.aead)));
  }
  SC_ASSIGN_OR_RETURN(state->exporter_secret,
                      internal::LabeledExpand(kdf, suite_id, secret.view(), "exp",
                                              key_schedule_context, HkdfHashSize(kdf)));
  return HpkeContext(std::move(state));
}

ByteView HpkeContextBuilder::KeyForTesting(const HpkeContext& context) {
  return context.state_->key.view();
}
ByteView HpkeContextBuilder::BaseNonceForTesting(const HpkeContext& context) {
  return context.state_->base_nonce.view();
}
ByteView HpkeContextBuilder::ExporterSecretForTesting(const HpkeContext& context) {
  return context.state_->exporter_secret.view();
}
uint64_t HpkeContextBuilder::SequenceNumberForTesting(const HpkeContext& context) {
  return context.state_->sequence;
}
void HpkeContextBuilder::SetSequenceNumberForTesting(HpkeContext& context, uint64_t sequence) {
  context.state_->sequence = sequence;
}

HpkeContext::HpkeContext(std::unique_ptr<State> state) : state_(std::move(state)) {}
HpkeContext::HpkeContext(HpkeContext&&) noexcept = default;
HpkeContext& HpkeContext::operator=(HpkeContext&&) noexcept = default;
HpkeContext::~HpkeContext() = default;  // State's SecretBytes wipe themselves

HpkeMode HpkeContext::mode() const { return state_->mode; }
const HpkeSuite& HpkeContext::suite() const { return state_->suite; }

base::Status HpkeContext::CheckCanProtect(bool sealing) const {
  if (!state_) return base::FailedPrecondition("HPKE context was moved from");
  if (state_->suite.aead == HpkeAead::kExportOnly) {
    return base::FailedPrecondition(
        "HPKE context uses the export-only AEAD (0xFFFF): it can export secrets but not " +
        std::string(sealing ? "seal" : "open") + " messages");
  }
  if (sealing != state_->is_sender) {
    return base::FailedPrecondition(sealing ? "HPKE recipient context cannot seal"
                                            : "HPKE sender context cannot open");
  }
  if (state_->sequence >= internal::kMaxSequenceNumber) {
    return base::ResourceExhausted(
        "HPKE context reached its message limit (sequence number overflow); set up a new one");
  }
  return base::Status::Ok();
}

base::Result<Bytes> HpkeContext::Seal(ByteView aad, ByteView plaintext) {
  SC_RETURN_IF_ERROR(CheckCanProtect(/*sealing=*/true));
  Bytes nonce = internal::ComputeNonce(state_->base_nonce.view(), state_->sequence);
  SC_ASSIGN_OR_RETURN(Bytes ciphertext,
                      AeadSeal(state_->suite.aead, state_->key.view(), nonce, aad, plaintext));
  ++state_->sequence;
  return ciphertext;
}

base::Result<Bytes> HpkeContext::Open(ByteView aad, ByteView ciphertext) {
  SC_RETURN_IF_ERROR(CheckCanProtect(/*sealing=*/false));
  Bytes nonce = internal::ComputeNonce(state_->base_nonce.view(), state_->sequence);
  // A failed open leaves the sequence number where it was (RFC 9180 section 5.2).
  SC_ASSIGN_OR_RETURN(Bytes plaintext,
                      AeadOpen(state_->suite.aead, state_->key.view(), nonce, aad, ciphertext));
  ++state_->sequence;
  return plaintext;
}

base::Result<SecretBytes> HpkeContext::Export(ByteView exporter_context, size_t length) const {
  if (!state_) return base::FailedPrecondition("HPKE context was moved from");
  size_t limit = 255 * HkdfHashSize(state_->suite.kdf);
  if (length > limit) {
    return base::InvalidArgument("HPKE export length " + std::to_string(length) +
                                 " is above the suite's limit of " + std::to_string(limit) +
                                 " bytes (255 * Nh)");
  }
  return internal::LabeledExpand(state_->suite.kdf, internal::HpkeSuiteId(state_->suite),
                                 state_->exporter_secret.view(), "sec", exporter_context,
                                 length);
}

namespace {

HpkeMode ModeOf(bool has_psk, bool has_sender_key) {
  if (has_sender_key) return has_psk ? HpkeMode::kAuthPsk : HpkeMode::kAuth;
  return has_psk ? HpkeMode::kPsk : HpkeMode::kBase;
}

// A suite built field by field (not through FromIds) may hold an id no code here supports.
base::Status CheckSuite(const HpkeSuite& suite) {
  return HpkeSuite::FromIds(static_cast<uint16_t>(suite.kem), static_cast<uint16_t>(suite.kdf),
                            static_cast<uint16_t>(suite.aead))
      .status();
}

// The mode follows from which options are set; a psk without a psk_id (or the reverse)
// is then refused by VerifyPskInputs in the key schedule.
bool HasPsk(ByteView psk, ByteView psk_id) { return !psk.empty() || !psk_id.empty(); }

}  // namespace

base::Result<HpkeSenderSetup> HpkeSetupSender(const HpkeSuite& suite,
                                              ByteView recipient_public_key, ByteView info,
                                              const HpkeSenderOptions& options) {
  SC_RETURN_IF_ERROR(CheckSuite(suite));
  HpkeMode mode = ModeOf(HasPsk(options.psk, options.psk_id), options.sender_key != nullptr);
  // Checked before the KEM runs, so a bad psk costs no key agreement.
  SC_RETURN_IF_ERROR(internal::VerifyPskInputs(mode, options.psk, options.psk_id));
  SC_ASSIGN_OR_RETURN(internal::Encapsulation encapsulation,
                      internal::Encap(suite.kem, recipient_public_key, options.sender_key,
                                      options.ephemeral_ikm, options.ephemeral_key));
  SC_ASSIGN_OR_RETURN(HpkeContext context,
                      HpkeContextBuilder::KeySchedule(suite, mode, /*is_sender=*/true,
                                                      encapsulation.shared_secret.view(),
                                                      info, options.psk, options.psk_id));
  return HpkeSenderSetup{std::move(encapsulation.enc), std::move(context)};
}

base::Result<HpkeContext> HpkeSetupRecipient(const HpkeSuite& suite, ByteView enc,
                                             const HpkeKeyPair& recipient, ByteView info,
                                             const HpkeRecipientOptions& options) {
  SC_RETURN_IF_ERROR(CheckSuite(suite));
  HpkeMode mode = ModeOf(HasPsk(options.psk, options.psk_id), !options.sender_public_key.empty());
  SC_RETURN_IF_ERROR(internal::VerifyPskInputs(mode, options.psk, options.psk_id));
  SC_ASSIGN_OR_RETURN(SecretBytes shared_secret,
                      internal::Decap(suite.kem, enc, recipient, options.sender_public_key));
  return HpkeContextBuilder::KeySchedule(suite, mode, /*is_sender=*/false, shared_secret.view(),
                                         info, options.psk, options.psk_id);
}

base::Result<HpkeSealed> HpkeSeal(const HpkeSuite& suite, ByteView recipient_public_key,
                                  ByteView info, ByteView aad, ByteView plaintext,
                                  const HpkeSenderOptions& options) {
  if (suite.aead == HpkeAead::kExportOnly) {
    return base::FailedPrecondition("HPKE single-shot seal needs an AEAD, not export-only");
  }
  SC_ASSIGN_OR_RETURN(HpkeSenderSetup setup,
                      HpkeSetupSender(suite, recipient_public_key, info, options));
  SC_ASSIGN_OR_RETURN(Bytes ciphertext, setup.context.Seal(aad, plaintext));
  return HpkeSealed{std::move(setup.enc), std::move(ciphertext)};
}

base::Result<Bytes> HpkeOpen(const HpkeSuite& suite, ByteView enc, const HpkeKeyPair& recipient,
                             ByteView info, ByteView aad, ByteView ciphertext,
                             const HpkeRecipientOptions& options) {
  if (suite.aead == HpkeAead::kExportOnly) {
    return base::FailedPrecondition("HPKE single-shot open needs an AEAD, not export-only");
  }
  SC_ASSIGN_OR_RETURN(HpkeContext context,
                      HpkeSetupRecipient(suite, enc, recipient, info, options));
  return context.Open(aad, ciphertext);
}

}  // namespace supercluster::crypto
