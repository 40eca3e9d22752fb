// The tokenizer a model file carries: for GGUF, the tokenizer.ggml.* metadata (the llama.cpp
// convention); for Hugging Face safetensors, tokenizer.json beside the weights. What the
// engine loader and `supercluster generate` use to turn text into the model's token ids.
#pragma once

#include <memory>

#include "base/status.h"
#include "engine/model_file.h"
#include "engine/tokenizer.h"

namespace supercluster::engine {

// Errors name the file and the missing or malformed key.
base::Result<TokenizerVocab> LoadTokenizerVocab(const ModelFile& model);
base::Result<std::unique_ptr<Tokenizer>> LoadTokenizer(const ModelFile& model);

}  // namespace supercluster::engine
