#include "router/requested_model.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace supercluster::router {
namespace {

using Problem = RequestedModel::Problem;

// The oracle: what a full nlohmann parse (what the router did before, and what the worker
// does) makes of the body.
RequestedModel FullParse(std::string_view body) {
  const nlohmann::json parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) return {Problem::kNotAnObject, ""};
  auto model = parsed.find("model");
  if (model == parsed.end() || !model->is_string() || model->get<std::string>().empty()) {
    return {Problem::kNoModel, ""};
  }
  return {Problem::kNone, model->get<std::string>()};
}

void ExpectSameAsFullParse(std::string_view body) {
  const RequestedModel expected = FullParse(body);
  const RequestedModel actual = ReadRequestedModel(body);
  EXPECT_EQ(actual.problem, expected.problem) << "body: " << body;
  EXPECT_EQ(actual.model, expected.model) << "body: " << body;
}

const std::vector<std::string> kBodies = {
    R"({"model":"kjv","prompt":"In the beginning","max_tokens":8})",
    R"({"prompt":"x","model":"m-2","stream":true,"stop":["\n"]})",
    R"({"model":"chat","messages":[{"role":"user","content":"hi","model":"inner"}]})",
    R"({"messages":[{"model":"only-inner"}]})",
    R"({"options":{"model":"nested"},"model":"outer"})",
    R"({"model":"first","model":"last"})",
    R"({"model":"first","model":7})",
    R"({"model":7,"model":"later"})",
    R"({"model":{"name":"x"}})",
    R"({"model":["a"]})",
    R"({"model":null})",
    R"({"model":true})",
    R"({"model":1.5})",
    R"({"model":""})",
    R"({"model":"\u00e9t\u00e9 \ud83d\ude00"})",
    R"({"model":"a\"b\\c"})",
    R"(  {"model" : "spaced"}  )",
    R"({})",
    R"([{"model":"in an array"}])",
    R"("model")",
    R"(42)",
    R"(null)",
    "",
    "   ",
    R"({"model":"x"} trailing)",
    R"({"model":"x"}{"model":"y"})",
    R"({"model":"x",})",
    R"({"model":"x")",
    R"({model:"x"})",
    R"({'model':'x'})",
    R"({"model":"x\q"})",
    R"({"model":"bad utf-8 )" "\xff" R"("})",
    std::string(R"({"model":"nul)") + '\0' + R"("})",
};

TEST(ReadRequestedModelTest, AgreesWithAFullParseOnEachBody) {
  for (const std::string& body : kBodies) ExpectSameAsFullParse(body);
}

// What a scanner of its own could get wrong where JSON (and nlohmann) is particular.
const std::vector<std::string> kEdgeBodies = {
    // byte order mark: a whole one is skipped, a partial one is an error
    "\xEF\xBB\xBF{\"model\":\"bom\"}", "\xEF\xBB{\"model\":\"x\"}", "\xEF\xBB\xBF",
    "\xEF{}", " \xEF\xBB\xBF{}",
    // a NUL where a token would start ends the input; inside a token it is an error
    std::string("{\"model\":\"x\"}") + '\0' + "trailing", std::string("{\"model\":\"x\"} ") + '\0',
    std::string("{") + '\0' + "}", std::string("{\"model\":") + '\0' + "\"x\"}",
    std::string("{\"model\":tr") + '\0' + "ue}", std::string("{\"mo") + '\0' + "del\":\"x\"}",
    // escapes, in keys too
    R"({"mod\u0065l":"escaped key"})", R"({"\u006d\u006f\u0064\u0065\u006c":"all escaped"})",
    R"({"model":"tab\tquote\"slash\/back\\bell\b\f\n\r"})", R"({"model":"\u0000"})",
    R"({"model":"\u00E9\u00e9"})", R"({"model":"\ud83d\ude00 pair"})", R"({"model":"\ud83d alone"})",
    R"({"model":"\ude00 low first"})", R"({"model":"\ud83d\u0041"})", R"({"model":"\ud83d\"})",
    R"({"model":"\u12"})", R"({"model":"\u12G4"})", R"({"model":"\U0041"})", R"({"model":"\x41"})",
    R"({"model":"\'"})", "{\"model\":\"\\",
    // raw bytes in strings: control characters, DEL, and UTF-8 well or badly formed
    "{\"model\":\"a\tb\"}", "{\"model\":\"a\x1f\"}", "{\"model\":\"a\x7f\"}",
    "{\"model\":\"\xc3\xa9\"}", "{\"model\":\"\xc0\x80\"}", "{\"model\":\"\xc1\xbf\"}",
    "{\"model\":\"\xe0\x80\x80\"}", "{\"model\":\"\xe0\xa0\x80\"}", "{\"model\":\"\xed\x9f\xbf\"}",
    "{\"model\":\"\xed\xa0\x80\"}", "{\"model\":\"\xef\xbf\xbf\"}", "{\"model\":\"\xf0\x8f\xbf\xbf\"}",
    "{\"model\":\"\xf0\x90\x80\x80\"}", "{\"model\":\"\xf4\x8f\xbf\xbf\"}", "{\"model\":\"\xf4\x90\x80\x80\"}",
    "{\"model\":\"\xf5\x80\x80\x80\"}", "{\"model\":\"\xe2\x82\"}", "{\"model\":\"\xe2\x82",
    "{\"model\":\"\x80\"}", "{\"model\":\"\xf0\x9f\x98\"}",
    // numbers
    R"({"model":"m","n":0})", R"({"model":"m","n":-0})", R"({"model":"m","n":01})",
    R"({"model":"m","n":1.})", R"({"model":"m","n":.5})", R"({"model":"m","n":-})",
    R"({"model":"m","n":+1})", R"({"model":"m","n":1e})", R"({"model":"m","n":1e+})",
    R"({"model":"m","n":1E+2})", R"({"model":"m","n":1.5e-3})", R"({"model":"m","n":1.5.3})",
    R"({"model":"m","n":1e308})", R"({"model":"m","n":1e309})", R"({"model":"m","n":-1e309})",
    R"({"model":"m","n":1.7976931348623157e308})", R"({"model":"m","n":1.7976931348623159e308})",
    R"({"model":"m","n":1e-400})", R"({"model":"m","n":-1e-400})", R"({"model":"m","n":0.0000e-999999})",
    R"({"model":"m","n":4.9e-324})", R"({"model":"m","n":18446744073709551615})",
    R"({"model":"m","n":18446744073709551616})", R"({"model":"m","n":-9223372036854775809})",
    "{\"model\":\"m\",\"n\":" + std::string(400, '9') + "}",
    "{\"model\":\"m\",\"n\":0." + std::string(400, '0') + "1}",
    "{\"model\":\"m\",\"n\":1e99999999999999999999}",
    "{\"model\":\"m\",\"n\":1e-99999999999999999999}",
    R"({"model":"m","n":1e5x})", R"({"model":"m","n":0x10})", R"({"model":"m","n":Infinity})",
    R"({"model":"m","n":NaN})",
    // literals and structure
    R"({"model":"m","b":tru})", R"({"model":"m","b":truee})", R"({"model":"m","b":nul})",
    R"({"model":"m","b":True})", R"({"model":"m","a":[1,]})", R"({"model":"m","a":[,1]})",
    R"({"model":"m","a":[1 2]})", R"({"model":"m","o":{"a":1,}})", R"({"model":"m","o":{"a"}})",
    R"({"model":"m","o":{"a":}})", R"({"model":"m","o":{1:2}})", R"({"model":"m"]})",
    R"({"model":"m","a":[}})", "\t\r\n {\"model\" \t:\n\"ws\"\r} \n", "{\"model\":\"m\"}\x0b",
    R"({"model":"m"} // comment)", R"(/* c */ {"model":"m"})", R"({"model":"x", "model":"")",
    R"({"model":{"model":"inner"}})", R"({"a":{"b":[{"model":"deep"}]},"model":"top"})",
};

