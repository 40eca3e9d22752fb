#include "attest/dev_attestor.h"

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fstream>
#include <sstream>
#include <system_error>

#include "attest/certificate.h"
#include "attest/cose_sign1.h"
#include "attest/nitro_document.h"
#include "attest/openssl_util.h"

namespace supercluster::attest {
namespace {

constexpr const char* kRootKeyFile = "root.key";
constexpr const char* kRootCertificateFile = "root.pem";
constexpr std::chrono::hours kRootLifetime{24 * 365 * 10};
constexpr std::chrono::hours kReissueWhenLeft{1};
constexpr size_t kPcrCount = 16;

// Init without --force keeps what is in `dir`. A complete CA is "already exists"; one that
// lacks a file or has an empty one (an interrupted init, a file emptied by hand) is named
// as incomplete, with what is wrong, since "already exists" suggests one that works.
base::Status RefuseExistingCa(const std::filesystem::path& dir) {
  bool any = false;
  std::string problems;
  for (const char* name : {kRootKeyFile, kRootCertificateFile}) {
    std::error_code error;
    std::filesystem::path file = dir / name;
    std::string problem;
    if (!std::filesystem::exists(file, error)) {
      problem = " is missing";
    } else {
      any = true;
      if (std::filesystem::is_regular_file(file, error) &&
          std::filesystem::file_size(file, error) == 0) {
        problem = " is empty";
      }
    }
    if (!problem.empty()) problems += (problems.empty() ? "" : ", ") + std::string(name) + problem;
  }
  if (!any) return base::Status::Ok();
  if (problems.empty()) {
    return base::AlreadyExists("a dev CA already exists in " + dir.string() +
                               " (pass --force to replace it)");
  }
  return base::AlreadyExists("an incomplete dev CA is in " + dir.string() + " (" + problems +
                             "); pass --force to replace it");
}

base::Status AddExtension(X509* certificate, X509* issuer, int nid, const char* value) {
  X509V3_CTX context;
  X509V3_set_ctx(&context, issuer, certificate, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value);
  if (extension == nullptr) return base::Internal("certificate extension: " + openssl::LastError());
  int added = X509_add_ext(certificate, extension, -1);
  X509_EXTENSION_free(extension);
  if (added != 1) return base::Internal("certificate extension: " + openssl::LastError());
  return base::Status::Ok();
}

base::Status SetName(X509_NAME* name, const std::string& common_name) {
  const std::pair<const char*, const char*> fields[] = {
      {"C", "US"}, {"O", "Supercluster"}, {"OU", "INSECURE DEVELOPMENT"}, {"CN", common_name.c_str()}};
  for (const auto& [field, value] : fields) {
    if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value), -1, -1, 0) != 1) {
      return base::Internal("certificate name: " + openssl::LastError());
    }
  }
  return base::Status::Ok();
}

struct CertificateSpec {
  std::string subject_common_name;
  bool is_ca = false;
  std::chrono::system_clock::time_point not_before;
  std::chrono::system_clock::time_point not_after;
};

// Builds and signs a certificate for `subject_key`. `issuer` null: self-signed.
base::Result<Bytes> IssueCertificate(const CertificateSpec& spec, const EcP384Key& subject_key,
                                     X509* issuer, const EcP384Key& issuer_key) {
  openssl::X509Ptr certificate(X509_new());
  if (!certificate) return base::Internal("X509_new: " + openssl::LastError());
  uint8_t serial_bytes[16];
  if (RAND_bytes(serial_bytes, sizeof(serial_bytes)) != 1) return base::Internal("RAND_bytes failed");
  serial_bytes[0] &= 0x7f;  // a positive serial number
  openssl::BignumPtr serial(BN_bin2bn(serial_bytes, sizeof(serial_bytes), nullptr));
  auto to_time_t = [](std::chrono::system_clock::time_point t) {
    return std::chrono::system_clock::to_time_t(t);
  };
  if (X509_set_version(certificate.get(), X509_VERSION_3) != 1 || !serial ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(certificate.get())) == nullptr ||
      ASN1_TIME_set(X509_getm_notBefore(certificate.get()), to_time_t(spec.not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(certificate.get()), to_time_t(spec.not_after)) == nullptr ||
      X509_set_pubkey(certificate.get(), subject_key.openssl_key()) != 1) {
    return base::Internal("building a certificate: " + openssl::LastError());
  }
  SC_RETURN_IF_ERROR(SetName(X509_get_subject_name(certificate.get()), spec.subject_common_name));
  X509* issuer_certificate = issuer != nullptr ? issuer : certificate.get();
  if (X509_set_issuer_name(certificate.get(), X509_get_subject_name(issuer_certificate)) != 1) {
    return base::Internal("certificate issuer: " + openssl::LastError());
  }
  SC_RETURN_IF_ERROR(AddExtension(certificate.get(), issuer_certificate, NID_basic_constraints,
                                  spec.is_ca ? "critical,CA:TRUE,pathlen:0" : "critical,CA:FALSE"));
  SC_RETURN_IF_ERROR(AddExtension(certificate.get(), issuer_certificate, NID_key_usage,
                                  spec.is_ca ? "critical,keyCertSign,cRLSign"
                                             : "critical,digitalSignature"));
  SC_RETURN_IF_ERROR(AddExtension(certificate.get(), issuer_certificate,
                                  NID_subject_key_identifier, "hash"));
  SC_RETURN_IF_ERROR(AddExtension(certificate.get(), issuer_certificate,
                                  NID_authority_key_identifier, "keyid:always"));
  if (X509_sign(certificate.get(), issuer_key.openssl_key(), EVP_sha384()) <= 0) {
    return base::Internal("signing a certificate: " + openssl::LastError());
  }
  unsigned char* der = nullptr;
  int length = i2d_X509(certificate.get(), &der);
  if (length <= 0) return base::Internal("encoding a certificate: " + openssl::LastError());
  Bytes bytes(der, der + length);
  OPENSSL_free(der);
  return bytes;
}

