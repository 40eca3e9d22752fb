// The JSON of etcd's v3 HTTP gateway (grpc-gateway, etcd 3.4 and later), for EtcdStore and
// its watch threads: keys and values travel base64-encoded, int64s as JSON strings, a prefix
// becomes a [key, range_end) pair, fields equal to their zero value are left out, and errors
// come back as {"error", "message", "code"} with the gRPC code. Everything here is pure
// (no I/O) and never throws: a malformed or hostile input gives a Status instead.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/base64.h"
#include "base/status.h"
#include "store/store.h"

namespace supercluster::store::etcd {

using base::Base64Decode;
using base::Base64Encode;

// The [key, range_end) pair etcd uses to select every key starting with `prefix`. The empty
// prefix is the whole key space, which etcd spells key "\0", range_end "\0".
std::string PrefixRangeStart(std::string_view prefix);
std::string PrefixRangeEnd(std::string_view prefix);

// Parses text that must hold one JSON object.
base::Result<nlohmann::json> ParseObject(std::string_view text);

// Typed reads of an object's field. A missing field reads as its zero value, because the
// gateway omits zero values; a field of the wrong type is an error.
base::Result<int64_t> Int64Field(const nlohmann::json& object, std::string_view name);
base::Result<bool> BoolField(const nlohmann::json& object, std::string_view name);
base::Result<std::string> StringField(const nlohmann::json& object, std::string_view name);
base::Result<std::string> BytesField(const nlohmann::json& object, std::string_view name);

// header.revision of a response.
base::Result<int64_t> HeaderRevision(const nlohmann::json& response);
base::Result<KeyValue> ParseKeyValue(const nlohmann::json& kv);
// The "kvs" array of a range response.
base::Result<std::vector<KeyValue>> ParseKeyValues(const nlohmann::json& response);

// An error etcd (through the gateway) answered with.
struct GatewayError {
  int grpc_code = 0;
  std::string message;
};
// The error in a non-200 answer's body, or nullopt when the body is not one (not etcd?).
std::optional<GatewayError> ParseGatewayError(std::string_view body);
// The Status a caller of Store sees for an etcd error.
base::Status StatusFromGatewayError(const GatewayError& error);
// Errors that say the request was refused before anything was applied, so trying the
// next member is safe even for writes: no leader, server stopping, and the like.
bool IsRefusedBeforeApply(const GatewayError& error);
// The auth token was unknown or expired: authenticate again and retry.
bool IsInvalidToken(const GatewayError& error);

// One JSON object of a stream response (/v3/watch, /v3/lease/keepalive) is either
// {"result": {...}} or, when the stream failed, {"error": {...}}. Returns the result object;
// for an error object returns its Status and sets `*stream_error`.
base::Result<nlohmann::json> ParseStreamResult(std::string_view text,
                                               std::optional<GatewayError>* stream_error);
// The same for an object already parsed.
base::Result<nlohmann::json> StreamResultOf(const nlohmann::json& frame,
                                            std::optional<GatewayError>* stream_error);

// One response of a watch stream.
struct WatchResponse {
  bool created = false;
  bool canceled = false;
  std::string cancel_reason;
  int64_t compact_revision = 0;  // > 0: the start revision was compacted away
  std::vector<WatchEvent> events;
};
base::Result<WatchResponse> ParseWatchResponse(const nlohmann::json& result);

// Cuts a byte stream of concatenated JSON objects (the gateway separates them with newlines,
// which this does not rely on) into whole objects, holding at most `max_object_bytes` of an
// unfinished one so a server cannot grow our memory without bound.
class JsonObjectSplitter {
 public:
  explicit JsonObjectSplitter(size_t max_object_bytes) : max_object_bytes_(max_object_bytes) {}

  // Appends `bytes` and moves every object completed by them to `objects`. Fails on bytes
  // outside an object that are not whitespace, or on an object over the limit.
  base::Status Feed(std::string_view bytes, std::vector<std::string>* objects);

 private:
  size_t max_object_bytes_;
  std::string pending_;
  int depth_ = 0;
  bool in_string_ = false;
  bool escaped_ = false;
};

}  // namespace supercluster::store::etcd