TEST(ReadRequestedModelTest, AgreesWithAFullParseOnEdgeCases) {
  for (const std::string& body : kEdgeBodies) ExpectSameAsFullParse(body);
}

TEST(ReadRequestedModelTest, FindsTheTopLevelModelOnly) {
  EXPECT_EQ(ReadRequestedModel(kBodies[0]).model, "kjv");
  EXPECT_EQ(ReadRequestedModel(kBodies[2]).model, "chat");
  EXPECT_EQ(ReadRequestedModel(kBodies[3]).problem, Problem::kNoModel);
  EXPECT_EQ(ReadRequestedModel(kBodies[4]).model, "outer");
  EXPECT_EQ(ReadRequestedModel(R"({"model":"first","model":"last"})").model, "last");
  EXPECT_EQ(ReadRequestedModel(R"({"model":"first","model":7})").problem, Problem::kNoModel);
  EXPECT_EQ(ReadRequestedModel(R"([{"model":"x"}])").problem, Problem::kNotAnObject);
  EXPECT_EQ(ReadRequestedModel(R"({"model":"x"} trailing)").problem, Problem::kNotAnObject);
}

TEST(ReadRequestedModelTest, EveryTruncationAgreesWithAFullParse) {
  const std::string body =
      R"({"model":"kjv","messages":[{"role":"user","content":"And God said"}],"temperature":0.5})";
  for (size_t length = 0; length <= body.size(); ++length) {
    ExpectSameAsFullParse(std::string_view(body).substr(0, length));
  }
}

