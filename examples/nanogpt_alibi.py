"""nanoGPT with ALiBi three ways, trained under torch.compile on a character-level corpus (CPU).

The model is Karpathy's nanoGPT model.py in shape: token embedding, pre-LayerNorm blocks with
c_attn / c_proj attention and a GELU MLP, a final LayerNorm, lm_head tied to the embedding. The
attention is chosen with --attn:

  sdpa-mask    the seed user's ALiBi: a materialised (1, H, T, T) float bias, −m·(i − j) on and
               below the diagonal and −inf above it, passed as F.scaled_dot_product_attention's
               attn_mask. Rebuilt in every forward from the slopes, so learned slopes get
               gradients. No position embedding.
  slope        slope.torch.flash_attn_func(q, k, v, causal=True, alibi_slopes=m) on (B, T, H, D):
               the same function as sdpa-mask (for T_q == T_k, flash-attn's bottom-right causal
               alignment is SDPA's upper-left one, and its bias −m·|i − j| is −m·(i − j) on the
               keys causality leaves), fused, no T×T tensor. No position embedding.
               --slope-door sdpa calls slope.torch.scaled_dot_product_attention(q, k, v,
               is_causal=True, alibi_slopes=m) on (B, H, T, D) instead: the seed user's SDPA
               call with one import changed (the same kernel; the transposes of nanoGPT's code).
  sdpa-causal  F.scaled_dot_product_attention(is_causal=True) with no bias, and nanoGPT's own
               learned absolute position embedding (wpe) instead: the original nanoGPT, the speed
               the seed user gave up for ALiBi. It is a different function (its losses are not
               comparable step by step with the other two).

--learned-slopes makes the ALiBi slopes an nn.Parameter (H,), initialised to Press et al.'s
slopes, without weight decay; otherwise they are a buffer. The parameter is log m by default
(--slope-param log; m = exp(param)): Press et al.'s slopes span a factor 2**7 (0.004 to 0.5 for
H=6), AdamW moves every parameter by about lr per step, so a linear m gives the shallow heads
huge relative steps and drives them below zero within a few steps at lr 1e-3; in log space every
head moves by the same ratio and m stays positive. --slope-param linear is the README's raw
recipe: m itself is the parameter and may cross zero (a negative slope weights far keys more;
slope accepts slopes of either sign, as flash-attn does, and sdpa-mask's bias follows too).

sdpa-mask and slope build identical parameters in identical order, so with the same --seed they
start from the same weights, see the same batches, and their losses agree within float32
rounding (tests/python/test_example_nanogpt.py checks it; bench/nanogpt_attn.py measures their
tokens/s).

  python examples/nanogpt_alibi.py --attn slope --steps 300
  python examples/nanogpt_alibi.py --attn sdpa-mask --learned-slopes --no-compile

Data: --data FILE, any UTF-8 text, one character one token (vocabulary = the file's characters),
90% train / 10% val. The default is data/raw/names.txt (written by `bash scripts/setup.sh` or
`bash scripts/fetch_corpora.sh --only names`); when it is missing, the repository's README.md is
used instead (always present in a checkout; ~10 KB, enough to watch a loss fall).
"""

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# Passive OpenMP waits (before torch starts its OpenMP runtime): as fast on an idle machine, and
# no collapse when the cores are shared (scripts/main_job.sh does the same). Yours wins if set.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

try:
    import slope.torch as slope_torch
except ImportError:  # the sdpa-* variants run without slope installed
    slope_torch = None

ATTN_KINDS = ("sdpa-mask", "sdpa-causal", "slope")
REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / "data" / "raw" / "names.txt"
FALLBACK_DATA = REPO / "README.md"


@dataclass
class GPTConfig:
    block_size: int = 256  # T, the longest sequence (sdpa-causal's wpe has this many rows)
    vocab_size: int = 65  # V
    n_layer: int = 4  # L
    n_head: int = 6  # H
    n_embd: int = 192  # C
    attn: str = "slope"  # one of ATTN_KINDS
    learned_slopes: bool = False
    slope_param: str = "log"  # learned slopes as "log" m or "linear" m (see --slope-param)
    slope_door: str = "flash"  # attn slope through flash_attn_func or SDPA's call (--slope-door)
    bias: bool = True


