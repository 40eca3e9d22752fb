// Cluster records as JSON (see records.h and docs/state.md). Decoding treats the bytes as
// hostile: a record can be written by any process with store access, by an older or newer
// binary, or be damaged, so every path returns a Status instead of throwing or crashing,
// and error messages name the key and field but never echo the raw bytes.
#include "store/records.h"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>

#include <nlohmann/json.hpp>

namespace supercluster::store {
namespace {

using Json = nlohmann::json;
// Encoding keeps insertion order so "schema" and "kind" come first: operators read these
// records with `supercluster store get`.
using OrderedJson = nlohmann::ordered_json;

// Real records are a few kilobytes; these bounds only stop hostile or damaged bytes from
// costing memory and stack. Our deepest record (Policy) nests three levels.
constexpr size_t kMaxRecordBytes = size_t{1} << 20;
constexpr int kMaxNestingDepth = 64;

// SHA-384 digests, written as hex.
constexpr size_t kPcrHexLength = 96;
constexpr int kMaxPcrIndex = 31;

base::Status RecordError(const std::string& source, const std::string& what) {
  return base::DataLoss("record at " + source + ": " + what);
}

base::Status FieldError(const std::string& source, const std::string& field,
                        const std::string& what) {
  return RecordError(source, "field '" + field + "' " + what);
}

// Names a JSON value's type for error messages ("string", "number", ...).
std::string TypeName(const Json& value) { return value.type_name(); }

// A short, escaped rendering of untrusted text for an error message.
std::string Quote(const std::string& text) {
  constexpr size_t kMaxShown = 40;
  std::string shown = text.size() > kMaxShown ? text.substr(0, kMaxShown) + "..." : text;
  return Json(shown).dump(-1, ' ', false, Json::error_handler_t::replace);
}

// ---------------------------------------------------------------------------------------
// Parsing

// Measures the deepest bracket nesting without parsing, so a megabyte of '[' is refused
// before the parser builds (and later destroys) a value that deep. Brackets inside strings
// do not count; the string scan follows JSON's lexer (a backslash escapes the next byte),
// so for any input it agrees with the parser up to the point where the parser would fail.
bool NestingWithinLimit(const std::string& bytes) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < bytes.size(); ++i) {
    char c = bytes[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxNestingDepth) return false;
    } else if (c == ']' || c == '}') {
      // A closer with nothing open is a syntax error the parser stops at, before any
      // deeper nesting that follows; counting on would only under-report the depth.
      if (--depth < 0) return true;
    }
  }
  return true;
}

base::Result<Json> ParseObject(const std::string& bytes, const std::string& source) {
  if (bytes.size() > kMaxRecordBytes) {
    return RecordError(source, std::to_string(bytes.size()) + " bytes is over the " +
                                   std::to_string(kMaxRecordBytes) + "-byte limit for a record");
  }
  if (!NestingWithinLimit(bytes)) {
    return RecordError(source, "JSON nested deeper than " + std::to_string(kMaxNestingDepth) +
                                   " levels");
  }
  Json document;
  try {
    document = Json::parse(bytes);
  } catch (const Json::parse_error& error) {
    // The parser also refuses invalid UTF-8. Its message quotes the input, so only the
    // position is reported.
    return RecordError(source, "not valid JSON (error at byte " + std::to_string(error.byte) + ")");
  } catch (const Json::exception&) {
    return RecordError(source, "not valid JSON");
  }
  if (!document.is_object()) {
    return RecordError(source, "expected a JSON object, got " + TypeName(document));
  }
  return document;
}

// ---------------------------------------------------------------------------------------
// Typed field access. Each reader fails with kDataLoss naming the field when it is missing
// or of the wrong JSON type. Every field of schema 1 is required: Encode always writes all
// of them, so a missing one means the bytes were not written by a Supercluster binary.

const Json* FindField(const Json& object, const std::string& field) {
  auto found = object.find(field);
  return found == object.end() ? nullptr : &*found;
}

base::Result<const Json*> RequireField(const Json& object, const std::string& field,
                                       const std::string& source) {
  const Json* value = FindField(object, field);
  if (value == nullptr) return FieldError(source, field, "is missing");
  return value;
}

