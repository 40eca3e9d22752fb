// Tests HTTPS between HttpServer and HttpClient: certificate verification against a chosen
// CA (trusted, untrusted, turned off), host-name and IP checks, a plain-HTTP peer on the
// TLS port, server key/certificate loading errors, and mutual TLS. The certificates are
// made here with the OpenSSL API: a throwaway CA, a second CA nobody trusts, and leaf
// certificates for "localhost" and 127.0.0.1.
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "base/config.h"
#include "net/endpoint.h"
#include "net/http_client.h"
#include "net/http_server.h"

namespace supercluster::net {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

// --- Making keys and certificates ---

struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct CertFree {
  void operator()(X509* cert) const { X509_free(cert); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;
using CertPtr = std::unique_ptr<X509, CertFree>;

struct CertSpec {
  std::string common_name;
  bool is_ca = false;
  std::string subject_alt_names;  // "DNS:localhost,IP:127.0.0.1", or "" for none
  std::string extended_key_usage;  // "serverAuth", "clientAuth", or "" for none
  long valid_from_seconds = -3600;  // relative to now
  long valid_to_seconds = 24 * 3600;
};

bool AddExtension(X509* cert, X509V3_CTX* context, int nid, const std::string& value) {
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, context, nid, value.c_str());
  if (extension == nullptr) return false;
  bool added = X509_add_ext(cert, extension, -1) == 1;
  X509_EXTENSION_free(extension);
  return added;
}

// A certificate for `key`, signed by issuer/issuer_key, or self-signed when issuer is null.
CertPtr MakeCertificate(const CertSpec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
  static long serial = 1;
  CertPtr cert(X509_new());
  if (!cert) return nullptr;
  X509_NAME* subject = X509_get_subject_name(cert.get());
  bool ok = X509_set_version(cert.get(), X509_VERSION_3) == 1 &&
            ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++) == 1 &&
            X509_gmtime_adj(X509_getm_notBefore(cert.get()), spec.valid_from_seconds) != nullptr &&
            X509_gmtime_adj(X509_getm_notAfter(cert.get()), spec.valid_to_seconds) != nullptr &&
            X509_set_pubkey(cert.get(), key) == 1 &&
            X509_NAME_add_entry_by_txt(
                subject, "CN", MBSTRING_ASC,
                reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1, -1, 0) == 1 &&
            X509_set_issuer_name(cert.get(),
                                 issuer ? X509_get_subject_name(issuer) : subject) == 1;
  if (!ok) return nullptr;
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, issuer ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
  ok = AddExtension(cert.get(), &context, NID_basic_constraints,
                    spec.is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE") &&
       AddExtension(cert.get(), &context, NID_key_usage,
                    spec.is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature") &&
       AddExtension(cert.get(), &context, NID_subject_key_identifier, "hash");
  if (ok && !spec.subject_alt_names.empty()) {
    ok = AddExtension(cert.get(), &context, NID_subject_alt_name, spec.subject_alt_names);
  }
  if (ok && !spec.extended_key_usage.empty()) {
    ok = AddExtension(cert.get(), &context, NID_ext_key_usage, spec.extended_key_usage);
  }
  if (!ok) return nullptr;
  if (X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256()) <= 0) return nullptr;
  return cert;
}

bool WriteCertificate(const fs::path& path, X509* cert) {
  BIO* bio = BIO_new_file(path.c_str(), "w");
  if (bio == nullptr) return false;
  bool ok = PEM_write_bio_X509(bio, cert) == 1;
  BIO_free(bio);
  return ok;
}

bool WriteKey(const fs::path& path, EVP_PKEY* key) {
  BIO* bio = BIO_new_file(path.c_str(), "w");
  if (bio == nullptr) return false;
  bool ok = PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  BIO_free(bio);
  return ok;
}

// The PEM files every test uses, made once for the suite in a fresh temporary directory.
struct TestPki {
  fs::path dir;
  std::string ca_cert;           // the CA the tests trust
  std::string other_ca_cert;     // a CA nobody trusts
  std::string server_cert;       // localhost + 127.0.0.1, signed by the CA
  std::string server_key;
  std::string other_server_cert; // localhost + 127.0.0.1, signed by the other CA
  std::string other_server_key;
  std::string expired_cert;      // localhost + 127.0.0.1, signed by the CA, expired
  std::string expired_key;
  std::string client_cert;       // for mutual TLS, signed by the CA
  std::string client_key;
  std::string other_client_cert; // signed by the other CA
  std::string other_client_key;
  std::string unrelated_key;     // matches no certificate
};

// Makes a key and a certificate signed by issuer (self-signed when null) and writes both.
bool MakePair(const fs::path& dir, const std::string& name, const CertSpec& spec, X509* issuer,
              EVP_PKEY* issuer_key, KeyPtr* key_out, CertPtr* cert_out, std::string* cert_path,
              std::string* key_path) {
  KeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return false;
  CertPtr cert = MakeCertificate(spec, key.get(), issuer, issuer_key);
  if (!cert) return false;
  *cert_path = (dir / (name + ".crt")).string();
  *key_path = (dir / (name + ".key")).string();
  if (!WriteCertificate(*cert_path, cert.get()) || !WriteKey(*key_path, key.get())) return false;
  if (key_out) *key_out = std::move(key);
  if (cert_out) *cert_out = std::move(cert);
  return true;
}

bool MakeTestPki(TestPki* pki) {
  std::string pattern = (fs::temp_directory_path() / "net_tls_test.XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) return false;
  pki->dir = pattern;
  const std::string kServerNames = "DNS:localhost,IP:127.0.0.1";

  CertSpec ca_spec{.common_name = "Test CA",
                   .is_ca = true,
                   .subject_alt_names = "",
                   .extended_key_usage = ""};
  CertSpec other_ca_spec = ca_spec;
  other_ca_spec.common_name = "Other CA";
  KeyPtr ca_key, other_ca_key;
  CertPtr ca, other_ca;
  std::string unused;
  if (!MakePair(pki->dir, "ca", ca_spec, nullptr, nullptr,
                &ca_key, &ca, &pki->ca_cert, &unused) ||
      !MakePair(pki->dir, "other-ca", other_ca_spec, nullptr,
                nullptr, &other_ca_key, &other_ca, &pki->other_ca_cert, &unused)) {
    return false;
  }
  CertSpec server{.common_name = "localhost",
                  .subject_alt_names = kServerNames,
                  .extended_key_usage = "serverAuth"};
  CertSpec expired = server;
  expired.valid_from_seconds = -2 * 24 * 3600;
  expired.valid_to_seconds = -24 * 3600;
  CertSpec client{.common_name = "test client",
                  .subject_alt_names = "",
                  .extended_key_usage = "clientAuth"};
  return MakePair(pki->dir, "server", server, ca.get(), ca_key.get(), nullptr, nullptr,
                  &pki->server_cert, &pki->server_key) &&
         MakePair(pki->dir, "other-server", server, other_ca.get(), other_ca_key.get(), nullptr,
                  nullptr, &pki->other_server_cert, &pki->other_server_key) &&
         MakePair(pki->dir, "expired", expired, ca.get(), ca_key.get(), nullptr, nullptr,
                  &pki->expired_cert, &pki->expired_key) &&
         MakePair(pki->dir, "client", client, ca.get(), ca_key.get(), nullptr, nullptr,
                  &pki->client_cert, &pki->client_key) &&
         MakePair(pki->dir, "other-client", client, other_ca.get(), other_ca_key.get(), nullptr,
                  nullptr, &pki->other_client_cert, &pki->other_client_key) &&
         MakePair(pki->dir, "unrelated", client, ca.get(), ca_key.get(), nullptr, nullptr,
                  &unused, &pki->unrelated_key);
}

// --- Server and client ---

constexpr std::string_view kBody = "hello over tls\n";

std::shared_ptr<const HttpRouter> HelloRouter() {
  auto router = std::make_shared<HttpRouter>();
  router->Handle("GET", "/hello", [](HttpRequest, std::shared_ptr<Responder> responder) {
    responder->Send(HttpResponse::Text(200, std::string(kBody)));
  });
  return router;
}

ServerOptions TlsServerOptionsWith(const std::string& cert, const std::string& key) {
  ServerOptions options = ServerOptions::FromConfig(base::Config::Defaults());
  options.io_threads = 1;
  options.tls.enabled = true;
  options.tls.certificate_file = cert;
  options.tls.private_key_file = key;
  return options;
}

ClientOptions TlsClientOptionsTrusting(const std::string& ca_file) {
  ClientOptions options = ClientOptions::FromConfig(base::Config::Defaults());
  options.connect_timeout = std::chrono::seconds(5);
  options.request_timeout = std::chrono::seconds(5);
  options.tls.enabled = true;
  options.tls.ca_file = ca_file;
  return options;
}

HttpRequest GetHello() {
  HttpRequest request;
  request.target = "/hello";
  return request;
}

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new TestPki;
    pki_ok_ = MakeTestPki(pki_);
  }
  static void TearDownTestSuite() {
    std::error_code ignored;
    if (!pki_->dir.empty()) fs::remove_all(pki_->dir, ignored);
    delete pki_;
    pki_ = nullptr;
  }

  void SetUp() override { ASSERT_TRUE(pki_ok_) << "could not make the test certificates"; }

  void TearDown() override {
    if (server_) server_->Stop();
  }

  const TestPki& pki() const { return *pki_; }

  // Starts a server on 127.0.0.1 with a free port.
  void StartServer(ServerOptions options) {
    server_ = std::make_unique<HttpServer>(std::move(options), HelloRouter());
    auto listening = server_->Listen(*ParseEndpoint("127.0.0.1:0"));
    ASSERT_TRUE(listening.ok()) << listening.ToString();
    auto started = server_->Start();
    ASSERT_TRUE(started.ok()) << started.ToString();
    port_ = server_->BoundEndpoints().at(0).port;
  }

  Endpoint ServerEndpoint() const { return *ParseEndpoint("127.0.0.1:" + std::to_string(port_)); }

  base::Result<HttpResponse> GetHelloWith(ClientOptions options) {
    HttpClient client(ServerEndpoint(), std::move(options));
    return client.Request(GetHello());
  }

  void ExpectHello(const base::Result<HttpResponse>& response) {
    ASSERT_TRUE(response.ok()) << response.status().ToString();
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body, kBody);
  }

  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;

