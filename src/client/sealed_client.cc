#include "client/sealed_client.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "base/bounded_read.h"
#include "enclave/enclave_core.h"

namespace supercluster::client {
namespace {

// A response-secrets file holds about 250 bytes per enclave the request was sealed to; 1MiB
// is thousands of them, and a path to /dev/zero by mistake is refused instead of read on.
constexpr size_t kMaxResponseSecretsBytes = size_t{1} << 20;

}  // namespace

CandidateVerdicts VerifyCandidates(const std::vector<crypto::Bytes>& documents,
                                   const attest::AttestationPolicy& policy) {
  CandidateVerdicts verdicts;
  for (size_t i = 0; i < documents.size(); ++i) {
    std::string which = "candidate " + std::to_string(i) + ": ";
    auto verified = attest::VerifyAttestation(documents[i], policy);
    if (!verified.ok()) {
      verdicts.rejections.push_back(which + verified.status().message());
      continue;
    }
    if (!verified->document.public_key) {
      verdicts.rejections.push_back(which + "document carries no enclave key");
      continue;
    }
    auto identity = enclave::EnclaveIdentity::Parse(*verified->document.public_key);
    if (!identity.ok()) {
      verdicts.rejections.push_back(which + identity.status().message());
      continue;
    }
    verdicts.accepted.push_back({std::move(*verified), std::move(*identity)});
  }
  return verdicts;
}

base::Result<SealedRequest> SealRequest(const std::vector<AcceptedEnclave>& recipients,
                                        crypto::ByteView body, int64_t now_ms) {
  if (recipients.empty()) {
    return base::FailedPrecondition("no attested enclave to seal the request to");
  }
  std::vector<crypto::OhttpKeyConfig> configs;
  for (const AcceptedEnclave& recipient : recipients) {
    configs.push_back(recipient.identity.key_config);
  }
  crypto::Bytes payload = enclave::TimestampedPayload(now_ms, body);
  auto sealed = crypto::SealForRecipients(configs, crypto::HpkeAead::kAes128Gcm,
                                          crypto::kInferenceLabels, payload);
  crypto::Zeroize(payload.data(), payload.size());
  if (!sealed.ok()) return sealed.status();
  SC_ASSIGN_OR_RETURN(auto secrets,
                      crypto::ExportResponseSecrets(*sealed, crypto::kInferenceLabels));
  return SealedRequest{std::move(sealed->sealed), std::move(secrets)};
}

crypto::ChunkedResponseOpener OpenResponse(SealedRequest&& request) {
  return crypto::OpenMultiRecipientResponse(std::move(request.response_secrets));
}

base::Status SaveResponseSecrets(const std::vector<crypto::RecipientResponseSecret>& secrets,
                                 const std::filesystem::path& path) {
  nlohmann::json json = {{"type", "supercluster.response-secrets.v1"},
                         {"recipients", nlohmann::json::array()}};
  for (const auto& secret : secrets) {
    json["recipients"].push_back({{"kdf", static_cast<int>(secret.kdf)},
                                  {"aead", static_cast<int>(secret.aead)},
                                  {"enc", crypto::ToHex(secret.enc)},
                                  {"secret", crypto::ToHex(secret.secret.view())}});
  }
  std::string text = json.dump(2);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return base::PermissionDenied("cannot write " + path.string());
  // An existing file keeps its mode through O_CREAT; the secrets must not be readable by others.
  if (::fchmod(fd, 0600) != 0) {
    ::close(fd);
    return base::PermissionDenied("cannot make " + path.string() + " private (mode 0600)");
  }
  bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  crypto::Zeroize(text.data(), text.size());
  if (!written) return base::Unavailable("writing " + path.string() + " failed");
  return base::Status::Ok();
}

base::Result<std::vector<crypto::RecipientResponseSecret>> LoadResponseSecrets(
    const std::filesystem::path& path) {
  auto text = base::ReadFileAtMost(path.string(), kMaxResponseSecretsBytes);
  if (!text.ok()) {
    if (text.status().code() != base::StatusCode::kOutOfRange) return text.status();
    return base::OutOfRange(text.status().message() + ", which is no response-secrets file");
  }
  nlohmann::json json = nlohmann::json::parse(*text, nullptr, false);
  if (!json.is_object() || json.value("type", "") != "supercluster.response-secrets.v1" ||
      !json.contains("recipients") || !json["recipients"].is_array() ||
      json["recipients"].empty()) {
    return base::InvalidArgument(path.string() + ": not a response-secrets file");
  }
  std::vector<crypto::RecipientResponseSecret> secrets;
  for (const auto& entry : json["recipients"]) {
    if (!entry.is_object() || !entry.contains("kdf") || !entry["kdf"].is_number_unsigned() ||
        !entry.contains("aead") || !entry["aead"].is_number_unsigned() ||
        !entry.contains("enc") || !entry["enc"].is_string() || !entry.contains("secret") ||
        !entry["secret"].is_string()) {
      return base::InvalidArgument(path.string() + ": malformed recipient entry");
    }
    auto suite = crypto::HpkeSuite::FromIds(0x0020, entry["kdf"].get<uint16_t>(),
                                            entry["aead"].get<uint16_t>());
    crypto::Bytes enc, secret;
    if (!suite.ok() || !crypto::FromHex(entry["enc"].get<std::string>(), &enc) ||
        !crypto::FromHex(entry["secret"].get<std::string>(), &secret)) {
      return base::InvalidArgument(path.string() + ": malformed recipient entry");
    }
    secrets.push_back({suite->kdf, suite->aead, std::move(enc), crypto::SecretBytes(secret)});
    crypto::Zeroize(secret.data(), secret.size());
  }
  return secrets;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace supercluster::client
