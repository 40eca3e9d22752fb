#!/usr/bin/python3
"""Independent reference for Supercluster's Llama-family forward pass (issue 3).

Reads a GGUF file with its own reader (gguf_reader.py, written from the spec), dequantizes the
weights to float64 and computes the logits of every position of a token sequence in float64
with PyTorch, following llama.cpp's definition of the architectures. The fixtures in
tests/data/forward are made with it (make_fixtures.py); the C++ forward pass is tested
against them. Run with Debian's /usr/bin/python3 (python3-torch, python3-numpy).

The computation, for tokens t[0..T) at positions 0..T-1 (no KV cache; every position sees
itself and the positions before it):

  x = token_embd[t]                                   token_embd: ne [dim, vocab] -> [vocab, dim]
  per block l:
    h = rmsnorm(x) * attn_norm                        rmsnorm(x) = x / sqrt(mean(x^2) + eps)
    q = h @ Wq.T (+ bq), k = h @ Wk.T (+ bk), v = h @ Wv.T (+ bv)
    q, k split into heads of head_dim = dim / head_count; RoPE on the first n_rot dimensions
    attention: head j reads kv head j // (head_count / head_count_kv), causal, softmax of
               q.k / sqrt(head_dim)
    x = x + concat(heads) @ Wo.T (+ bo)
    h = rmsnorm(x) * ffn_norm
    x = x + (silu(h @ Wgate.T) * (h @ Wup.T)) @ Wdown.T
  logits = (rmsnorm(x) * output_norm) @ Wout.T        Wout = output.weight, or token_embd.weight
                                                       when the file has no output.weight (tied)

GGUF shapes: ne[0] is the contiguous (input) dimension, so a weight with ne = [in, out] is a
PyTorch Linear weight of shape [out, in]: blk.N.attn_q.weight has ne [dim, dim],
attn_k/attn_v ne [dim, kv_dim], ffn_gate/ffn_up ne [dim, ffn], ffn_down ne [ffn, dim],
token_embd/output ne [dim, vocab].

RoPE (position p, pair index i in 0..n_rot/2):
  angle = p * freq_scale * base^(-2i/n_rot) / rope_freqs[i]
    base = <arch>.rope.freq_base (default 10000); n_rot = <arch>.rope.dimension_count
    (default head_dim); freq_scale = 1 / <arch>.rope.scaling.factor when
    <arch>.rope.scaling.type is "linear", else 1; rope_freqs = the rope_freqs.weight tensor
    (Llama 3.1's frequency factors) when present, else 1.
  (a, b) -> (a cos - b sin, a sin + b cos) on the pair
    llama (llama.cpp LLAMA_ROPE_TYPE_NORM):  pair i = dimensions (2i, 2i + 1)
    qwen2 (llama.cpp LLAMA_ROPE_TYPE_NEOX):  pair i = dimensions (i, i + n_rot/2)
  Dimensions n_rot..head_dim pass through unrotated.

Simulation options (not part of the definition; they measure how far an engine that does
what llama.cpp's CPU backend does may land from the float64 result):
  dtype float32: every operation in float32.
  act "f16" / "bf16" / "q8_0": the input vector of each weight matmul is rounded to that type
      first (llama.cpp converts a matmul's activations to the weight type's vec_dot_type:
      f16 for F16 weights, bf16 for BF16, Q8_0 blocks for Q8_0 and Q4_0 weights); "auto"
      picks by each weight's type.
  kv_f16: K and V are stored as f16 (llama.cpp's default KV cache) and the attention
      matmuls see f16 queries and f16 probabilities, as ggml's f16 mat-mul does.

Usage:
  llama_reference.py MODEL.gguf --tokens 1,15,300 [--greedy 8]
  llama_reference.py MODEL.gguf --self-check      (float64 vs a second, loop-and-complex
                                                   formulation; exits 1 on disagreement)
"""

import argparse
import json
import math
import sys

import numpy as np
import torch