 private:
  static inline TestPki* pki_ = nullptr;
  static inline bool pki_ok_ = false;
};

TEST_F(TlsTest, ClientTrustingTheCaGetsTheResponse) {
  StartServer(TlsServerOptionsWith(pki().server_cert, pki().server_key));
  // No server_name: the client checks the address it dialed against the IP SAN.
  ExpectHello(GetHelloWith(TlsClientOptionsTrusting(pki().ca_cert)));
}

TEST_F(TlsTest, ServerNameIsCheckedAgainstTheDnsSan) {
  StartServer(TlsServerOptionsWith(pki().server_cert, pki().server_key));
  ClientOptions options = TlsClientOptionsTrusting(pki().ca_cert);
  options.tls.server_name = "localhost";
  ExpectHello(GetHelloWith(options));
}

TEST_F(TlsTest, HttpsEndpointTurnsTlsOn) {
  StartServer(TlsServerOptionsWith(pki().server_cert, pki().server_key));
  ClientOptions options = TlsClientOptionsTrusting(pki().ca_cert);
  options.tls.enabled = false;
  HttpClient client(*ParseEndpoint("https://127.0.0.1:" + std::to_string(port_)), options);
  ExpectHello(client.Request(GetHello()));
}

TEST_F(TlsTest, ClientKeepsItsTlsConnectionAcrossRequests) {
  StartServer(TlsServerOptionsWith(pki().server_cert, pki().server_key));
  HttpClient client(ServerEndpoint(), TlsClientOptionsTrusting(pki().ca_cert));
  ExpectHello(client.Request(GetHello()));
  EXPECT_EQ(server_->ConnectionCount(), 1u);
  ExpectHello(client.Request(GetHello()));
  EXPECT_EQ(server_->ConnectionCount(), 1u);
}

