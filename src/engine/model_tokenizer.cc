#include "engine/model_tokenizer.h"

#include "engine/gguf_file.h"
#include "engine/tokenizer_json.h"

namespace supercluster::engine {
namespace {

base::Result<TokenizerVocab> FromGguf(const GgufFile& gguf) {
  TokenizerVocab vocab;
  SC_ASSIGN_OR_RETURN(std::string model, gguf.GetString("tokenizer.ggml.model"));
  if (model == "llama") {
    vocab.model = TokenizerModel::kSentencePieceBpe;
  } else if (model == "gpt2") {
    vocab.model = TokenizerModel::kByteLevelBpe;
  } else {
    return base::InvalidArgument("tokenizer.ggml.model '" + model +
                                 "' is not supported (llama and gpt2 are)");
  }
  SC_ASSIGN_OR_RETURN(std::vector<std::string_view> tokens,
                      gguf.GetStringArray("tokenizer.ggml.tokens"));
  vocab.tokens.assign(tokens.begin(), tokens.end());
  if (gguf.Find("tokenizer.ggml.scores") != nullptr) {
    SC_ASSIGN_OR_RETURN(vocab.scores, gguf.GetFloat32Array("tokenizer.ggml.scores"));
  }
  if (gguf.Find("tokenizer.ggml.token_type") != nullptr) {
    SC_ASSIGN_OR_RETURN(std::vector<int32_t> types, gguf.GetInt32Array("tokenizer.ggml.token_type"));
    for (int32_t type : types) {
      // llama.cpp treats 0 ("undefined") as a normal token.
      vocab.types.push_back(type == 0 ? TokenType::kNormal : static_cast<TokenType>(type));
    }
  }
  if (gguf.Find("tokenizer.ggml.merges") != nullptr) {
    SC_ASSIGN_OR_RETURN(std::vector<std::string_view> merges,
                        gguf.GetStringArray("tokenizer.ggml.merges"));
    vocab.merges.assign(merges.begin(), merges.end());
  }
  if (gguf.Find("tokenizer.ggml.pre") != nullptr) {
    SC_ASSIGN_OR_RETURN(vocab.pre_tokenizer, gguf.GetString("tokenizer.ggml.pre"));
  }
  // An id must index tokenizer.ggml.tokens, checked on the file's unsigned value: TokenId is
  // int32, so 0xFFFFFFF0 became -16 and 0xFFFFFFFF kNoToken ("no such token", in silence).
  // Tokenizer::Build refuses more than 2^31 - 1 tokens, so an id in range fits.
  auto optional_id = [&gguf, &vocab](const char* key, TokenId* out) -> base::Status {
    if (gguf.Find(key) == nullptr) return base::Status::Ok();
    SC_ASSIGN_OR_RETURN(uint32_t id, gguf.GetUint32(key));
    if (id >= vocab.tokens.size()) {
      return base::InvalidArgument(std::string(key) + " " + std::to_string(id) +
                                   " is not a token id: tokenizer.ggml.tokens has " +
                                   std::to_string(vocab.tokens.size()) + " tokens");
    }
    *out = static_cast<TokenId>(id);
    return base::Status::Ok();
  };
  SC_RETURN_IF_ERROR(optional_id("tokenizer.ggml.bos_token_id", &vocab.bos_id));
  SC_RETURN_IF_ERROR(optional_id("tokenizer.ggml.eos_token_id", &vocab.eos_id));
  SC_RETURN_IF_ERROR(optional_id("tokenizer.ggml.unknown_token_id", &vocab.unknown_id));
  SC_RETURN_IF_ERROR(optional_id("tokenizer.ggml.padding_token_id", &vocab.padding_id));
  // llama.cpp's defaults: SentencePiece vocabularies add BOS, byte-level ones do not.
  vocab.add_bos = vocab.model == TokenizerModel::kSentencePieceBpe;
  auto optional_flag = [&gguf](const char* key, bool* out) -> base::Status {
    if (gguf.Find(key) == nullptr) return base::Status::Ok();
    SC_ASSIGN_OR_RETURN(*out, gguf.GetBool(key));
    return base::Status::Ok();
  };
  SC_RETURN_IF_ERROR(optional_flag("tokenizer.ggml.add_bos_token", &vocab.add_bos));
  SC_RETURN_IF_ERROR(optional_flag("tokenizer.ggml.add_eos_token", &vocab.add_eos));
  SC_RETURN_IF_ERROR(optional_flag("tokenizer.ggml.add_space_prefix", &vocab.add_space_prefix));
  if (gguf.Find("tokenizer.chat_template") != nullptr) {
    SC_ASSIGN_OR_RETURN(vocab.chat_template, gguf.GetString("tokenizer.chat_template"));
  }
  return vocab;
}

}  // namespace

base::Result<TokenizerVocab> LoadTokenizerVocab(const ModelFile& model) {
  if (model.gguf() != nullptr) {
    auto vocab = FromGguf(*model.gguf());
    if (!vocab.ok()) return vocab.status().WithContext(model.path());
    return vocab;
  }
  std::string path = model.tokenizer_json_path();
  if (path.empty()) {
    return base::NotFound(model.path() + ": no tokenizer.json beside the safetensors weights");
  }
  return LoadTokenizerJsonFile(path);
}

base::Result<std::unique_ptr<Tokenizer>> LoadTokenizer(const ModelFile& model) {
  SC_ASSIGN_OR_RETURN(TokenizerVocab vocab, LoadTokenizerVocab(model));
  auto tokenizer = Tokenizer::Build(std::move(vocab));
  if (!tokenizer.ok()) return tokenizer.status().WithContext(model.path());
  return tokenizer;
}

}  // namespace supercluster::engine
