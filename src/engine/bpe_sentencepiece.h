// SentencePiece BPE (GGUF tokenizer.ggml.model "llama": Llama 2, TinyLlama, Mistral, and the
// bundled KJV model). Internal to the tokenizer: callers use Tokenizer::Build().
//
// Encoding follows SentencePiece's bpe_model.cc with the identity normalizer and
// remove_extra_whitespaces off (how Llama's and the KJV model's tokenizers are trained):
//   1. spaces become U+2581 ("▁") and, with add_space_prefix, one "▁" is put in front;
//   2. the text is split into characters;
//   3. adjacent symbols whose concatenation is a piece (normal, user-defined or unused) are
//      merged, the highest-scoring pair first and the leftmost on a tie;
//   4. a final symbol that is not a piece becomes its bytes' <0xXX> tokens when the vocab
//      has them (byte fallback), else the unknown token (a run of unknowns becomes one).
// Not replicated: SentencePiece's re-segmentation of merged pieces marked unused (a trained
// model has none) and normalization rules other than identity.
#pragma once

#include <memory>

#include "base/status.h"
#include "engine/tokenizer.h"

namespace supercluster::engine {

// Precondition: CheckVocabCommon(vocab) passed. Checks what this model needs: all 256 byte
// tokens when any is present, an unknown token when they are absent.
base::Result<std::unique_ptr<Tokenizer>> BuildSentencePieceBpe(TokenizerVocab vocab);

}  // namespace supercluster::engine