// A polling server with several io threads (an io_context each, connections handed out in
// turn) serves TLS clients, each keeping its connection.
TEST_F(TlsTest, PollingServerWithSeveralIoThreadsServesTls) {
  ServerOptions options = TlsServerOptionsWith(pki().server_cert, pki().server_key);
  options.io_threads = 3;
  options.busy_poll = std::chrono::microseconds(50);
  StartServer(options);
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (int c = 0; c < 4; ++c) {
    clients.push_back(
        std::make_unique<HttpClient>(ServerEndpoint(), TlsClientOptionsTrusting(pki().ca_cert)));
  }
  for (int round = 0; round < 3; ++round) {
    for (auto& client : clients) ExpectHello(client->Request(GetHello()));
  }
  EXPECT_EQ(server_->ConnectionCount(), clients.size());
}

TEST_F(TlsTest, CertificateFromAnUntrustedCaIsRefused) {
  StartServer(TlsServerOptionsWith(pki().other_server_cert, pki().other_server_key));
  auto response = GetHelloWith(TlsClientOptionsTrusting(pki().ca_cert));
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), base::StatusCode::kUnavailable);
  EXPECT_THAT(response.status().message(), HasSubstr("TLS handshake"));
  EXPECT_THAT(response.status().message(), HasSubstr("certificate verify failed"));
}

