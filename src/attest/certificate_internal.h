// OpenSSL-typed certificate parsing shared by certificate.cc, verifier.cc and
// dev_attestor.cc. Internal to src/attest.
#pragma once

#include "attest/bytes.h"
#include "attest/openssl_util.h"
#include "base/status.h"

namespace supercluster::attest {

// Parses exactly one DER certificate spanning all of `der`.
base::Result<openssl::X509Ptr> ParseCertificate(ByteView der);

}  // namespace supercluster::attest
