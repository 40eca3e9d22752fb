// The blocking HTTP/1.1 client: each call runs Beast's asynchronous operations on a
// private io_context until they finish, which gives every step a real timeout.
#include "net/http_client.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>

#include "net/socket_address.h"
#include "net/tls_context.h"

namespace supercluster::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using internal::Protocol;
using PlainStream = beast::basic_stream<Protocol>;
using TlsStream = beast::ssl_stream<PlainStream>;

ClientOptions ClientOptions::FromConfig(const base::Config& config) {
  ClientOptions options;
  options.connect_timeout = config.GetDuration("client.connect_timeout");
  options.request_timeout = config.GetDuration("client.request_timeout");
  options.max_response_header_bytes =
      static_cast<size_t>(config.GetInt("client.max_response_header_bytes"));
  options.max_response_body_bytes =
      static_cast<uint64_t>(config.GetInt("client.max_response_body_bytes"));
  options.tls.ca_file = config.GetString("client.tls.ca_file");
  options.tls.verify_peer = config.GetBool("client.tls.verify_peer");
  return options;
}

namespace {

http::request<http::string_body> ToBeastRequest(const HttpRequest& request,
                                                const std::string& host) {
  http::request<http::string_body> message;
  message.method_string(request.method);
  message.target(request.target);
  message.version(11);
  for (auto [name, value] : request.headers) message.insert(name, value);
  if (!request.headers.Has("Host")) message.set(http::field::host, host);
  message.body() = request.body;
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT") {
    message.prepare_payload();
  }
  message.keep_alive(true);
  return message;
}

Headers ToHeaders(const http::fields& fields) {
  Headers headers;
  for (const auto& field : fields) {
    headers.Add(std::string_view(field.name_string()), std::string_view(field.value()));
  }
  return headers;
}

}  // namespace

class HttpClient::Impl {
 public:
  Impl(Endpoint endpoint, ClientOptions options)
      : endpoint_(std::move(endpoint)), options_(std::move(options)) {
    if (endpoint_.tls) options_.tls.enabled = true;
    // Beast reads at most the buffer's free capacity per read (at least 512 bytes); left
    // at its first small allocation, a streamed body costs a syscall per ~1 kB.
    buffer_.reserve(64 * 1024);
  }

  ~Impl() { Close(); }

  base::Result<HttpResponse> Request(const HttpRequest& request) {
    HttpResponse response;
    auto on_head = [&](const ResponseHead& head) {
      response.status = head.status;
      response.headers = head.headers;
    };
    auto on_data = [&](std::string_view data) {
      response.body.append(data);
      return true;
    };
    SC_ASSIGN_OR_RETURN(ResponseHead head,
                        Exchange(request, on_head, on_data, options_.max_response_body_bytes));
    (void)head;
    return response;
  }

  base::Result<ResponseHead> Stream(const HttpRequest& request,
                                    const std::function<void(const ResponseHead&)>& on_head,
                                    const std::function<bool(std::string_view)>& on_data) {
    return Exchange(request, on_head, on_data, std::nullopt);
  }

  void Close() {
    if (plain_) {
      boost::system::error_code ignored;
      plain_->socket().close(ignored);
    }
    if (tls_) {
      boost::system::error_code ignored;
      beast::get_lowest_layer(*tls_).socket().close(ignored);
    }
    plain_.reset();
    tls_.reset();
    // Bytes read ahead from the old connection belong to it, not to the next one.
    buffer_.consume(buffer_.size());
  }

 private:
  bool connected() const { return plain_.has_value() || tls_.has_value(); }

  std::string HostHeader() const {
    if (endpoint_.kind != Endpoint::Kind::kTcp) return "localhost";
    std::string host = endpoint_.host.find(':') != std::string::npos ? "[" + endpoint_.host + "]"
                                                                      : endpoint_.host;
    return host + ":" + std::to_string(endpoint_.port);
  }

  PlainStream& Lowest() { return tls_ ? beast::get_lowest_layer(*tls_) : *plain_; }

  // Runs the io_context until the pending operation completes.
  void RunPending() {
    io_context_.restart();
    io_context_.run();
  }

