"""The bundled demonstration model: a small Llama, written so that it computes exactly what
llama.cpp (and Supercluster's engine) compute for a GGUF file with general.architecture=llama.

Used by train.py (training), generate.py (reference generation) and export_gguf.py (names
and shapes of the exported tensors).

Block: x += Wo . Attention(RoPE(Wq . RMSNorm(x)), RoPE(Wk . RMSNorm(x)), Wv . RMSNorm(x))
       x += Wdown . (silu(Wgate . RMSNorm(x)) * (Wup . RMSNorm(x)))
then a final RMSNorm and the output head. RMSNorm is x / sqrt(mean(x^2) + eps) * weight.

RoPE is the interleaved-pairs form (llama.cpp's LLAMA_ROPE_TYPE_NORM, the one it applies to
general.architecture=llama): within each head, the pair (x[2i], x[2i+1]) is rotated by the
angle pos * theta^(-2i/head_dim). Because training uses this form directly, the exported
Q and K weights need no row permutation (the permutation in llama.cpp's converters only turns
Hugging Face's half-split layout into this one).

Grouped-query attention: query head h reads key/value head h // (n_heads // n_kv_heads), as
ggml's broadcasting does. The output head is tied to the token embedding during training.
"""
import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    vocab_size: int = 4000
    dim: int = 192
    n_layers: int = 6
    n_heads: int = 6
    n_kv_heads: int = 2
    ffn_dim: int = 512
    context_length: int = 256
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5

    @property
    def head_dim(self):
        return self.dim // self.n_heads

    def to_dict(self):
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(head_dim, length, theta):
    """cos/sin of shape [length, head_dim/2]: angle(pos, i) = pos * theta^(-2i/head_dim)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    angles = torch.outer(torch.arange(length, dtype=torch.float64), inv_freq)
    return torch.cos(angles).float(), torch.sin(angles).float()


def apply_rope(x, cos, sin):
    """x: [batch, heads, seq, head_dim]; rotates the interleaved pairs (2i, 2i+1)."""
    even, odd = x[..., 0::2], x[..., 1::2]
    rotated_even = even * cos - odd * sin
    rotated_odd = even * sin + odd * cos
    return torch.stack((rotated_even, rotated_odd), dim=-1).flatten(-2)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        hd = cfg.head_dim
        self.wq = nn.Linear(cfg.dim, cfg.n_heads * hd, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.n_kv_heads * hd, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.n_kv_heads * hd, bias=False)
        self.wo = nn.Linear(cfg.n_heads * hd, cfg.dim, bias=False)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        cfg, hd = self.cfg, self.cfg.head_dim
        q = self.wq(x).view(b, t, cfg.n_heads, hd).transpose(1, 2)
        k = self.wk(x).view(b, t, cfg.n_kv_heads, hd).transpose(1, 2)
        v = self.wv(x).view(b, t, cfg.n_kv_heads, hd).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        group = cfg.n_heads // cfg.n_kv_heads
        # [b, kv, t, hd] -> [b, kv, group, t, hd] -> [b, heads, t, hd]: head h reads kv h // group.
        k = k[:, :, None].expand(b, cfg.n_kv_heads, group, t, hd).reshape(b, cfg.n_heads, t, hd)
        v = v[:, :, None].expand(b, cfg.n_kv_heads, group, t, hd).reshape(b, cfg.n_heads, t, hd)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(hd) + mask
        out = torch.softmax(scores, dim=-1) @ v
        return self.wo(out.transpose(1, 2).reshape(b, t, cfg.n_heads * hd))


class FeedForward(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.gate = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.up = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.down = nn.Linear(cfg.ffn_dim, cfg.dim, bias=False)

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attn_norm = RMSNorm(cfg.dim, cfg.rms_norm_eps)
        self.attn = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.rms_norm_eps)
        self.ffn = FeedForward(cfg)

    def forward(self, x, cos, sin, mask):
        x = x + self.attn(self.attn_norm(x), cos, sin, mask)
        return x + self.ffn(self.ffn_norm(x))


class Llama(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.rms_norm_eps)
        cos, sin = rope_tables(cfg.head_dim, cfg.context_length, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self._init_weights()

    def _init_weights(self):
        # GPT-2 style: N(0, 0.02), residual output projections scaled by 1/sqrt(2 * layers).
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02
                if name.endswith("wo.weight") or name.endswith("down.weight"):
                    std = 0.02 / math.sqrt(2 * self.cfg.n_layers)
                nn.init.normal_(p, mean=0.0, std=std)

    def output_weight(self):
        return self.tok_embeddings.weight  # tied head

    def forward(self, tokens):
        """tokens: [batch, seq] ids, seq <= context_length; returns logits [batch, seq, vocab]."""
        t = tokens.shape[1]
        x = self.tok_embeddings(tokens)
        cos, sin = self.rope_cos[:t], self.rope_sin[:t]
        mask = torch.full((t, t), float("-inf")).triu(1)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return F.linear(self.norm(x), self.output_weight())


def load_checkpoint(path):
    """Returns (model in eval mode, checkpoint dict) from a file train.py wrote."""
    ckpt = torch.load(path, map_location="cpu")
    model = Llama(Config(**ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, ckpt
