// Test-only: a throwaway certificate authority and the certificates the etcd TLS tests need,
// made with OpenSSL and written as PEM files: a server certificate for 127.0.0.1 (the test
// etcd's client URL), a client certificate for etcd's --client-cert-auth, and a second CA
// that signed nothing, for "wrong trust root" cases. Used by etcd_test_cluster and
// etcd_store_test.
#pragma once

#include <string>

#include "base/status.h"

namespace supercluster::store::testing {

struct TestCertificates {
  std::string ca_file;
  std::string server_certificate_file;
  std::string server_key_file;
  std::string client_certificate_file;
  std::string client_key_file;
  std::string unrelated_ca_file;
};

// Writes the files into `directory`, which must exist.
base::Result<TestCertificates> WriteTestCertificates(const std::string& directory);

}  // namespace supercluster::store::testing
