"""A short nanoGPT-shaped GPT in PyTorch with slope's five position schemes.

The outside oracle of slope's C++ GPT (tests/python/test_gpt_reference.py). It follows
nanoGPT's model.py: pre-LN blocks, c_attn / c_proj / c_fc named and shaped as there, exact GELU,
lm_head tied to wte, F.cross_entropy with ignore_index=-1; so nanoGPT's state dict loads with
strict=True. Attention is written out (no fused kernel), in the model's dtype; ALiBi is a
materialised (H, T, T) bias, -m_h * (i - j) for j <= i, -inf above the diagonal. Written for
clarity over speed, from the papers rather than from slope's code:

  learned      nanoGPT's wpe
  sinusoidal   Vaswani et al. 2017, section 3.5: table[t, 2i] = sin(t / 10000^(2i/C)),
               table[t, 2i+1] = cos(...), added like wpe, not a parameter
  none         no position signal but the causal mask
  alibi        Press et al. 2022: fixed slopes (get_slopes, generalised by max_bias as MPT and
               BLOOM do), not in the state dict
  alibi-learned  one slope vector per layer, transformer.h.{l}.attn.alibi_slopes (H)
"""

import json
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

_DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64}


def load_safetensors(path):
    """{name: numpy array} of a safetensors file (the `safetensors` package may be absent)."""
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, t in header.items():
        begin, end = t["data_offsets"]
        raw = data[8 + n + begin : 8 + n + end]
        out[name] = np.frombuffer(raw, dtype=_DTYPES[t["dtype"]]).reshape(t["shape"]).copy()
    return out


def alibi_slopes(n_head, max_bias=8.0):
    """Press et al.'s get_slopes: for a power of two, 2^(-max_bias*h/n), h = 1..n; otherwise
    the slopes of the power of two below, then every other slope of the one above."""

    def geometric(n):
        return [2.0 ** (-max_bias * (h + 1) / n) for h in range(n)]

    p = 2 ** int(math.floor(math.log2(n_head)))
    return geometric(p) + geometric(2 * p)[0::2][: n_head - p]


def sinusoidal_table(T, C):
    t = np.arange(T, dtype=np.float64)[:, None]
    i = np.arange(C)[None, :] // 2
    angle = t / np.power(10000.0, 2.0 * i / C)
    return np.where(np.arange(C)[None, :] % 2 == 0, np.sin(angle), np.cos(angle))


class LayerNorm(nn.Module):
    """nanoGPT's LayerNorm with an optional bias."""

    def __init__(self, ndim, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, H = cfg["n_embd"], cfg["n_head"]
        self.n_head, self.pos = H, cfg["pos"]
        self.c_attn = nn.Linear(C, 3 * C, bias=cfg["bias"])
        self.c_proj = nn.Linear(C, C, bias=cfg["bias"])
        slopes = torch.tensor(alibi_slopes(H, cfg["max_bias"]), dtype=torch.float64)
        if self.pos == "alibi-learned":
            self.alibi_slopes = nn.Parameter(slopes)
        elif self.pos == "alibi":
            self.register_buffer("alibi_slopes", slopes, persistent=False)
        else:
            self.alibi_slopes = None

    def forward(self, x):
        B, T, C = x.shape
        H, D = self.n_head, C // self.n_head
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (z.view(B, T, H, D).transpose(1, 2) for z in (q, k, v))  # (B, H, T, D)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D))
        i = torch.arange(T, device=x.device)
        dist = (i[:, None] - i[None, :]).to(x.dtype)  # (T, T), i - j
        if self.alibi_slopes is not None:
            att = att - self.alibi_slopes.to(x.dtype)[:, None, None] * dist  # (H, T, T) bias
        att = att.masked_fill(dist < 0, float("-inf"))
        y = F.softmax(att, dim=-1) @ v
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C = cfg["n_embd"]
        self.c_fc = nn.Linear(C, 4 * C, bias=cfg["bias"])
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * C, C, bias=cfg["bias"])

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.ln_1 = LayerNorm(cfg["n_embd"], cfg["bias"])
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = LayerNorm(cfg["n_embd"], cfg["bias"])
        self.mlp = MLP(cfg)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """cfg: the dict of slope's config.json (nanoGPT's GPTConfig fields, pos, max_bias)."""

    def __init__(self, cfg):
        super().__init__()
        cfg = {"dropout": 0.0, "bias": True, "pos": "learned", "max_bias": 8.0, **cfg}
        self.cfg = cfg
        C = cfg["n_embd"]
        modules = dict(
            wte=nn.Embedding(cfg["vocab_size"], C),
            h=nn.ModuleList([Block(cfg) for _ in range(cfg["n_layer"])]),
            ln_f=LayerNorm(C, cfg["bias"]),
        )
        if cfg["pos"] == "learned":
            modules["wpe"] = nn.Embedding(cfg["block_size"], C)
        self.transformer = nn.ModuleDict(modules)
        self.lm_head = nn.Linear(C, cfg["vocab_size"], bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying, as nanoGPT

    def forward(self, idx, targets=None):
        B, T = idx.shape
        x = self.transformer.wte(idx)
        if self.cfg["pos"] == "learned":
            assert T <= self.cfg["block_size"], "learned positions: crop to block_size"
            x = x + self.transformer.wpe(torch.arange(T, device=idx.device))
        elif self.cfg["pos"] == "sinusoidal":
            x = x + torch.from_numpy(sinusoidal_table(T, x.shape[-1])).to(x.dtype)
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(
                logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1
            )
        return logits, loss


def load_gpt(config, state, dtype=torch.float64):
    """A GPT from a config dict and a {name: numpy array} state dict, strict as nanoGPT."""
    model = GPT(config).to(dtype)
    model.load_state_dict({k: torch.from_numpy(v).to(dtype) for k, v in state.items()}, strict=True)
    return model
