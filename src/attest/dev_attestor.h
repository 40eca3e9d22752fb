// The `dev` attestor: INSECURE software attestation for development and tests, producing
// documents in exactly the AWS Nitro format (nitro_document.h) so that one verifier serves
// both attestors. It proves nothing about the code that runs (whoever holds the dev root
// key can sign anything); verifiers pinned to the AWS root reject its documents
// (kUntrustedRoot), and verifiers pinned to a dev root report VerifiedAttestation::dev.
//
// - DevCa: a development root (self-signed P-384) kept in a directory: root.key (PKCS#8
//   PEM, mode 0600) and root.pem. `supercluster dev-ca init` creates it.
// - An enclave identity: a leaf P-384 key and a certificate issued by the dev root with
//   subject "CN=INSECURE DEV ENCLAVE", living a few hours like AWS's leaf certificates.
// - DevAttestor: documents with module_id "dev-...", digest SHA384, timestamp now,
//   PCR0..15 (48 bytes each): PCR0 = SHA-384 of the enclave binary, PCR1 = SHA-384 of its
//   configuration, PCR2 = SHA-384 of the worker binary, the rest zero; cabundle [dev root];
//   certificate the leaf; signed with the leaf key.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "attest/attestor.h"
#include "attest/ec_p384_key.h"

namespace supercluster::attest {

using Clock = std::function<std::chrono::system_clock::time_point()>;

inline constexpr std::chrono::hours kDevEnclaveCertificateLifetime{3};
inline constexpr const char* kDevModuleIdPrefix = "dev-";

struct DevEnclaveIdentity {
  EcP384Key key;            // private
  Bytes certificate;        // DER, issued by the dev root
  std::chrono::system_clock::time_point not_after;
};

class DevCa {
 public:
  // Creates a new root in `dir` (created 0700 if missing). kAlreadyExists if a CA is
  // already there, unless `overwrite`; the message says when that one is incomplete (a file
  // missing or empty).
  static base::Result<DevCa> Init(const std::filesystem::path& dir, bool overwrite = false);
  // Loads the root that Init() wrote.
  static base::Result<DevCa> Load(const std::filesystem::path& dir);
  // A root that lives only in memory (tests, fuzzing).
  static base::Result<DevCa> Generate();

  const Bytes& root_certificate() const { return root_certificate_; }  // DER
  std::string RootFingerprint() const;  // SHA-256, "AB:CD:..."

  // Issues a fresh leaf key and certificate valid from `now` for `lifetime`.
  base::Result<DevEnclaveIdentity> IssueEnclaveIdentity(
      std::chrono::system_clock::time_point now,
      std::chrono::seconds lifetime = kDevEnclaveCertificateLifetime) const;

 private:
  DevCa(EcP384Key root_key, Bytes root_certificate)
      : root_key_(std::move(root_key)), root_certificate_(std::move(root_certificate)) {}

  EcP384Key root_key_;
  Bytes root_certificate_;
};

// PCR0..2 of a dev enclave.
struct DevMeasurements {
  Bytes pcr0;  // SHA-384 of the enclave binary file
  Bytes pcr1;  // SHA-384 of the enclave's configuration bytes
  Bytes pcr2;  // SHA-384 of the worker binary file

  // Reads and hashes the two files; kNotFound / kDataLoss naming the file on failure.
  static base::Result<DevMeasurements> Measure(const std::filesystem::path& enclave_binary,
                                               ByteView configuration,
                                               const std::filesystem::path& worker_binary);
  // All three zero: what a debug-mode Nitro enclave reports.
  static DevMeasurements Zero();
};

// SHA-384 of `data` (48 bytes).
Bytes Sha384(ByteView data);

class DevAttestor final : public Attestor {
 public:
  // `clock` empty: the system clock. The leaf identity is issued on first use and reissued
  // when less than an hour of its life is left.
  DevAttestor(DevCa ca, DevMeasurements measurements, Clock clock = {});

  base::Result<Bytes> Attest(const std::optional<Bytes>& user_data,
                             const std::optional<Bytes>& nonce,
                             const std::optional<Bytes>& public_key) override;
  std::string_view Kind() const override { return "dev"; }

  const std::string& module_id() const { return module_id_; }
  // The PCRs every document carries (0..15).
  const std::map<uint32_t, Bytes>& pcrs() const { return pcrs_; }

 private:
  DevCa ca_;
  std::map<uint32_t, Bytes> pcrs_;
  Clock clock_;
  std::string module_id_;
  std::mutex mutex_;
  std::optional<DevEnclaveIdentity> identity_;  // guarded by mutex_
};

}  // namespace supercluster::attest
