"""GPU attention throughput: slope's Triton kernels against SDPA and FlexAttention (issue 13).

One run over B·T = 16k tokens, H·D = 2048, D ∈ {64, 128}, T ∈ {512 … 16k}, forward and
forward+backward, in TFLOP/s (4·B·H·Tq·Tk·D for the forward, 2.5× that for the backward; causal
counts half), for:
  slope-alibi         slope.torch.attention, causal ALiBi with learned (differentiable) slopes,
                      far-tile skipping off
  slope-alibi-skip    the same with skipping on (the default tolerance 2⁻²⁴)
  slope-causal        slope, causal, no bias
  sdpa-causal         torch SDPA is_causal=True on the flash backend (no bias)
  sdpa-mask           torch SDPA with the materialised ALiBi bias (H, T, T) as attn_mask
  flex-alibi          FlexAttention (torch.compile'd) with an ALiBi score_mod and a causal
                      block mask
  slope-kerple-log    slope with a learned relative bias instead of ALiBi (slope.relative_bias,
  slope-t5            causal T5 buckets, FIRE with L = T: the per-head distance table),
  slope-fire          the bias parameters' gradients included in forward+backward

  python bench/attention_gpu.py                       # print the table (needs CUDA)
  python bench/attention_gpu.py --out docs/BENCHMARKS.md
  python bench/attention_gpu.py --dry-run             # no GPU: tiny shapes on the CPU, slope
                                                      # through the Triton interpreter

--dry-run runs every method's code path at tiny shapes on the CPU (slope's operators routed to
the Triton kernels under TRITON_INTERPRET=1, FlexAttention eager) to keep this script correct
on machines without a GPU; its timings mean nothing and it never writes BENCHMARKS.md.
"""

import argparse
import datetime
import math
import os
import statistics
import sys
from pathlib import Path

DRY_RUN = "--dry-run" in sys.argv
if DRY_RUN:  # before triton is imported (by slope._triton or by torch)
    os.environ["TRITON_INTERPRET"] = "1"

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import md_table, progress, write_markdown  # noqa: E402

import slope  # noqa: E402
import slope.torch as st  # noqa: E402

BEGIN, END = "<!-- bench/attention_gpu.py:begin -->", "<!-- bench/attention_gpu.py:end -->"
METHODS = ["slope-alibi", "slope-alibi-skip", "slope-causal", "sdpa-causal", "sdpa-mask",
           "flex-alibi", "slope-kerple-log", "slope-t5", "slope-fire"]
# Learned relative biases (slope.relative_bias; causal T5 buckets; FIRE with L = T, so that every
# row is below L and the kernels read the distance table), their parameters trained too.
REL_METHODS = {"slope-kerple-log": "kerple-log", "slope-t5": "t5", "slope-fire": "fire"}


def route_slope_to_triton_on_cpu():
    """--dry-run: the operators' CPU kernels become the Triton ones (interpreted), so the front
    door → operator → Triton path runs as it would on a GPU."""
    from slope import _torch_ops, _triton
    _torch_ops._attention_forward.register_kernel("cpu")(_triton.attention_forward)
    _torch_ops._attention_backward.register_kernel("cpu")(_triton.attention_backward)


def alibi_bias(slopes, T, dtype, device):
    """The materialised causal ALiBi bias (H, T, T): −m·(i − j) for j ≤ i, −inf above."""
    i = torch.arange(T, device=device)
    dist = (i[:, None] - i[None, :]).float()
    bias = -slopes.float()[:, None, None] * dist
    return bias.masked_fill(dist < 0, -math.inf).to(dtype)


def make_method(name, H, T, dtype, device, dry_run):
    """f(q, k, v, slopes) -> out on (B, H, T, D) tensors, causal."""
    if name in REL_METHODS:
        from slope.relative_bias import RelativeBias
        bias = RelativeBias(REL_METHODS[name], H, bidirectional=False,
                            fire_L=float(T)).to(device)
        return lambda q, k, v, m: st.attention(q, k, v, causal=True, relative_bias=bias)
    if name.startswith("slope"):
        alibi = name != "slope-causal"
        tol = 2.0**-24 if name == "slope-alibi-skip" else 0.0
        return lambda q, k, v, m: st.attention(q, k, v, causal=True,
                                               alibi_slopes=m if alibi else None,
                                               skip_tolerance=tol)
    if name == "sdpa-causal":
        def sdpa_causal(q, k, v, m):
            if device == "cuda":
                from torch.nn.attention import SDPBackend, sdpa_kernel
                with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                    return F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return sdpa_causal
    if name == "sdpa-mask":
        cache = {}

        def sdpa_mask(q, k, v, m):
            if "bias" not in cache:  # built once, outside the timed region's repeats
                cache["bias"] = alibi_bias(m.detach(), T, q.dtype, q.device)
            return F.scaled_dot_product_attention(q, k, v, attn_mask=cache["bias"])
        return sdpa_mask
    if name == "flex-alibi":
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention
        block_mask = create_block_mask(lambda b, h, qi, ki: qi >= ki, None, None, T, T,
                                       device=device)
        fn = flex_attention if dry_run else torch.compile(flex_attention)

        def flex(q, k, v, m):
            def score_mod(score, b, h, qi, ki):
                return score - m[h] * (qi - ki)
            return fn(q, k, v, score_mod=score_mod, block_mask=block_mask)
        return flex
    raise ValueError(name)


