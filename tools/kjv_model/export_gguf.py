#!/usr/bin/python3
"""Writes a checkpoint from train.py as a GGUF v3 file (general.architecture=llama) with its
SentencePiece tokenizer, for llama.cpp and Supercluster's engine.

Usage: /usr/bin/python3 export_gguf.py [--checkpoint PT] [--tokenizer MODEL] [--out GGUF]

The GGUF layout (written here from the format's specification, little-endian throughout):
  header:       magic "GGUF", u32 version = 3, u64 tensor count, u64 metadata count
  metadata:     key (u64 length + UTF-8 bytes), u32 value type, value
  tensor infos: name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset into the data
  padding to general.alignment (32), then each tensor's bytes at its (32-aligned) offset.
ne[0] is the innermost (contiguous) dimension, so a PyTorch Linear weight [out, in], written
row-major, has ne = [in, out]. Matrices are F16, norm weights F32.

Conventions the reader must follow (the same as llama.cpp's LLM_ARCH_LLAMA, rope type NORM):
  - RoPE rotates the interleaved pairs (2i, 2i+1) of each head by pos * theta^(-2i/head_dim);
    attn_q/attn_k are written as trained, with no row permutation (model.py trains with this
    RoPE form directly).
  - query head h uses key/value head h // (head_count / head_count_kv).
  - output.weight is written explicitly (the model was trained with it tied to
    token_embd.weight, so the two hold the same values).
"""
import argparse
import os
import struct
import sys

import numpy as np
import sentencepiece as spm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import load_checkpoint  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ALIGNMENT = 32

# GGUF metadata value types.
UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY = 4, 5, 6, 7, 8, 9
# ggml tensor types.
GGML_F32, GGML_F16 = 0, 1
# llama.cpp's token types.
TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_BYTE = 1, 2, 3, 6
# llama.cpp's file type for "mostly F16".
FILE_TYPE_MOSTLY_F16 = 1


def gguf_string(text):
    data = text.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


def gguf_value(value_type, value):
    if value_type == UINT32:
        return struct.pack("<I", value)
    if value_type == INT32:
        return struct.pack("<i", value)
    if value_type == FLOAT32:
        return struct.pack("<f", value)
    if value_type == BOOL:
        return struct.pack("<B", 1 if value else 0)
    if value_type == STRING:
        return gguf_string(value)
    raise ValueError(f"unsupported metadata type {value_type}")


def gguf_array(element_type, values):
    out = [struct.pack("<IQ", element_type, len(values))]
    if element_type == FLOAT32:
        out.append(np.asarray(values, dtype="<f4").tobytes())
    elif element_type == INT32:
        out.append(np.asarray(values, dtype="<i4").tobytes())
    else:
        out.extend(gguf_value(element_type, v) for v in values)
    return b"".join(out)


def tokenizer_metadata(tokenizer_path):
    """tokenizer.ggml.* from the sentencepiece model: pieces, scores, types, special ids."""
    sp = spm.SentencePieceProcessor(model_file=tokenizer_path)
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        if sp.is_unknown(i):
            types.append(TOKEN_UNKNOWN)
        elif sp.is_control(i):
            types.append(TOKEN_CONTROL)
        elif sp.is_byte(i):
            types.append(TOKEN_BYTE)
        else:
            types.append(TOKEN_NORMAL)
    return sp, [
        ("tokenizer.ggml.model", STRING, "llama"),
        ("tokenizer.ggml.tokens", (ARRAY, STRING), tokens),
        ("tokenizer.ggml.scores", (ARRAY, FLOAT32), scores),
        ("tokenizer.ggml.token_type", (ARRAY, INT32), types),
        ("tokenizer.ggml.bos_token_id", UINT32, sp.bos_id()),
        ("tokenizer.ggml.eos_token_id", UINT32, sp.eos_id()),
        ("tokenizer.ggml.unknown_token_id", UINT32, sp.unk_id()),
        ("tokenizer.ggml.add_bos_token", BOOL, True),
        ("tokenizer.ggml.add_eos_token", BOOL, False),
        ("tokenizer.ggml.add_space_prefix", BOOL, True),
    ]