sys.path.insert(0, __import__("os").path.dirname(__file__))
from gguf_reader import GgufFile, GGML_F32, GGML_F16, GGML_BF16, GGML_Q8_0, GGML_Q4_0  # noqa: E402

ROPE_ORDERING = {"llama": "normal", "qwen2": "neox"}


class HyperParameters:
    def __init__(self, gguf):
        m = gguf.metadata
        self.arch = m["general.architecture"]
        if self.arch not in ROPE_ORDERING:
            raise ValueError(f"architecture '{self.arch}' is not one this reference defines "
                             f"({', '.join(ROPE_ORDERING)})")
        a = self.arch + "."
        self.dim = m[a + "embedding_length"]
        self.layers = m[a + "block_count"]
        self.heads = m[a + "attention.head_count"]
        self.kv_heads = m.get(a + "attention.head_count_kv", self.heads)
        self.ffn = m[a + "feed_forward_length"]
        self.eps = m[a + "attention.layer_norm_rms_epsilon"]
        self.head_dim = self.dim // self.heads
        self.n_rot = m.get(a + "rope.dimension_count", self.head_dim)
        self.rope_base = m.get(a + "rope.freq_base", 10000.0)
        scaling = m.get(a + "rope.scaling.type", "none")
        if scaling not in ("none", "linear"):
            raise ValueError(f"rope scaling '{scaling}' is not supported by this reference")
        self.freq_scale = 1.0 / m[a + "rope.scaling.factor"] if scaling == "linear" else 1.0
        self.rope_ordering = ROPE_ORDERING[self.arch]


class Model:
    """The weights of a GGUF model as float64 torch tensors, plus their GGUF types."""

    def __init__(self, path):
        self.gguf = GgufFile(path)
        self.hp = HyperParameters(self.gguf)
        self.w, self.types = {}, {}
        for name in self.gguf.tensors:
            self.w[name] = torch.from_numpy(self.gguf.tensor(name).copy())
            self.types[name] = self.gguf.type_of(name)
        self.head_name = "output.weight" if "output.weight" in self.w else "token_embd.weight"
        self.vocab = self.w["token_embd.weight"].shape[0]


# --- Rounding helpers for the simulations -------------------------------------------------

def round_half_away(x):
    return torch.sign(x) * torch.floor(torch.abs(x) + 0.5)


def quantize_q8_0(x):
    """x rounded through Q8_0 blocks as ggml's quantize_row_q8_0 does (scale amax/127 kept
    as fp16, q = round(x / scale)); returns the dequantized values in x's dtype."""
    shape = x.shape
    blocks = x.to(torch.float32).reshape(-1, 32)
    d = blocks.abs().amax(dim=1, keepdim=True) / 127.0
    inverse = torch.where(d > 0, 1.0 / d, torch.zeros_like(d))
    q = round_half_away(blocks * inverse)
    return (d.half().float() * q).reshape(shape).to(x.dtype)


def round_activation(x, kind):
    if kind == "none":
        return x
    if kind == "f16":
        return x.half().to(x.dtype)
    if kind == "bf16":
        return x.bfloat16().to(x.dtype)
    if kind == "q8_0":
        return quantize_q8_0(x)
    raise ValueError(kind)


VEC_DOT_TYPE = {GGML_F32: "none", GGML_F16: "f16", GGML_BF16: "bf16", GGML_Q8_0: "q8_0", GGML_Q4_0: "q8_0"}


# --- The forward pass ---------------------------------------------------------------------