def alibi_init_slopes(n_head: int) -> torch.Tensor:
    """Press et al.'s slopes (H,) float32, from slope when it is importable (the same numbers)."""
    if slope_torch is not None:
        import slope

        return torch.from_numpy(slope.alibi_slopes(n_head).copy())

    def pow2(n):  # without slope (sdpa-* runs): the same formula, in Python floats
        start = 2.0 ** (-(2.0 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    p = 2 ** math.floor(math.log2(n_head))
    m = pow2(p) + (pow2(2 * p)[0::2][: n_head - p] if p < n_head else [])
    return torch.tensor(m, dtype=torch.float32)


def alibi_causal_bias(slopes: torch.Tensor, T: int) -> torch.Tensor:
    """The seed user's mask (1, H, T, T): −m·(i − j) for j <= i, −inf for j > i."""
    i = torch.arange(T, device=slopes.device)
    dist = (i[:, None] - i[None, :]).clamp(min=0).to(slopes.dtype)  # (T, T), 0 above diagonal
    future = torch.full((T, T), -math.inf, device=slopes.device).triu(1)  # (T, T)
    return (-slopes[:, None, None] * dist + future).unsqueeze(0)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        assert cfg.n_embd % cfg.n_head == 0
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.n_head, self.attn, self.slope_door = cfg.n_head, cfg.attn, cfg.slope_door
        # slopes (H,): the buffer m, or the parameter m ("linear") or log m ("log").
        self.slopes_are_log = cfg.learned_slopes and cfg.slope_param == "log"
        if cfg.attn != "sdpa-causal":
            m = alibi_init_slopes(cfg.n_head)  # (H,)
            if not cfg.learned_slopes:
                self.register_buffer("slopes", m)
            elif cfg.slope_param == "log":
                self.slopes = nn.Parameter(m.log())  # log m, (H,)
            else:
                self.slopes = nn.Parameter(m)  # m itself, (H,)
        if cfg.attn == "slope" and slope_torch is None:
            raise ValueError("--attn slope needs the slope module: pip install . (repository "
                             "root) or bash scripts/setup.sh --tests")

    def alibi_slopes(self):
        """The slopes m (H,) the attention uses, differentiable when they are learned."""
        return self.slopes.exp() if self.slopes_are_log else self.slopes

    def forward(self, x):  # x (B, T, C)
        B, T, C = x.shape
        H = self.n_head
        q, k, v = self.c_attn(x).split(C, dim=2)  # (B, T, C) each
        if self.attn == "slope" and self.slope_door == "flash":
            # flash-attn's layout (B, T, H, D): views of c_attn's output, no transposes.
            y = slope_torch.flash_attn_func(
                q.view(B, T, H, C // H), k.view(B, T, H, C // H), v.view(B, T, H, C // H),
                causal=True, alibi_slopes=self.alibi_slopes())  # (B, T, H, D)
            y = y.reshape(B, T, C)
        else:
            q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
            if self.attn == "slope":  # the seed user's call site, one import changed
                y = slope_torch.scaled_dot_product_attention(
                    q, k, v, is_causal=True, alibi_slopes=self.alibi_slopes())
            elif self.attn == "sdpa-mask":
                bias = alibi_causal_bias(self.alibi_slopes(), T)  # (1, H, T, T)
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
            else:
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        if cfg.attn not in ATTN_KINDS:
            raise ValueError(f"attn must be one of {ATTN_KINDS}, got {cfg.attn!r}")
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        # Only sdpa-causal has absolute positions; it is created last so that the other
        # parameters (and their seeded initial values) are the same in every variant.
        self.h = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd) if cfg.attn == "sdpa-causal" else None
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # nanoGPT's scaled init of residual projections
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets=None):  # idx (B, T) int64; targets (B, T) or None
        x = self.wte(idx)  # (B, T, C)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))  # (B, T, V)
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))

    def configure_optimizer(self, lr, weight_decay=0.1, betas=(0.9, 0.95)):
        """nanoGPT's AdamW groups: decay on matrices (dim >= 2); none on biases, LayerNorm weights
        and the slopes (H,)."""
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=False)


# ---- data: characters in, int64 tokens out ----------------------------------------------------


class CharCorpus:
    """A text file as character tokens: vocabulary = the sorted distinct characters of the file;
    train = the first 90% of the tokens, val = the rest."""

    def __init__(self, text: str):
        if len(text) < 16:
            raise ValueError(f"the corpus has {len(text)} characters: give a longer --data file")
        self.chars = sorted(set(text))
        index = {c: i for i, c in enumerate(self.chars)}
        tokens = torch.tensor([index[c] for c in text], dtype=torch.int64)
        n = int(0.9 * len(tokens))
        self.train, self.val = tokens[:n], tokens[n:]

    @classmethod
    def from_file(cls, path):
        return cls(Path(path).read_text(encoding="utf-8"))

    @property
    def vocab_size(self):
        return len(self.chars)

    def batch(self, split, B, T, gen: torch.Generator):
        """(x, y) of shape (B, T) each, y shifted by one; offsets drawn from gen (deterministic)."""
        data = self.train if split == "train" else self.val
        if len(data) <= T + 1:
            raise ValueError(f"the {split} split has {len(data)} tokens, fewer than T + 2 = "
                             f"{T + 2}: pass a smaller --block-size or a longer --data file")
        ix = torch.randint(len(data) - T - 1, (B,), generator=gen)
        x = torch.stack([data[i:i + T] for i in ix.tolist()])
        y = torch.stack([data[i + 1:i + 1 + T] for i in ix.tolist()])
        return x, y


def default_data_path() -> Path:
    return DEFAULT_DATA if DEFAULT_DATA.exists() else FALLBACK_DATA


