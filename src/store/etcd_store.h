// EtcdStore: the Store for clusters that span machines and regions, backed by etcd (Debian's
// etcd-server, 3.4 or later) through etcd's v3 HTTP/JSON gateway. Opened by whatever sets up
// a service's store when the configuration lists etcd endpoints, and by the `store` CLI;
// SqliteStore is the single-machine alternative.
//
// Beyond store.h:
// - Endpoints: calls go to the member that answered last. When a member cannot be reached,
//   the next ones are tried in order; a read is also retried elsewhere after a timeout, a
//   write only when it surely was not applied (the connection was never made, or etcd said
//   it had no leader), since retrying a write that may have landed could apply it twice.
//   When every member fails the call returns kUnavailable naming them all. Each attempt is
//   bounded by connect_timeout + request_timeout, so a call takes at most the endpoint
//   count times that.
// - Auth: with a username, the store authenticates on first use and sends the token with
//   every request; when etcd says the token is invalid (expired, or etcd restarted) it
//   authenticates again and retries once.
// - TLS: https:// endpoints (or tls.enabled) use TLS with the given CA and, for etcd's
//   --client-cert-auth, a client certificate.
// - Watches: one thread per watch reads etcd's watch stream and, when the stream breaks
//   (member died, etcd restarted), reopens it on any member with backoff, resuming from the
//   revision after the last one delivered. A stream that stays silent for
//   watch_idle_timeout is reopened the same way, which also notices half-open connections;
//   run etcd with --experimental-watch-progress-notify-interval below that timeout to keep
//   idle watches from reconnecting. Cancel() waits only for a callback in progress; the
//   thread then finishes on its own, at the latest after watch_idle_timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "net/tls.h"
#include "store/store.h"

namespace supercluster::store {

namespace etcd {
class Client;
}

struct EtcdStoreOptions {
  // Client URLs of etcd members: "http://10.0.0.1:2379", "https://etcd-1.internal:2379".
  std::vector<std::string> endpoints;
  std::chrono::milliseconds connect_timeout{1000};
  // One request to one member, from sending to the last byte of the answer.
  std::chrono::milliseconds request_timeout{5000};
  std::chrono::milliseconds watch_idle_timeout{30000};
  // Reconnecting a watch waits 50 ms after the first failure, doubling up to this.
  std::chrono::milliseconds watch_max_backoff{1000};
  // The largest answer accepted, and the largest single watch response.
  uint64_t max_response_bytes = 64ull << 20;
  net::TlsClientOptions tls;
  // etcd user; empty when etcd runs without auth.
  std::string username;
  std::string password;
};

class EtcdStore final : public Store {
 public:
  // The limits SqliteStore has too (etcd's defaults), checked here so that code written
  // against one backend fits the other: larger input is kInvalidArgument. etcd also refuses
  // a request over its --max-request-bytes (1.5 MiB), so a value right at the limit plus
  // its key can be refused by etcd, equally with kInvalidArgument.
  static constexpr size_t kMaxKeyBytes = 4096;
  static constexpr size_t kMaxValueBytes = 1536 * 1024;
  static constexpr size_t kMaxTxnOperations = 128;  // compares, and operations per branch

  // Checks the options; does not contact etcd (the first call does), so a store can be
  // opened before its cluster is up.
  static base::Result<std::unique_ptr<EtcdStore>> Open(const EtcdStoreOptions& options);
  ~EtcdStore() override;

  base::Result<std::optional<KeyValue>> Get(const std::string& key) override;
  base::Result<RangeResult> Range(const std::string& prefix,
                                  const RangeOptions& options = {}) override;
  base::Result<int64_t> Put(const std::string& key, const std::string& value,
                            LeaseId lease = 0) override;
  base::Result<int64_t> Delete(const std::string& key) override;
  base::Result<TxnResult> Txn(const std::vector<Compare>& compares,
                              const std::vector<Operation>& then_ops,
                              const std::vector<Operation>& else_ops = {}) override;
  base::Result<LeaseId> GrantLease(std::chrono::seconds ttl) override;
  base::Status KeepAlive(LeaseId lease) override;
  base::Status RevokeLease(LeaseId lease) override;
  base::Result<std::unique_ptr<Watch>> WatchPrefix(const std::string& prefix, int64_t from_revision,
                                                   WatchCallback callback) override;

  // Watch threads of all EtcdStores in this process that have not finished yet, cancelled
  // ones included. For tests and diagnostics.
  static int RunningWatchThreads();

 private:
  explicit EtcdStore(std::shared_ptr<etcd::Client> client);
  base::Result<int64_t> CurrentRevision();

  // Shared with the watch threads, which may outlive the store.
  std::shared_ptr<etcd::Client> client_;
};

}  // namespace supercluster::store