base::Result<std::string> ReadFile(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return base::NotFound(path.string() + ": cannot open");
  std::ostringstream contents;
  contents << file.rdbuf();
  if (file.bad()) return base::DataLoss(path.string() + ": read error");
  return contents.str();
}

// Writes `contents` to `path` with `mode`, creating or truncating it.
base::Status WriteFile(const std::filesystem::path& path, std::string_view contents, mode_t mode) {
  std::error_code ignored;
  std::filesystem::remove(path, ignored);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return base::PermissionDenied(path.string() + ": cannot create: " + std::strerror(errno));
  size_t written = 0;
  while (written < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
    if (n <= 0) {
      ::close(fd);
      return base::DataLoss(path.string() + ": write failed");
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) return base::DataLoss(path.string() + ": write failed");
  return base::Status::Ok();
}

std::string RandomHex(size_t bytes) {
  Bytes random(bytes);
  RAND_bytes(random.data(), static_cast<int>(random.size()));
  return HexOf(random);
}

}  // namespace

Bytes Sha384(ByteView data) {
  Bytes digest(SHA384_DIGEST_LENGTH);
  SHA384(data.data(), data.size(), digest.data());
  return digest;
}

base::Result<DevCa> DevCa::Generate() {
  SC_ASSIGN_OR_RETURN(EcP384Key root_key, EcP384Key::Generate());
  auto now = std::chrono::system_clock::now();
  CertificateSpec spec{"Supercluster INSECURE DEV ROOT " + RandomHex(4), true,
                       now - std::chrono::hours(1), now + kRootLifetime};
  SC_ASSIGN_OR_RETURN(Bytes certificate, IssueCertificate(spec, root_key, nullptr, root_key));
  return DevCa(std::move(root_key), std::move(certificate));
}

base::Result<DevCa> DevCa::Init(const std::filesystem::path& dir, bool overwrite) {
  if (!overwrite) SC_RETURN_IF_ERROR(RefuseExistingCa(dir));
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) return base::PermissionDenied(dir.string() + ": cannot create: " + error.message());
  ::chmod(dir.c_str(), 0700);
  SC_ASSIGN_OR_RETURN(DevCa ca, Generate());
  SC_ASSIGN_OR_RETURN(std::string key_pem, ca.root_key_.PrivateKeyPem());
  base::Status wrote_key = WriteFile(dir / kRootKeyFile, key_pem, 0600);
  OPENSSL_cleanse(key_pem.data(), key_pem.size());
  SC_RETURN_IF_ERROR(wrote_key);
  SC_ASSIGN_OR_RETURN(std::string certificate_pem, CertificatePem(ca.root_certificate_));
  SC_RETURN_IF_ERROR(WriteFile(dir / kRootCertificateFile, certificate_pem, 0644));
  return ca;
}

base::Result<DevCa> DevCa::Load(const std::filesystem::path& dir) {
  SC_ASSIGN_OR_RETURN(std::string key_pem, ReadFile(dir / kRootKeyFile));
  auto key = EcP384Key::FromPrivateKeyPem(key_pem);
  OPENSSL_cleanse(key_pem.data(), key_pem.size());
  if (!key.ok()) return key.status().WithContext((dir / kRootKeyFile).string());
  SC_ASSIGN_OR_RETURN(std::string certificate_pem, ReadFile(dir / kRootCertificateFile));
  auto certificate = CertificateDer(AsByteView(certificate_pem));
  if (!certificate.ok()) return certificate.status().WithContext((dir / kRootCertificateFile).string());
  SC_ASSIGN_OR_RETURN(EcP384Key certificate_key, CertificatePublicKey(*certificate));
  if (*certificate_key.PublicKeyDer() != *key->PublicKeyDer()) {
    return base::DataLoss(dir.string() + ": root.key does not belong to root.pem");
  }
  return DevCa(std::move(*key), std::move(*certificate));
}