def rope_angles(hp, freq_factors, positions, dtype):
    """[T, n_rot/2] angles, computed in float64."""
    i = torch.arange(hp.n_rot // 2, dtype=torch.float64)
    inverse_frequency = hp.rope_base ** (-2.0 * i / hp.n_rot)
    if freq_factors is not None:
        inverse_frequency = inverse_frequency / freq_factors.to(torch.float64)
    return (positions.to(torch.float64)[:, None] * hp.freq_scale * inverse_frequency[None, :]).to(dtype)


def apply_rope(x, angles, hp):
    """x: [T, heads, head_dim]; rotates the first n_rot dimensions of each head."""
    half = hp.n_rot // 2
    cos, sin = torch.cos(angles)[:, None, :], torch.sin(angles)[:, None, :]
    out = x.clone()
    if hp.rope_ordering == "normal":
        a, b = x[..., 0:hp.n_rot:2], x[..., 1:hp.n_rot:2]
        out[..., 0:hp.n_rot:2] = a * cos - b * sin
        out[..., 1:hp.n_rot:2] = a * sin + b * cos
    else:
        a, b = x[..., :half], x[..., half:hp.n_rot]
        out[..., :half] = a * cos - b * sin
        out[..., half:hp.n_rot] = a * sin + b * cos
    return out


def rmsnorm(x, weight, eps):
    return x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + eps) * weight


def forward(model, tokens, dtype=torch.float64, act="none", kv_f16=False):
    """Logits [T, vocab] (float64 tensor) of every position of `tokens`."""
    hp, w = model.hp, {k: v.to(dtype) for k, v in model.w.items()}

    def linear(x, name):
        kind = VEC_DOT_TYPE[model.types[name]] if act == "auto" else act
        y = round_activation(x, kind) @ w[name].T
        bias = name[:-len("weight")] + "bias"
        return y + w[bias] if bias in w else y

    T = len(tokens)
    if T == 0 or any(not 0 <= t < model.vocab for t in tokens):
        raise ValueError(f"tokens must be a non-empty list of ids in [0, {model.vocab}), got {tokens}")
    positions = torch.arange(T)
    angles = rope_angles(hp, w.get("rope_freqs.weight"), positions, dtype)
    group = hp.heads // hp.kv_heads
    mask = torch.triu(torch.full((T, T), float("-inf"), dtype=dtype), diagonal=1)
    x = w["token_embd.weight"][torch.tensor(tokens)]
    for layer in range(hp.layers):
        p = f"blk.{layer}."
        h = rmsnorm(x, w[p + "attn_norm.weight"], hp.eps)
        q = apply_rope(linear(h, p + "attn_q.weight").reshape(T, hp.heads, hp.head_dim), angles, hp)
        k = apply_rope(linear(h, p + "attn_k.weight").reshape(T, hp.kv_heads, hp.head_dim), angles, hp)
        v = linear(h, p + "attn_v.weight").reshape(T, hp.kv_heads, hp.head_dim)
        if kv_f16:
            q, k, v = (round_activation(t, "f16") for t in (q, k, v))
        k = k.repeat_interleave(group, dim=1)  # head j reads kv head j // group
        v = v.repeat_interleave(group, dim=1)
        scores = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(hp.head_dim) + mask
        probabilities = torch.softmax(scores, dim=-1)
        if kv_f16:
            probabilities = round_activation(probabilities, "f16")
        attended = torch.einsum("hqk,khd->qhd", probabilities, v).reshape(T, hp.dim)
        x = x + linear(attended, p + "attn_output.weight")
        h = rmsnorm(x, w[p + "ffn_norm.weight"], hp.eps)
        gated = torch.nn.functional.silu(linear(h, p + "ffn_gate.weight")) * linear(h, p + "ffn_up.weight")
        x = x + linear(gated, p + "ffn_down.weight")
    x = rmsnorm(x, w["output_norm.weight"], hp.eps)
    return linear(x, model.head_name).to(torch.float64)


def greedy(model, tokens, count):
    """`count` argmax continuation tokens and, for each, the gap between the best and the
    second-best logit (how robust that choice is to small errors)."""
    tokens, chosen, margins = list(tokens), [], []
    for _ in range(count):
        last = forward(model, tokens)[-1]
        top = torch.topk(last, 2)
        chosen.append(int(top.indices[0]))
        margins.append(float(top.values[0] - top.values[1]))
        tokens.append(chosen[-1])
    return chosen, margins


# --- A second formulation, for the self-check ---------------------------------------------

