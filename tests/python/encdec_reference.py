"""A short BERT-style encoder and encoder-decoder in PyTorch with slope's encoder position schemes.

The outside oracle of slope's C++ EncDec (model/encdec.h; tests/python/test_encdec_reference.py),
written from that header's description in the style of gpt_reference.py: pre-LN blocks named
and shaped as nanoGPT's (c_attn / c_proj / c_fc), exact GELU, each stack's output head tied to
its own wte, F.cross_entropy with ignore_index=-1. The state dict's names are slope's, so its
safetensors load with strict=True. Attention is written out, in the model's dtype, with a
materialised (H, T, T) bias:

  encoder self-attention   bidirectional; bias -m_left[h]*(i - j) for keys left of the query,
                           -m_right[h]*(j - i) right of it, 0 on the diagonal; a slope of +inf
                           masks its side (never the diagonal). Keys j >= length[b] are
                           padding, masked.
  decoder self-attention   causal; bias -m[h]*(i - j)
  cross-attention          decoder queries over the encoder's output ("memory"), no position
                           bias, source padding masked
  a query with no visible key (a padded query of a right-looking head) gets output 0, as
  slope's attention problem defines it

Position schemes (of the encoder; the decoder is always causal ALiBi, with Press's slopes, or
learned causal slopes for alibi-learned):
  learned             encoder.wpe.weight (block_size, C) added to the embedding
  sinusoidal          Vaswani et al.'s table added to the embedding
  none                nothing
  alibi-symmetric     encoder m_left = m_right = Press's slopes; decoder Press's causal slopes
  alibi-nonsymmetric  encoder: Press's slopes of H/2 heads for both halves, the first half
                      looking left only (m_right = +inf), the second right only; decoder
                      Press's causal slopes of H heads
  alibi-learned       encoder.h.{l}.attn.alibi_theta_left / _right (H): m = sigmoid(theta);
                      decoder.h.{l}.attn.alibi_theta (H), causal
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from gpt_reference import LayerNorm, alibi_slopes, sinusoidal_table


def attention(q, k, v, bias=None, key_lengths=None, causal=False):
    """softmax(q k^T / sqrt(D) + bias + masks) v over (B, H, T, D) tensors; bias (H, Tq, Tk)
    with -inf where a side is masked; key_lengths (B) masks keys t >= key_lengths[b]. A row with
    no visible key gives 0."""
    Tq, Tk, D = q.shape[2], k.shape[2], q.shape[3]
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D))
    if bias is not None:
        att = att + bias
    masked = torch.zeros(q.shape[0], 1, Tq, Tk, dtype=torch.bool)
    if causal:
        i = torch.arange(Tq)[:, None] + (Tk - Tq)
        masked = masked | (torch.arange(Tk)[None, :] > i)
    if key_lengths is not None:
        padding = torch.arange(Tk)[None, :] >= key_lengths[:, None]  # (B, Tk)
        masked = masked | padding[:, None, None, :]
    att = att.masked_fill(masked, float("-inf"))
    empty = torch.isneginf(att).all(dim=-1, keepdim=True)  # no visible key: output 0
    p = F.softmax(att.masked_fill(empty, 0.0), dim=-1).masked_fill(empty, 0.0)
    return p @ v


def alibi_bias(left, right, T, dtype):
    """(H, T, T): -left[h]*(i - j) for j < i, -right[h]*(j - i) for j > i, 0 for j = i; an
    infinite slope gives -inf on its side (computed apart: inf * 0 would be NaN)."""
    i = torch.arange(T)
    d = (i[:, None] - i[None, :]).to(dtype)  # i - j: > 0 for keys on the left
    inf_l, inf_r = torch.isinf(left), torch.isinf(right)
    fl = torch.where(inf_l, torch.zeros_like(left), left)[:, None, None]
    fr = torch.where(inf_r, torch.zeros_like(right), right)[:, None, None]
    bias = -(fl * d.clamp(min=0) + fr * (-d).clamp(min=0))
    bias = bias.masked_fill(inf_l[:, None, None] & (d > 0), float("-inf"))
    return bias.masked_fill(inf_r[:, None, None] & (d < 0), float("-inf"))


class SelfAttention(nn.Module):
    def __init__(self, cfg, decoder):
        super().__init__()
        C, H = cfg["n_embd"], cfg["n_head"]
        self.n_head, self.pos, self.decoder = H, cfg["pos"], decoder
        self.c_attn = nn.Linear(C, 3 * C, bias=cfg["bias"])
        self.c_proj = nn.Linear(C, C, bias=cfg["bias"])
        press = torch.tensor(alibi_slopes(H, cfg["max_bias"]), dtype=torch.float64)
        inf = torch.full((H // 2,), math.inf, dtype=torch.float64)
        self.fixed = None  # (left, right) fixed slopes
        if self.pos == "alibi-learned":
            if decoder:
                self.alibi_theta = nn.Parameter(torch.zeros(H))
            else:
                self.alibi_theta_left = nn.Parameter(torch.zeros(H))
                self.alibi_theta_right = nn.Parameter(torch.zeros(H))
        elif self.pos == "alibi-symmetric" or decoder:
            self.fixed = (press, press)
        elif self.pos == "alibi-nonsymmetric":
            half = torch.tensor(alibi_slopes(H // 2, cfg["max_bias"]), dtype=torch.float64)
            self.fixed = (torch.cat([half, inf]), torch.cat([inf, half]))

    def slopes(self):
        if self.pos == "alibi-learned":
            if self.decoder:
                m = torch.sigmoid(self.alibi_theta)
                return m, m
            return torch.sigmoid(self.alibi_theta_left), torch.sigmoid(self.alibi_theta_right)
        return self.fixed

    def forward(self, x, key_lengths=None):
        B, T, C = x.shape
        H, D = self.n_head, C // self.n_head
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (z.view(B, T, H, D).transpose(1, 2) for z in (q, k, v))  # (B, H, T, D)
        slopes = self.slopes()
        bias = None
        if slopes is not None:
            bias = alibi_bias(slopes[0].to(x.dtype), slopes[1].to(x.dtype), T, x.dtype)
        y = attention(q, k, v, bias, key_lengths, causal=self.decoder)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class CrossAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C = cfg["n_embd"]
        self.n_head = cfg["n_head"]
        self.c_q = nn.Linear(C, C, bias=cfg["bias"])
        self.c_kv = nn.Linear(C, 2 * C, bias=cfg["bias"])
        self.c_proj = nn.Linear(C, C, bias=cfg["bias"])

    def forward(self, y, memory, memory_lengths):
        B, T, C = y.shape
        S = memory.shape[1]
        H, D = self.n_head, C // self.n_head
        q = self.c_q(y).view(B, T, H, D).transpose(1, 2)
        k, v = self.c_kv(memory).split(C, dim=2)
        k, v = (z.view(B, S, H, D).transpose(1, 2) for z in (k, v))
        out = attention(q, k, v, key_lengths=memory_lengths)
        return self.c_proj(out.transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C = cfg["n_embd"]
        self.c_fc = nn.Linear(C, 4 * C, bias=cfg["bias"])
        self.gelu = nn.GELU()  # exact, as slope's gelu_forward (nn/pointwise.h)
        self.c_proj = nn.Linear(4 * C, C, bias=cfg["bias"])

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, cfg, decoder):
        super().__init__()
        C, bias = cfg["n_embd"], cfg["bias"]
        self.ln_1 = LayerNorm(C, bias)
        self.attn = SelfAttention(cfg, decoder)
        if decoder:
            self.ln_x = LayerNorm(C, bias)
            self.cross = CrossAttention(cfg)
        self.ln_2 = LayerNorm(C, bias)
        self.mlp = MLP(cfg)

    def forward(self, x, key_lengths=None, memory=None, memory_lengths=None):
        x = x + self.attn(self.ln_1(x), key_lengths)
        if memory is not None:
            x = x + self.cross(self.ln_x(x), memory, memory_lengths)
        return x + self.mlp(self.ln_2(x))


class Stack(nn.Module):
    """encoder.* or decoder.*: embedding (+ positions), blocks, ln_f."""

    def __init__(self, cfg, decoder):
        super().__init__()
        C = cfg["n_embd"]
        self.cfg = cfg
        self.wte = nn.Embedding(cfg["tgt_vocab_size"] if decoder else cfg["vocab_size"], C)
        self.positions = None if decoder else cfg["pos"]  # the decoder's are in its attention
        if self.positions == "learned":
            self.wpe = nn.Embedding(cfg["block_size"], C)
        L = cfg["n_dec_layer"] if decoder else cfg["n_layer"]
        self.h = nn.ModuleList([Block(cfg, decoder) for _ in range(L)])
        self.ln_f = LayerNorm(C, cfg["bias"])

    def forward(self, idx, key_lengths=None, memory=None, memory_lengths=None):
        T = idx.shape[1]
        x = self.wte(idx)
        if self.positions == "learned":
            assert T <= self.cfg["block_size"], "learned positions: at most block_size"
            x = x + self.wpe(torch.arange(T))
        elif self.positions == "sinusoidal":
            x = x + torch.from_numpy(sinusoidal_table(T, x.shape[-1])).to(x.dtype)
        for block in self.h:
            x = block(x, key_lengths, memory, memory_lengths)
        return self.ln_f(x)

    def head(self, x):
        return x @ self.wte.weight.t()  # tied


class EncDec(nn.Module):
    """cfg: the dict of slope's encoder / seq2seq config.json."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = {"dropout": 0.0, "bias": True, "max_bias": 8.0, **cfg}
        self.encoder = Stack(self.cfg, decoder=False)
        if self.cfg["arch"] == "seq2seq":
            self.decoder = Stack(self.cfg, decoder=True)

    def forward_mlm(self, idx, lengths=None, targets=None):
        logits = self.encoder.head(self.encoder(idx, lengths))
        return logits, self._loss(logits, targets)

    def forward_seq2seq(self, src, src_lengths, tgt, targets=None):
        memory = self.encoder(src, src_lengths)
        logits = self.decoder.head(self.decoder(tgt, memory=memory, memory_lengths=src_lengths))
        return logits, self._loss(logits, targets)

    @staticmethod
    def _loss(logits, targets):
        if targets is None:
            return None
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                               ignore_index=-1)


def load_encdec(config, state, dtype=torch.float64):
    """An EncDec from a config dict and a {name: numpy array} state dict, strict."""
    model = EncDec(config).to(dtype)
    model.load_state_dict({k: torch.from_numpy(v).to(dtype) for k, v in state.items()}, strict=True)
    return model
