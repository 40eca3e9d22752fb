#include "engine/tokenizer_json.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace supercluster::engine {
namespace {

using nlohmann::json;

// Collects every Split pattern and ByteLevel use_regex flag anywhere in the pre_tokenizer
// (which may be a Sequence of them).
void ScanPreTokenizer(const json& node, std::string* patterns, bool* byte_level_regex) {
  if (node.is_array()) {
    for (const json& item : node) ScanPreTokenizer(item, patterns, byte_level_regex);
    return;
  }
  if (!node.is_object()) return;
  const std::string type = node.value("type", "");
  if (type == "Split" && node.contains("pattern") && node["pattern"].is_object()) {
    const json& pattern = node["pattern"];
    if (pattern.contains("Regex") && pattern["Regex"].is_string()) {
      *patterns += pattern["Regex"].get<std::string>();
    }
  }
  if (type == "ByteLevel" && node.value("use_regex", true)) *byte_level_regex = true;
  if (node.contains("pretokenizers")) {
    ScanPreTokenizer(node["pretokenizers"], patterns, byte_level_regex);
  }
}

base::Result<std::string> PreTokenizerName(const json& root, const std::string& source) {
  std::string patterns;
  bool byte_level_regex = false;
  if (root.contains("pre_tokenizer")) {
    ScanPreTokenizer(root["pre_tokenizer"], &patterns, &byte_level_regex);
  }
  if (patterns.find("\\p{N}{1,3}") != std::string::npos) return std::string("llama-bpe");
  if (patterns.find("[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|") != std::string::npos) {
    return std::string("qwen2");
  }
  if (patterns.empty() && byte_level_regex) return std::string("gpt2");
  if (patterns.empty()) {
    return base::InvalidArgument(source + ": pre_tokenizer is not a ByteLevel or Split "
                                 "pre-tokenizer this engine knows");
  }
  return base::InvalidArgument(source + ": pre_tokenizer regex '" + patterns +
                               "' is not one this engine implements (GPT-2, Llama 3, Qwen2)");
}

}  // namespace

base::Result<TokenizerVocab> ParseTokenizerJson(std::string_view json_text,
                                                const std::string& source) {
  const json root = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return base::InvalidArgument(source + ": not a JSON object");
  }
  if (!root.contains("model") || !root["model"].is_object()) {
    return base::InvalidArgument(source + ": no 'model' object");
  }
  const json& model = root["model"];
  if (model.contains("type") && (!model["type"].is_string() || model["type"] != "BPE")) {
    return base::InvalidArgument(source + ": model.type is not \"BPE\"");
  }
  if (model.contains("byte_fallback") && model["byte_fallback"].is_boolean() &&
      model["byte_fallback"].get<bool>()) {
    return base::InvalidArgument(source + ": model.byte_fallback is set (a SentencePiece-style "
                                 "tokenizer); load the model's GGUF vocabulary instead");
  }
  if (!model.contains("vocab") || !model["vocab"].is_object()) {
    return base::InvalidArgument(source + ": model.vocab is missing or not an object");
  }

  TokenizerVocab vocab;
  vocab.model = TokenizerModel::kByteLevelBpe;
  SC_ASSIGN_OR_RETURN(vocab.pre_tokenizer, PreTokenizerName(root, source));

  auto place = [&](const std::string& piece, const json& id_value,
                   const std::string& where) -> base::Status {
    if (!id_value.is_number_integer() || id_value.get<int64_t>() < 0 ||
        id_value.get<int64_t>() > 10'000'000) {
      return base::InvalidArgument(source + ": " + where + " '" + piece +
                                   "' has an id that is not an integer in 0..10000000");
    }
    const auto id = static_cast<size_t>(id_value.get<int64_t>());
    if (id >= vocab.tokens.size()) {
      vocab.tokens.resize(id + 1);
      vocab.types.resize(id + 1, TokenType::kNormal);
    }
    vocab.tokens[id] = piece;
    return base::Status::Ok();
  };
  for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
    SC_RETURN_IF_ERROR(place(it.key(), it.value(), "model.vocab entry"));
  }
  if (root.contains("added_tokens") && root["added_tokens"].is_array()) {
    for (const json& added : root["added_tokens"]) {
      if (!added.is_object() || !added.contains("content") || !added["content"].is_string() ||
          !added.contains("id")) {
        return base::InvalidArgument(source + ": an added_tokens entry lacks content or id");
      }
      const std::string content = added["content"].get<std::string>();
      SC_RETURN_IF_ERROR(place(content, added["id"], "added_tokens entry"));
      vocab.types[added["id"].get<size_t>()] =
          added.value("special", false) ? TokenType::kControl : TokenType::kUserDefined;
    }
  }
  for (size_t id = 0; id < vocab.tokens.size(); ++id) {
    if (vocab.tokens[id].empty()) {
      return base::InvalidArgument(source + ": no token has id " + std::to_string(id) +
                                   " (ids must be 0..n-1 without gaps)");
    }
  }

  if (model.contains("merges")) {
    if (!model["merges"].is_array()) {
      return base::InvalidArgument(source + ": model.merges is not an array");
    }
    vocab.merges.reserve(model["merges"].size());
    for (size_t i = 0; i < model["merges"].size(); ++i) {
      const json& merge = model["merges"][i];
      if (merge.is_string()) {
        vocab.merges.push_back(merge.get<std::string>());
      } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
                 merge[1].is_string()) {
        vocab.merges.push_back(merge[0].get<std::string>() + " " + merge[1].get<std::string>());
      } else {
        return base::InvalidArgument(source + ": model.merges[" + std::to_string(i) +
                                     "] is neither \"a b\" nor [\"a\", \"b\"]");
      }
    }
  }
  return vocab;
}

base::Result<TokenizerVocab> LoadTokenizerJsonFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return base::NotFound(path + ": cannot open tokenizer file");
  std::ostringstream contents;
  contents << file.rdbuf();
  return ParseTokenizerJson(contents.str(), path);
}

}  // namespace supercluster::engine
