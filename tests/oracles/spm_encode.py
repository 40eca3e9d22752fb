#!/usr/bin/python3
"""Test oracle: SentencePiece itself. Prints, as one JSON object, a model's pieces, scores and
types, and its encoding and decoding of every string in a JSON array file.

Usage: /usr/bin/python3 tests/oracles/spm_encode.py MODEL CORPUS.json
Run with Debian's /usr/bin/python3 (python3-sentencepiece). Exit status 3 when the
sentencepiece module is missing, so the caller can skip. Called by
src/engine/tokenizer_conformance_test.cc.
"""
import json
import sys

try:
    import sentencepiece as spm
except ImportError:
    sys.stderr.write("spm_encode.py: python3-sentencepiece is not installed\n")
    sys.exit(3)


def piece_type(sp, i):
    # The GGUF token_type numbers: normal 1, unknown 2, control 3, unused 5, byte 6.
    if sp.is_unknown(i):
        return 2
    if sp.is_control(i):
        return 3
    if sp.is_unused(i):
        return 5
    if sp.is_byte(i):
        return 6
    return 1


def main():
    sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
    with open(sys.argv[2], encoding="utf-8") as f:
        corpus = json.load(f)
    ids = [sp.encode(text) for text in corpus]
    out = {
        "pieces": [sp.id_to_piece(i) for i in range(sp.get_piece_size())],
        "scores": [sp.get_score(i) for i in range(sp.get_piece_size())],
        "types": [piece_type(sp, i) for i in range(sp.get_piece_size())],
        "bos_id": sp.bos_id(), "eos_id": sp.eos_id(), "unk_id": sp.unk_id(),
        "ids": ids,
        "decoded": [sp.decode(x) for x in ids],
    }
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
