// X.509 helpers for attestation: reading a certificate given as PEM or DER, its SHA-256
// fingerprint, subject and public key. Used by the verifier (pinned roots, the leaf key),
// the dev CA and the CLI (`supercluster dev-ca init` prints the root fingerprint).
#pragma once

#include <string>

#include "attest/bytes.h"
#include "attest/ec_p384_key.h"
#include "base/status.h"

namespace supercluster::attest {

// `data` is one PEM certificate ("-----BEGIN CERTIFICATE-----") or DER; returns the DER
// after checking that OpenSSL parses it completely. kInvalidArgument otherwise.
base::Result<Bytes> CertificateDer(ByteView data);

// PEM text of a DER certificate.
base::Result<std::string> CertificatePem(ByteView der);

// "64:1A:03:..." (upper-case hex, colon separated), as `openssl x509 -fingerprint -sha256`.
std::string CertificateFingerprintSha256(ByteView der);

// One-line subject, e.g. "CN=aws.nitro-enclaves, C=US, O=Amazon, OU=AWS".
base::Result<std::string> CertificateSubject(ByteView der);

// The certificate's public key; fails unless it is P-384.
base::Result<EcP384Key> CertificatePublicKey(ByteView der);

}  // namespace supercluster::attest
