// Tests for the cluster records (records.h): the key layout, JSON round trips of every
// record type, and decoding of records that are from the future, of the wrong kind,
// incomplete, mistyped, truncated, hostile or not UTF-8.
#include "store/records.h"

#include <gtest/gtest.h>

#include <limits>

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace supercluster::store {
namespace {

using Json = nlohmann::ordered_json;
using base::StatusCode;

constexpr const char* kSource = "/sc/v1/test/key";

// A SHA-384-sized hex digest made of one repeated digit.
std::string Digest(char digit) { return std::string(96, digit); }

Region FullRegion() {
  Region region;
  region.name = "us-east-2";
  region.display_name = "US East (Ohio) — Zweigstelle";
  region.peers = {"us-east-1", "us-west-2"};
  region.accepting = false;  // not the default, so the field is proven to travel
  return region;
}

Instance FullInstance() {
  Instance instance;
  instance.id = "i-0abc";
  instance.region = "us-west-2";
  instance.state = InstanceState::kDraining;
  instance.address = "10.0.3.7:9443";
  instance.model = "llama-3-8b-q4";
  instance.capacity = 48;
  instance.attestation_b64 = "hEQBOCKgWQ==";
  instance.capacity_type = "on-demand";
  instance.updated_unix_ms = 1'717'171'717'171;
  return instance;
}

ModelDeployment FullModelDeployment() {
  ModelDeployment deployment;
  deployment.model = "llama-3-8b-q4";
  deployment.region = "us-east-1";
  deployment.manifest_digest = "sha256:" + std::string(64, 'e');
  deployment.desired_instances = 12;
  return deployment;
}

Tenant FullTenant() {
  Tenant tenant;
  tenant.id = "acme";
  tenant.display_name = "Acme \"Rockets\" Inc.\n";
  tenant.api_key_hashes = {std::string(64, 'a'), std::string(64, 'b')};
  tenant.policy_id = "acme-prod";
  tenant.requests_per_second = 12.5;
  tenant.max_concurrent_requests = 64;
  tenant.allowed_regions = {"us-east-1", "us-east-2"};
  tenant.allow_plaintext = true;
  return tenant;
}

Policy FullPolicy() {
  Policy policy;
  policy.id = "acme-prod";
  policy.measurements = {{{0, Digest('0')}, {1, Digest('a')}, {2, Digest('B')}},
                         {{8, Digest('c')}, {31, Digest('f')}}};
  policy.allow_debug = true;
  policy.max_document_age_seconds = 120;
  return policy;
}

RouterEndpoint FullRouterEndpoint() {
  RouterEndpoint router;
  router.id = "router-a";
  router.region = "us-east-1";
  router.tier = "regional";
  router.address = "https://10.0.0.2:8443";
  return router;
}

// Parses an encoding so a test can damage it, then writes it back.
std::string Edit(const std::string& encoded, const std::function<void(Json&)>& edit) {
  Json object = Json::parse(encoded);
  edit(object);
  return object.dump();
}

// Every test decodes through one of these, so a failure names the record type.
using Decoder = std::function<base::Status(const std::string&)>;

template <typename Record>
Decoder Wrap(base::Result<Record> (*decode)(const std::string&, const std::string&)) {
  return [decode](const std::string& bytes) { return decode(bytes, kSource).status(); };
}

struct Sample {
  const char* kind;
  std::string encoded;
  Decoder decode;
};

std::vector<Sample> AllSamples() {
  return {
      {"Region", Encode(FullRegion()), Wrap(&DecodeRegion)},
      {"Instance", Encode(FullInstance()), Wrap(&DecodeInstance)},
      {"ModelDeployment", Encode(FullModelDeployment()), Wrap(&DecodeModelDeployment)},
      {"Tenant", Encode(FullTenant()), Wrap(&DecodeTenant)},
      {"Policy", Encode(FullPolicy()), Wrap(&DecodePolicy)},
      {"RouterEndpoint", Encode(FullRouterEndpoint()), Wrap(&DecodeRouterEndpoint)},
  };
}

// Checks a decode failed with kDataLoss and that the message names the key and `needle`.
void ExpectDataLoss(const base::Status& status, const std::string& needle) {
  EXPECT_EQ(status.code(), StatusCode::kDataLoss) << status.ToString();
  EXPECT_NE(status.message().find(kSource), std::string::npos) << status.message();
  EXPECT_NE(status.message().find(needle), std::string::npos) << status.message();
}

// ---------------------------------------------------------------------------------------
// Keys

TEST(RecordKeysTest, ProduceTheDocumentedLayout) {
  EXPECT_STREQ(keys::kRoot, "/sc/v1/");
  EXPECT_EQ(keys::Region("us-east-1"), "/sc/v1/regions/us-east-1");
  EXPECT_EQ(keys::InstancePrefix(""), "/sc/v1/instances/");
  EXPECT_EQ(keys::InstancePrefix("us-east-1"), "/sc/v1/instances/us-east-1/");
  EXPECT_EQ(keys::Instance("us-east-1", "i-0abc"), "/sc/v1/instances/us-east-1/i-0abc");
  EXPECT_EQ(keys::ModelDeployment("llama-3-8b", "us-west-2"),
            "/sc/v1/models/llama-3-8b/regions/us-west-2");
  EXPECT_EQ(keys::Tenant("acme"), "/sc/v1/tenants/acme");
  EXPECT_EQ(keys::Policy("acme-prod"), "/sc/v1/policies/acme-prod");
  EXPECT_EQ(keys::RouterPrefix(""), "/sc/v1/routers/");
  EXPECT_EQ(keys::RouterPrefix("us-east-2"), "/sc/v1/routers/us-east-2/");
  EXPECT_EQ(keys::Router("us-east-2", "router-a"), "/sc/v1/routers/us-east-2/router-a");
  EXPECT_EQ(keys::Election("controller"), "/sc/v1/elections/controller");
}

TEST(RecordKeysTest, RegionPrefixesDoNotMatchOtherRegionsWithTheSameStart) {
  // The trailing '/' is what keeps a range over "us-east-1" from also returning
  // "us-east-10".
  std::string other = keys::Instance("us-east-10", "i-1");
  EXPECT_NE(other.rfind(keys::InstancePrefix("us-east-1"), 0), 0u);
  EXPECT_EQ(other.rfind(keys::InstancePrefix(""), 0), 0u);
}

// ---------------------------------------------------------------------------------------
// Round trips

TEST(RecordRoundTripTest, Region) {
  Region in = FullRegion();
  auto out = DecodeRegion(Encode(in), kSource);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->name, in.name);
  EXPECT_EQ(out->display_name, in.display_name);
  EXPECT_EQ(out->peers, in.peers);
  EXPECT_EQ(out->accepting, in.accepting);
}

TEST(RecordRoundTripTest, Instance) {
  Instance in = FullInstance();
  auto out = DecodeInstance(Encode(in), kSource);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->id, in.id);
  EXPECT_EQ(out->region, in.region);
  EXPECT_EQ(out->state, in.state);
  EXPECT_EQ(out->address, in.address);
  EXPECT_EQ(out->model, in.model);
  EXPECT_EQ(out->capacity, in.capacity);
  EXPECT_EQ(out->attestation_b64, in.attestation_b64);
  EXPECT_EQ(out->capacity_type, in.capacity_type);
  EXPECT_EQ(out->updated_unix_ms, in.updated_unix_ms);
}

