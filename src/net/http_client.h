// HTTP/1.1 client for the CLI, tests and control-plane calls: blocking, one request at a
// time per HttpClient, keeping its connection alive between requests and reconnecting when
// the server closed it. Speaks TCP (optionally TLS, verifying the server by default) and
// Unix-domain sockets. Use one HttpClient per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/config.h"
#include "base/status.h"
#include "net/endpoint.h"
#include "net/http_message.h"
#include "net/tls.h"

namespace supercluster::net {

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{0};
  // Whole request, from sending the first byte to the last byte of the response.
  std::chrono::milliseconds request_timeout{0};
  size_t max_response_header_bytes = 0;
  uint64_t max_response_body_bytes = 0;  // for Request(); Stream() is unbounded
  TlsClientOptions tls;

  // Reads the client.* keys (see docs/configuration.md).
  static ClientOptions FromConfig(const base::Config& config);
};

// The status line and headers of a response.
struct ResponseHead {
  int status = 0;
  Headers headers;
};

class HttpClient {
 public:
  // `endpoint` is where to connect; TLS is used when options.tls.enabled or the endpoint
  // was given as https://.
  HttpClient(Endpoint endpoint, ClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends the request (Host and Content-Length are filled in) and reads the whole response.
  base::Result<HttpResponse> Request(const HttpRequest& request);

  // Sends the request and hands the body to `on_data` piece by piece as it arrives
  // (chunked or not); request_timeout bounds the wait for the head and for each piece,
  // not the whole stream. `on_data` returning false stops reading and closes the connection
  // (the server sees the client go away). Returns the head once the body has ended.
  base::Result<ResponseHead> Stream(const HttpRequest& request,
                                    const std::function<void(const ResponseHead&)>& on_head,
                                    const std::function<bool(std::string_view)>& on_data);

  // Drops the kept-alive connection, if any.
  void Close();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace supercluster::net
