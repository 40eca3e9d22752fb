// Tests the etcd gateway codec (etcd_json.h) on the shapes a real etcd 3.4 sends, captured
// from one, and on malformed and hostile input, none of which may crash or throw.
#include "store/etcd_json.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace supercluster::store::etcd {
namespace {

using nlohmann::json;

json Object(std::string_view text) {
  auto parsed = ParseObject(text);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
  return parsed.ok() ? *parsed : json::object();
}

TEST(EtcdPrefixTest, RangeEndIsTheFirstKeyPastThePrefix) {
  EXPECT_EQ(PrefixRangeStart("a/"), "a/");
  EXPECT_EQ(PrefixRangeEnd("a/"), "a0");
  EXPECT_EQ(PrefixRangeEnd("a\xff"), "b");
  // The whole key space, and prefixes that cannot be increased, run to the end.
  EXPECT_EQ(PrefixRangeStart(""), std::string(1, '\0'));
  EXPECT_EQ(PrefixRangeEnd(""), std::string(1, '\0'));
  EXPECT_EQ(PrefixRangeEnd("\xff\xff"), std::string(1, '\0'));
}

TEST(EtcdJsonTest, Int64FieldsAcceptEtcdsStringsAndPlainNumbers) {
  json object = Object(R"({"s":"123","n":5,"neg":"-7","max":"9223372036854775807"})");
  EXPECT_EQ(*Int64Field(object, "s"), 123);
  EXPECT_EQ(*Int64Field(object, "n"), 5);
  EXPECT_EQ(*Int64Field(object, "neg"), -7);
  EXPECT_EQ(*Int64Field(object, "max"), INT64_MAX);
  EXPECT_EQ(*Int64Field(object, "absent"), 0) << "the gateway omits zero values";
}

TEST(EtcdJsonTest, Int64FieldsRejectWhatIsNotAnInt64) {
  json object = Object(R"({"over":"9223372036854775808","huge":18446744073709551615,
      "float":1.5,"exp":"1e3","bool":true,"empty":"","plus":"+1","space":" 1"})");
  for (const char* name : {"over", "huge", "float", "exp", "bool", "empty", "plus", "space"}) {
    auto value = Int64Field(object, name);
    EXPECT_FALSE(value.ok()) << name;
    if (!value.ok()) {
      EXPECT_EQ(value.status().code(), base::StatusCode::kDataLoss);
    }
  }
  // A number past a double's range either fails to parse or is still not an int64.
  auto infinite = ParseObject(R"({"inf":1e999})");
  if (infinite.ok()) {
    EXPECT_FALSE(Int64Field(*infinite, "inf").ok());
  }
}

TEST(EtcdJsonTest, ParsesARangeAnswer) {
  json answer = Object(R"({"header":{"cluster_id":"10209395086029371855","member_id":"1351",
      "revision":"3","raft_term":"2"},"kvs":[{"key":"YS8x","create_revision":"2",
      "mod_revision":"2","version":"1","value":"djE="},{"key":"YS8y","create_revision":"3",
      "mod_revision":"3","version":"1","lease":"3656819652204491799"}],"more":true,"count":"2"})");
  EXPECT_EQ(*HeaderRevision(answer), 3);
  auto kvs = ParseKeyValues(answer);
  ASSERT_TRUE(kvs.ok());
  ASSERT_EQ(kvs->size(), 2u);
  EXPECT_EQ((*kvs)[0], (KeyValue{"a/1", "v1", 2, 2, 1, 0}));
  EXPECT_EQ((*kvs)[1], (KeyValue{"a/2", "", 3, 3, 1, 3656819652204491799}))
      << "an empty value is omitted by the gateway";
  EXPECT_TRUE(*BoolField(answer, "more"));
  EXPECT_TRUE(ParseKeyValues(Object(R"({"header":{"revision":"3"}})"))->empty());
}