TEST(RecordRoundTripTest, InstanceInEveryState) {
  for (InstanceState state :
       {InstanceState::kLaunching, InstanceState::kLoading, InstanceState::kAttesting,
        InstanceState::kServing, InstanceState::kDraining, InstanceState::kWiping,
        InstanceState::kVerified, InstanceState::kFailed}) {
    Instance in = FullInstance();
    in.state = state;
    auto out = DecodeInstance(Encode(in), kSource);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(out->state, state) << InstanceStateName(state);
  }
}

TEST(RecordRoundTripTest, ModelDeployment) {
  ModelDeployment in = FullModelDeployment();
  auto out = DecodeModelDeployment(Encode(in), kSource);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->model, in.model);
  EXPECT_EQ(out->region, in.region);
  EXPECT_EQ(out->manifest_digest, in.manifest_digest);
  EXPECT_EQ(out->desired_instances, in.desired_instances);
}

TEST(RecordRoundTripTest, Tenant) {
  Tenant in = FullTenant();
  auto out = DecodeTenant(Encode(in), kSource);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->id, in.id);
  EXPECT_EQ(out->display_name, in.display_name);
  EXPECT_EQ(out->api_key_hashes, in.api_key_hashes);
  EXPECT_EQ(out->policy_id, in.policy_id);
  EXPECT_EQ(out->requests_per_second, in.requests_per_second);
  EXPECT_EQ(out->max_concurrent_requests, in.max_concurrent_requests);
  EXPECT_EQ(out->allowed_regions, in.allowed_regions);
  EXPECT_EQ(out->allow_plaintext, in.allow_plaintext);
}