TEST_F(TlsTest, ClientTrustingOnlyTheOtherCaRefusesTheServer) {
  StartServer(TlsServerOptionsWith(pki().server_cert, pki().server_key));
  auto response = GetHelloWith(TlsClientOptionsTrusting(pki().other_ca_cert));
  ASSERT_FALSE(response.ok());
  EXPECT_THAT(response.status().message(), HasSubstr("certificate verify failed"));
}

TEST_F(TlsTest, ExpiredCertificateIsRefused) {
  StartServer(TlsServerOptionsWith(pki().expired_cert, pki().expired_key));
  auto response = GetHelloWith(TlsClientOptionsTrusting(pki().ca_cert));
  ASSERT_FALSE(response.ok());
  EXPECT_THAT(response.status().message(), HasSubstr("certificate verify failed"));
}

TEST_F(TlsTest, VerifyPeerOffAcceptsAnUntrustedServer) {
  StartServer(TlsServerOptionsWith(pki().other_server_cert, pki().other_server_key));
  ClientOptions options = TlsClientOptionsTrusting(pki().ca_cert);
  options.tls.verify_peer = false;
  ExpectHello(GetHelloWith(options));
}

TEST_F(TlsTest, WrongServerNameFailsHostNameVerification) {
  StartServer(TlsServerOptionsWith(pki().server_cert, pki().server_key));
  ClientOptions options = TlsClientOptionsTrusting(pki().ca_cert);
  options.tls.server_name = "wrong.example";
  auto response = GetHelloWith(options);
  ASSERT_FALSE(response.ok());
  EXPECT_THAT(response.status().message(), HasSubstr("TLS handshake"));
  EXPECT_THAT(response.status().message(), HasSubstr("certificate verify failed"));
}

TEST_F(TlsTest, PlainHttpClientOnTheTlsPortFailsAndServerKeepsServing) {
  StartServer(TlsServerOptionsWith(pki().server_cert, pki().server_key));
  ClientOptions plain = ClientOptions::FromConfig(base::Config::Defaults());
  plain.connect_timeout = std::chrono::seconds(5);
  plain.request_timeout = std::chrono::seconds(5);
  auto started = std::chrono::steady_clock::now();
  auto response = GetHelloWith(plain);
  ASSERT_FALSE(response.ok()) << "status " << response->status;
  EXPECT_EQ(response.status().code(), base::StatusCode::kUnavailable);
  // The server hangs up at once; the client must not sit out its timeout.
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(4));
  ExpectHello(GetHelloWith(TlsClientOptionsTrusting(pki().ca_cert)));
}

TEST_F(TlsTest, TlsClientAgainstPlainServerFailsTheHandshake) {
  StartServer(ServerOptions::FromConfig(base::Config::Defaults()));
  // The plain server waits for a CRLF CRLF that a ClientHello never has, so it is the
  // client's handshake timeout that ends this; keep it short.
  ClientOptions options = TlsClientOptionsTrusting(pki().ca_cert);
  options.connect_timeout = std::chrono::milliseconds(300);
  auto response = GetHelloWith(options);
  ASSERT_FALSE(response.ok());
  EXPECT_THAT(response.status().message(), HasSubstr("TLS handshake"));
}

TEST_F(TlsTest, ServerKeyNotMatchingTheCertificateFailsListenNamingTheKey) {
  HttpServer server(TlsServerOptionsWith(pki().server_cert, pki().unrelated_key), HelloRouter());
  base::Status status = server.Listen(*ParseEndpoint("127.0.0.1:0"));
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), base::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr(pki().unrelated_key));
  EXPECT_TRUE(server.BoundEndpoints().empty());
}

TEST_F(TlsTest, MissingCertificateFileFailsListenNamingTheFile) {
  std::string missing = (pki().dir / "no-such.crt").string();
  HttpServer server(TlsServerOptionsWith(missing, pki().server_key), HelloRouter());
  base::Status status = server.Listen(*ParseEndpoint("127.0.0.1:0"));
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr(missing));
}

