// Chat formats against the prompt formats documented on the model cards (Meta's Llama 2
// and Llama 3 cards, and ChatML as used by Qwen2), written out here by hand.
#include "engine/chat_template.h"

#include <gtest/gtest.h>

namespace supercluster::engine {
namespace {

const std::vector<ChatMessage> kConversation = {
    {"system", "You are helpful."},
    {"user", "Hi there"},
    {"assistant", "Hello!"},
    {"user", "How are you?"},
};

std::string Render(ChatFormat format, const std::vector<ChatMessage>& messages,
                   bool add_generation_prompt = true) {
  auto text = RenderChat(format, messages, add_generation_prompt, format == ChatFormat::kLlama3
                                                                      ? "<|begin_of_text|>"
                                                                      : "<s>",
                         "</s>");
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  return text.ok() ? *text : "";
}

TEST(ChatTemplateTest, Llama2) {
  EXPECT_EQ(Render(ChatFormat::kLlama2, kConversation),
            "<s>[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nHi there [/INST] Hello! </s>"
            "<s>[INST] How are you? [/INST]");
  EXPECT_EQ(Render(ChatFormat::kLlama2, {{"user", "  Hi  "}}), "<s>[INST] Hi [/INST]");
}

TEST(ChatTemplateTest, Llama2RejectsTurnsOutOfOrder) {
  auto two_users = RenderChat(ChatFormat::kLlama2, {{"user", "a"}, {"user", "b"}}, true, "<s>",
                              "</s>");
  ASSERT_FALSE(two_users.ok());
  EXPECT_NE(two_users.status().message().find("alternate"), std::string::npos);
  auto late_system = RenderChat(ChatFormat::kLlama2, {{"user", "a"}, {"system", "b"}}, true,
                                "<s>", "</s>");
  ASSERT_FALSE(late_system.ok());
  EXPECT_NE(late_system.status().message().find("only the first"), std::string::npos);
  // The system prompt is folded into the first user turn: without one it has nowhere to go.
  auto system_alone = RenderChat(ChatFormat::kLlama2, {{"system", "Be brief."}}, true, "<s>",
                                 "</s>");
  ASSERT_FALSE(system_alone.ok());
  EXPECT_NE(system_alone.status().message().find("a user message is required"),
            std::string::npos)
      << system_alone.status().message();
}

TEST(ChatTemplateTest, Llama3) {
  EXPECT_EQ(Render(ChatFormat::kLlama3, {kConversation[0], kConversation[1]}),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful."
            "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(Render(ChatFormat::kLlama3, {{"user", "x"}}, /*add_generation_prompt=*/false),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nx<|eot_id|>");
}

TEST(ChatTemplateTest, ChatMl) {
  EXPECT_EQ(Render(ChatFormat::kChatMl, kConversation),
            "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi there"
            "<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n"
            "How are you?<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(Render(ChatFormat::kChatMl, {{"user", "x"}}, false), "<|im_start|>user\nx<|im_end|>\n");
}

// Every format keeps what the messages say apart from its own text, so that only its own
// markers are encoded as special tokens (EncodeChat).
TEST(ChatTemplateTest, PiecesKeepMessageContentApart) {
  const std::vector<ChatMessage> conversation = {
      {"system", "S </s>"}, {"user", "U <|im_end|>"}, {"assistant", "A <|eot_id|>"},
      {"user", "V"}};
  for (ChatFormat format :
       {ChatFormat::kLlama2, ChatFormat::kLlama3, ChatFormat::kChatMl, ChatFormat::kPlain}) {
    SCOPED_TRACE(ChatFormatName(format));
    auto pieces = RenderChatPieces(format, conversation, true, "<s>", "</s>");
    ASSERT_TRUE(pieces.ok()) << pieces.status().ToString();
    std::vector<std::string> content;
    std::string joined;
    for (const ChatPiece& piece : *pieces) {
      if (!piece.from_template) content.push_back(piece.text);
      joined += piece.text;
    }
    EXPECT_EQ(content, (std::vector<std::string>{"S </s>", "U <|im_end|>", "A <|eot_id|>", "V"}));
    EXPECT_EQ(joined, *RenderChat(format, conversation, true, "<s>", "</s>"));
  }
}

TEST(ChatTemplateTest, Plain) {
  EXPECT_EQ(Render(ChatFormat::kPlain, {{"user", "Hi"}, {"assistant", "Yo"}}),
            "user: Hi\nassistant: Yo\nassistant:");
}

TEST(ChatTemplateTest, UnknownRoleIsAnError) {
  auto text = RenderChat(ChatFormat::kChatMl, {{"tool", "x"}}, true, "", "");
  ASSERT_FALSE(text.ok());
  EXPECT_NE(text.status().message().find("role 'tool'"), std::string::npos);
}

TEST(ChatTemplateTest, DetectsFormatFromTemplateMarkers) {
  TokenizerVocab vocab;
  vocab.model = TokenizerModel::kByteLevelBpe;
  vocab.chat_template =
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
      "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}";
  EXPECT_EQ(DetectChatFormat(vocab), ChatFormat::kChatMl);
  vocab.chat_template =
      "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + "
      "message['content'] | trim + '<|eot_id|>' %}";
  EXPECT_EQ(DetectChatFormat(vocab), ChatFormat::kLlama3);
  vocab.chat_template = "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}";
  EXPECT_EQ(DetectChatFormat(vocab), ChatFormat::kLlama2);
}

TEST(ChatTemplateTest, FallsBackByVocabulary) {
  TokenizerVocab vocab;
  vocab.model = TokenizerModel::kByteLevelBpe;
  vocab.tokens = {"a", "b"};
  EXPECT_EQ(DetectChatFormat(vocab), ChatFormat::kPlain);
  vocab.chat_template = "{{ something we do not recognise }}";
  EXPECT_EQ(DetectChatFormat(vocab), ChatFormat::kPlain);
  vocab.tokens.push_back("<|im_start|>");
  EXPECT_EQ(DetectChatFormat(vocab), ChatFormat::kChatMl);
  vocab.tokens.pop_back();
  vocab.model = TokenizerModel::kSentencePieceBpe;
  EXPECT_EQ(DetectChatFormat(vocab), ChatFormat::kLlama2);
}

TEST(ChatTemplateTest, RenderForVocabUsesItsMarkersAndOverride) {
  TokenizerVocab vocab;
  vocab.model = TokenizerModel::kSentencePieceBpe;
  vocab.tokens = {"<unk>", "<s>", "</s>"};
  vocab.bos_id = 1;
  vocab.eos_id = 2;
  auto llama2 = RenderChatForVocab(vocab, {{"user", "a"}, {"assistant", "b"}}, true);
  ASSERT_TRUE(llama2.ok());
  EXPECT_EQ(*llama2, "<s>[INST] a [/INST] b </s>");
  auto chatml = RenderChatForVocab(vocab, {{"user", "a"}}, true, "chatml");
  ASSERT_TRUE(chatml.ok());
  EXPECT_EQ(*chatml, "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\n");
  auto unknown = RenderChatForVocab(vocab, {{"user", "a"}}, true, "vicuna");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("'vicuna' is not known"), std::string::npos);
  EXPECT_EQ(*ParseChatFormat(ChatFormatName(ChatFormat::kLlama3)), ChatFormat::kLlama3);
}

}  // namespace
}  // namespace supercluster::engine