TEST(RecordRoundTripTest, Policy) {
  Policy in = FullPolicy();
  auto out = DecodePolicy(Encode(in), kSource);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->id, in.id);
  EXPECT_EQ(out->measurements, in.measurements);  // digests keep the case they had
  EXPECT_EQ(out->allow_debug, in.allow_debug);
  EXPECT_EQ(out->max_document_age_seconds, in.max_document_age_seconds);
}

TEST(RecordRoundTripTest, PolicyWithNoMeasurementSets) {
  // A debug-only policy lists no sets; that is different from a set with no PCRs.
  Policy in = FullPolicy();
  in.measurements.clear();
  auto out = DecodePolicy(Encode(in), kSource);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(out->measurements.empty());
}

TEST(RecordRoundTripTest, RouterEndpoint) {
  RouterEndpoint in = FullRouterEndpoint();
  auto out = DecodeRouterEndpoint(Encode(in), kSource);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->id, in.id);
  EXPECT_EQ(out->region, in.region);
  EXPECT_EQ(out->tier, in.tier);
  EXPECT_EQ(out->address, in.address);
}

TEST(RecordRoundTripTest, EncodingStartsWithSchemaThenKindAndUsesSnakeCase) {
  EXPECT_EQ(Encode(FullRouterEndpoint()),
            R"({"schema":1,"kind":"RouterEndpoint","id":"router-a","region":"us-east-1",)"
            R"("tier":"regional","address":"https://10.0.0.2:8443"})");
  for (const Sample& sample : AllSamples()) {
    std::string start = std::string(R"({"schema":1,"kind":")") + sample.kind + "\",";
    EXPECT_EQ(sample.encoded.rfind(start, 0), 0u) << sample.encoded;
  }
}

TEST(RecordRoundTripTest, ExtremeIntegersSurvive) {
  Instance in = FullInstance();
  in.capacity = INT64_MAX;
  in.updated_unix_ms = INT64_MIN;
  auto out = DecodeInstance(Encode(in), kSource);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->capacity, INT64_MAX);
  EXPECT_EQ(out->updated_unix_ms, INT64_MIN);
}

TEST(RecordRoundTripTest, UnknownFieldsAreIgnored) {
  // A newer binary may add fields within schema 1; this one must still read the record.
  std::string encoded = Edit(Encode(FullInstance()), [](Json& object) {
    object["zone"] = "us-west-2a";
    object["gpu"] = {{"kind", "h100"}, {"count", 8}, {"nested", {{1, 2}, {3, {4}}}}};
  });
  auto out = DecodeInstance(encoded, kSource);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->id, "i-0abc");
}

// ---------------------------------------------------------------------------------------
// Schema versions

TEST(RecordSchemaTest, FutureSchemaIsRefusedWithFailedPreconditionNamingTheKey) {
  for (const Sample& sample : AllSamples()) {
    std::string future = Edit(sample.encoded, [](Json& object) { object["schema"] = 2; });
    base::Status status = sample.decode(future);
    EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << sample.kind;
    EXPECT_EQ(status.message(), std::string("record at ") + kSource +
                                    " has schema 2; this binary reads up to 1: upgrade "
                                    "supercluster");
  }
}

