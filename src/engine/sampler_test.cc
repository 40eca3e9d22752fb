// Sampling: greedy, determinism per seed, each filter's effect, the distribution it draws
// from, and parameter validation; stop strings.
#include "engine/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "engine/stop_strings.h"

namespace supercluster::engine {
namespace {

std::vector<int32_t> Draw(const SamplingParams& params, const std::vector<float>& logits, int n) {
  Sampler sampler(params);
  std::vector<int32_t> tokens;
  for (int i = 0; i < n; ++i) tokens.push_back(sampler.Sample(logits, {}));
  return tokens;
}

TEST(SamplerTest, GreedyTakesTheLargestLogitAndTheLowestIdOnTies) {
  Sampler sampler(SamplingParams{});
  EXPECT_EQ(sampler.Sample(std::vector<float>{0.1f, 2.5f, -1.0f, 2.4f}, {}), 1);
  EXPECT_EQ(sampler.Sample(std::vector<float>{3.0f, 1.0f, 3.0f}, {}), 0);
  EXPECT_EQ(sampler.Sample(std::vector<float>{-5.0f}, {}), 0);
}

TEST(SamplerTest, SameSeedSameTokensOtherSeedOtherTokens) {
  std::vector<float> logits(50);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(static_cast<float>(i));
  SamplingParams params;
  params.temperature = 1.0f;
  params.seed = 42;
  auto first = Draw(params, logits, 100);
  EXPECT_EQ(first, Draw(params, logits, 100));
  params.seed = 43;
  EXPECT_NE(first, Draw(params, logits, 100));
}

TEST(SamplerTest, DrawsFromTheSoftmaxDistribution) {
  // p = 0.5, 0.3, 0.2 at temperature 1.
  std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  SamplingParams params;
  params.temperature = 1.0f;
  params.seed = 7;
  constexpr int kDraws = 20000;
  std::map<int32_t, int> counts;
  for (int32_t token : Draw(params, logits, kDraws)) ++counts[token];
  // Binomial standard deviation at p = 0.5 is ~0.0035; 0.015 is > 4 sigma.
  EXPECT_NEAR(counts[0] / double{kDraws}, 0.5, 0.015);
  EXPECT_NEAR(counts[1] / double{kDraws}, 0.3, 0.015);
  EXPECT_NEAR(counts[2] / double{kDraws}, 0.2, 0.015);
  // A low temperature sharpens the distribution towards the top token.
  params.temperature = 0.1f;
  counts.clear();
  for (int32_t token : Draw(params, logits, 2000)) ++counts[token];
  EXPECT_GT(counts[0], 1980);
}

TEST(SamplerTest, FiltersNarrowTheChoice) {
  std::vector<float> logits = {std::log(0.4f), std::log(0.3f), std::log(0.2f), std::log(0.1f)};
  SamplingParams params;
  params.temperature = 1.0f;
  params.seed = 3;
  auto distinct = [&](const SamplingParams& p) {
    std::map<int32_t, int> counts;
    for (int32_t token : Draw(p, logits, 3000)) ++counts[token];
    return counts;
  };
  SamplingParams top_k = params;
  top_k.top_k = 2;
  auto counts = distinct(top_k);
  EXPECT_EQ(counts.size(), 2u);
  EXPECT_TRUE(counts.count(0) && counts.count(1));
  SamplingParams top_p = params;
  top_p.top_p = 0.65f;  // 0.4 + 0.3 reaches it
  counts = distinct(top_p);
  EXPECT_EQ(counts.size(), 2u);
  SamplingParams min_p = params;
  min_p.min_p = 0.6f;  // keeps p >= 0.24: tokens 0 and 1
  counts = distinct(min_p);
  EXPECT_EQ(counts.size(), 2u);
  SamplingParams top_k_one = params;
  top_k_one.top_k = 1;
  counts = distinct(top_k_one);
  EXPECT_EQ(counts.size(), 1u);
  EXPECT_EQ(counts.begin()->first, 0);
}

TEST(SamplerTest, RepetitionPenaltyDiscouragesRecentTokens) {
  std::vector<float> logits = {2.0f, 1.9f, -1.0f};
  SamplingParams params;
  params.repetition_penalty = 1.5f;  // 2.0 / 1.5 < 1.9
  Sampler sampler(params);
  std::vector<int32_t> recent = {0};
  EXPECT_EQ(sampler.Sample(logits, recent), 1);
  EXPECT_EQ(sampler.Sample(logits, {}), 0);
  // Outside the window it no longer counts.
  params.repetition_window = 1;
  Sampler windowed(params);
  std::vector<int32_t> older = {0, 2};
  EXPECT_EQ(windowed.Sample(logits, older), 0);
}

TEST(SamplerTest, InvalidParametersNameTheField) {
  auto message = [](SamplingParams params) { return params.Validate().message(); };
  SamplingParams params;
  EXPECT_TRUE(params.Validate().ok());
  params.temperature = -1;
  EXPECT_NE(message(params).find("temperature"), std::string::npos);
  params = {};
  params.top_p = 0;
  EXPECT_NE(message(params).find("top_p"), std::string::npos);
  params = {};
  params.min_p = 1;
  EXPECT_NE(message(params).find("min_p"), std::string::npos);
  params = {};
  params.repetition_penalty = NAN;
  EXPECT_NE(message(params).find("repetition_penalty"), std::string::npos);
  params = {};
  params.top_k = -2;
  EXPECT_NE(message(params).find("top_k"), std::string::npos);
}

TEST(StopStringMatcherTest, StopsBeforeTheStopStringAndHoldsBackPrefixes) {
  StopStringMatcher matcher({"\n\n", "Amen"});
  auto out = matcher.Add("And the LORD spake");
  EXPECT_EQ(out.text, "And the LORD spake");
  EXPECT_FALSE(out.stopped);
  out = matcher.Add(" unto A");
  EXPECT_EQ(out.text, " unto ") << "'A' may begin 'Amen'";
  out = matcher.Add("aron.\n");
  EXPECT_EQ(out.text, "Aaron.") << "a newline may begin the blank line";
  out = matcher.Add("\nAnd");
  EXPECT_TRUE(out.stopped);
  EXPECT_EQ(out.text, "");
}

TEST(StopStringMatcherTest, StopAcrossPiecesAndFlush) {
  StopStringMatcher matcher({"Amen"});
  EXPECT_EQ(matcher.Add("so be it. Am").text, "so be it. ");
  auto out = matcher.Add("en and more");
  EXPECT_TRUE(out.stopped);
  EXPECT_EQ(out.text, "");
  StopStringMatcher unfinished({"Amen"});
  EXPECT_EQ(unfinished.Add("the end. Am").text, "the end. ");
  EXPECT_EQ(unfinished.Flush(), "Am");
  StopStringMatcher none({});
  EXPECT_EQ(none.Add("anything").text, "anything");
}

}  // namespace
}  // namespace supercluster::engine