def build(cfg: GPTConfig, seed: int, compile_model: bool):
    """The model initialised from `seed`, and what runs it (the compiled model or itself)."""
    torch.manual_seed(seed)
    model = GPT(cfg)
    run = torch.compile(model, fullgraph=True) if compile_model else model
    return model, run


def train_step(run, opt, x, y):
    """One step: forward, backward, AdamW; returns the loss (a float)."""
    _, loss = run(x, y)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.item()


@torch.no_grad()
def evaluate(run, corpus, B, T, batches, gen):
    losses = [run(*corpus.batch("val", B, T, gen))[1].item() for _ in range(batches)]
    return sum(losses) / len(losses)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Train nanoGPT with ALiBi attention computed three ways (sdpa-mask, "
        "sdpa-causal, slope) under torch.compile on a character-level corpus (CPU).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--attn", choices=ATTN_KINDS, default="slope",
                   help="sdpa-mask: materialised ALiBi bias as SDPA's attn_mask; sdpa-causal: "
                   "SDPA is_causal=True with learned absolute positions (wpe), no ALiBi; slope: "
                   "slope.torch's fused causal ALiBi (same function as sdpa-mask)")
    p.add_argument("--learned-slopes", action="store_true",
                   help="ALiBi slopes as an nn.Parameter (H,) trained with the model")
    p.add_argument("--slope-param", choices=("log", "linear"), default="log",
                   help="with --learned-slopes: the parameter is log m (m stays positive, the same "
                   "relative step for every head) or m (any sign)")
    p.add_argument("--slope-door", choices=("flash", "sdpa"), default="flash",
                   help="with --attn slope: slope.torch.flash_attn_func on (B, T, H, D), or "
                   "slope.torch.scaled_dot_product_attention(is_causal=True) on (B, H, T, D)")
    p.add_argument("--data", default=None,
                   help=f"UTF-8 text file (default {DEFAULT_DATA.relative_to(REPO)} when it "
                   f"exists, else {FALLBACK_DATA.relative_to(REPO)})")
    p.add_argument("--steps", type=int, default=300, help="training steps")
    p.add_argument("--batch-size", type=int, default=16, help="B, sequences per step")
    p.add_argument("--block-size", type=int, default=128, help="T, tokens per sequence")
    p.add_argument("--n-layer", type=int, default=4, help="L, transformer blocks")
    p.add_argument("--n-head", type=int, default=6, help="H, attention heads")
    p.add_argument("--n-embd", type=int, default=192, help="C, channels (a multiple of H)")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (constant)")
    p.add_argument("--seed", type=int, default=1337,
                   help="seeds the initial weights and the batch offsets: the same seed gives "
                   "the same run")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                   help="torch.compile(model, fullgraph=True)")
    p.add_argument("--log-every", type=int, default=25, help="print the loss every N steps")
    p.add_argument("--eval-batches", type=int, default=8, help="val batches at the end")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    path = Path(args.data) if args.data else default_data_path()
    try:
        corpus = CharCorpus.from_file(path)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        print(f"nanogpt_alibi: cannot use --data {path}: {e}", file=sys.stderr)
        return 2
    cfg = GPTConfig(block_size=args.block_size, vocab_size=corpus.vocab_size,
                    n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd, attn=args.attn,
                    learned_slopes=args.learned_slopes, slope_param=args.slope_param,
                    slope_door=args.slope_door)
    model, run = build(cfg, args.seed, args.compile)
    opt = model.configure_optimizer(args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"data {path} ({len(corpus.train)} train / {len(corpus.val)} val tokens, V="
          f"{corpus.vocab_size}); attn {args.attn}, slopes "
          f"{'learned (' + args.slope_param + ')' if args.learned_slopes else 'fixed'}; "
          f"L{cfg.n_layer} H{cfg.n_head} "
          f"C{cfg.n_embd} B{args.batch_size} T{args.block_size}; {n_params} parameters; "
          f"compile {args.compile}; torch threads {torch.get_num_threads()}")
    tokens_per_step = args.batch_size * args.block_size
    t_first = time.perf_counter()
    t_window, steps_in_window = None, 0
    for step in range(args.steps):
        x, y = corpus.batch("train", args.batch_size, args.block_size, gen)
        loss = train_step(run, opt, x, y)
        if step == 0:  # the first step compiles: time from the second on
            print(f"step 0: loss {loss:.4f} (first step, with compilation: "
                  f"{time.perf_counter() - t_first:.1f} s)", flush=True)
            t_window = time.perf_counter()
            continue
        steps_in_window += 1
        if step % args.log_every == 0 or step == args.steps - 1:
            dt = time.perf_counter() - t_window
            print(f"step {step}: loss {loss:.4f}, {tokens_per_step * steps_in_window / dt:.0f} "
                  f"tokens/s", flush=True)
            t_window, steps_in_window = time.perf_counter(), 0
    val = evaluate(run, corpus, args.batch_size, args.block_size, args.eval_batches, gen)
    print(f"val loss {val:.4f} ({args.eval_batches} batches)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