def forward_loops(model, tokens):
    """The same function written differently: numpy, explicit loops over positions and heads,
    RoPE as multiplication by complex exponentials, softmax by hand. Slow; small models only."""
    hp = model.hp
    w = {k: v.numpy() for k, v in model.w.items()}
    freq_factors = w.get("rope_freqs.weight")

    def norm(vec, weight):
        return vec / np.sqrt(np.dot(vec, vec) / vec.size + hp.eps) * weight

    def matvec(name, vec):
        out = np.array([np.dot(row, vec) for row in w[name]])
        bias = name[:-len("weight")] + "bias"
        return out + w[bias] if bias in w else out

    def rotate(head, pos):
        half = hp.n_rot // 2
        out = head.copy()
        for i in range(half):
            freq = hp.freq_scale / (hp.rope_base ** (2.0 * i / hp.n_rot))
            if freq_factors is not None:
                freq /= freq_factors[i]
            a, b = (2 * i, 2 * i + 1) if hp.rope_ordering == "normal" else (i, i + half)
            z = complex(head[a], head[b]) * np.exp(1j * pos * freq)
            out[a], out[b] = z.real, z.imag
        return out

    T, hd = len(tokens), hp.head_dim
    states = [w["token_embd.weight"][t].copy() for t in tokens]
    for layer in range(hp.layers):
        p = f"blk.{layer}."
        qs, ks, vs = [], [], []
        for pos, x in enumerate(states):
            h = norm(x, w[p + "attn_norm.weight"])
            q, k, v = matvec(p + "attn_q.weight", h), matvec(p + "attn_k.weight", h), matvec(p + "attn_v.weight", h)
            qs.append([rotate(q[j * hd:(j + 1) * hd], pos) for j in range(hp.heads)])
            ks.append([rotate(k[j * hd:(j + 1) * hd], pos) for j in range(hp.kv_heads)])
            vs.append([v[j * hd:(j + 1) * hd] for j in range(hp.kv_heads)])
        new_states = []
        for pos in range(T):
            heads_out = []
            for j in range(hp.heads):
                kv = j * hp.kv_heads // hp.heads
                scores = [np.dot(qs[pos][j], ks[s][kv]) / math.sqrt(hd) for s in range(pos + 1)]
                top = max(scores)
                weights = [math.exp(s - top) for s in scores]
                total = sum(weights)
                heads_out.append(sum(weights[s] / total * vs[s][kv] for s in range(pos + 1)))
            x = states[pos] + matvec(p + "attn_output.weight", np.concatenate(heads_out))
            h = norm(x, w[p + "ffn_norm.weight"])
            gate, up = matvec(p + "ffn_gate.weight", h), matvec(p + "ffn_up.weight", h)
            x = x + matvec(p + "ffn_down.weight", gate / (1.0 + np.exp(-gate)) * up)
            new_states.append(x)
        states = new_states
    return np.array([matvec(model.head_name, norm(x, w["output_norm.weight"])) for x in states])


def max_error_relative_to_row_max(expected, actual):
    """max over rows of max_i |actual - expected| / max_i |expected| (the fixtures' metric)."""
    expected, actual = np.asarray(expected, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    return float((np.abs(actual - expected).max(axis=1) / np.abs(expected).max(axis=1)).max())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--tokens", default="1", help="comma-separated token ids")
    parser.add_argument("--greedy", type=int, default=0, help="argmax continuation tokens to print")
    parser.add_argument("--self-check", action="store_true")
    args = parser.parse_args()
    model = Model(args.model)
    tokens = [int(t) for t in args.tokens.split(",")]
    if args.self_check:
        error = max_error_relative_to_row_max(forward(model, tokens).numpy(), forward_loops(model, tokens))
        print(f"self-check {args.model}: max error relative to row max |logit| = {error:.3e}")
        return 0 if error < 1e-12 else 1
    logits = forward(model, tokens)
    result = {"tokens": tokens, "argmax": logits.argmax(dim=1).tolist(),
              "last_logits_head": logits[-1, :8].tolist()}
    if args.greedy:
        result["greedy"], result["greedy_margins"] = greedy(model, tokens, args.greedy)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
