"""Compiles slope's three Triton kernels for an NVIDIA GPU without one: triton.compile to a
cubin for a chosen target (default sm_90, the H200 of issue 13), every switch on (causal, ALiBi,
softcap, bool mask, skipping, dropout, slope gradients, a relative bias's table and its
gradient by distance). The interpreter runs the kernels as
Python and cannot see what only the compiler refuses (types that differ between the branches
of an if, non-constexpr globals, shared memory beyond the GPU's); this does.

    python tests/python/triton_compile_check.py [--arch 90] [--dtypes bf16,fp32]

Prints one line per kernel with its shared memory; exits 1 if any fails to compile.
Measured 2026-11-30 (2-core Xeon, triton 3.9): 11–17 s per bf16 kernel, 40–75 s per fp32 one.
"""

import argparse
import os
import sys
import time

os.environ.pop("TRITON_INTERPRET", None)  # compiled kernels, not interpreted ones

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from slope import _triton_kernels as kern  # noqa: E402

POINTERS = {"Geo": "*i32", "RelInfo": "*i32", "Rng": "*i64", "Mask": "*i8", "SlopeGradL": "*fp64",
            "SlopeGradR": "*fp64"}
TENSORS = {"Q", "K", "V", "Out", "DO", "DQ", "DK", "DV"}
FLOATS = {"scale", "softcap", "skip_tolerance", "drop_scale"}


def signature(fn, dtype, flags):
    sig, constexprs = {}, {}
    for i, p in enumerate(fn.params):
        n = p.name
        if p.is_constexpr:
            sig[n] = "constexpr"
            constexprs[(i,)] = flags[n]
        elif n in TENSORS:
            sig[n] = "*" + dtype
        elif n in POINTERS:
            sig[n] = POINTERS[n]
        elif n[0].isupper() and n not in ("H", "D", "Dv"):
            sig[n] = "*fp32"  # lse, Delta, slopes, norms
        else:
            sig[n] = "fp32" if n in FLOATS else "i32"
    return sig, constexprs


DQ_DISTANCE_TABLE = "attention_bwd_dq_kernel"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", type=int, default=90)
    ap.add_argument("--dtypes", default="bf16,fp32")
    ap.add_argument("--block", type=int, default=64)
    ap.add_argument("--head-dim", type=int, default=128)
    args = ap.parse_args()
    failed = 0
    for dtype in args.dtypes.split(","):
        # REL with HAS_ALIBI: the operators never pass both, but each branch compiles here.
        flags = dict(CAUSAL=True, HAS_ALIBI=True, SOFTCAP=True, MASK_KIND=1, SKIP=True,
                     DROPOUT=True, SLOPE_GRADS=True, REL=1, REL_GRADS=True,
                     BLOCK_E=2 * args.block, FIRE_BLOCK_K=32, BLOCK_M=args.block, BLOCK_N=args.block,
                     BLOCK_D=args.head_dim, BLOCK_DV=args.head_dim,
                     DOT_PRECISION="ieee" if dtype == "fp32" else "tf32")
        for fn in (kern.attention_fwd_kernel, kern.attention_bwd_dkdv_kernel,
                   kern.attention_bwd_dq_kernel, DQ_DISTANCE_TABLE):
            # The dk/dv kernel with the distance table (REL = 1), the forward and the dq kernel
            # with FIRE's in-tile interpolant and its gradient (REL = 2); the REL = 1 gradient
            # by distance is compiled below.
            rel = 1 if fn is kern.attention_bwd_dkdv_kernel or fn is DQ_DISTANCE_TABLE else 2
            label = f"{fn} (REL = {rel})" if isinstance(fn, str) else f"{fn.__name__} (REL = {rel})"
            if fn is DQ_DISTANCE_TABLE:
                fn = kern.attention_bwd_dq_kernel
            sig, constexprs = signature(fn, dtype, dict(flags, REL=rel))
            start = time.perf_counter()
            try:
                compiled = triton.compile(ASTSource(fn=fn, signature=sig, constexprs=constexprs),
                                          target=GPUTarget("cuda", args.arch, 32))
                print(f"{dtype} {label}: compiled for sm_{args.arch} in "
                      f"{time.perf_counter() - start:.0f} s, shared memory "
                      f"{compiled.metadata.shared} bytes", flush=True)
            except Exception as e:  # report every kernel, then fail
                failed += 1
                print(f"{dtype} {label}: FAILED\n{e}", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