TEST(ReadRequestedModelTest, MutatedBodiesAgreeWithAFullParse) {
  // Byte flips, insertions and deletions of JSON's own characters around a real body.
  const std::string body =
      R"({"model":"kjv","prompt":"Let there be light","stream":true,"n":[1,2.5,null]})";
  const std::string alphabet = "{}[]\":,\\ 0-9etruflsnam\x80";
  std::mt19937 random(1234);
  for (int i = 0; i < 5000; ++i) {
    std::string mutated = body;
    for (int edits = 1 + static_cast<int>(random() % 3); edits > 0; --edits) {
      const size_t at = random() % (mutated.size() + 1);
      const char c = alphabet[random() % alphabet.size()];
      switch (random() % 3) {
        case 0:
          if (at < mutated.size()) mutated[at] = c;
          break;
        case 1: mutated.insert(mutated.begin() + static_cast<std::ptrdiff_t>(at), c); break;
        default:
          if (at < mutated.size()) mutated.erase(at, 1);
          break;
      }
    }
    ExpectSameAsFullParse(mutated);
    if (HasFailure()) return;
  }
}

TEST(ReadRequestedModelTest, EveryByteAtEveryPlaceInALongStringAgreesWithAFullParse) {
  // Plain runs are taken eight bytes at a time: each byte value, at each place within and
  // across those words, in the model's value and in another member's.
  for (int byte = 0; byte < 256; ++byte) {
    for (size_t before = 0; before < 20; ++before) {
      const std::string text = std::string(before, 'a') + static_cast<char>(byte) + "bcdefghijklm";
      ExpectSameAsFullParse(R"({"model":")" + text + R"(","prompt":"x"})");
      ExpectSameAsFullParse(R"({"prompt":")" + text + R"(","model":"m"})");
      if (HasFailure()) return;
    }
  }
}

TEST(ReadRequestedModelTest, DeepNestingIsHandledWithoutRecursion) {
  const std::string deep = R"({"model":"m","x":)" + std::string(100000, '[') +
                           std::string(100000, ']') + "}";
  EXPECT_EQ(ReadRequestedModel(deep).model, "m");
  const std::string unclosed = R"({"model":"m","x":)" + std::string(100000, '[');
  EXPECT_EQ(ReadRequestedModel(unclosed).problem, Problem::kNotAnObject);
}

}  // namespace
}  // namespace supercluster::router
