// asio_floor_proxy: the least an Asio proxy does, as a floor for the router's numbers in
// bench/instructions (not a proxy anyone should use). One thread, one io_context: each
// client request is forwarded byte for byte to whichever of two upstreams has fewer
// requests outstanding, over pooled keep-alive connections, and the answer is copied back
// byte for byte. It frames messages by Content-Length only, adds and removes no field, and
// gives up on a connection at the first error.
//
// What it shows: how much of the router's cost per request the transport (Asio's reactor
// and scheduler, the system calls, the same read and write pattern) takes, and how much
// the router's own request path adds (docs/performance.md, "why 16 connections lose").
//
// Usage: asio_floor_proxy LISTEN_PORT UPSTREAM_PORT_A UPSTREAM_PORT_B   (all on 127.0.0.1)
#include <strings.h>

#include <boost/asio.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;

// Requests are read into 4 KiB (as the router's server reads), answers into 64 KiB (as
// its upstream client reads), the latter only once a connection has sent a request.
constexpr size_t kRequestBufferBytes = 4 * 1024;
constexpr size_t kResponseBufferBytes = 64 * 1024;

struct Upstream {
  tcp::endpoint endpoint;
  int outstanding = 0;
  std::vector<std::unique_ptr<tcp::socket>> idle;
};

// The length of the whole message (head and Content-Length body) at the start of `data`,
// or 0 while it is incomplete.
size_t WholeMessageBytes(std::string_view data) {
  const size_t head_end = data.find("\r\n\r\n");
  if (head_end == std::string_view::npos) return 0;
  const std::string_view head = data.substr(0, head_end);
  constexpr std::string_view kLength = "content-length:";
  size_t body_bytes = 0;
  for (size_t line = head.find("\r\n"); line != std::string_view::npos;
       line = head.find("\r\n", line + 2)) {
    const size_t name = line + 2;
    if (head.size() - name > kLength.size() &&
        strncasecmp(head.data() + name, kLength.data(), kLength.size()) == 0) {
      body_bytes = std::strtoul(head.data() + name + kLength.size(), nullptr, 10);
    }
  }
  const size_t total = head_end + 4 + body_bytes;
  return data.size() >= total ? total : 0;
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket client, std::vector<Upstream>& upstreams)
      : client_(std::move(client)), upstreams_(upstreams), request_(kRequestBufferBytes, '\0') {}

  void ReadRequest() {
    client_.async_read_some(
        asio::buffer(request_.data() + request_used_, request_.size() - request_used_),
        [self = shared_from_this()](ErrorCode error, size_t bytes) {
          if (error) return;
          self->request_used_ += bytes;
          self->OnRequestBytes();
        });
  }

 private:
  void OnRequestBytes() {
    request_bytes_ = WholeMessageBytes(std::string_view(request_.data(), request_used_));
    if (request_bytes_ == 0) return ReadRequest();
    upstream_ = upstreams_[0].outstanding <= upstreams_[1].outstanding ? &upstreams_[0]
                                                                        : &upstreams_[1];
    ++upstream_->outstanding;
    if (!upstream_->idle.empty()) {
      connection_ = std::move(upstream_->idle.back());
      upstream_->idle.pop_back();
      return WriteRequest();
    }
    connection_ = std::make_unique<tcp::socket>(client_.get_executor());
    connection_->async_connect(upstream_->endpoint, [self = shared_from_this()](ErrorCode error) {
      if (error) return;
      self->connection_->set_option(tcp::no_delay(true));
      self->WriteRequest();
    });
  }

  void WriteRequest() {
    asio::async_write(*connection_, asio::buffer(request_.data(), request_bytes_),
                      [self = shared_from_this()](ErrorCode error, size_t) {
                        if (error) return;
                        self->response_used_ = 0;
                        self->ReadResponse();
                      });
  }

  void ReadResponse() {
    if (response_.empty()) response_.resize(kResponseBufferBytes);
    connection_->async_read_some(
        asio::buffer(response_.data() + response_used_, response_.size() - response_used_),
        [self = shared_from_this()](ErrorCode error, size_t bytes) {
          if (error) return;
          self->response_used_ += bytes;
          self->response_bytes_ =
              WholeMessageBytes(std::string_view(self->response_.data(), self->response_used_));
          if (self->response_bytes_ == 0) return self->ReadResponse();
          self->WriteResponse();
        });
  }

  void WriteResponse() {
    --upstream_->outstanding;
    upstream_->idle.push_back(std::move(connection_));
    asio::async_write(client_, asio::buffer(response_.data(), response_bytes_),
                      [self = shared_from_this()](ErrorCode error, size_t) {
                        if (error) return;
                        self->NextRequest();
                      });
  }

  void NextRequest() {
    std::memmove(request_.data(), request_.data() + request_bytes_,
                 request_used_ - request_bytes_);
    request_used_ -= request_bytes_;
    if (request_used_ > 0) return OnRequestBytes();  // pipelined
    ReadRequest();
  }

  tcp::socket client_;
  std::vector<Upstream>& upstreams_;
  Upstream* upstream_ = nullptr;
  std::unique_ptr<tcp::socket> connection_;
  std::string request_;
  std::string response_;
  size_t request_used_ = 0;
  size_t request_bytes_ = 0;
  size_t response_used_ = 0;
  size_t response_bytes_ = 0;
};

void Accept(tcp::acceptor& acceptor, std::vector<Upstream>& upstreams) {
  acceptor.async_accept([&acceptor, &upstreams](ErrorCode error, tcp::socket client) {
    if (!error) {
      client.set_option(tcp::no_delay(true));
      std::make_shared<Session>(std::move(client), upstreams)->ReadRequest();
    }
    Accept(acceptor, upstreams);
  });
}

int Port(const char* text) {
  char* end = nullptr;
  long port = std::strtol(text, &end, 10);
  if (*end != '\0' || port < 1 || port > 65535) {
    std::fprintf(stderr, "asio_floor_proxy: not a port: %s\n", text);
    std::exit(2);
  }
  return static_cast<int>(port);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: asio_floor_proxy LISTEN_PORT UPSTREAM_PORT_A UPSTREAM_PORT_B\n");
    return 2;
  }
  const auto loopback = asio::ip::make_address("127.0.0.1");
  std::vector<Upstream> upstreams(2);
  upstreams[0].endpoint = tcp::endpoint(loopback, static_cast<uint16_t>(Port(argv[2])));
  upstreams[1].endpoint = tcp::endpoint(loopback, static_cast<uint16_t>(Port(argv[3])));
  asio::io_context io_context(1);
  tcp::acceptor acceptor(io_context, tcp::endpoint(loopback, static_cast<uint16_t>(Port(argv[1]))));
  Accept(acceptor, upstreams);
  io_context.run();
}
