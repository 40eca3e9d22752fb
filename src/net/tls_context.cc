#include "net/tls_context.h"

#include <openssl/ssl.h>

namespace supercluster::net::internal {

namespace ssl = boost::asio::ssl;

namespace {

base::Status LoadError(const std::string& what, const std::string& file,
                       const boost::system::error_code& error) {
  return base::InvalidArgument("TLS: cannot load " + what + " '" + file + "': " + error.message());
}

std::shared_ptr<ssl::context> NewContext(ssl::context::method method) {
  auto context = std::make_shared<ssl::context>(method);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                       ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  return context;
}

}  // namespace

base::Result<std::shared_ptr<ssl::context>> MakeServerTlsContext(const TlsServerOptions& options) {
  if (options.certificate_file.empty() || options.private_key_file.empty()) {
    return base::InvalidArgument(
        "TLS: the server needs both server.tls.certificate_file and server.tls.private_key_file");
  }
  auto context = NewContext(ssl::context::tls_server);
  boost::system::error_code error;
  context->use_certificate_chain_file(options.certificate_file, error);
  if (error) return LoadError("certificate chain", options.certificate_file, error);
  context->use_private_key_file(options.private_key_file, ssl::context::pem, error);
  if (error) return LoadError("private key", options.private_key_file, error);
  if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
    return base::InvalidArgument("TLS: private key '" + options.private_key_file +
                                 "' does not match certificate '" + options.certificate_file +
                                 "'");
  }
  if (!options.client_ca_file.empty()) {
    context->load_verify_file(options.client_ca_file, error);
    if (error) return LoadError("client CA", options.client_ca_file, error);
    context->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  }
  return context;
}

base::Result<std::shared_ptr<ssl::context>> MakeClientTlsContext(const TlsClientOptions& options) {
  auto context = NewContext(ssl::context::tls_client);
  boost::system::error_code error;
  if (options.ca_file.empty()) {
    context->set_default_verify_paths(error);
    if (error) return base::InvalidArgument("TLS: cannot load the system trust store: " + error.message());
  } else {
    context->load_verify_file(options.ca_file, error);
    if (error) return LoadError("CA bundle", options.ca_file, error);
  }
  context->set_verify_mode(options.verify_peer ? ssl::verify_peer : ssl::verify_none);
  if (!options.certificate_file.empty()) {
    context->use_certificate_chain_file(options.certificate_file, error);
    if (error) return LoadError("client certificate", options.certificate_file, error);
    context->use_private_key_file(options.private_key_file, ssl::context::pem, error);
    if (error) return LoadError("client private key", options.private_key_file, error);
  }
  return context;
}

}  // namespace supercluster::net::internal
