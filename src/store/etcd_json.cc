#include "store/etcd_json.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>

namespace supercluster::store::etcd {

using nlohmann::json;

namespace {


bool Contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// Field names are ours, so they are printable; the value's type names what we found.
base::Status WrongType(std::string_view name, const json& value, std::string_view wanted) {
  return base::DataLoss("field '" + std::string(name) + "' is " + value.type_name() +
                        ", expected " + std::string(wanted));
}

base::Result<int64_t> ParseDecimalInt64(std::string_view name, const std::string& text) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [stop, error] = std::from_chars(text.data(), end, value);
  if (error == std::errc::result_out_of_range) {
    return base::DataLoss("field '" + std::string(name) + "' is out of the int64 range");
  }
  if (error != std::errc() || stop != end || text.empty()) {
    return base::DataLoss("field '" + std::string(name) + "' is not a decimal integer");
  }
  return value;
}

// A gRPC status code. Codes outside gRPC's range are kept out of int overflow and fall to
// the default case of StatusFromGatewayError.
base::Result<int> GrpcCode(const json& object, std::string_view name) {
  SC_ASSIGN_OR_RETURN(int64_t code, Int64Field(object, name));
  return static_cast<int>(std::clamp<int64_t>(code, -1, 1000));
}

base::Result<WatchEvent> ParseWatchEvent(const json& event) {
  if (!event.is_object()) return WrongType("events[]", event, "object");
  SC_ASSIGN_OR_RETURN(std::string type, StringField(event, "type"));
  WatchEvent parsed;
  if (type == "DELETE") {
    parsed.kind = WatchEvent::Kind::kDelete;
  } else if (type.empty() || type == "PUT") {  // PUT is the zero value, so usually absent
    parsed.kind = WatchEvent::Kind::kPut;
  } else {
    return base::DataLoss("unknown watch event type '" + type.substr(0, 32) + "'");
  }
  auto kv = event.find("kv");
  if (kv == event.end()) return base::DataLoss("watch event without 'kv'");
  SC_ASSIGN_OR_RETURN(parsed.kv, ParseKeyValue(*kv));
  if (parsed.kv.mod_revision <= 0) return base::DataLoss("watch event without a revision");
  return parsed;
}

base::Result<json> StreamResultUnguarded(const json& frame,
                                         std::optional<GatewayError>* stream_error) {
  auto error = frame.find("error");
  if (error != frame.end()) {
    // A stream error is {"error": {"grpc_code", "http_code", "message", "http_status"}}.
    GatewayError parsed;
    if (error->is_object()) {
      SC_ASSIGN_OR_RETURN(parsed.grpc_code, GrpcCode(*error, "grpc_code"));
      SC_ASSIGN_OR_RETURN(parsed.message, StringField(*error, "message"));
    } else {
      parsed.grpc_code = 2;  // gRPC's Unknown
      parsed.message = "malformed stream error";
    }
    *stream_error = parsed;
    return StatusFromGatewayError(parsed);
  }
  auto result = frame.find("result");
  if (result == frame.end() || !result->is_object()) {
    return base::DataLoss("stream object has neither 'result' nor 'error'");
  }
  return *result;
}

}  // namespace

std::string PrefixRangeStart(std::string_view prefix) {
  return prefix.empty() ? std::string(1, '\0') : std::string(prefix);
}

std::string PrefixRangeEnd(std::string_view prefix) {
  // The smallest key greater than every key with this prefix: drop trailing 0xff bytes
  // (they cannot be increased) and increase the last remaining one.
  std::string end(prefix);
  while (!end.empty() && static_cast<uint8_t>(end.back()) == 0xff) end.pop_back();
  if (end.empty()) return std::string(1, '\0');  // "\0" means "to the end of the key space"
  end.back() = static_cast<char>(static_cast<uint8_t>(end.back()) + 1);
  return end;
}

base::Result<json> ParseObject(std::string_view text) {
  // allow_exceptions=false: a parse error gives a "discarded" value instead of throwing.
  json value = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return base::DataLoss("not valid JSON");
  if (!value.is_object()) {
    return base::DataLoss(std::string("JSON ") + value.type_name() + ", expected an object");
  }
  return value;
}