TEST(RecordSchemaTest, FutureSchemaIsRefusedEvenWhenTheRestIsUnreadable) {
  // A newer schema may have renamed every field; the version must be judged first.
  base::Status status =
      DecodeTenant(R"({"schema":7,"kind":"TenantV7","name":1})", kSource).status();
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << status.ToString();
  EXPECT_NE(status.message().find("has schema 7"), std::string::npos);

  status = DecodeTenant(R"({"schema":18446744073709551615,"kind":"Tenant"})", kSource).status();
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << status.ToString();
  // Beyond 64 bits the parser gives a double; still a newer schema, not a broken record.
  for (const char* schema : {"18446744073709551616", "99999999999999999999999", "1e300"}) {
    status = DecodeTenant(std::string(R"({"schema":)") + schema + R"(,"kind":"Tenant"})",
                          kSource)
                 .status();
    EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << schema << ": "
                                                              << status.ToString();
  }
}

TEST(RecordSchemaTest, MissingOrInvalidSchemaIsDataLoss) {
  std::string encoded = Encode(FullRegion());
  ExpectDataLoss(DecodeRegion(Edit(encoded, [](Json& o) { o.erase("schema"); }), kSource).status(),
                 "'schema' is missing");
  ExpectDataLoss(DecodeRegion(Edit(encoded, [](Json& o) { o["schema"] = 0; }), kSource).status(),
                 "'schema'");
  ExpectDataLoss(DecodeRegion(Edit(encoded, [](Json& o) { o["schema"] = -3; }), kSource).status(),
                 "'schema'");
  ExpectDataLoss(
      DecodeRegion(Edit(encoded, [](Json& o) { o["schema"] = "1"; }), kSource).status(),
      "'schema' must be an integer, got string");
  ExpectDataLoss(
      DecodeRegion(Edit(encoded, [](Json& o) { o["schema"] = 1.0; }), kSource).status(),
      "'schema' must be an integer, got number");
}

// ---------------------------------------------------------------------------------------
// Kinds, fields and types

TEST(RecordDecodeTest, WrongKindIsRefused) {
  ExpectDataLoss(DecodeTenant(Encode(FullRegion()), kSource).status(),
                 "kind \"Region\", expected Tenant");
  for (const Sample& sample : AllSamples()) {
    std::string renamed = Edit(sample.encoded, [](Json& o) { o["kind"] = "Something"; });
    ExpectDataLoss(sample.decode(renamed), "expected " + std::string(sample.kind));
    std::string missing = Edit(sample.encoded, [](Json& o) { o.erase("kind"); });
    ExpectDataLoss(sample.decode(missing), "'kind' is missing");
  }
}

TEST(RecordDecodeTest, LongKindIsShortenedInTheMessage) {
  std::string encoded =
      Edit(Encode(FullRegion()), [](Json& o) { o["kind"] = std::string(100000, 'K'); });
  base::Status status = DecodeRegion(encoded, kSource).status();
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_LT(status.message().size(), 200u) << status.message();
}

TEST(RecordDecodeTest, EveryMissingFieldIsNamed) {
  for (const Sample& sample : AllSamples()) {
    const Json parsed = Json::parse(sample.encoded);
    for (const auto& item : parsed.items()) {
      const std::string field = item.key();
      if (field == "schema" || field == "kind") continue;
      std::string damaged = Edit(sample.encoded, [&](Json& o) { o.erase(field); });
      SCOPED_TRACE(std::string(sample.kind) + "." + field);
      ExpectDataLoss(sample.decode(damaged), "field '" + field + "' is missing");
    }
  }
}

TEST(RecordDecodeTest, EveryFieldOfTheWrongTypeIsNamed) {
  // An object is the wrong type for every field of every record.
  for (const Sample& sample : AllSamples()) {
    const Json parsed = Json::parse(sample.encoded);
    for (const auto& item : parsed.items()) {
      const std::string field = item.key();
      if (field == "schema" || field == "kind") continue;
      std::string damaged =
          Edit(sample.encoded, [&](Json& o) { o[field] = Json::object({{"x", 1}}); });
      SCOPED_TRACE(std::string(sample.kind) + "." + field);
      ExpectDataLoss(sample.decode(damaged), "field '" + field + "' must be");
    }
  }
}

