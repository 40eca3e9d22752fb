// EtcdStore: each Store call is one POST to etcd's gateway (see etcd_json.h for the
// encoding and etcd_client.h for failover and auth); watches run in etcd_watch.cc.
#include "store/etcd_store.h"

#include <nlohmann/json.hpp>

#include "store/etcd_client.h"
#include "store/etcd_json.h"
#include "store/etcd_watch.h"

namespace supercluster::store {

using base::Base64Encode;
using etcd::Retry;
using nlohmann::json;

namespace {

// Keys are bytes; error messages show a printable excerpt.
std::string Printable(std::string_view bytes) {
  std::string printable;
  for (char c : bytes.substr(0, 64)) printable += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (bytes.size() > 64) printable += "...";
  return printable;
}

base::Status CheckKey(const std::string& key) {
  if (key.empty()) return base::InvalidArgument("etcd: keys must not be empty");
  if (key.size() > EtcdStore::kMaxKeyBytes) {
    return base::InvalidArgument("etcd: key '" + Printable(key) + "' has " +
                                 std::to_string(key.size()) + " bytes; the limit is " +
                                 std::to_string(EtcdStore::kMaxKeyBytes));
  }
  return base::Status::Ok();
}

base::Status CheckPut(const std::string& key, const std::string& value, LeaseId lease) {
  SC_RETURN_IF_ERROR(CheckKey(key));
  if (value.size() > EtcdStore::kMaxValueBytes) {
    return base::InvalidArgument("etcd: value for key '" + Printable(key) + "' has " +
                                 std::to_string(value.size()) + " bytes; the limit is " +
                                 std::to_string(EtcdStore::kMaxValueBytes));
  }
  if (lease < 0)
    return base::InvalidArgument("etcd: lease id " + std::to_string(lease) + " is negative");
  return base::Status::Ok();
}

// int64s go out as strings, as the gateway writes them, so no JSON reader on the way can
// round them through a double.
std::string Int64Text(int64_t value) { return std::to_string(value); }

json CompareJson(const Compare& compare) {
  json encoded = {{"key", Base64Encode(compare.key)}, {"result", "EQUAL"}};
  switch (compare.kind) {
    case Compare::Kind::kExists:  // created at some revision, i.e. create_revision > 0
      encoded["target"] = "CREATE";
      encoded["result"] = "GREATER";
      encoded["create_revision"] = Int64Text(0);
      break;
    case Compare::Kind::kMissing:  // a missing key has version 0
      encoded["target"] = "VERSION";
      encoded["version"] = Int64Text(0);
      break;
    case Compare::Kind::kValueEquals:  // etcd fails a value compare on a missing key
      encoded["target"] = "VALUE";
      encoded["value"] = Base64Encode(compare.value);
      break;
    case Compare::Kind::kModRevisionEquals:  // a missing key has mod_revision 0
      encoded["target"] = "MOD";
      encoded["mod_revision"] = Int64Text(compare.revision);
      break;
  }
  return encoded;
}

json OperationJson(const Operation& operation) {
  if (operation.kind == Operation::Kind::kDelete) {
    return {{"request_delete_range", {{"key", Base64Encode(operation.key)}}}};
  }
  json put = {{"key", Base64Encode(operation.key)}, {"value", Base64Encode(operation.value)}};
  if (operation.lease != 0) put["lease"] = Int64Text(operation.lease);
  return {{"request_put", put}};
}

base::Status CheckTxn(const std::vector<Compare>& compares, const std::vector<Operation>& then_ops,
                      const std::vector<Operation>& else_ops) {
  if (compares.size() > EtcdStore::kMaxTxnOperations ||
      then_ops.size() > EtcdStore::kMaxTxnOperations ||
      else_ops.size() > EtcdStore::kMaxTxnOperations) {
    return base::InvalidArgument("etcd: a transaction may have at most " +
                                 std::to_string(EtcdStore::kMaxTxnOperations) +
                                 " compares and as many operations per branch");
  }
  for (const Compare& compare : compares) SC_RETURN_IF_ERROR(CheckKey(compare.key));
  for (const auto* ops : {&then_ops, &else_ops}) {
    for (const Operation& operation : *ops) {
      SC_RETURN_IF_ERROR(operation.kind == Operation::Kind::kPut
                             ? CheckPut(operation.key, operation.value, operation.lease)
                             : CheckKey(operation.key));
    }
  }
  return base::Status::Ok();
}

std::string TxnBody(const std::vector<Compare>& compares, const std::vector<Operation>& then_ops,
                    const std::vector<Operation>& else_ops) {
  json compare = json::array();
  for (const Compare& item : compares) compare.push_back(CompareJson(item));
  json success = json::array();
  for (const Operation& item : then_ops) success.push_back(OperationJson(item));
  json failure = json::array();
  for (const Operation& item : else_ops) failure.push_back(OperationJson(item));
  return json{{"compare", compare}, {"success", success}, {"failure", failure}}.dump();
}

}  // namespace

base::Result<std::unique_ptr<EtcdStore>> EtcdStore::Open(const EtcdStoreOptions& options) {
  SC_ASSIGN_OR_RETURN(auto client, etcd::Client::Create(options));
  return std::unique_ptr<EtcdStore>(new EtcdStore(std::move(client)));
}

EtcdStore::EtcdStore(std::shared_ptr<etcd::Client> client) : client_(std::move(client)) {}

EtcdStore::~EtcdStore() = default;

base::Result<std::optional<KeyValue>> EtcdStore::Get(const std::string& key) {
  SC_RETURN_IF_ERROR(CheckKey(key));
  std::optional<KeyValue> found;
  std::string body = json{{"key", Base64Encode(key)}}.dump();
  SC_RETURN_IF_ERROR(
      client_->Call("/v3/kv/range", body, Retry::kIdempotent, [&](const json& answer) {
        SC_RETURN_IF_ERROR(etcd::HeaderRevision(answer).status());
        SC_ASSIGN_OR_RETURN(std::vector<KeyValue> kvs, etcd::ParseKeyValues(answer));
        if (kvs.size() > 1) return base::DataLoss("several keys for a single-key range");
        if (!kvs.empty()) found = std::move(kvs.front());
        return base::Status::Ok();
      }));
  return found;
}

base::Result<RangeResult> EtcdStore::Range(const std::string& prefix, const RangeOptions& options) {
  if (options.limit < 0 || options.revision < 0) {
    return base::InvalidArgument("etcd range: limit and revision must not be negative");
  }
  if (prefix.size() > kMaxKeyBytes) {
    return base::InvalidArgument("etcd range: prefix '" + Printable(prefix) + "' has " +
                                 std::to_string(prefix.size()) + " bytes; the limit is " +
                                 std::to_string(kMaxKeyBytes));
  }
  json request = {{"key", Base64Encode(etcd::PrefixRangeStart(prefix))},
                  {"range_end", Base64Encode(etcd::PrefixRangeEnd(prefix))}};
  if (options.limit > 0) request["limit"] = Int64Text(options.limit);
  if (options.revision > 0) request["revision"] = Int64Text(options.revision);
  RangeResult result;
  SC_RETURN_IF_ERROR(
      client_->Call("/v3/kv/range", request.dump(), Retry::kIdempotent, [&](const json& answer) {
        SC_ASSIGN_OR_RETURN(result.kvs, etcd::ParseKeyValues(answer));
        SC_ASSIGN_OR_RETURN(result.more, etcd::BoolField(answer, "more"));
        SC_ASSIGN_OR_RETURN(result.revision, etcd::HeaderRevision(answer));
        return base::Status::Ok();
      }));
  // etcd's header has the current revision even for a read of the past; the read saw the
  // one asked for, and a caller that watches from there must start after that one.
  if (options.revision > 0) result.revision = options.revision;
  return result;
}

base::Result<int64_t> EtcdStore::Put(const std::string& key, const std::string& value,
                                     LeaseId lease) {
  SC_RETURN_IF_ERROR(CheckPut(key, value, lease));
  json request = {{"key", Base64Encode(key)}, {"value", Base64Encode(value)}};
  if (lease != 0) request["lease"] = Int64Text(lease);
  int64_t revision = 0;
  SC_RETURN_IF_ERROR(
      client_->Call("/v3/kv/put", request.dump(), Retry::kIfNotReceived, [&](const json& answer) {
        SC_ASSIGN_OR_RETURN(revision, etcd::HeaderRevision(answer));
        return base::Status::Ok();
      }));
  return revision;
}

base::Result<int64_t> EtcdStore::Delete(const std::string& key) {
  SC_RETURN_IF_ERROR(CheckKey(key));
  std::string body = json{{"key", Base64Encode(key)}}.dump();
  int64_t deleted = 0;
  SC_RETURN_IF_ERROR(
      client_->Call("/v3/kv/deleterange", body, Retry::kIfNotReceived, [&](const json& answer) {
        SC_RETURN_IF_ERROR(etcd::HeaderRevision(answer).status());
        SC_ASSIGN_OR_RETURN(deleted, etcd::Int64Field(answer, "deleted"));
        if (deleted < 0 || deleted > 1) {
          return base::DataLoss("deleted count out of range for one key");
        }
        return base::Status::Ok();
      }));
  return deleted;
}

base::Result<TxnResult> EtcdStore::Txn(const std::vector<Compare>& compares,
                                       const std::vector<Operation>& then_ops,
                                       const std::vector<Operation>& else_ops) {
  SC_RETURN_IF_ERROR(CheckTxn(compares, then_ops, else_ops));
  TxnResult result;
  SC_RETURN_IF_ERROR(
      client_->Call("/v3/kv/txn", TxnBody(compares, then_ops, else_ops), Retry::kIfNotReceived,
                    [&](const json& answer) {
                      SC_ASSIGN_OR_RETURN(result.succeeded, etcd::BoolField(answer, "succeeded"));
                      SC_ASSIGN_OR_RETURN(result.revision, etcd::HeaderRevision(answer));
                      return base::Status::Ok();
                    }));
  return result;
}

base::Result<LeaseId> EtcdStore::GrantLease(std::chrono::seconds ttl) {
  if (ttl.count() < 1) return base::InvalidArgument("etcd: a lease TTL must be at least 1 second");
  std::string body = json{{"TTL", Int64Text(ttl.count())}}.dump();
  LeaseId lease = 0;
  // Retried like a read: a grant whose answer was lost leaves a lease nobody uses, which
  // expires after its TTL.
  SC_RETURN_IF_ERROR(
      client_->Call("/v3/lease/grant", body, Retry::kIdempotent, [&](const json& answer) {
        SC_RETURN_IF_ERROR(etcd::HeaderRevision(answer).status());
        SC_ASSIGN_OR_RETURN(lease, etcd::Int64Field(answer, "ID"));
        // etcd makes lease IDs positive; 0 would read as "no lease".
        if (lease <= 0) {
          SC_ASSIGN_OR_RETURN(std::string error, etcd::StringField(answer, "error"));
          return base::DataLoss("lease grant without a valid ID" +
                                (error.empty() ? "" : ": " + error));
        }
        return base::Status::Ok();
      }));
  return lease;
}

base::Status EtcdStore::KeepAlive(LeaseId lease) {
  std::string body = json{{"ID", Int64Text(lease)}}.dump();
  int64_t ttl = 0;
  base::Status stream_status;  // an error etcd sent in the stream instead of a result
  // The keep-alive endpoint is a stream, so its answer is one frame: {"result": ...}.
  SC_RETURN_IF_ERROR(
      client_->Call("/v3/lease/keepalive", body, Retry::kIdempotent, [&](const json& answer) {
        std::optional<etcd::GatewayError> stream_error;
        auto result = etcd::StreamResultOf(answer, &stream_error);
        if (stream_error) {
          stream_status = result.status();
          return base::Status::Ok();
        }
        if (!result.ok()) return result.status();
        SC_ASSIGN_OR_RETURN(ttl, etcd::Int64Field(*result, "TTL"));
        return base::Status::Ok();
      }));
  if (!stream_status.ok()) return stream_status.WithContext("etcd /v3/lease/keepalive");
  // etcd answers an unknown (expired, revoked) lease with a TTL of 0.
  if (ttl <= 0) {
    return base::NotFound("etcd lease " + std::to_string(lease) +
                          " not found (expired or revoked)");
  }
  return base::Status::Ok();
}

base::Status EtcdStore::RevokeLease(LeaseId lease) {
  std::string body = json{{"ID", Int64Text(lease)}}.dump();
  // Not retried after an unknown outcome: a repeat would answer "not found" for a lease
  // the first attempt revoked.
  return client_->Call("/v3/lease/revoke", body, Retry::kIfNotReceived,
                       [](const json& answer) { return etcd::HeaderRevision(answer).status(); });
}

base::Result<std::unique_ptr<Watch>> EtcdStore::WatchPrefix(const std::string& prefix,
                                                            int64_t from_revision,
                                                            WatchCallback callback) {
  if (from_revision < 0) {
    return base::InvalidArgument("etcd watch: from_revision must not be negative");
  }
  if (!callback) return base::InvalidArgument("etcd watch: no callback");
  if (prefix.size() > kMaxKeyBytes) {
    return base::InvalidArgument("etcd watch: prefix '" + Printable(prefix) + "' has " +
                                 std::to_string(prefix.size()) + " bytes; the limit is " +
                                 std::to_string(kMaxKeyBytes));
  }
  if (from_revision == 0) {
    // "Changes after now": now is the revision a read sees at this moment, so any write
    // made after WatchPrefix returns is delivered.
    SC_ASSIGN_OR_RETURN(int64_t now, CurrentRevision());
    from_revision = now + 1;
  }
  return etcd::StartWatch(client_, etcd::WatchTarget{prefix, from_revision}, std::move(callback));
}

base::Result<int64_t> EtcdStore::CurrentRevision() {
  // A count of one key that need not exist: the answer's header carries the revision.
  std::string body = json{{"key", Base64Encode(std::string(1, '\0'))}, {"count_only", true}}.dump();
  int64_t revision = 0;
  SC_RETURN_IF_ERROR(
      client_->Call("/v3/kv/range", body, Retry::kIdempotent, [&](const json& answer) {
        SC_ASSIGN_OR_RETURN(revision, etcd::HeaderRevision(answer));
        return base::Status::Ok();
      }));
  return revision;
}

int EtcdStore::RunningWatchThreads() { return etcd::RunningWatchThreads(); }

}  // namespace supercluster::store
