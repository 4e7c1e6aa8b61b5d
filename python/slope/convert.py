"""Checkpoints of other programs as slope checkpoints.

    python -m slope.convert nanogpt ckpt.pt OUT

nanoGPT's ``ckpt.pt`` is a torch pickle: ``{"model": state_dict, "model_args": {n_layer, n_head,
n_embd, block_size, bias, vocab_size, dropout}, ...}``. Its state dict already has slope's names
and layouts (nanoGPT's linear weights are (out, in), like slope's), so the conversion writes
OUT/model.safetensors (float32; ``lm_head.weight`` kept as the copy of ``transformer.wte.weight``
that weight tying makes it) and OUT/config.json (learned positions, exact GELU: nanoGPT's
``nn.GELU()``), plus OUT/origin.json. Dropped: the ``_orig_mod.`` prefix of a torch.compile'd
model and the causal-mask buffers (``*.attn.bias``, 4 dimensions) of a model without flash
attention. The pickle is read with ``weights_only=True``: no code in it runs.

Hugging Face GPT-2 directories are the C++ command's: ``slope import --from hf-gpt2 DIR --out OUT``.
"""

import argparse
import json
import os
import pathlib
import sys
import tempfile

_PREFIX = "_orig_mod."
_REQUIRED_ARGS = ("n_layer", "n_head", "n_embd", "block_size", "vocab_size")


class ConvertError(ValueError):
    """A source the conversion cannot use; the message says why and what to do."""


def _nanogpt_state(ckpt):
    if not isinstance(ckpt, dict) or "model" not in ckpt or "model_args" not in ckpt:
        raise ConvertError("not a nanoGPT checkpoint: expected a dict with 'model' and "
                           "'model_args' (what nanoGPT's train.py saves)")
    args = ckpt["model_args"]
    missing = [k for k in _REQUIRED_ARGS if k not in args]
    if missing:
        raise ConvertError(f"model_args lacks {', '.join(missing)}")
    state = {}
    for name, tensor in ckpt["model"].items():
        name = name[len(_PREFIX):] if name.startswith(_PREFIX) else name
        if name.endswith(".attn.bias") and tensor.dim() == 4:
            continue  # the causal mask buffer, not a parameter
        state[name] = tensor.detach().to("cpu").float().contiguous().numpy()
    if "transformer.wte.weight" not in state:
        raise ConvertError("the state dict has no transformer.wte.weight: not a nanoGPT GPT")
    if "lm_head.weight" in state and not (state["lm_head.weight"] ==
                                          state["transformer.wte.weight"]).all():
        raise ConvertError("lm_head.weight differs from transformer.wte.weight: slope ties them")
    state["lm_head.weight"] = state["transformer.wte.weight"]
    config = {
        "block_size": int(args["block_size"]),
        "vocab_size": int(args["vocab_size"]),
        "n_layer": int(args["n_layer"]),
        "n_head": int(args["n_head"]),
        "n_embd": int(args["n_embd"]),
        "dropout": float(args.get("dropout", 0.0)),
        "bias": bool(args.get("bias", True)),
        "pos": "learned",
        "max_bias": 8.0,
    }
    return config, state


def _write_checkpoint(out, config, state, origin):
    """Writes the files into a staging directory inside OUT, then moves them in, config last."""
    from safetensors.numpy import save_file

    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".tmp-convert-") as tmp:
        tmp = pathlib.Path(tmp)
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "origin.json").write_text(json.dumps(origin, indent=2) + "\n")
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        for name in ("origin.json", "model.safetensors", "config.json"):
            os.replace(tmp / name, out / name)


def nanogpt(ckpt_path, out):
    """Converts nanoGPT's ckpt.pt into the slope checkpoint directory `out`; returns its
    config."""
    import torch

    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling refused or a damaged file
        raise ConvertError(f"cannot read {ckpt_path} as a torch checkpoint: {e}") from e
    config, state = _nanogpt_state(ckpt)
    origin = {"made_by": "python -m slope.convert nanogpt",
              "source": str(pathlib.Path(ckpt_path).resolve())}
    _write_checkpoint(out, config, state, origin)
    return config


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m slope.convert",
                                     description="Convert another program's checkpoint into a "
                                                 "slope checkpoint directory.")
    sub = parser.add_subparsers(dest="format", required=True)
    p = sub.add_parser("nanogpt", help="nanoGPT's ckpt.pt (torch pickle)")
    p.add_argument("ckpt", help="nanoGPT's ckpt.pt")
    p.add_argument("out", help="the slope checkpoint directory to write")
    args = parser.parse_args(argv)
    try:
        config = nanogpt(args.ckpt, args.out)
    except ConvertError as e:
        print(f"slope.convert: {e}", file=sys.stderr)
        return 1
    print(f"converted {args.ckpt} into {args.out}: L{config['n_layer']} H{config['n_head']} "
          f"C{config['n_embd']}, vocab {config['vocab_size']}, block_size {config['block_size']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
