// The connection side of EtcdStore: the member endpoints, a pool of kept-alive HTTP clients
// per member, failover between members, and the auth token. EtcdStore sends its unary calls
// through Call(); each watch thread opens its own stream on an endpoint chosen here and
// borrows the token. Thread-safe.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.h"
#include "net/endpoint.h"
#include "net/http_client.h"
#include "store/etcd_store.h"

namespace supercluster::store::etcd {

// Whether a call may be sent again, to the next member, when its outcome is unknown.
enum class Retry {
  kIdempotent,     // reads, keep-alives: repeating them is harmless
  kIfNotReceived,  // writes: only when etcd surely did not apply the first attempt
};

class Client {
 public:
  static base::Result<std::shared_ptr<Client>> Create(const EtcdStoreOptions& options);
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // POSTs the JSON text `body` to `path` ("/v3/kv/range") and hands the answer's JSON
  // object to `decode`. A decode error counts as a malformed answer from that member.
  base::Status Call(const std::string& path, const std::string& body, Retry retry,
                    const std::function<base::Status(const nlohmann::json&)>& decode);

  size_t endpoint_count() const { return endpoints_.size(); }
  const net::Endpoint& endpoint(size_t index) const { return endpoints_[index]; }
  const std::string& endpoint_name(size_t index) const { return names_[index]; }
  // The member that answered last; calls and new watch streams start there.
  size_t current_endpoint() const { return current_.load(); }
  const EtcdStoreOptions& options() const { return options_; }
  // Options for a watch stream's own HttpClient.
  net::ClientOptions StreamClientOptions() const;

  // The token to send ("" without auth), authenticating through `endpoint_index` when there
  // is none yet.
  base::Result<std::string> Token(size_t endpoint_index);
  // etcd rejected `token`: forget it (unless another thread already replaced it).
  void InvalidateToken(const std::string& token);
  bool uses_auth() const { return !options_.username.empty(); }

 private:
  enum class Outcome {
    kAnswered,     // etcd answered (a value or an error of its own): done
    kNotReceived,  // this member did not take the request: the next one may
    kUnknown,      // the request may have been applied: only idempotent calls go on
  };
  struct Attempt {
    Outcome outcome = Outcome::kAnswered;
    base::Status status;
  };

  Client(const EtcdStoreOptions& options, std::vector<net::Endpoint> endpoints);

  Attempt CallEndpoint(size_t index, const std::string& path, const std::string& body,
                       const std::function<base::Status(const nlohmann::json&)>& decode);
  Attempt Send(size_t index, const std::string& path, const std::string& body,
               const std::string& token, net::HttpResponse* response);
  Attempt Decode(const net::HttpResponse& response,
                 const std::function<base::Status(const nlohmann::json&)>& decode);
  base::Result<std::string> Authenticate(size_t index);
  base::Result<std::string> AuthenticateOnce(size_t index);

  std::unique_ptr<net::HttpClient> Acquire(size_t index);
  void Release(size_t index, std::unique_ptr<net::HttpClient> client);

  const EtcdStoreOptions options_;
  const std::vector<net::Endpoint> endpoints_;
  const std::vector<std::string> names_;
  const net::ClientOptions http_options_;
  std::atomic<size_t> current_{0};

  std::mutex pool_mutex_;
  std::vector<std::vector<std::unique_ptr<net::HttpClient>>> idle_;  // per endpoint

  // Held while authenticating, so that concurrent calls wait for one login, not race.
  std::mutex auth_mutex_;
  bool have_token_ = false;
  std::string token_;
};

}  // namespace supercluster::store::etcd