base::Result<int64_t> Int64Field(const json& object, std::string_view name) {
  auto field = object.find(name);
  if (field == object.end() || field->is_null()) return int64_t{0};
  if (field->is_string()) return ParseDecimalInt64(name, field->get_ref<const std::string&>());
  if (field->is_number_integer() && !field->is_number_unsigned()) return field->get<int64_t>();
  if (field->is_number_unsigned()) {
    uint64_t value = field->get<uint64_t>();
    if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return base::DataLoss("field '" + std::string(name) + "' is out of the int64 range");
    }
    return static_cast<int64_t>(value);
  }
  return WrongType(name, *field, "an integer");
}

base::Result<bool> BoolField(const json& object, std::string_view name) {
  auto field = object.find(name);
  if (field == object.end() || field->is_null()) return false;
  if (!field->is_boolean()) return WrongType(name, *field, "a boolean");
  return field->get<bool>();
}

base::Result<std::string> StringField(const json& object, std::string_view name) {
  auto field = object.find(name);
  if (field == object.end() || field->is_null()) return std::string();
  if (!field->is_string()) return WrongType(name, *field, "a string");
  return field->get<std::string>();
}

base::Result<std::string> BytesField(const json& object, std::string_view name) {
  SC_ASSIGN_OR_RETURN(std::string encoded, StringField(object, name));
  auto decoded = Base64Decode(encoded);
  if (!decoded.ok()) return decoded.status().WithContext("field '" + std::string(name) + "'");
  return decoded;
}

base::Result<int64_t> HeaderRevision(const json& response) {
  auto header = response.find("header");
  if (header == response.end() || !header->is_object()) {
    return base::DataLoss("response without a header");
  }
  SC_ASSIGN_OR_RETURN(int64_t revision, Int64Field(*header, "revision"));
  if (revision < 0) return base::DataLoss("negative revision in the response header");
  return revision;
}

base::Result<KeyValue> ParseKeyValue(const json& kv) {
  if (!kv.is_object()) return WrongType("kv", kv, "an object");
  KeyValue parsed;
  SC_ASSIGN_OR_RETURN(parsed.key, BytesField(kv, "key"));
  if (parsed.key.empty()) return base::DataLoss("key-value without a key");
  SC_ASSIGN_OR_RETURN(parsed.value, BytesField(kv, "value"));
  SC_ASSIGN_OR_RETURN(parsed.create_revision, Int64Field(kv, "create_revision"));
  SC_ASSIGN_OR_RETURN(parsed.mod_revision, Int64Field(kv, "mod_revision"));
  SC_ASSIGN_OR_RETURN(parsed.version, Int64Field(kv, "version"));
  SC_ASSIGN_OR_RETURN(parsed.lease, Int64Field(kv, "lease"));
  return parsed;
}

base::Result<std::vector<KeyValue>> ParseKeyValues(const json& response) {
  std::vector<KeyValue> kvs;
  auto field = response.find("kvs");
  if (field == response.end() || field->is_null()) return kvs;
  if (!field->is_array()) return WrongType("kvs", *field, "an array");
  kvs.reserve(field->size());
  for (const json& kv : *field) {
    SC_ASSIGN_OR_RETURN(KeyValue parsed, ParseKeyValue(kv));
    kvs.push_back(std::move(parsed));
  }
  return kvs;
}

std::optional<GatewayError> ParseGatewayError(std::string_view body) {
  auto object = ParseObject(body);
  if (!object.ok()) return std::nullopt;
  if (!object->contains("code")) return std::nullopt;
  auto code = GrpcCode(*object, "code");
  if (!code.ok()) return std::nullopt;
  GatewayError error;
  error.grpc_code = *code;
  auto message = StringField(*object, "message");
  if (message.ok() && !message->empty()) {
    error.message = *message;
  } else if (auto text = StringField(*object, "error"); text.ok()) {
    error.message = *text;
  }
  if (error.message.empty()) {
    error.message = "etcd error with gRPC code " + std::to_string(error.grpc_code);
  }
  return error;
}

