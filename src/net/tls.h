// TLS settings for the HTTP server and client (OpenSSL underneath). Certificate
// verification is on by default on the client; turning it off must be explicit.
#pragma once

#include <string>

namespace supercluster::net {

struct TlsServerOptions {
  bool enabled = false;
  std::string certificate_file;  // PEM chain, leaf first
  std::string private_key_file;  // PEM
  // When set, clients must present a certificate signed by this CA (mutual TLS).
  std::string client_ca_file;
};

struct TlsClientOptions {
  bool enabled = false;
  // PEM bundle of trusted roots; empty means the system's default trust store.
  std::string ca_file;
  // Verify the peer's certificate chain and that it names `server_name`.
  bool verify_peer = true;
  // Name to verify and send as SNI; empty means the endpoint's host.
  std::string server_name;
  // Optional client certificate for mutual TLS.
  std::string certificate_file;
  std::string private_key_file;
};

}  // namespace supercluster::net
