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

TEST(ReadRequestedModelTest, DeepNestingIsHandledWithoutRecursion) {
  const std::string deep = R"({"model":"m","x":)" + std::string(100000, '[') +
                           std::string(100000, ']') + "}";
  EXPECT_EQ(ReadRequestedModel(deep).model, "m");
  const std::string unclosed = R"({"model":"m","x":)" + std::string(100000, '[');
  EXPECT_EQ(ReadRequestedModel(unclosed).problem, Problem::kNotAnObject);
}

}  // namespace
}  // namespace supercluster::router