base::Status WrongType(const std::string& source, const std::string& field,
                       const std::string& expected, const Json& value) {
  return FieldError(source, field, "must be " + expected + ", got " + TypeName(value));
}

base::Status ReadString(const Json& object, const std::string& field, const std::string& source,
                        std::string& out) {
  SC_ASSIGN_OR_RETURN(const Json* value, RequireField(object, field, source));
  if (!value->is_string()) return WrongType(source, field, "a string", *value);
  out = value->get_ref<const std::string&>();
  return base::Status::Ok();
}

// Accepts JSON integers that fit int64_t; 1.0 or 1e3 are refused (integers are written as
// integers), and so is anything above INT64_MAX rather than wrapping.
base::Result<int64_t> IntegerValue(const Json& value, const std::string& field,
                                   const std::string& source) {
  if (value.is_number_unsigned()) {
    uint64_t unsigned_value = value.get<uint64_t>();
    if (unsigned_value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return FieldError(source, field, "is out of range");
    }
    return static_cast<int64_t>(unsigned_value);
  }
  if (value.is_number_integer()) return value.get<int64_t>();
  return WrongType(source, field, "an integer", value);
}

base::Status ReadInt64(const Json& object, const std::string& field, const std::string& source,
                       int64_t& out) {
  SC_ASSIGN_OR_RETURN(const Json* value, RequireField(object, field, source));
  SC_ASSIGN_OR_RETURN(out, IntegerValue(*value, field, source));
  return base::Status::Ok();
}

base::Status ReadDouble(const Json& object, const std::string& field, const std::string& source,
                        double& out) {
  SC_ASSIGN_OR_RETURN(const Json* value, RequireField(object, field, source));
  if (!value->is_number()) return WrongType(source, field, "a number", *value);
  out = value->get<double>();
  return base::Status::Ok();
}

base::Status ReadBool(const Json& object, const std::string& field, const std::string& source,
                      bool& out) {
  SC_ASSIGN_OR_RETURN(const Json* value, RequireField(object, field, source));
  if (!value->is_boolean()) return WrongType(source, field, "true or false", *value);
  out = value->get<bool>();
  return base::Status::Ok();
}

base::Status ReadStringList(const Json& object, const std::string& field,
                            const std::string& source, std::vector<std::string>& out) {
  SC_ASSIGN_OR_RETURN(const Json* value, RequireField(object, field, source));
  if (!value->is_array()) return WrongType(source, field, "an array of strings", *value);
  std::vector<std::string> items;
  for (size_t i = 0; i < value->size(); ++i) {
    const Json& item = (*value)[i];
    std::string item_name = field + "[" + std::to_string(i) + "]";
    if (!item.is_string()) return WrongType(source, item_name, "a string", item);
    items.push_back(item.get_ref<const std::string&>());
  }
  out = std::move(items);
  return base::Status::Ok();
}

// ---------------------------------------------------------------------------------------
// The envelope: "schema" then "kind".

base::Status CheckSchema(const Json& object, const std::string& source) {
  const Json* schema = FindField(object, "schema");
  if (schema == nullptr) return FieldError(source, "schema", "is missing");
  // A whole number of 2^64 or more is parsed as a double: it is a newer schema too.
  const bool newer =
      (schema->is_number_unsigned() &&
       schema->get<uint64_t>() > static_cast<uint64_t>(kRecordSchemaVersion)) ||
      (schema->is_number_float() && schema->get<double>() >= 18446744073709551616.0);
  if (newer) {
    // Refusing is the point of the version: a newer writer may have changed what a field
    // means, and guessing would act on a misread record.
    return base::FailedPrecondition("record at " + source + " has schema " + schema->dump() +
                                     "; this binary reads up to " +
                                     std::to_string(kRecordSchemaVersion) +
                                     ": upgrade supercluster");
  }
  SC_ASSIGN_OR_RETURN(int64_t version, IntegerValue(*schema, "schema", source));
  if (version < 1) {
    return FieldError(source, "schema", "is " + std::to_string(version) + "; versions start at 1");
  }
  return base::Status::Ok();
}