TEST(RecordDecodeTest, ScalarTypesAreStrict) {
  std::string instance = Encode(FullInstance());
  ExpectDataLoss(
      DecodeInstance(Edit(instance, [](Json& o) { o["capacity"] = "48"; }), kSource).status(),
      "'capacity' must be an integer, got string");
  ExpectDataLoss(
      DecodeInstance(Edit(instance, [](Json& o) { o["capacity"] = 1.5; }), kSource).status(),
      "'capacity' must be an integer");
  ExpectDataLoss(
      DecodeInstance(Edit(instance, [](Json& o) { o["capacity"] = nullptr; }), kSource).status(),
      "'capacity' must be an integer, got null");
  ExpectDataLoss(
      DecodeInstance(Edit(instance, [](Json& o) { o["address"] = 7; }), kSource).status(),
      "'address' must be a string, got number");

  std::string region = Encode(FullRegion());
  ExpectDataLoss(
      DecodeRegion(Edit(region, [](Json& o) { o["accepting"] = 1; }), kSource).status(),
      "'accepting' must be true or false");
  ExpectDataLoss(
      DecodeRegion(Edit(region, [](Json& o) { o["peers"] = "us-east-1"; }), kSource).status(),
      "'peers' must be an array of strings");
  ExpectDataLoss(DecodeRegion(Edit(region, [](Json& o) { o["peers"] = {"us-east-1", 5}; }),
                              kSource)
                     .status(),
                 "'peers[1]' must be a string");
}

TEST(RecordDecodeTest, IntegersOutsideInt64AreRefused) {
  std::string too_big = Edit(Encode(FullInstance()), [](Json& o) {
    o["capacity"] = uint64_t{9223372036854775808u};
  });
  ExpectDataLoss(DecodeInstance(too_big, kSource).status(), "'capacity' is out of range");
}

TEST(RecordDecodeTest, RequestsPerSecondAcceptsAnyNumber) {
  std::string whole = Edit(Encode(FullTenant()), [](Json& o) { o["requests_per_second"] = 5; });
  auto tenant = DecodeTenant(whole, kSource);
  ASSERT_TRUE(tenant.ok()) << tenant.status().ToString();
  EXPECT_EQ(tenant->requests_per_second, 5.0);
}

TEST(RecordDecodeTest, UnknownInstanceStateIsRefused) {
  for (const char* bad : {"running", "Serving", "", "serving "}) {
    std::string encoded = Edit(Encode(FullInstance()), [&](Json& o) { o["state"] = bad; });
    ExpectDataLoss(DecodeInstance(encoded, kSource).status(), "'state' is invalid");
  }
}

