#include "store/etcd_test_certificates.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <memory>
#include <vector>

namespace supercluster::store::testing {

namespace {

struct KeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct CertificateDeleter {
  void operator()(X509* certificate) const { X509_free(certificate); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyDeleter>;
using Certificate = std::unique_ptr<X509, CertificateDeleter>;

// What distinguishes the certificates made here.
struct Profile {
  std::string common_name;
  std::vector<std::pair<int, std::string>> extensions;  // NID and OpenSSL config text
};

Profile CaProfile(const std::string& name) {
  return {name,
          {{NID_basic_constraints, "critical,CA:TRUE"},
           {NID_key_usage, "critical,keyCertSign,cRLSign"}}};
}

Profile ServerProfile() {
  return {"etcd test server",
          {{NID_basic_constraints, "critical,CA:FALSE"},
           {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
           // etcd's HTTP gateway presents the server certificate as a client certificate
           // to etcd's own gRPC port, which --client-cert-auth checks: it needs clientAuth.
           {NID_ext_key_usage, "serverAuth,clientAuth"},
           {NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost"}}};
}

Profile ClientProfile() {
  return {"etcd test client",
          {{NID_basic_constraints, "critical,CA:FALSE"},
           {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
           {NID_ext_key_usage, "clientAuth"}}};
}

Key MakeKey() { return Key(EVP_EC_gen("P-256")); }

// Signs a certificate for `key` with `issuer_key`; self-signed when `issuer` is null.
Certificate MakeCertificate(const Profile& profile, EVP_PKEY* key, X509* issuer,
                            EVP_PKEY* issuer_key) {
  static long serial = 1;
  Certificate certificate(X509_new());
  if (!certificate) return nullptr;
  X509* cert = certificate.get();
  X509_NAME* subject = X509_get_subject_name(cert);
  bool ok =
      X509_set_version(cert, X509_VERSION_3) == 1 &&
      ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++) == 1 &&
      X509_gmtime_adj(X509_getm_notBefore(cert), -3600) != nullptr &&
      X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600) != nullptr &&
      X509_set_pubkey(cert, key) == 1 &&
      X509_NAME_add_entry_by_txt(
          subject, "CN", MBSTRING_ASC,
          reinterpret_cast<const unsigned char*>(profile.common_name.c_str()), -1, -1, 0) == 1 &&
      X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : subject) == 1;
  if (!ok) return nullptr;
  X509V3_CTX context;
  X509V3_set_ctx(&context, issuer ? issuer : cert, cert, nullptr, nullptr, 0);
  for (const auto& [nid, value] : profile.extensions) {
    X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str());
    if (extension == nullptr) return nullptr;
    bool added = X509_add_ext(cert, extension, -1) == 1;
    X509_EXTENSION_free(extension);
    if (!added) return nullptr;
  }
  if (X509_sign(cert, issuer_key, EVP_sha256()) == 0) return nullptr;
  return certificate;
}

base::Status WritePem(const std::string& path, X509* certificate, EVP_PKEY* key) {
  FILE* file = std::fopen(path.c_str(), "w");
  if (file == nullptr) return base::Unavailable("cannot write " + path);
  bool ok = certificate
                ? PEM_write_X509(file, certificate) == 1
                : PEM_write_PrivateKey(file, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  ok = std::fclose(file) == 0 && ok;
  if (!ok) return base::Unavailable("cannot write PEM to " + path);
  return base::Status::Ok();
}

}  // namespace

base::Result<TestCertificates> WriteTestCertificates(const std::string& directory) {
  Key ca_key = MakeKey();
  Key server_key = MakeKey();
  Key client_key = MakeKey();
  Key unrelated_key = MakeKey();
  if (!ca_key || !server_key || !client_key || !unrelated_key) {
    return base::Internal("cannot make EC keys");
  }
  Certificate ca = MakeCertificate(CaProfile("etcd test CA"), ca_key.get(), nullptr, ca_key.get());
  if (!ca) return base::Internal("cannot make the test CA certificate");
  Certificate server = MakeCertificate(ServerProfile(), server_key.get(), ca.get(), ca_key.get());
  Certificate client = MakeCertificate(ClientProfile(), client_key.get(), ca.get(), ca_key.get());
  Certificate unrelated = MakeCertificate(CaProfile("unrelated test CA"), unrelated_key.get(),
                                          nullptr, unrelated_key.get());
  if (!server || !client || !unrelated) return base::Internal("cannot make the test certificates");

  TestCertificates files;
  files.ca_file = directory + "/ca.pem";
  files.server_certificate_file = directory + "/server.pem";
  files.server_key_file = directory + "/server-key.pem";
  files.client_certificate_file = directory + "/client.pem";
  files.client_key_file = directory + "/client-key.pem";
  files.unrelated_ca_file = directory + "/unrelated-ca.pem";
  SC_RETURN_IF_ERROR(WritePem(files.ca_file, ca.get(), nullptr));
  SC_RETURN_IF_ERROR(WritePem(files.server_certificate_file, server.get(), nullptr));
  SC_RETURN_IF_ERROR(WritePem(files.server_key_file, nullptr, server_key.get()));
  SC_RETURN_IF_ERROR(WritePem(files.client_certificate_file, client.get(), nullptr));
  SC_RETURN_IF_ERROR(WritePem(files.client_key_file, nullptr, client_key.get()));
  SC_RETURN_IF_ERROR(WritePem(files.unrelated_ca_file, unrelated.get(), nullptr));
  return files;
}

}  // namespace supercluster::store::testing