base::Status CheckEnvelope(const Json& object, const std::string& source,
                           const std::string& expected_kind) {
  SC_RETURN_IF_ERROR(CheckSchema(object, source));
  std::string kind;
  SC_RETURN_IF_ERROR(ReadString(object, "kind", source, kind));
  if (kind != expected_kind) {
    return RecordError(source,
                       "is a record of kind " + Quote(kind) + ", expected " + expected_kind);
  }
  return base::Status::Ok();
}

OrderedJson Envelope(const char* kind) {
  OrderedJson object = OrderedJson::object();
  object["schema"] = kRecordSchemaVersion;
  object["kind"] = kind;
  return object;
}

// Invalid UTF-8 in a string field cannot be written as JSON. Replacing it with U+FFFD
// keeps Encode total (it cannot fail) and the record readable; the parser would refuse
// the raw bytes on the way back anyway.
std::string Dump(const OrderedJson& object) {
  return object.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

// Parses `bytes`, checks its envelope, and hands the object to `read_fields`. The catch is
// a backstop: field readers check types before every access, so nothing should throw.
template <typename Record, typename ReadFields>
base::Result<Record> DecodeRecord(const std::string& bytes, const std::string& source,
                                  const char* kind, ReadFields read_fields) {
  try {
    SC_ASSIGN_OR_RETURN(Json object, ParseObject(bytes, source));
    SC_RETURN_IF_ERROR(CheckEnvelope(object, source, kind));
    Record record;
    SC_RETURN_IF_ERROR(read_fields(object, record));
    return record;
  } catch (const Json::exception&) {
    return RecordError(source, "malformed " + std::string(kind) + " record");
  }
}

// ---------------------------------------------------------------------------------------
// Policy measurements: [{"0": "<96 hex>", "4": "..."}, ...]

bool IsHexDigit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// PCR indexes are written as plain decimal ("0".."31"); "07", "+7" or " 7" are refused so
// one index has one spelling and two entries cannot name the same PCR.
base::Result<int> ParsePcrIndex(const std::string& text, const std::string& field,
                                const std::string& source) {
  bool digits = !text.empty() && text.size() <= 2;
  for (char c : text) digits = digits && c >= '0' && c <= '9';
  if (!digits || (text.size() == 2 && text[0] == '0')) {
    return FieldError(source, field, "has PCR index " + Quote(text) + "; expected 0.." +
                                         std::to_string(kMaxPcrIndex));
  }
  int index = std::stoi(text);
  if (index > kMaxPcrIndex) {
    return FieldError(source, field, "has PCR index " + text + "; expected 0.." +
                                         std::to_string(kMaxPcrIndex));
  }
  return index;
}

base::Status CheckPcrDigest(const Json& digest, const std::string& field,
                            const std::string& source) {
  if (!digest.is_string()) return WrongType(source, field, "a hex string", digest);
  const std::string& hex = digest.get_ref<const std::string&>();
  bool valid = hex.size() == kPcrHexLength;
  for (char c : hex) valid = valid && IsHexDigit(c);
  if (!valid) {
    return FieldError(source, field, "must be " + std::to_string(kPcrHexLength) +
                                         " hex digits (a SHA-384 digest)");
  }
  return base::Status::Ok();
}

base::Result<std::map<int, std::string>> ReadMeasurementSet(const Json& set,
                                                            const std::string& field,
                                                            const std::string& source) {
  if (!set.is_object()) return WrongType(source, field, "an object of PCR index to digest", set);
  // A set with no PCRs would match every attestation document; refuse it rather than
  // let a damaged policy accept any enclave.
  if (set.empty()) return FieldError(source, field, "names no PCRs");
  std::map<int, std::string> pcrs;
  for (const auto& [index_text, digest] : set.items()) {
    SC_ASSIGN_OR_RETURN(int index, ParsePcrIndex(index_text, field, source));
    std::string digest_field = field + "." + index_text;
    SC_RETURN_IF_ERROR(CheckPcrDigest(digest, digest_field, source));
    pcrs[index] = digest.get_ref<const std::string&>();
  }
  return pcrs;
}

base::Status ReadMeasurements(const Json& object, const std::string& source,
                              std::vector<std::map<int, std::string>>& out) {
  const std::string field = "measurements";
  SC_ASSIGN_OR_RETURN(const Json* value, RequireField(object, field, source));
  if (!value->is_array()) return WrongType(source, field, "an array", *value);
  std::vector<std::map<int, std::string>> sets;
  for (size_t i = 0; i < value->size(); ++i) {
    std::string set_field = field + "[" + std::to_string(i) + "]";
    SC_ASSIGN_OR_RETURN(auto set, ReadMeasurementSet((*value)[i], set_field, source));
    sets.push_back(std::move(set));
  }
  out = std::move(sets);
  return base::Status::Ok();
}

OrderedJson MeasurementsJson(const std::vector<std::map<int, std::string>>& measurements) {
  OrderedJson sets = OrderedJson::array();
  for (const auto& set : measurements) {
    OrderedJson pcrs = OrderedJson::object();
    for (const auto& [index, digest] : set) pcrs[std::to_string(index)] = digest;
    sets.push_back(std::move(pcrs));
  }
  return sets;
}

// ---------------------------------------------------------------------------------------
// Field lists, one reader per record type.

base::Status ReadRegionFields(const Json& object, const std::string& source, Region& record) {
  SC_RETURN_IF_ERROR(ReadString(object, "name", source, record.name));
  SC_RETURN_IF_ERROR(ReadString(object, "display_name", source, record.display_name));
  SC_RETURN_IF_ERROR(ReadStringList(object, "peers", source, record.peers));
  return ReadBool(object, "accepting", source, record.accepting);
}

base::Status ReadInstanceState(const Json& object, const std::string& source,
                               InstanceState& out) {
  std::string name;
  SC_RETURN_IF_ERROR(ReadString(object, "state", source, name));
  base::Result<InstanceState> state = ParseInstanceState(name);
  if (!state.ok()) return FieldError(source, "state", "is invalid: " + state.status().message());
  out = *state;
  return base::Status::Ok();
}

base::Status ReadInstanceFields(const Json& object, const std::string& source,
                                Instance& record) {
  SC_RETURN_IF_ERROR(ReadString(object, "id", source, record.id));
  SC_RETURN_IF_ERROR(ReadString(object, "region", source, record.region));
  SC_RETURN_IF_ERROR(ReadInstanceState(object, source, record.state));
  SC_RETURN_IF_ERROR(ReadString(object, "address", source, record.address));
  SC_RETURN_IF_ERROR(ReadString(object, "model", source, record.model));
  SC_RETURN_IF_ERROR(ReadInt64(object, "capacity", source, record.capacity));
  SC_RETURN_IF_ERROR(ReadString(object, "attestation_b64", source, record.attestation_b64));
  SC_RETURN_IF_ERROR(ReadString(object, "capacity_type", source, record.capacity_type));
  return ReadInt64(object, "updated_unix_ms", source, record.updated_unix_ms);
}

base::Status ReadModelDeploymentFields(const Json& object, const std::string& source,
                                       ModelDeployment& record) {
  SC_RETURN_IF_ERROR(ReadString(object, "model", source, record.model));
  SC_RETURN_IF_ERROR(ReadString(object, "region", source, record.region));
  SC_RETURN_IF_ERROR(ReadString(object, "manifest_digest", source, record.manifest_digest));
  return ReadInt64(object, "desired_instances", source, record.desired_instances);
}

base::Status ReadTenantFields(const Json& object, const std::string& source, Tenant& record) {
  SC_RETURN_IF_ERROR(ReadString(object, "id", source, record.id));
  SC_RETURN_IF_ERROR(ReadString(object, "display_name", source, record.display_name));
  SC_RETURN_IF_ERROR(ReadStringList(object, "api_key_hashes", source, record.api_key_hashes));
  SC_RETURN_IF_ERROR(ReadString(object, "policy_id", source, record.policy_id));
  SC_RETURN_IF_ERROR(
      ReadDouble(object, "requests_per_second", source, record.requests_per_second));
  SC_RETURN_IF_ERROR(
      ReadInt64(object, "max_concurrent_requests", source, record.max_concurrent_requests));
  SC_RETURN_IF_ERROR(ReadStringList(object, "allowed_regions", source, record.allowed_regions));
  return ReadBool(object, "allow_plaintext", source, record.allow_plaintext);
}

// The longest a policy may let an attestation document live. Documents are meant to be
// fresh (the default is 300 s); the bound also keeps the age in milliseconds far from
// overflowing where routers use it.
constexpr int64_t kMaxDocumentAgeSeconds = 365 * 24 * 3600;

base::Status ReadPolicyFields(const Json& object, const std::string& source, Policy& record) {
  SC_RETURN_IF_ERROR(ReadString(object, "id", source, record.id));
  SC_RETURN_IF_ERROR(ReadMeasurements(object, source, record.measurements));
  SC_RETURN_IF_ERROR(ReadBool(object, "allow_debug", source, record.allow_debug));
  SC_RETURN_IF_ERROR(
      ReadInt64(object, "max_document_age_seconds", source, record.max_document_age_seconds));
  // 0 or less would turn the verifier's age check off (its max_age 0 means "no limit"):
  // a record must not be able to say that by a slip.
  if (record.max_document_age_seconds < 1 ||
      record.max_document_age_seconds > kMaxDocumentAgeSeconds) {
    return FieldError(source, "max_document_age_seconds",
                      "is " + std::to_string(record.max_document_age_seconds) +
                          "; it must be 1 to " + std::to_string(kMaxDocumentAgeSeconds) +
                          " (a year)");
  }
  return base::Status::Ok();
}

base::Status ReadRouterEndpointFields(const Json& object, const std::string& source,
                                      RouterEndpoint& record) {
  SC_RETURN_IF_ERROR(ReadString(object, "id", source, record.id));
  SC_RETURN_IF_ERROR(ReadString(object, "region", source, record.region));
  SC_RETURN_IF_ERROR(ReadString(object, "tier", source, record.tier));
  return ReadString(object, "address", source, record.address);
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Keys. Pure string building: callers pass names they took from records or flags, and the
// layout is documented in docs/state.md.

namespace keys {

std::string Region(const std::string& region) { return std::string(kRoot) + "regions/" + region; }

std::string InstancePrefix(const std::string& region) {
  std::string prefix = std::string(kRoot) + "instances/";
  return region.empty() ? prefix : prefix + region + "/";
}

std::string Instance(const std::string& region, const std::string& instance_id) {
  return InstancePrefix(region) + instance_id;
}

std::string ModelDeployment(const std::string& model, const std::string& region) {
  return std::string(kRoot) + "models/" + model + "/regions/" + region;
}

std::string Tenant(const std::string& tenant_id) {
  return std::string(kRoot) + "tenants/" + tenant_id;
}

std::string Policy(const std::string& policy_id) {
  return std::string(kRoot) + "policies/" + policy_id;
}

std::string RouterPrefix(const std::string& region) {
  std::string prefix = std::string(kRoot) + "routers/";
  return region.empty() ? prefix : prefix + region + "/";
}

std::string Router(const std::string& region, const std::string& router_id) {
  return RouterPrefix(region) + router_id;
}

std::string Election(const std::string& name) {
  return std::string(kRoot) + "elections/" + name;
}

}  // namespace keys

// ---------------------------------------------------------------------------------------
// Instance states travel by name, not number, so inserting a state later cannot silently
// renumber the ones already stored.

const char* InstanceStateName(InstanceState state) {
  switch (state) {
    case InstanceState::kLaunching: return "launching";
    case InstanceState::kLoading: return "loading";
    case InstanceState::kAttesting: return "attesting";
    case InstanceState::kServing: return "serving";
    case InstanceState::kDraining: return "draining";
    case InstanceState::kWiping: return "wiping";
    case InstanceState::kVerified: return "verified";
    case InstanceState::kFailed: return "failed";
  }
  return "unknown";
}

base::Result<InstanceState> ParseInstanceState(const std::string& text) {
  static constexpr InstanceState kAll[] = {
      InstanceState::kLaunching, InstanceState::kLoading, InstanceState::kAttesting,
      InstanceState::kServing,   InstanceState::kDraining, InstanceState::kWiping,
      InstanceState::kVerified,  InstanceState::kFailed,
  };
  for (InstanceState state : kAll) {
    if (text == InstanceStateName(state)) return state;
  }
  return base::InvalidArgument(
      "unknown instance state " + Quote(text) +
      "; expected launching, loading, attesting, serving, draining, wiping, verified or failed");
}

// ---------------------------------------------------------------------------------------
// Encoding. Field names are snake_case and match the struct members.

std::string Encode(const Region& record) {
  OrderedJson object = Envelope("Region");
  object["name"] = record.name;
  object["display_name"] = record.display_name;
  object["peers"] = record.peers;
  object["accepting"] = record.accepting;
  return Dump(object);
}

std::string Encode(const Instance& record) {
  OrderedJson object = Envelope("Instance");
  object["id"] = record.id;
  object["region"] = record.region;
  object["state"] = InstanceStateName(record.state);
  object["address"] = record.address;
  object["model"] = record.model;
  object["capacity"] = record.capacity;
  object["attestation_b64"] = record.attestation_b64;
  object["capacity_type"] = record.capacity_type;
  object["updated_unix_ms"] = record.updated_unix_ms;
  return Dump(object);
}

std::string Encode(const ModelDeployment& record) {
  OrderedJson object = Envelope("ModelDeployment");
  object["model"] = record.model;
  object["region"] = record.region;
  object["manifest_digest"] = record.manifest_digest;
  object["desired_instances"] = record.desired_instances;
  return Dump(object);
}

std::string Encode(const Tenant& record) {
  OrderedJson object = Envelope("Tenant");
  object["id"] = record.id;
  object["display_name"] = record.display_name;
  object["api_key_hashes"] = record.api_key_hashes;
  object["policy_id"] = record.policy_id;
  object["requests_per_second"] = record.requests_per_second;
  object["max_concurrent_requests"] = record.max_concurrent_requests;
  object["allowed_regions"] = record.allowed_regions;
  object["allow_plaintext"] = record.allow_plaintext;
  return Dump(object);
}

std::string Encode(const Policy& record) {
  OrderedJson object = Envelope("Policy");
  object["id"] = record.id;
  object["measurements"] = MeasurementsJson(record.measurements);
  object["allow_debug"] = record.allow_debug;
  object["max_document_age_seconds"] = record.max_document_age_seconds;
  return Dump(object);
}

std::string Encode(const RouterEndpoint& record) {
  OrderedJson object = Envelope("RouterEndpoint");
  object["id"] = record.id;
  object["region"] = record.region;
  object["tier"] = record.tier;
  object["address"] = record.address;
  return Dump(object);
}

// ---------------------------------------------------------------------------------------
// Decoding. Fields this binary does not know are ignored: within one schema version a
// newer binary may add fields (never rename, remove or change the meaning of one; that
// takes a new version), so an older reader can still act on the fields it knows during a
// rolling upgrade. See docs/state.md for what that means for read-modify-write.

base::Result<Region> DecodeRegion(const std::string& bytes, const std::string& source) {
  return DecodeRecord<Region>(bytes, source, "Region", [&](const Json& object, Region& record) {
    return ReadRegionFields(object, source, record);
  });
}

base::Result<Instance> DecodeInstance(const std::string& bytes, const std::string& source) {
  return DecodeRecord<Instance>(bytes, source, "Instance",
                                [&](const Json& object, Instance& record) {
                                  return ReadInstanceFields(object, source, record);
                                });
}

base::Result<ModelDeployment> DecodeModelDeployment(const std::string& bytes,
                                                    const std::string& source) {
  return DecodeRecord<ModelDeployment>(bytes, source, "ModelDeployment",
                                       [&](const Json& object, ModelDeployment& record) {
                                         return ReadModelDeploymentFields(object, source, record);
                                       });
}

base::Result<Tenant> DecodeTenant(const std::string& bytes, const std::string& source) {
  return DecodeRecord<Tenant>(bytes, source, "Tenant", [&](const Json& object, Tenant& record) {
    return ReadTenantFields(object, source, record);
  });
}

base::Result<Policy> DecodePolicy(const std::string& bytes, const std::string& source) {
  return DecodeRecord<Policy>(bytes, source, "Policy", [&](const Json& object, Policy& record) {
    return ReadPolicyFields(object, source, record);
  });
}

base::Result<RouterEndpoint> DecodeRouterEndpoint(const std::string& bytes,
                                                  const std::string& source) {
  return DecodeRecord<RouterEndpoint>(bytes, source, "RouterEndpoint",
                                      [&](const Json& object, RouterEndpoint& record) {
                                        return ReadRouterEndpointFields(object, source, record);
                                      });
}

}  // namespace supercluster::store