base::Status StatusFromGatewayError(const GatewayError& error) {
  const std::string& message = error.message;
  switch (error.grpc_code) {
    case 1:  // Canceled
      return base::Cancelled(message);
    case 3:  // InvalidArgument, which etcd also uses for failed logins
      if (Contains(message, "authentication failed")) return base::PermissionDenied(message);
      if (Contains(message, "user name is empty")) {
        return base::PermissionDenied(
            message + " (etcd has auth enabled: configure a username and password)");
      }
      return base::InvalidArgument(message);
    case 5:  // NotFound: leases
      return base::NotFound(message);
    case 6:
      return base::AlreadyExists(message);
    case 7:   // PermissionDenied
    case 16:  // Unauthenticated
      return base::PermissionDenied(message);
    case 8:
      return base::ResourceExhausted(message);
    case 9:
      return base::FailedPrecondition(message);
    case 11:  // OutOfRange: a compacted or a future revision
      if (Contains(message, "compacted")) return base::DataLoss(message);
      return base::InvalidArgument(message);
    case 12:
      return base::FailedPrecondition(message + " (not supported by this etcd)");
    case 15:
      return base::DataLoss(message);
    default:  // Unavailable, DeadlineExceeded, Aborted, Internal, Unknown, ...
      return base::Unavailable(message);
  }
}

bool IsRefusedBeforeApply(const GatewayError& error) {
  for (std::string_view refusal :
       {"etcdserver: no leader", "etcdserver: server stopped", "etcdserver: not capable",
        "etcdserver: leader changed", "etcdserver: too many requests"}) {
    if (Contains(error.message, refusal)) return true;
  }
  return false;
}

bool IsInvalidToken(const GatewayError& error) {
  // "user name is empty" comes back when no token was sent because auth was off when we
  // last asked; it has been enabled since.
  return Contains(error.message, "invalid auth token") ||
         Contains(error.message, "user name is empty");
}

base::Result<json> ParseStreamResult(std::string_view text,
                                     std::optional<GatewayError>* stream_error) {
  SC_ASSIGN_OR_RETURN(json frame, ParseObject(text));
  return StreamResultOf(frame, stream_error);
}

base::Result<json> StreamResultOf(const json& frame, std::optional<GatewayError>* stream_error) {
  try {
    return StreamResultUnguarded(frame, stream_error);
  } catch (const std::exception& error) {
    return base::DataLoss(std::string("malformed stream object: ") + error.what());
  }
}

base::Result<WatchResponse> ParseWatchResponse(const json& result) {
  try {
    WatchResponse response;
    SC_ASSIGN_OR_RETURN(response.created, BoolField(result, "created"));
    SC_ASSIGN_OR_RETURN(response.canceled, BoolField(result, "canceled"));
    SC_ASSIGN_OR_RETURN(response.cancel_reason, StringField(result, "cancel_reason"));
    SC_ASSIGN_OR_RETURN(response.compact_revision, Int64Field(result, "compact_revision"));
    auto events = result.find("events");
    if (events != result.end() && !events->is_null()) {
      if (!events->is_array()) return WrongType("events", *events, "an array");
      response.events.reserve(events->size());
      for (const json& event : *events) {
        SC_ASSIGN_OR_RETURN(WatchEvent parsed, ParseWatchEvent(event));
        response.events.push_back(std::move(parsed));
      }
    }
    return response;
  } catch (const std::exception& error) {
    return base::DataLoss(std::string("malformed watch response: ") + error.what());
  }
}

base::Status JsonObjectSplitter::Feed(std::string_view bytes, std::vector<std::string>* objects) {
  for (char c : bytes) {
    if (depth_ == 0) {
      if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
      if (c != '{') return base::DataLoss("stream holds something other than JSON objects");
      pending_.assign(1, c);
      depth_ = 1;
      continue;
    }
    pending_ += c;
    if (pending_.size() > max_object_bytes_) {
      return base::DataLoss("a streamed JSON object exceeds " + std::to_string(max_object_bytes_) +
                            " bytes");
    }
    if (in_string_) {
      if (escaped_) {
        escaped_ = false;
      } else if (c == '\\') {
        escaped_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
    } else if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      ++depth_;
    } else if (c == '}' || c == ']') {
      if (--depth_ == 0) {
        objects->push_back(std::move(pending_));
        pending_.clear();
      }
    }
  }
  return base::Status::Ok();
}

}  // namespace supercluster::store::etcd
