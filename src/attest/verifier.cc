#include "attest/verifier.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <ctime>
#include <string>

#include "attest/certificate.h"
#include "attest/certificate_internal.h"
#include "attest/cose_sign1.h"
#include "attest/openssl_util.h"

namespace supercluster::attest {
namespace {

constexpr std::string_view kRejectedPrefix = "attestation rejected (";
constexpr RejectionReason kAllReasons[] = {
    RejectionReason::kMalformed,          RejectionReason::kBadLeafKey,
    RejectionReason::kBadSignature,       RejectionReason::kUntrustedRoot,
    RejectionReason::kChainInvalid,       RejectionReason::kCertificateExpired,
    RejectionReason::kCertificateNotYetValid, RejectionReason::kFromTheFuture,
    RejectionReason::kTooOld,             RejectionReason::kNonceMismatch,
    RejectionReason::kDebugMode,          RejectionReason::kPcrMismatch,
};

base::Status Reject(RejectionReason reason, const std::string& detail) {
  return base::PermissionDenied(std::string(kRejectedPrefix) + RejectionReasonName(reason) +
                                "): " + detail);
}

int64_t ToUnixMs(std::chrono::system_clock::time_point time) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

// Verifies root -> intermediates -> leaf at `unix_seconds` with only `root` trusted.
base::Status VerifyChain(X509* root, const std::vector<Bytes>& intermediates_der, X509* leaf,
                         time_t unix_seconds) {
  openssl::X509StorePtr store(X509_STORE_new());
  openssl::X509StackPtr intermediates(sk_X509_new_null());
  if (!store || !intermediates || X509_STORE_add_cert(store.get(), root) != 1) {
    return base::Internal("certificate store: " + openssl::LastError());
  }
  std::vector<openssl::X509Ptr> owned;
  for (size_t k = 0; k < intermediates_der.size(); ++k) {
    auto parsed = ParseCertificate(intermediates_der[k]);
    if (!parsed.ok()) {
      return Reject(RejectionReason::kChainInvalid,
                    "cabundle[" + std::to_string(k + 1) + "]: " + parsed.status().message());
    }
    sk_X509_push(intermediates.get(), parsed->get());
    owned.push_back(std::move(*parsed));
  }
  openssl::X509StoreContextPtr context(X509_STORE_CTX_new());
  if (!context || X509_STORE_CTX_init(context.get(), store.get(), leaf, intermediates.get()) != 1) {
    return base::Internal("certificate store context: " + openssl::LastError());
  }
  X509_VERIFY_PARAM* params = X509_STORE_CTX_get0_param(context.get());
  X509_VERIFY_PARAM_set_time(params, unix_seconds);
  int verified = X509_verify_cert(context.get());
  ERR_clear_error();
  if (verified == 1) return base::Status::Ok();
  int error = X509_STORE_CTX_get_error(context.get());
  std::string detail = std::string("certificate chain at depth ") +
                       std::to_string(X509_STORE_CTX_get_error_depth(context.get())) + ": " +
                       X509_verify_cert_error_string(error) + " (checked at unix time " +
                       std::to_string(static_cast<long long>(unix_seconds)) + ")";
  switch (error) {
    case X509_V_ERR_CERT_HAS_EXPIRED: return Reject(RejectionReason::kCertificateExpired, detail);
    case X509_V_ERR_CERT_NOT_YET_VALID: return Reject(RejectionReason::kCertificateNotYetValid, detail);
    default: return Reject(RejectionReason::kChainInvalid, detail);
  }
}

// The document claims to be signed at `unix_ms`: every certificate of its chain must have
// been valid then, whatever "now" is. `name` says which certificate in the message.
base::Status CheckValidAt(X509* certificate, const std::string& name, int64_t unix_ms) {
  time_t when = static_cast<time_t>(unix_ms / 1000);
  if (X509_cmp_time(X509_get0_notBefore(certificate), &when) > 0) {
    return Reject(RejectionReason::kCertificateNotYetValid,
                  name + " was not yet valid at the document's timestamp");
  }
  if (X509_cmp_time(X509_get0_notAfter(certificate), &when) < 0) {
    return Reject(RejectionReason::kCertificateExpired,
                  name + " had expired at the document's timestamp");
  }
  return base::Status::Ok();
}

base::Status CheckChainValidAt(const AttestationDocument& document, X509* leaf, int64_t unix_ms) {
  SC_RETURN_IF_ERROR(CheckValidAt(leaf, "the leaf certificate", unix_ms));
  for (size_t k = 0; k < document.cabundle.size(); ++k) {
    auto certificate = ParseCertificate(document.cabundle[k]);
    std::string name = "cabundle[" + std::to_string(k) + "]";
    if (!certificate.ok()) {
      return Reject(RejectionReason::kChainInvalid, name + ": " + certificate.status().message());
    }
    SC_RETURN_IF_ERROR(CheckValidAt(certificate->get(), name, unix_ms));
  }
  return base::Status::Ok();
}

bool MatchesSet(const AttestationDocument& document, const MeasurementSet& set) {
  for (const auto& [index, expected] : set) {
    auto found = document.pcrs.find(index);
    if (found == document.pcrs.end() || found->second != expected) return false;
  }
  return true;
}

bool ConstantTimeEqual(const Bytes& a, const Bytes& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

const char* RejectionReasonName(RejectionReason reason) {
  switch (reason) {
    case RejectionReason::kMalformed: return "malformed";
    case RejectionReason::kBadLeafKey: return "bad_leaf_key";
    case RejectionReason::kBadSignature: return "bad_signature";
    case RejectionReason::kUntrustedRoot: return "untrusted_root";
    case RejectionReason::kChainInvalid: return "chain_invalid";
    case RejectionReason::kCertificateExpired: return "certificate_expired";
    case RejectionReason::kCertificateNotYetValid: return "certificate_not_yet_valid";
    case RejectionReason::kFromTheFuture: return "from_the_future";
    case RejectionReason::kTooOld: return "too_old";
    case RejectionReason::kNonceMismatch: return "nonce_mismatch";
    case RejectionReason::kDebugMode: return "debug_mode";
    case RejectionReason::kPcrMismatch: return "pcr_mismatch";
  }
  return "unknown";
}

std::optional<RejectionReason> RejectionReasonOf(const base::Status& status) {
  if (status.code() != base::StatusCode::kPermissionDenied) return std::nullopt;
  std::string_view message = status.message();
  if (message.substr(0, kRejectedPrefix.size()) != kRejectedPrefix) return std::nullopt;
  message.remove_prefix(kRejectedPrefix.size());
  for (RejectionReason reason : kAllReasons) {
    std::string_view name = RejectionReasonName(reason);
    if (message.size() > name.size() && message.substr(0, name.size()) == name &&
        message[name.size()] == ')') {
      return reason;
    }
  }
  return std::nullopt;
}

base::Status AttestationPolicy::SetRootCertificate(ByteView pem_or_der) {
  SC_ASSIGN_OR_RETURN(root_certificate, CertificateDer(pem_or_der));
  return base::Status::Ok();
}

void AttestationPolicy::SetFixedTime(uint64_t unix_ms) {
  auto fixed = std::chrono::system_clock::time_point(std::chrono::milliseconds(unix_ms));
  clock = [fixed] { return fixed; };
}

bool IsDebugMode(const AttestationDocument& document) {
  for (uint32_t index : {0u, 1u, 2u}) {
    auto found = document.pcrs.find(index);
    if (found == document.pcrs.end()) continue;
    if (std::any_of(found->second.begin(), found->second.end(), [](uint8_t b) { return b != 0; })) {
      return false;
    }
  }
  return true;
}

base::Result<VerifiedAttestation> VerifyAttestation(ByteView encoded,
                                                    const AttestationPolicy& policy) {
  if (policy.root_certificate.empty()) {
    return base::FailedPrecondition("attestation policy has no pinned root certificate");
  }
  auto cose = DecodeCoseSign1(encoded);
  if (!cose.ok()) return Reject(RejectionReason::kMalformed, cose.status().message());
  auto document = DecodeAttestationDocument(cose->payload);
  if (!document.ok()) return Reject(RejectionReason::kMalformed, document.status().message());

  auto leaf = ParseCertificate(document->certificate);
  if (!leaf.ok()) {
    return Reject(RejectionReason::kMalformed, "certificate: " + leaf.status().message());
  }
  auto leaf_key = CertificatePublicKey(document->certificate);
  if (!leaf_key.ok()) {
    return Reject(RejectionReason::kBadLeafKey, "certificate: " + leaf_key.status().message());
  }
  if (base::Status signed_by_leaf = VerifyCoseSign1(*cose, *leaf_key); !signed_by_leaf.ok()) {
    return Reject(RejectionReason::kBadSignature, signed_by_leaf.message());
  }

  if (document->cabundle[0] != policy.root_certificate) {
    return Reject(RejectionReason::kUntrustedRoot,
                  "cabundle[0] (fingerprint " + CertificateFingerprintSha256(document->cabundle[0]) +
                      ") is not the pinned root (" +
                      CertificateFingerprintSha256(policy.root_certificate) + ")");
  }
  auto root = ParseCertificate(policy.root_certificate);
  if (!root.ok()) return base::FailedPrecondition("pinned root: " + root.status().message());

  auto now = policy.clock ? policy.clock() : std::chrono::system_clock::now();
  int64_t now_ms = ToUnixMs(now);
  std::vector<Bytes> intermediates(document->cabundle.begin() + 1, document->cabundle.end());
  SC_RETURN_IF_ERROR(VerifyChain(root->get(), intermediates, leaf->get(),
                                 static_cast<time_t>(now_ms / 1000)));
  if (document->timestamp_ms > static_cast<uint64_t>(INT64_MAX)) {
    return Reject(RejectionReason::kFromTheFuture, "timestamp beyond 2^63 ms");
  }
  int64_t timestamp_ms = static_cast<int64_t>(document->timestamp_ms);
  SC_RETURN_IF_ERROR(CheckChainValidAt(*document, leaf->get(), timestamp_ms));

  if (timestamp_ms > now_ms + policy.max_clock_skew.count()) {
    return Reject(RejectionReason::kFromTheFuture,
                  "timestamp " + std::to_string(timestamp_ms) + " ms is " +
                      std::to_string(timestamp_ms - now_ms) + " ms after now");
  }
  if (policy.max_age.count() > 0 && now_ms - timestamp_ms > policy.max_age.count()) {
    return Reject(RejectionReason::kTooOld,
                  "the document is " + std::to_string(now_ms - timestamp_ms) +
                      " ms old, more than max_age " + std::to_string(policy.max_age.count()) + " ms");
  }
  if (policy.expected_nonce) {
    if (!document->nonce) return Reject(RejectionReason::kNonceMismatch, "the document has no nonce");
    if (!ConstantTimeEqual(*document->nonce, *policy.expected_nonce)) {
      return Reject(RejectionReason::kNonceMismatch, "the document's nonce differs from the expected one");
    }
  }
  if (!policy.allow_debug && IsDebugMode(*document)) {
    return Reject(RejectionReason::kDebugMode,
                  "PCR0, PCR1 and PCR2 are zero: a debug-mode enclave, and the policy does not allow debug");
  }
  if (!policy.allowed_measurements.empty() &&
      std::none_of(policy.allowed_measurements.begin(), policy.allowed_measurements.end(),
                   [&](const MeasurementSet& set) { return MatchesSet(*document, set); })) {
    auto pcr0 = document->pcrs.find(0);
    return Reject(RejectionReason::kPcrMismatch,
                  "the measurements match none of the " +
                      std::to_string(policy.allowed_measurements.size()) +
                      " allowed sets (PCR0 " +
                      (pcr0 == document->pcrs.end() ? std::string("absent") : HexOf(pcr0->second)) +
                      ")");
  }
  bool dev = document->module_id.rfind("dev-", 0) == 0;
  return VerifiedAttestation{std::move(*document), std::move(*leaf_key), dev};
}

}  // namespace supercluster::attest
