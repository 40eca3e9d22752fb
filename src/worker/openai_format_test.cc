// The JSON answers: the fields OpenAI clients read, usage, chunks, and invalid UTF-8 from a
// model written as U+FFFD instead of failing.
#include "worker/openai_format.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace supercluster::worker {
namespace {

using nlohmann::json;

TEST(OpenAiFormatTest, CompletionAndChatCompletion) {
  AnswerIdentity completion{"cmpl-1", 1700000000, "kjv", false};
  json body = json::parse(CompletionJson(completion, "and God said", "length", {5, 3}));
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_EQ(body["id"], "cmpl-1");
  EXPECT_EQ(body["model"], "kjv");
  EXPECT_EQ(body["created"], 1700000000);
  EXPECT_EQ(body["choices"][0]["text"], "and God said");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(body["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(body["usage"]["completion_tokens"], 3);
  EXPECT_EQ(body["usage"]["total_tokens"], 8);

  AnswerIdentity chat{"chatcmpl-1", 1, "kjv", true};
  body = json::parse(CompletionJson(chat, "Amen", "stop", {2, 1}));
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(body["choices"][0]["message"]["content"], "Amen");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
}

TEST(OpenAiFormatTest, StreamChunks) {
  AnswerIdentity chat{"chatcmpl-2", 1, "kjv", true};
  json first = json::parse(CompletionChunkJson(chat, "In", true, std::nullopt));
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(first["choices"][0]["delta"]["content"], "In");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  EXPECT_FALSE(first.contains("usage"));
  json last = json::parse(CompletionChunkJson(chat, "", false, "stop"));
  EXPECT_FALSE(last["choices"][0]["delta"].contains("role"));
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  EXPECT_FALSE(last.contains("usage")) << "usage only when the client asks for it";

  AnswerIdentity completion{"cmpl-2", 1, "kjv", false};
  json text = json::parse(CompletionChunkJson(completion, " the", false, std::nullopt));
  EXPECT_EQ(text["object"], "text_completion");
  EXPECT_EQ(text["choices"][0]["text"], " the");
}

// stream_options.include_usage, as OpenAI streams it: "usage": null on every chunk, then a
// chunk with no choices and the usage.
TEST(OpenAiFormatTest, StreamUsageComesInAChunkOfItsOwn) {
  AnswerIdentity chat{"chatcmpl-3", 1, "kjv", true, /*stream_usage=*/true};
  json text = json::parse(CompletionChunkJson(chat, "In", true, std::nullopt));
  json finish = json::parse(CompletionChunkJson(chat, "", false, "length"));
  for (const json& chunk : {text, finish}) {
    ASSERT_TRUE(chunk.contains("usage"));
    EXPECT_TRUE(chunk["usage"].is_null());
  }
  json usage = json::parse(UsageChunkJson(chat, {4, 2}));
  EXPECT_EQ(usage["object"], "chat.completion.chunk");
  EXPECT_EQ(usage["id"], "chatcmpl-3");
  EXPECT_EQ(usage["choices"], json::array());
  EXPECT_EQ(usage["usage"]["prompt_tokens"], 4);
  EXPECT_EQ(usage["usage"]["total_tokens"], 6);
}

TEST(OpenAiFormatTest, SealedChunksErrorsAndModels) {
  EXPECT_EQ(json::parse(SealedChunkJson("a\"b"))["text"], "a\"b");
  json final = json::parse(SealedFinalChunkJson("end", "length", {3, 4}));
  EXPECT_EQ(final["finish_reason"], "length");
  EXPECT_EQ(final["usage"]["prompt_tokens"], 3);
  EXPECT_EQ(final["usage"]["completion_tokens"], 4);
  EXPECT_FALSE(final.contains("error"));
  json failed = json::parse(SealedFinalChunkJson("", "error", {3, 0}, "out of memory"));
  EXPECT_EQ(failed["error"], "out of memory");

  json models = json::parse(ModelListJson("kjv", 5));
  EXPECT_EQ(models["object"], "list");
  EXPECT_EQ(models["data"][0]["id"], "kjv");
  EXPECT_EQ(models["data"][0]["object"], "model");
}

TEST(OpenAiFormatTest, InvalidUtf8BecomesReplacementCharacters) {
  std::string half_character = "caf\xc3";  // a chunk may end inside a character
  json body = json::parse(SealedChunkJson(half_character));
  EXPECT_EQ(body["text"], "caf\xef\xbf\xbd");
}

}  // namespace
}  // namespace supercluster::worker