TEST(RecordInstanceStateTest, NamesParseBack) {
  EXPECT_STREQ(InstanceStateName(InstanceState::kServing), "serving");
  for (const char* name : {"launching", "loading", "attesting", "serving", "draining", "wiping",
                           "verified", "failed"}) {
    auto state = ParseInstanceState(name);
    ASSERT_TRUE(state.ok()) << name;
    EXPECT_STREQ(InstanceStateName(*state), name);
  }
  EXPECT_EQ(ParseInstanceState("SERVING").status().code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------
// Policy measurements

std::string PolicyWithSet(const Json& set) {
  return Edit(Encode(FullPolicy()), [&](Json& o) { o["measurements"] = Json::array({set}); });
}

TEST(RecordPolicyTest, BadPcrIndexesAreRefused) {
  for (const char* index : {"32", "-1", "07", "+7", " 7", "x", "", "100", "4294967296"}) {
    SCOPED_TRACE(index);
    ExpectDataLoss(DecodePolicy(PolicyWithSet({{index, Digest('a')}}), kSource).status(),
                   "PCR index");
  }
  auto highest = DecodePolicy(PolicyWithSet({{"31", Digest('a')}}), kSource);
  EXPECT_TRUE(highest.ok()) << highest.status().ToString();
}

TEST(RecordPolicyTest, BadDigestsAreRefused) {
  std::string not_hex = Digest('a');
  not_hex[50] = 'g';
  for (const std::string& digest : {std::string(95, 'a'), std::string(97, 'a'), std::string(),
                                    std::string(64, 'a'), not_hex}) {
    SCOPED_TRACE(digest);
    ExpectDataLoss(DecodePolicy(PolicyWithSet({{"4", digest}}), kSource).status(),
                   "'measurements[0].4' must be 96 hex digits");
  }
  ExpectDataLoss(DecodePolicy(PolicyWithSet({{"4", 12}}), kSource).status(),
                 "'measurements[0].4' must be a hex string");
}

// 0 or less would turn the age check off; more than a year is no freshness at all.
TEST(RecordPolicyTest, DocumentAgesOutsideOneSecondToAYearAreRefused) {
  for (int64_t age : {int64_t{0}, int64_t{-1}, int64_t{365 * 24 * 3600 + 1},
                      std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()}) {
    SCOPED_TRACE(age);
    std::string encoded =
        Edit(Encode(FullPolicy()), [age](Json& o) { o["max_document_age_seconds"] = age; });
    ExpectDataLoss(DecodePolicy(encoded, kSource).status(), "'max_document_age_seconds' is");
  }
  for (int64_t age : {int64_t{1}, int64_t{365 * 24 * 3600}}) {
    std::string encoded =
        Edit(Encode(FullPolicy()), [age](Json& o) { o["max_document_age_seconds"] = age; });
    auto policy = DecodePolicy(encoded, kSource);
    ASSERT_TRUE(policy.ok()) << age << ": " << policy.status().ToString();
    EXPECT_EQ(policy->max_document_age_seconds, age);
  }
}

TEST(RecordPolicyTest, MalformedSetsAreRefused) {
  ExpectDataLoss(DecodePolicy(PolicyWithSet(Json::object()), kSource).status(),
                 "'measurements[0]' names no PCRs");
  ExpectDataLoss(DecodePolicy(PolicyWithSet(Json::array({Digest('a')})), kSource).status(),
                 "'measurements[0]' must be an object");
  std::string not_a_list =
      Edit(Encode(FullPolicy()), [](Json& o) { o["measurements"] = {{"0", Digest('a')}}; });
  ExpectDataLoss(DecodePolicy(not_a_list, kSource).status(), "'measurements' must be an array");
}

// ---------------------------------------------------------------------------------------
// Bytes that are not a record at all

TEST(RecordBytesTest, NotAnObjectIsRefused) {
  for (const char* bytes : {"", " ", "null", "[]", "\"Region\"", "1", "true"}) {
    SCOPED_TRACE(bytes);
    EXPECT_EQ(DecodeRegion(bytes, kSource).status().code(), StatusCode::kDataLoss);
  }
}

TEST(RecordBytesTest, EveryTruncationIsRefused) {
  for (const Sample& sample : AllSamples()) {
    for (size_t length = 0; length < sample.encoded.size(); ++length) {
      base::Status status = sample.decode(sample.encoded.substr(0, length));
      ASSERT_EQ(status.code(), StatusCode::kDataLoss) << sample.kind << " cut at " << length;
    }
  }
}

TEST(RecordBytesTest, TrailingGarbageIsRefused) {
  ExpectDataLoss(DecodeRegion(Encode(FullRegion()) + "x", kSource).status(), "not valid JSON");
  ExpectDataLoss(DecodeRegion(Encode(FullRegion()) + "{}", kSource).status(), "not valid JSON");
}

TEST(RecordBytesTest, DeepNestingIsRefusedWithoutParsing) {
  ExpectDataLoss(DecodeRegion(std::string(1'000'000, '['), kSource).status(), "nested deeper");
  ExpectDataLoss(DecodeRegion(std::string(1'000'000, '{'), kSource).status(), "nested deeper");
  // The same inside a real record, in a field this binary would ignore.
  std::string encoded = Encode(FullRegion());
  std::string hidden = encoded.substr(0, encoded.size() - 1) + ",\"x\":" +
                       std::string(100'000, '[') + std::string(100'000, ']') + "}";
  ExpectDataLoss(DecodeRegion(hidden, kSource).status(), "nested deeper");
}

TEST(RecordBytesTest, NestingUpToTheLimitIsAccepted) {
  // The record object is level 1, so 63 arrays inside it reach the limit of 64 exactly.
  std::string encoded = Encode(FullRegion());
  auto with_arrays = [&](int arrays) {
    return encoded.substr(0, encoded.size() - 1) + ",\"x\":" + std::string(arrays, '[') +
           std::string(arrays, ']') + "}";
  };
  EXPECT_TRUE(DecodeRegion(with_arrays(63), kSource).ok());
  ExpectDataLoss(DecodeRegion(with_arrays(64), kSource).status(), "nested deeper");
}

TEST(RecordBytesTest, BracketsInsideStringsDoNotCountAsNesting) {
  Region region = FullRegion();
  region.display_name = "\"\\[" + std::string(10'000, '[') + "\\";
  auto out = DecodeRegion(Encode(region), kSource);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->display_name, region.display_name);
}

TEST(RecordBytesTest, OversizedBytesAreRefused) {
  Region region = FullRegion();
  region.display_name = std::string((1 << 20) + 1, 'n');
  ExpectDataLoss(DecodeRegion(Encode(region), kSource).status(), "over the 1048576-byte limit");
}

TEST(RecordBytesTest, InvalidUtf8InStoredBytesIsRefused) {
  // JSON text is UTF-8 and the parser checks it: bytes another writer stored with a raw
  // 0xFF, a lone continuation byte or an overlong '/' are refused as corrupt rather than
  // passed on to code that may print or compare them.
  for (const char* bad : {"\xff", "\x80", "\xc0\xaf", "\xed\xa0\x80"}) {
    std::string encoded = R"({"schema":1,"kind":"Region","name":"us-east-1","display_name":")" +
                          std::string(bad) + R"(","peers":[],"accepting":true})";
    ExpectDataLoss(DecodeRegion(encoded, kSource).status(), "not valid JSON");
  }
}

TEST(RecordBytesTest, InvalidUtf8InARecordIsReplacedWhenEncoding) {
  // Encode cannot fail, so bytes that are not UTF-8 become U+FFFD; the record stays
  // readable and the damage is visible instead of silent.
  Region region = FullRegion();
  region.display_name = "bad \xff byte";
  auto out = DecodeRegion(Encode(region), kSource);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->display_name, "bad \xEF\xBF\xBD byte");
}