TEST(EtcdJsonTest, RejectsMalformedKeyValues) {
  for (std::string_view bad :
       {R"({"kvs":{"key":"YQ=="}})", R"({"kvs":[{"key":"!!"}]})", R"({"kvs":[{}]})",
        R"({"kvs":[{"key":"YQ==","version":"x"}]})", R"({"kvs":[17]})", R"({"kvs":[{"key":5}]})"}) {
    EXPECT_FALSE(ParseKeyValues(Object(bad)).ok()) << bad;
  }
  EXPECT_FALSE(HeaderRevision(Object(R"({"header":"x"})")).ok());
  EXPECT_FALSE(HeaderRevision(Object(R"({})")).ok());
  EXPECT_FALSE(HeaderRevision(Object(R"({"header":{"revision":"-3"}})")).ok());
}

TEST(EtcdJsonTest, ParseObjectRejectsNonObjectsAndHostileText) {
  EXPECT_FALSE(ParseObject("").ok());
  EXPECT_FALSE(ParseObject("[1,2]").ok());
  EXPECT_FALSE(ParseObject("null").ok());
  EXPECT_FALSE(ParseObject(R"({"header":{"revision":"5")").ok());
  EXPECT_FALSE(ParseObject(std::string(200000, '[')).ok());
  EXPECT_FALSE(ParseObject("{\"a\":\"\xff\xfe\"}").ok()) << "not UTF-8";
}

TEST(EtcdJsonTest, MapsEtcdErrorsToStatusCodes) {
  auto lease = ParseGatewayError(R"({"error":"etcdserver: requested lease not found",)"
                                 R"("message":"etcdserver: requested lease not found","code":5})");
  ASSERT_TRUE(lease.has_value());
  EXPECT_EQ(lease->grpc_code, 5);
  EXPECT_EQ(StatusFromGatewayError(*lease).code(), base::StatusCode::kNotFound);
  EXPECT_EQ(StatusFromGatewayError(*lease).message(), "etcdserver: requested lease not found");

  auto compacted = ParseGatewayError(
      R"({"message":"etcdserver: mvcc: required revision has been compacted","code":11})");
  EXPECT_EQ(StatusFromGatewayError(*compacted).code(), base::StatusCode::kDataLoss);
  auto future = ParseGatewayError(
      R"({"message":"etcdserver: mvcc: required revision is a future revision","code":11})");
  EXPECT_EQ(StatusFromGatewayError(*future).code(), base::StatusCode::kInvalidArgument);
  auto token = ParseGatewayError(R"({"error":"etcdserver: invalid auth token","code":16})");
  EXPECT_TRUE(IsInvalidToken(*token));
  EXPECT_EQ(StatusFromGatewayError(*token).code(), base::StatusCode::kPermissionDenied);
  auto login = ParseGatewayError(
      R"({"message":"etcdserver: authentication failed, invalid user ID or password","code":3})");
  EXPECT_EQ(StatusFromGatewayError(*login).code(), base::StatusCode::kPermissionDenied);
  auto no_leader = ParseGatewayError(R"({"message":"etcdserver: no leader","code":14})");
  EXPECT_TRUE(IsRefusedBeforeApply(*no_leader));
  EXPECT_EQ(StatusFromGatewayError(*no_leader).code(), base::StatusCode::kUnavailable);
  auto timed_out = ParseGatewayError(R"({"message":"etcdserver: request timed out","code":14})");
  EXPECT_FALSE(IsRefusedBeforeApply(*timed_out)) << "a timed-out write may still be applied";
}

TEST(EtcdJsonTest, ErrorBodiesThatAreNotEtcdsGiveNothing) {
  EXPECT_FALSE(ParseGatewayError("<html>502 Bad Gateway</html>").has_value());
  EXPECT_FALSE(ParseGatewayError(R"({"message":"x"})").has_value());
  EXPECT_FALSE(ParseGatewayError(R"({"code":"x"})").has_value());
  auto huge = ParseGatewayError(R"({"code":99999999999999999999,"message":"x"})");
  EXPECT_FALSE(huge.has_value());
  auto odd = ParseGatewayError(R"({"code":123456789012,"message":"x"})");
  ASSERT_TRUE(odd.has_value());
  EXPECT_EQ(StatusFromGatewayError(*odd).code(), base::StatusCode::kUnavailable);
}