TEST_F(TlsTest, KeyFileThatIsNotAKeyFailsListenNamingTheFile) {
  // A certificate where the key should be.
  HttpServer server(TlsServerOptionsWith(pki().server_cert, pki().ca_cert), HelloRouter());
  base::Status status = server.Listen(*ParseEndpoint("127.0.0.1:0"));
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr(pki().ca_cert));
}

TEST_F(TlsTest, TlsWithoutAKeyFileFailsListen) {
  HttpServer server(TlsServerOptionsWith(pki().server_cert, ""), HelloRouter());
  base::Status status = server.Listen(*ParseEndpoint("127.0.0.1:0"));
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("private_key_file"));
}

TEST_F(TlsTest, MissingClientCaFileFailsRequestNamingTheFile) {
  StartServer(TlsServerOptionsWith(pki().server_cert, pki().server_key));
  std::string missing = (pki().dir / "no-such-ca.pem").string();
  auto response = GetHelloWith(TlsClientOptionsTrusting(missing));
  ASSERT_FALSE(response.ok());
  EXPECT_THAT(response.status().message(), HasSubstr(missing));
}

TEST_F(TlsTest, ClientKeyNotMatchingItsCertificateFailsNamingTheKey) {
  StartServer(TlsServerOptionsWith(pki().server_cert, pki().server_key));
  ClientOptions options = TlsClientOptionsTrusting(pki().ca_cert);
  options.tls.certificate_file = pki().client_cert;
  options.tls.private_key_file = pki().unrelated_key;
  auto response = GetHelloWith(options);
  ASSERT_FALSE(response.ok());
  EXPECT_THAT(response.status().message(), HasSubstr(pki().unrelated_key));
}

// --- Mutual TLS ---

class TlsMutualTest : public TlsTest {
 protected:
  void SetUp() override {
    TlsTest::SetUp();
    if (HasFatalFailure()) return;
    ServerOptions options = TlsServerOptionsWith(pki().server_cert, pki().server_key);
    options.tls.client_ca_file = pki().ca_cert;
    StartServer(options);
  }

  ClientOptions WithClientCertificate(const std::string& cert, const std::string& key) {
    ClientOptions options = TlsClientOptionsTrusting(pki().ca_cert);
    options.tls.certificate_file = cert;
    options.tls.private_key_file = key;
    return options;
  }
};

TEST_F(TlsMutualTest, ClientWithoutCertificateIsRefused) {
  auto response = GetHelloWith(TlsClientOptionsTrusting(pki().ca_cert));
  ASSERT_FALSE(response.ok()) << "status " << response->status;
  // With TLS 1.3 the server checks the client after the client's handshake is done, so
  // the refusal arrives as an alert when the client reads the response.
  EXPECT_THAT(response.status().message(), HasSubstr("certificate required"));
}

TEST_F(TlsMutualTest, ClientWithCertificateFromTheClientCaIsServed) {
  ExpectHello(GetHelloWith(WithClientCertificate(pki().client_cert, pki().client_key)));
}

TEST_F(TlsMutualTest, ClientWithCertificateFromAnotherCaIsRefused) {
  auto response =
      GetHelloWith(WithClientCertificate(pki().other_client_cert, pki().other_client_key));
  ASSERT_FALSE(response.ok()) << "status " << response->status;
  EXPECT_THAT(response.status().message(), HasSubstr("unknown ca"));
}

TEST_F(TlsMutualTest, RefusedClientsDoNotStopTheServer) {
  EXPECT_FALSE(GetHelloWith(TlsClientOptionsTrusting(pki().ca_cert)).ok());
  EXPECT_FALSE(
      GetHelloWith(WithClientCertificate(pki().other_client_cert, pki().other_client_key)).ok());
  ExpectHello(GetHelloWith(WithClientCertificate(pki().client_cert, pki().client_key)));
}

TEST_F(TlsTest, MissingClientCaFileOnTheServerFailsListen) {
  ServerOptions options = TlsServerOptionsWith(pki().server_cert, pki().server_key);
  std::string missing = (pki().dir / "no-such-client-ca.pem").string();
  options.tls.client_ca_file = missing;
  HttpServer server(options, HelloRouter());
  base::Status status = server.Listen(*ParseEndpoint("127.0.0.1:0"));
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr(missing));
}

}  // namespace
}  // namespace supercluster::net