  base::Status Connect() {
    Close();
    if (options_.tls.enabled && !tls_context_) {
      SC_ASSIGN_OR_RETURN(tls_context_, internal::MakeClientTlsContext(options_.tls));
    }
    SC_ASSIGN_OR_RETURN(auto addresses, internal::ResolveEndpoint(endpoint_));
    boost::system::error_code error;
    for (const auto& address : addresses) {
      PlainStream stream(io_context_);
      stream.expires_after(options_.connect_timeout);
      stream.async_connect(address, [&](boost::system::error_code result) { error = result; });
      RunPending();
      if (error) continue;
      if (internal::IsTcp(address)) {
        int one = 1;
        ::setsockopt(stream.socket().native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      }
      if (!options_.tls.enabled) {
        plain_.emplace(std::move(stream));
        return base::Status::Ok();
      }
      return Handshake(std::move(stream));
    }
    if (error == beast::error::timeout) {
      return base::DeadlineExceeded("connecting to " + endpoint_.ToString() + ": no answer within " +
                                    std::to_string(options_.connect_timeout.count()) + " ms");
    }
    return base::Unavailable("cannot connect to " + endpoint_.ToString() + ": " + error.message());
  }

  base::Status Handshake(PlainStream stream) {
    tls_.emplace(std::move(stream), *tls_context_);
    std::string name = options_.tls.server_name.empty() ? endpoint_.host : options_.tls.server_name;
    if (!SSL_set_tlsext_host_name(tls_->native_handle(), name.c_str())) {
      return base::InvalidArgument("TLS: invalid server name '" + name + "'");
    }
    if (options_.tls.verify_peer) {
      tls_->set_verify_callback(ssl::host_name_verification(name));
    }
    boost::system::error_code error;
    beast::get_lowest_layer(*tls_).expires_after(options_.connect_timeout);
    tls_->async_handshake(ssl::stream_base::client,
                          [&](boost::system::error_code result) { error = result; });
    RunPending();
    if (error) {
      std::string detail = error.message();
      tls_.reset();
      return base::Unavailable("TLS handshake with " + endpoint_.ToString() + " failed: " + detail);
    }
    return base::Status::Ok();
  }

  template <class Operation>
  boost::system::error_code RunOnStream(Operation operation) {
    boost::system::error_code error;
    auto done = [&](boost::system::error_code result, size_t) { error = result; };
    if (tls_) {
      operation(*tls_, done);
    } else {
      operation(*plain_, done);
    }
    RunPending();
    return error;
  }

  base::Status Describe(const boost::system::error_code& error, const char* step) {
    std::string where = std::string(step) + " " + endpoint_.ToString();
    if (error == beast::error::timeout) {
      return base::DeadlineExceeded(where + ": timed out after " +
                                    std::to_string(options_.request_timeout.count()) + " ms");
    }
    if (error == http::error::header_limit || error == http::error::body_limit) {
      return base::ResourceExhausted(where + ": response over the client's limit (" +
                                     error.message() + ")");
    }
    return base::Unavailable(where + ": " + error.message());
  }

  base::Result<ResponseHead> Exchange(const HttpRequest& request,
                                      const std::function<void(const ResponseHead&)>& on_head,
                                      const std::function<bool(std::string_view)>& on_data,
                                      std::optional<uint64_t> body_limit) {
    // A kept-alive connection may have been closed by the server while idle; when the
    // first attempt on a reused connection fails before any response byte, reconnect once.
    bool reused = connected();
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!connected()) SC_RETURN_IF_ERROR(Connect());
      bool received_anything = false;
      auto result = ExchangeOnce(request, on_head, on_data, body_limit, &received_anything);
      if (result.ok() || !reused || received_anything || attempt == 1) {
        if (!result.ok()) Close();
        return result;
      }
      Close();
      reused = false;
    }
    return base::Internal("unreachable");
  }

  base::Result<ResponseHead> ExchangeOnce(const HttpRequest& request,
                                          const std::function<void(const ResponseHead&)>& on_head,
                                          const std::function<bool(std::string_view)>& on_data,
                                          std::optional<uint64_t> body_limit,
                                          bool* received_anything) {
    auto message = ToBeastRequest(request, HostHeader());
    Lowest().expires_after(options_.request_timeout);
    auto error = RunOnStream([&](auto& stream, auto done) { http::async_write(stream, message, done); });
    if (error) return Describe(error, "sending to");

    http::response_parser<http::buffer_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options_.max_response_header_bytes));
    parser.body_limit(body_limit ? *body_limit : std::numeric_limits<std::uint64_t>::max());
    if (request.method == "HEAD") parser.skip(true);
    Lowest().expires_after(options_.request_timeout);
    error = RunOnStream([&](auto& stream, auto done) {
      http::async_read_header(stream, buffer_, parser, done);
    });
    if (error) return Describe(error, "reading from");
    *received_anything = true;

    ResponseHead head;
    head.status = static_cast<int>(parser.get().result_int());
    head.headers = ToHeaders(parser.get().base());
    if (on_head) on_head(head);

    char chunk[16384];
    while (!parser.is_done()) {
      parser.get().body().data = chunk;
      parser.get().body().size = sizeof(chunk);
      // For a stream, request_timeout bounds the wait for each piece, not the whole body.
      if (!body_limit) Lowest().expires_after(options_.request_timeout);
      error = RunOnStream([&](auto& stream, auto done) {
        http::async_read_some(stream, buffer_, parser, done);
      });
      if (error == http::error::need_buffer) error = {};
      if (error) return Describe(error, "reading from");
      size_t got = sizeof(chunk) - parser.get().body().size;
      if (got > 0 && on_data && !on_data(std::string_view(chunk, got))) {
        Close();
        return head;
      }
    }
    if (!parser.get().keep_alive()) Close();
    return head;
  }

  Endpoint endpoint_;
  ClientOptions options_;
  asio::io_context io_context_;
  std::shared_ptr<ssl::context> tls_context_;
  std::optional<PlainStream> plain_;
  std::optional<TlsStream> tls_;
  beast::flat_buffer buffer_;
};

HttpClient::HttpClient(Endpoint endpoint, ClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(endpoint), std::move(options))) {}
HttpClient::~HttpClient() = default;

base::Result<HttpResponse> HttpClient::Request(const HttpRequest& request) {
  return impl_->Request(request);
}

base::Result<ResponseHead> HttpClient::Stream(
    const HttpRequest& request, const std::function<void(const ResponseHead&)>& on_head,
    const std::function<bool(std::string_view)>& on_data) {
  return impl_->Stream(request, on_head, on_data);
}

void HttpClient::Close() { impl_->Close(); }

}  // namespace supercluster::net