std::string DevCa::RootFingerprint() const { return CertificateFingerprintSha256(root_certificate_); }

base::Result<DevEnclaveIdentity> DevCa::IssueEnclaveIdentity(std::chrono::system_clock::time_point now,
                                                            std::chrono::seconds lifetime) const {
  SC_ASSIGN_OR_RETURN(EcP384Key leaf_key, EcP384Key::Generate());
  SC_ASSIGN_OR_RETURN(openssl::X509Ptr root, [&]() -> base::Result<openssl::X509Ptr> {
    const unsigned char* cursor = root_certificate_.data();
    openssl::X509Ptr parsed(d2i_X509(nullptr, &cursor, static_cast<long>(root_certificate_.size())));
    if (!parsed) return base::Internal("dev root certificate unreadable");
    return parsed;
  }());
  // Whole seconds: a certificate cannot say "valid from 12.345 s", and the document's
  // millisecond timestamp must not fall before notBefore.
  auto not_before = std::chrono::floor<std::chrono::seconds>(now);
  CertificateSpec spec{"INSECURE DEV ENCLAVE", false, not_before, not_before + lifetime};
  SC_ASSIGN_OR_RETURN(Bytes certificate, IssueCertificate(spec, leaf_key, root.get(), root_key_));
  return DevEnclaveIdentity{std::move(leaf_key), std::move(certificate), spec.not_after};
}

base::Result<DevMeasurements> DevMeasurements::Measure(const std::filesystem::path& enclave_binary,
                                                       ByteView configuration,
                                                       const std::filesystem::path& worker_binary) {
  SC_ASSIGN_OR_RETURN(std::string enclave, ReadFile(enclave_binary));
  SC_ASSIGN_OR_RETURN(std::string worker, ReadFile(worker_binary));
  return DevMeasurements{Sha384(AsByteView(enclave)), Sha384(configuration),
                         Sha384(AsByteView(worker))};
}

DevMeasurements DevMeasurements::Zero() {
  return DevMeasurements{Bytes(SHA384_DIGEST_LENGTH), Bytes(SHA384_DIGEST_LENGTH),
                         Bytes(SHA384_DIGEST_LENGTH)};
}

DevAttestor::DevAttestor(DevCa ca, DevMeasurements measurements, Clock clock)
    : ca_(std::move(ca)), clock_(std::move(clock)) {
  for (uint32_t index = 0; index < kPcrCount; ++index) pcrs_[index] = Bytes(SHA384_DIGEST_LENGTH);
  pcrs_[0] = std::move(measurements.pcr0);
  pcrs_[1] = std::move(measurements.pcr1);
  pcrs_[2] = std::move(measurements.pcr2);
  // Shaped like AWS's "i-<instance>-enc<enclave>", with the dev marker in front.
  module_id_ = std::string(kDevModuleIdPrefix) + "i-" + RandomHex(8) + "-enc" + RandomHex(8);
}

base::Result<Bytes> DevAttestor::Attest(const std::optional<Bytes>& user_data,
                                        const std::optional<Bytes>& nonce,
                                        const std::optional<Bytes>& public_key) {
  SC_RETURN_IF_ERROR(CheckAttestationRequest(user_data, nonce, public_key));
  auto now = clock_ ? clock_() : std::chrono::system_clock::now();
  std::lock_guard<std::mutex> lock(mutex_);
  if (!identity_ || identity_->not_after - now < kReissueWhenLeft ||
      now < identity_->not_after - kDevEnclaveCertificateLifetime) {
    SC_ASSIGN_OR_RETURN(DevEnclaveIdentity fresh, ca_.IssueEnclaveIdentity(now));
    identity_ = std::move(fresh);
  }
  AttestationDocument document;
  document.module_id = module_id_;
  document.timestamp_ms = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
  document.pcrs = pcrs_;
  document.certificate = identity_->certificate;
  document.cabundle = {ca_.root_certificate()};
  document.public_key = public_key;
  document.user_data = user_data;
  document.nonce = nonce;
  SC_ASSIGN_OR_RETURN(Bytes payload, EncodeAttestationDocument(document));
  return SignCoseSign1(payload, identity_->key);
}

}  // namespace supercluster::attest
