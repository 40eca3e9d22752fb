#!/usr/bin/python3
"""Trains models/kjv/tokenizer.model from the output of `bible -f Gen1:1-Rev22:21`.

Usage: /usr/bin/python3 train.py VERSES.txt OUTPUT.model

Each input line is "Ge1:1 In the beginning ..."; the verse reference is dropped and the
verse text is one training sentence. Settings are chosen so that the result is the same on
every run and so that the engine's tokenizer has nothing to replicate beyond BPE itself:
  model_type=bpe, vocab_size=4000, byte_fallback=true (every byte encodable),
  character_coverage=1.0, normalization_rule_name=identity (no NFKC or other rewriting),
  remove_extra_whitespaces=false and add_dummy_prefix=true (as Llama's tokenizer),
  input_sentence_size=0 and shuffle_input_sentence=false (all sentences, in order),
  num_threads=1, unk/bos/eos = 0/1/2 (<unk>, <s>, </s>), no padding token.
"""
import os
import sys
import tempfile

import sentencepiece as spm


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    verses_path, output_path = sys.argv[1], sys.argv[2]
    with open(verses_path, encoding="utf-8") as f:
        sentences = [line.rstrip("\n").split(" ", 1)[1] for line in f if " " in line]
    if len(sentences) < 30000:
        sys.exit(f"train.py: only {len(sentences)} verses in {verses_path}; expected 31102")
    output_path = os.path.abspath(output_path)
    with tempfile.TemporaryDirectory() as work:
        # The model file records the input and prefix names: relative names inside the
        # temporary folder keep the file byte-for-byte the same on every run.
        os.chdir(work)
        with open("kjv.txt", "w", encoding="utf-8") as f:
            f.write("\n".join(sentences) + "\n")
        prefix = "kjv"
        spm.SentencePieceTrainer.train(
            input="kjv.txt", model_prefix=prefix, model_type="bpe", vocab_size=4000,
            byte_fallback=True, character_coverage=1.0, normalization_rule_name="identity",
            remove_extra_whitespaces=False, add_dummy_prefix=True, input_sentence_size=0,
            shuffle_input_sentence=False, num_threads=1, unk_id=0, bos_id=1, eos_id=2,
            pad_id=-1, minloglevel=2)
        os.makedirs(os.path.dirname(output_path), exist_ok=True)
        with open(prefix + ".model", "rb") as src, open(output_path, "wb") as dst:
            dst.write(src.read())
    print(f"train.py: {len(sentences)} verses -> {output_path}")


if __name__ == "__main__":
    main()