TEST(EtcdJsonTest, ParsesWatchResponsesAsEtcdSendsThem) {
  std::optional<GatewayError> error;
  auto result = ParseStreamResult(
      R"({"result":{"header":{"revision":"9"},"events":[{"kv":{"key":"YS81","create_revision":"9",)"
      R"("mod_revision":"9","version":"1","value":"eA=="}},{"type":"DELETE","kv":{"key":"YS8x",)"
      R"("mod_revision":"9"}}]}})",
      &error);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_FALSE(error.has_value());
  auto response = ParseWatchResponse(*result);
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  ASSERT_EQ(response->events.size(), 2u);
  EXPECT_EQ(response->events[0].kind, WatchEvent::Kind::kPut) << "PUT is the omitted zero value";
  EXPECT_EQ(response->events[0].kv, (KeyValue{"a/5", "x", 9, 9, 1, 0}));
  EXPECT_EQ(response->events[1].kind, WatchEvent::Kind::kDelete);
  EXPECT_EQ(response->events[1].kv, (KeyValue{"a/1", "", 0, 9, 0, 0}));

  auto compacted =
      ParseWatchResponse(Object(R"({"header":{},"canceled":true,"compact_revision":"7"})"));
  ASSERT_TRUE(compacted.ok());
  EXPECT_TRUE(compacted->canceled);
  EXPECT_EQ(compacted->compact_revision, 7);
  auto refused = ParseWatchResponse(
      Object(R"({"watch_id":"-1","created":true,"canceled":true,"cancel_reason":)"
             R"("rpc error: code = Unauthenticated desc = etcdserver: invalid auth token"})"));
  ASSERT_TRUE(refused.ok());
  EXPECT_TRUE(refused->created);
  EXPECT_NE(refused->cancel_reason.find("invalid auth token"), std::string::npos);
}

TEST(EtcdJsonTest, StreamErrorsAreReportedAsSuch) {
  std::optional<GatewayError> error;
  auto result = ParseStreamResult(
      R"({"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader",)"
      R"("http_status":"Service Unavailable"}})",
      &error);
  EXPECT_FALSE(result.ok());
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->grpc_code, 14);
  EXPECT_EQ(error->message, "etcdserver: no leader");
  std::optional<GatewayError> none;
  EXPECT_FALSE(ParseStreamResult(R"({"something":"else"})", &none).ok());
  EXPECT_FALSE(none.has_value());
}

TEST(EtcdJsonTest, RejectsMalformedWatchResponses) {
  for (std::string_view bad :
       {R"({"events":{}})",
        R"({"events":[{"type":"MOVE","kv":{"key":"YQ==","mod_revision":"2"}}]})",
        R"({"events":[{"type":"PUT"}]})", R"({"events":[{"kv":{"key":"YQ=="}}]})",
        R"({"created":"yes"})", R"({"compact_revision":[1]})", R"({"events":[null]})"}) {
    EXPECT_FALSE(ParseWatchResponse(Object(bad)).ok()) << bad;
  }
}

TEST(EtcdJsonSplitterTest, CutsConcatenatedObjectsAtAnyByteBoundary) {
  std::string stream =
      "{\"result\":{\"a\":\"}{\\\"\"}}\n{\"result\":{\"b\":[1,{\"c\":2}]}}{\"x\":1}  \n";
  std::vector<std::string> expected = {"{\"result\":{\"a\":\"}{\\\"\"}}",
                                       "{\"result\":{\"b\":[1,{\"c\":2}]}}", "{\"x\":1}"};
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    JsonObjectSplitter splitter(1000);
    std::vector<std::string> objects;
    ASSERT_TRUE(splitter.Feed(stream.substr(0, cut), &objects).ok());
    ASSERT_TRUE(splitter.Feed(stream.substr(cut), &objects).ok());
    EXPECT_EQ(objects, expected) << "cut at " << cut;
  }
}

TEST(EtcdJsonSplitterTest, RejectsGarbageAndOversizedObjects) {
  std::vector<std::string> objects;
  JsonObjectSplitter garbage(1000);
  EXPECT_FALSE(garbage.Feed("{\"a\":1}\nHTTP/1.1 200 OK", &objects).ok());
  EXPECT_EQ(objects.size(), 1u) << "objects before the garbage are still handed out";

  JsonObjectSplitter small(64);
  objects.clear();
  EXPECT_FALSE(small.Feed("{\"a\":\"" + std::string(100, 'x') + "\"}", &objects).ok());
  EXPECT_TRUE(objects.empty());
}

}  // namespace
}  // namespace supercluster::store::etcd