TEST(RecordBytesTest, EscapedNulAndUnicodeRoundTrip) {
  Tenant tenant = FullTenant();
  tenant.display_name = std::string("nul\0here \xF0\x9F\x9A\x80", 13);
  auto out = DecodeTenant(Encode(tenant), kSource);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->display_name, tenant.display_name);
}

TEST(RecordBytesTest, RandomDamageNeverCrashes) {
  // Flips, inserts and deletes bytes in every record type; each decode must return, with
  // either a record or kDataLoss / kFailedPrecondition.
  std::mt19937 random(20240605);
  for (const Sample& sample : AllSamples()) {
    for (int round = 0; round < 2000; ++round) {
      std::string bytes = sample.encoded;
      int edits = 1 + static_cast<int>(random() % 4);
      for (int e = 0; e < edits && !bytes.empty(); ++e) {
        size_t at = random() % bytes.size();
        switch (random() % 3) {
          case 0: bytes[at] = static_cast<char>(random() % 256); break;
          case 1: bytes.insert(at, 1, "[{\"\\:,]}0"[random() % 9]); break;
          default: bytes.erase(at, 1); break;
        }
      }
      base::Status status = sample.decode(bytes);
      EXPECT_TRUE(status.ok() || status.code() == StatusCode::kDataLoss ||
                  status.code() == StatusCode::kFailedPrecondition)
          << status.ToString();
    }
  }
}

}  // namespace
}  // namespace supercluster::store
