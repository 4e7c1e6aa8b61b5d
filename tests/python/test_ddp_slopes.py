"""Data parallel with learned ALiBi slopes: two processes under torch.distributed (gloo,
localhost) training examples/nanogpt_alibi.py's model (attn slope, learned slopes) through
DistributedDataParallel get, at each of 2 steps, the gradients — every parameter, the slopes
included — of one process running the whole batch.

Why it can fail: DDP all-reduces the gradients that autograd accumulates into each parameter's
.grad; the slopes' gradient comes from slope's custom backward operator, so a slope gradient
that skipped the parameter's accumulator, or arrived after DDP's bucket was reduced, would leave
the ranks' slopes apart from the single process (by O(|g|), not rounding).

Tolerance, per parameter tensor (the error model): the single process and the two ranks compute
the same sums in a different order (each rank's mean over its half, then the average of the two,
against one mean over the whole batch), so both are the exact gradient plus float32 rounding of
the same order. The exact gradient comes from the same steps in float64 through the example's
sdpa-mask path (the same function: materialised ALiBi bias); e = max |g32 − g64| of the
single-process float32 run measures the float32 noise of that tensor; the DDP result is off by
the same order, so the two differ by at most 2e, with a factor 2 of headroom for the other
summation order: 4e, and never below 4 float32 ulps of the tensor's largest gradient. Between
the two steps the optimizer is plain SGD, the same on every side: AdamW's first step divides each
gradient by its own magnitude (lr·g/(|g| + eps)), which turns rounding in near-zero gradients
into parameter differences up to lr that are not DDP's doing.
"""

import socket
import sys
import time
from pathlib import Path

import pytest

import oracle

torch = oracle.require("torch")
import slope.torch  # noqa: E402,F401
from example_module import load_example  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
WORLD = 2
B, T = 4, 32  # the whole batch; each rank takes B / WORLD rows
STEPS = 2
LR = 0.05
SEED = 4321


def _setup(attn="slope", dtype=torch.float32):
    """The example model (learned slopes) from SEED, and STEPS batches (B, T) of the corpus."""
    ng = load_example()
    corpus = ng.CharCorpus((REPO / "README.md").read_text(encoding="utf-8"))
    cfg = ng.GPTConfig(block_size=T, vocab_size=corpus.vocab_size, n_layer=2, n_head=4,
                       n_embd=32, attn=attn, learned_slopes=True)
    model, _ = ng.build(cfg, SEED, compile_model=False)
    model.to(dtype)
    gen = torch.Generator().manual_seed(SEED)
    batches = [corpus.batch("train", B, T, gen) for _ in range(STEPS)]
    return model, batches


def _train(model, batches):
    """Gradients {name: tensor} at each step of SGD over batches; the model may be DDP-wrapped."""
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    grads = []
    for x, y in batches:
        _, loss = model(x, y)
        loss.backward()
        grads.append({n.removeprefix("module."): p.grad.detach().clone()
                      for n, p in model.named_parameters()})
        opt.step()
        opt.zero_grad(set_to_none=True)
    return grads


def _rank(rank, port, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=WORLD)
    try:
        model, batches = _setup()
        rows = slice(rank * B // WORLD, (rank + 1) * B // WORLD)
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        grads = _train(ddp, [(x[rows], y[rows]) for x, y in batches])
        torch.save(grads, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_gradients_equal_one_process_whole_batch(tmp_path):
    t0 = time.perf_counter()
    mp.spawn(_rank, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    spawn_s = time.perf_counter() - t0
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]

    single = _train(*_setup())
    exact = _train(*_setup(attn="sdpa-mask", dtype=torch.float64))

    slope_names = [n for n in single[0] if n.endswith("attn.slopes")]
    assert len(slope_names) == 2  # the learned slopes are among the compared parameters
    for step in range(STEPS):
        for name, g in single[step].items():
            g64 = exact[step][name]
            noise = (g.double() - g64).abs().max().item()
            ulp = 2.0 ** (torch.frexp(g64.abs().max()).exponent.item() - 24)
            tol = 4.0 * max(noise, ulp)
            for r in range(WORLD):
                diff = (ranks[r][step][name].double() - g.double()).abs().max().item()
                assert diff <= tol, (f"step {step}, rank {r}, {name}: DDP gradient differs from "
                                     f"the whole-batch one by {diff:.3g} > {tol:.3g}")
    print(f"2 ranks in {spawn_s:.1f} s (spawn, import, init, {STEPS} steps)")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-s"]))