def time_ms(fn, repeats, device):
    """Median milliseconds of fn() over `repeats` timed calls after 2 warm-up calls."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            import time
            t = time.perf_counter()
            fn()
            times.append(1e3 * (time.perf_counter() - t))
    return statistics.median(times)


def measure(name, B, H, T, D, dtype, device, repeats, dry_run):
    """(forward ms, forward+backward ms), or None for a method that runs out of memory."""
    g = torch.Generator(device="cpu").manual_seed(0)
    q, k, v, dout = (torch.randn(B, H, T, D, generator=g).to(device=device, dtype=dtype)
                     for _ in range(4))
    m = torch.tensor(slope.alibi_slopes(H), device=device)
    f = make_method(name, H, T, dtype, device, dry_run)
    try:
        with torch.no_grad():
            fwd = time_ms(lambda: f(q, k, v, m), repeats, device)
        qg, kg, vg = (x.clone().requires_grad_() for x in (q, k, v))
        mg = m.clone().requires_grad_(name.startswith("slope-alibi"))

        def step():
            f(qg, kg, vg, mg).backward(dout)
        # FlexAttention has no CPU backward: the dry run checks its forward only.
        no_bwd = dry_run and name == "flex-alibi"
        fwd_bwd = None if no_bwd else time_ms(step, repeats, device)
    except torch.cuda.OutOfMemoryError:
        progress(f"{name} T={T} D={D}: out of memory")
        return None
    finally:
        if device == "cuda":
            torch.cuda.empty_cache()
    return fwd, fwd_bwd


def tflops(B, H, T, D, ms, backward):
    flops = 4.0 * B * H * T * T * D / 2  # causal: half the products
    if backward:
        flops *= 3.5  # forward + backward (2.5× the forward)
    return flops / (ms * 1e-3) / 1e12


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    ap.add_argument("--dims", default="64,128")
    ap.add_argument("--seqlens", default="512,1024,2048,4096,8192,16384")
    ap.add_argument("--tokens", type=int, default=16384, help="B·T")
    ap.add_argument("--hidden", type=int, default=2048, help="H·D")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--out", help="write the table into this markdown file (BENCHMARKS.md)")
    args = ap.parse_args()
    dtype = getattr(torch, args.dtype)
    dims = [int(x) for x in args.dims.split(",")]
    seqlens = [int(x) for x in args.seqlens.split(",")]
    methods = args.methods.split(",")
    if args.dry_run:
        device = "cpu"
        route_slope_to_triton_on_cpu()
        dims, seqlens, tokens, hidden, repeats = [16], [32], 64, 32, 1
        if args.out:
            sys.exit("--dry-run never writes results: its timings are the interpreter's")
    else:
        if not torch.cuda.is_available():
            sys.exit("bench/attention_gpu.py needs a CUDA GPU (torch.cuda.is_available() is "
                     "False). Run it on a GPU machine, or pass --dry-run to check its code paths "
                     "on the CPU.")
        device = "cuda"
        tokens, hidden, repeats = args.tokens, args.hidden, args.repeats
    gpu = torch.cuda.get_device_name() if device == "cuda" else "none (dry run, CPU)"
    import triton
    info = (f"GPU: {gpu}; torch {torch.__version__}, triton {triton.__version__}, "
            f"dtype {args.dtype}, B·T = {tokens}, H·D = {hidden}, median of {repeats}; "
            f"{datetime.date.today().isoformat()}")
    progress(info)
    rows = []
    for D in dims:
        H = hidden // D
        for T in seqlens:
            B = max(1, tokens // T)
            res = {}
            for name in methods:
                progress(f"D={D} T={T} B={B} H={H} {name}")
                res[name] = measure(name, B, H, T, D, dtype, device, repeats, args.dry_run)
            for which, label in ((0, "fwd"), (1, "fwd+bwd")):
                tf = {n: (None if r is None or r[which] is None
                          else tflops(B, H, T, D, r[which], which == 1)) for n, r in res.items()}
                row = [D, T, label] + [("–" if tf[n] is None else f"{tf[n]:.1f}")
                                       for n in methods]
                ratio = lambda a, b: (f"{tf[a] / tf[b]:.2f}" if tf.get(a) and tf.get(b)  # noqa
                                      else "–")
                row += [ratio("slope-alibi", "sdpa-causal"), ratio("slope-alibi", "flex-alibi"),
                        ratio("slope-alibi", "sdpa-mask"),
                        ratio("slope-alibi-skip", "sdpa-causal")]
                rows.append(row)
    header = (["D", "T", "pass"] + [f"{m} TFLOP/s" for m in methods]
              + ["alibi ÷ sdpa-causal", "alibi ÷ flex", "alibi ÷ sdpa-mask",
                 "alibi-skip ÷ sdpa-causal"])
    table = md_table(header, rows)
    print(info)
    print(table)
    if args.out:
        section = (f"## GPU attention throughput (bench/attention_gpu.py)\n\n{info}\n\n"
                   "Causal throughout; TFLOP/s count half of the T² products; the backward is "
                   "counted as 2.5× the forward.\n\n" + table + "\n")
        write_markdown(args.out, section, BEGIN, END)


if __name__ == "__main__":
    main()