def model_tensors(model):
    """(GGUF name, numpy array in PyTorch layout, ggml type), in llama.cpp's names."""
    def f16(t):
        return t.detach().float().numpy().astype("<f2"), GGML_F16

    def f32(t):
        return t.detach().float().numpy().astype("<f4"), GGML_F32

    out = [("token_embd.weight", *f16(model.tok_embeddings.weight))]
    for i, layer in enumerate(model.layers):
        prefix = f"blk.{i}."
        out += [
            (prefix + "attn_norm.weight", *f32(layer.attn_norm.weight)),
            (prefix + "attn_q.weight", *f16(layer.attn.wq.weight)),
            (prefix + "attn_k.weight", *f16(layer.attn.wk.weight)),
            (prefix + "attn_v.weight", *f16(layer.attn.wv.weight)),
            (prefix + "attn_output.weight", *f16(layer.attn.wo.weight)),
            (prefix + "ffn_norm.weight", *f32(layer.ffn_norm.weight)),
            (prefix + "ffn_gate.weight", *f16(layer.ffn.gate.weight)),
            (prefix + "ffn_up.weight", *f16(layer.ffn.up.weight)),
            (prefix + "ffn_down.weight", *f16(layer.ffn.down.weight)),
        ]
    out += [("output_norm.weight", *f32(model.norm.weight)),
            ("output.weight", *f16(model.output_weight()))]
    return out


def pad_to(length, alignment=ALIGNMENT):
    return b"\0" * ((-length) % alignment)


def write_gguf(path, metadata, tensors):
    header = [b"GGUF", struct.pack("<IQQ", 3, len(tensors), len(metadata))]
    for key, value_type, value in metadata:
        header.append(gguf_string(key))
        if isinstance(value_type, tuple):
            header.append(struct.pack("<I", ARRAY) + gguf_array(value_type[1], value))
        else:
            header.append(struct.pack("<I", value_type) + gguf_value(value_type, value))
    offset = 0
    blobs = []
    for name, array, ggml_type in tensors:
        ne = list(reversed(array.shape))  # innermost dimension first
        header.append(gguf_string(name) + struct.pack("<I", len(ne)))
        header.append(struct.pack(f"<{len(ne)}Q", *ne))
        header.append(struct.pack("<IQ", ggml_type, offset))
        data = np.ascontiguousarray(array).tobytes()
        blobs.append(data + pad_to(len(data)))
        offset += len(blobs[-1])
    head = b"".join(header)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(head + pad_to(len(head)))
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoint", default=os.path.join(REPO, "build/kjv-model/best.pt"))
    p.add_argument("--tokenizer", default=os.path.join(REPO, "models/kjv/tokenizer.model"))
    p.add_argument("--out", default=os.path.join(REPO, "models/kjv/kjv.gguf"))
    p.add_argument("--name", default="supercluster-kjv")
    args = p.parse_args()

    model, ckpt = load_checkpoint(args.checkpoint)
    cfg = model.cfg
    sp, tokenizer_kvs = tokenizer_metadata(args.tokenizer)
    if sp.get_piece_size() != cfg.vocab_size:
        sys.exit(f"export_gguf.py: tokenizer has {sp.get_piece_size()} pieces, "
                 f"model vocab_size is {cfg.vocab_size}")
    metadata = [
        ("general.architecture", STRING, "llama"),
        ("general.name", STRING, args.name),
        ("general.alignment", UINT32, ALIGNMENT),
        ("general.file_type", UINT32, FILE_TYPE_MOSTLY_F16),
        ("llama.context_length", UINT32, cfg.context_length),
        ("llama.embedding_length", UINT32, cfg.dim),
        ("llama.block_count", UINT32, cfg.n_layers),
        ("llama.feed_forward_length", UINT32, cfg.ffn_dim),
        ("llama.attention.head_count", UINT32, cfg.n_heads),
        ("llama.attention.head_count_kv", UINT32, cfg.n_kv_heads),
        ("llama.rope.freq_base", FLOAT32, cfg.rope_theta),
        ("llama.attention.layer_norm_rms_epsilon", FLOAT32, cfg.rms_norm_eps),
        ("llama.rope.dimension_count", UINT32, cfg.head_dim),
        ("llama.vocab_size", UINT32, cfg.vocab_size),
    ] + tokenizer_kvs
    tensors = model_tensors(model)
    write_gguf(args.out, metadata, tensors)
    n_params = sum(a.size for _, a, _ in tensors)
    print(f"export_gguf.py: step {ckpt['step']} (val loss {ckpt['best_val']:.4f}) -> {args.out}: "
          f"{len(tensors)} tensors, {n_params} values, {os.path.getsize(args.out)} bytes")


if __name__ == "__main__":
    main()
