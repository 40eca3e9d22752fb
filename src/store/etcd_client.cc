#include "store/etcd_client.h"

#include <nlohmann/json.hpp>

#include <string_view>

#include "base/config.h"
#include "store/etcd_json.h"

namespace supercluster::store::etcd {

using nlohmann::json;

namespace {

// Kept-alive connections kept per member for later calls; more concurrent calls than this
// open extra connections that are closed afterwards.
constexpr size_t kMaxIdleClientsPerEndpoint = 8;
// How much of an unexpected answer body goes into an error message.
constexpr size_t kQuotedBodyBytes = 200;

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// Whether an HttpClient failure happened before etcd had the whole request, judged by the
// step HttpClient names at the start of its message. A failure while reading the answer,
// or one this list does not know, may come after etcd applied the request.
bool FailedBeforeDelivery(const base::Status& status) {
  for (std::string_view step : {"cannot connect to ", "connecting to ", "TLS handshake with ",
                                "sending to ", "cannot resolve ", "no address for "}) {
    if (StartsWith(status.message(), step)) return true;
  }
  return false;
}

// A short, printable excerpt of an answer for an error message.
std::string Quote(std::string_view body) {
  std::string quoted;
  for (char c : body.substr(0, kQuotedBodyBytes)) {
    quoted += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  if (body.size() > kQuotedBodyBytes) quoted += "...";
  return quoted;
}

std::string Join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string joined;
  for (const std::string& part : parts) {
    if (!joined.empty()) joined += separator;
    joined += part;
  }
  return joined;
}

base::Status ValidateOptions(const EtcdStoreOptions& options) {
  if (options.endpoints.empty()) return base::InvalidArgument("etcd: no endpoints given");
  if (options.connect_timeout.count() <= 0 || options.request_timeout.count() <= 0 ||
      options.watch_idle_timeout.count() <= 0 || options.watch_max_backoff.count() <= 0) {
    return base::InvalidArgument("etcd: timeouts and the watch backoff must be positive");
  }
  if (options.max_response_bytes == 0) {
    return base::InvalidArgument("etcd: max_response_bytes must be positive");
  }
  if (options.username.empty() && !options.password.empty()) {
    return base::InvalidArgument("etcd: a password was given without a username");
  }
  return base::Status::Ok();
}

}  // namespace

base::Result<std::shared_ptr<Client>> Client::Create(const EtcdStoreOptions& options) {
  SC_RETURN_IF_ERROR(ValidateOptions(options));
  std::vector<net::Endpoint> endpoints;
  for (const std::string& text : options.endpoints) {
    auto endpoint = net::ParseEndpoint(text);
    if (!endpoint.ok()) return endpoint.status().WithContext("etcd endpoints");
    endpoints.push_back(*endpoint);
  }
  return std::shared_ptr<Client>(new Client(options, std::move(endpoints)));
}

Client::Client(const EtcdStoreOptions& options, std::vector<net::Endpoint> endpoints)
    : options_(options),
      endpoints_(std::move(endpoints)),
      names_(options.endpoints),
      http_options_([&] {
        // Header limits and the like come from the project's defaults; the rest from ours.
        net::ClientOptions http = net::ClientOptions::FromConfig(base::Config::Defaults());
        http.connect_timeout = options.connect_timeout;
        http.request_timeout = options.request_timeout;
        http.max_response_body_bytes = options.max_response_bytes;
        http.tls = options.tls;
        return http;
      }()),
      idle_(endpoints_.size()) {}

net::ClientOptions Client::StreamClientOptions() const {
  net::ClientOptions stream = http_options_;
  // For a stream this bounds the wait for each piece, i.e. how long a watch may be silent.
  stream.request_timeout = options_.watch_idle_timeout;
  return stream;
}

base::Status Client::Call(const std::string& path, const std::string& body, Retry retry,
                          const std::function<base::Status(const json&)>& decode) {
  std::vector<std::string> failures;
  size_t first = current_.load();
  for (size_t step = 0; step < endpoints_.size(); ++step) {
    size_t index = (first + step) % endpoints_.size();
    Attempt attempt = CallEndpoint(index, path, body, decode);
    switch (attempt.outcome) {
      case Outcome::kAnswered:
        current_.store(index);
        if (attempt.status.ok()) return attempt.status;
        return attempt.status.WithContext("etcd " + path + " at " + names_[index]);
      case Outcome::kNotReceived:
        failures.push_back(names_[index] + ": " + attempt.status.message());
        continue;
      case Outcome::kUnknown:
        if (retry == Retry::kIdempotent) {
          failures.push_back(names_[index] + ": " + attempt.status.message());
          continue;
        }
        return base::Unavailable("etcd " + path + " at " + names_[index] + ": " +
                                 attempt.status.message() +
                                 " (the write may or may not have been applied)");
    }
  }
  return base::Unavailable("etcd " + path + ": no member gave a usable answer (" +
                           Join(names_, ", ") + "): " + Join(failures, "; "));
}

Client::Attempt Client::CallEndpoint(size_t index, const std::string& path, const std::string& body,
                                     const std::function<base::Status(const json&)>& decode) {
  // A second round only after etcd rejected the token, with a fresh one.
  for (int round = 0; round < 2; ++round) {
    auto token = Token(index);
    if (!token.ok()) {
      // A login refused by etcd settles the call; a member that could not be reached for
      // the login has not seen the call either.
      bool refused = token.status().code() != base::StatusCode::kUnavailable &&
                     token.status().code() != base::StatusCode::kDeadlineExceeded;
      return {refused ? Outcome::kAnswered : Outcome::kNotReceived, token.status()};
    }
    net::HttpResponse response;
    Attempt sent = Send(index, path, body, *token, &response);
    if (!sent.status.ok()) return sent;
    if (response.status == 200) return Decode(response, decode);

    std::optional<GatewayError> error = ParseGatewayError(response.body);
    if (!error) {
      return {Outcome::kUnknown,
              base::Unavailable(
                  "HTTP " + std::to_string(response.status) +
                  " without an etcd error (is this etcd's client URL?): " + Quote(response.body))};
    }
    if (uses_auth() && IsInvalidToken(*error) && round == 0) {
      InvalidateToken(*token);
      continue;
    }
    base::Status status = StatusFromGatewayError(*error);
    if (IsRefusedBeforeApply(*error)) return {Outcome::kNotReceived, status};
    if (status.code() == base::StatusCode::kUnavailable) return {Outcome::kUnknown, status};
    return {Outcome::kAnswered, status};
  }
  return {Outcome::kAnswered, base::Internal("etcd: unreachable auth retry state")};
}

Client::Attempt Client::Send(size_t index, const std::string& path, const std::string& body,
                             const std::string& token, net::HttpResponse* response) {
  net::HttpRequest request;
  request.method = "POST";
  request.target = path;
  request.headers.Set("Content-Type", "application/json");
  // etcd reads the token from the "authorization" metadata the gateway makes of this header.
  if (!token.empty()) request.headers.Set("Authorization", token);
  request.body = body;

  std::unique_ptr<net::HttpClient> client = Acquire(index);
  auto result = client->Request(request);
  if (!result.ok()) {
    const base::Status& status = result.status();
    switch (status.code()) {
      case base::StatusCode::kInvalidArgument:     // TLS files unusable: our configuration
      case base::StatusCode::kFailedPrecondition:  // an endpoint kind this build lacks
      case base::StatusCode::kResourceExhausted:   // an answer over max_response_bytes
        return {Outcome::kAnswered, status};
      default:
        return {FailedBeforeDelivery(status) ? Outcome::kNotReceived : Outcome::kUnknown, status};
    }
  }
  *response = std::move(*result);
  Release(index, std::move(client));
  return {Outcome::kAnswered, base::Status::Ok()};
}

Client::Attempt Client::Decode(const net::HttpResponse& response,
                               const std::function<base::Status(const json&)>& decode) {
  base::Status status;
  auto object = ParseObject(response.body);
  if (!object.ok()) {
    status = object.status();
  } else {
    try {
      status = decode(*object);
    } catch (const std::exception& error) {  // nlohmann's, should a decoder slip
      status = base::DataLoss(error.what());
    }
  }
  if (status.ok()) return {Outcome::kAnswered, status};
  // Something that is not etcd, or a broken proxy, answered: another member may do better.
  return {Outcome::kUnknown, base::Unavailable("malformed answer: " + status.message())};
}

base::Result<std::string> Client::Token(size_t endpoint_index) {
  if (!uses_auth()) return std::string();
  std::lock_guard lock(auth_mutex_);
  if (have_token_) return token_;
  SC_ASSIGN_OR_RETURN(token_, Authenticate(endpoint_index));
  have_token_ = true;
  return token_;
}

void Client::InvalidateToken(const std::string& token) {
  std::lock_guard lock(auth_mutex_);
  if (have_token_ && token_ == token) have_token_ = false;
}

base::Result<std::string> Client::Authenticate(size_t index) {
  base::Result<std::string> token = AuthenticateOnce(index);
  if (!token.ok()) return token.status().WithContext("login as '" + options_.username + "'");
  return token;
}

base::Result<std::string> Client::AuthenticateOnce(size_t index) {
  std::string body;
  try {
    body = json{{"name", options_.username}, {"password", options_.password}}.dump();
  } catch (const std::exception&) {  // dump() refuses strings that are not UTF-8
    return base::InvalidArgument("the username and password must be UTF-8");
  }
  net::HttpResponse response;
  Attempt sent = Send(index, "/v3/auth/authenticate", body, /*token=*/"", &response);
  if (!sent.status.ok()) return sent.status;
  if (response.status != 200) {
    std::optional<GatewayError> error = ParseGatewayError(response.body);
    if (!error) {
      return base::Unavailable("HTTP " + std::to_string(response.status) + ": " +
                               Quote(response.body));
    }
    // Credentials were configured for an etcd without auth: go on without a token.
    if (error->message.find("authentication is not enabled") != std::string::npos) {
      return std::string();
    }
    return StatusFromGatewayError(*error);
  }
  std::string token;
  Attempt decoded = Decode(response, [&](const json& answer) -> base::Status {
    SC_ASSIGN_OR_RETURN(token, StringField(answer, "token"));
    return base::Status::Ok();
  });
  if (!decoded.status.ok()) return decoded.status;
  return token;
}

std::unique_ptr<net::HttpClient> Client::Acquire(size_t index) {
  {
    std::lock_guard lock(pool_mutex_);
    auto& idle = idle_[index];
    if (!idle.empty()) {
      std::unique_ptr<net::HttpClient> client = std::move(idle.back());
      idle.pop_back();
      return client;
    }
  }
  return std::make_unique<net::HttpClient>(endpoints_[index], http_options_);
}

void Client::Release(size_t index, std::unique_ptr<net::HttpClient> client) {
  std::lock_guard lock(pool_mutex_);
  if (idle_[index].size() < kMaxIdleClientsPerEndpoint) idle_[index].push_back(std::move(client));
}

}  // namespace supercluster::store::etcd
