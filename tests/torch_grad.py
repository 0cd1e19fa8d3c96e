#!/usr/bin/python3
"""Gradient parity: SmallMind's training loss and parameter gradients for
one batch (written by tests/tools/grad_dump.c) against PyTorch autograd in
float64 on the same GGUF, read and run by tests/torch_ref.py's independent
code. Exits 1 unless the loss agrees to 1e-5 and every gradient to 1e-3
(max|d| / max|ref| per tensor).

    torch_grad.py MODEL.gguf GRADS.bin [--lora-alpha A | --bf16]
    torch_grad.py --jobs FILE     one check per line: NAME<TAB>MODEL<TAB>GRADS[<TAB>ALPHA[<TAB>bf16]], each
                                  printed "ok   parity_NAME" or "FAIL parity_NAME" (one process for
                                  all: importing torch takes longer than a check)

LoRA (the dump holds NAME.lora_a / NAME.lora_b records with their values):
the base is frozen and read with tests/gguf_numpy.py (any weight type,
dequantized in float64), every adapted matrix becomes the merged
W + alpha / rank * B A (alpha 0: B A), and the gradients are those of A and
B - a formulation independent of SmallMind's separate products.

Mixed precision (--bf16, grad_dump's bf16): torch_ref's llama and gpt2
forward passes with every weight matrix's product, and its gradients, on
operands rounded to BF16 (torch_ref.MIXED); with LoRA the merged matrices'
products and input gradients so, the adapters' gradients unrounded.
"""
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ref  # noqa: E402
import torch_arch  # noqa: E402
import gguf_numpy  # noqa: E402


def read_dump(path):
    d = open(path, "rb").read()
    B, T = struct.unpack_from("<ii", d, 0)
    p = 8
    x = np.frombuffer(d, dtype=np.int32, count=B * T, offset=p).reshape(B, T); p += 4 * B * T
    y = np.frombuffer(d, dtype=np.int32, count=B * T, offset=p).reshape(B, T); p += 4 * B * T
    loss, = struct.unpack_from("<d", d, p); p += 8
    grads, values = {}, {}
    while p < len(d):
        n, = struct.unpack_from("<i", d, p); p += 4
        name = d[p:p + n].decode(); p += n
        c, = struct.unpack_from("<i", d, p); p += 4
        grads[name] = np.frombuffer(d, dtype=np.float32, count=c, offset=p); p += 4 * c
        if name.endswith(".lora_a") or name.endswith(".lora_b"):
            values[name] = np.frombuffer(d, dtype=np.float32, count=c, offset=p); p += 4 * c
    return x, y, loss, grads, values


def lora_weights(model, values, alpha):
    """The base dequantized (frozen) with every adapted matrix merged, and
    the adapters as leaves that autograd differentiates."""
    meta, raw = gguf_numpy.read_gguf(model)
    W = {k: torch.from_numpy(gguf_numpy.dequantize(t).copy()) for k, t in raw.items()}
    leaves = {}
    for name in values:
        if not name.endswith(".lora_a"):
            continue
        base = name[:-len(".lora_a")]
        rows, cols = W[base].shape
        a = torch.from_numpy(values[name].astype(np.float64).reshape(-1, cols).copy()).requires_grad_(True)
        rank = a.shape[0]
        b = torch.from_numpy(values[base + ".lora_b"].astype(np.float64).reshape(rows, rank).copy()).requires_grad_(True)
        leaves[name], leaves[base + ".lora_b"] = a, b
        W[base] = W[base] + (alpha / rank if alpha else 1.0) * (b @ a)
    return meta, W, leaves


def plain(meta, W):
    """Whether torch_ref's llama/gpt2 forward passes cover the model: no RoPE scaling or factors."""
    arch = meta["general.architecture"]
    return arch in ("llama", "gpt2") and "rope_freqs.weight" not in W and \
        not any(k.startswith(arch + ".rope.scaling.") for k in meta)


def check(model, dump, alpha, mixed=False):
    """Prints the comparison; returns whether the loss and every gradient agree."""
    x, y, loss_sm, grads, values = read_dump(dump)
    torch_ref.MIXED = mixed
    torch_ref.MIXED_ROUND_WGRAD = not values   # LoRA: the adapters' gradients in F32 (torch_ref.py)
    if values:
        meta, W, leaves = lora_weights(model, values, alpha)
    else:
        meta, W = torch_ref.read_gguf(model)
        if not plain(meta, W):   # torch_arch reads the others
            meta, W = torch_arch.load(model)
        for t in W.values():
            t.requires_grad_(True)
        leaves = W
    arch = meta["general.architecture"]
    # llama and gpt2 through torch_ref's forward passes, the others (qwen2: q/k/v biases, NeoX RoPE;
    # llama with RoPE scaling or Llama 3's frequency factors) through torch_arch's, the float64
    # reference of the inference tests
    fwd = {"llama": torch_ref.llama_logits, "gpt2": torch_ref.gpt2_logits}.get(arch) if plain(meta, W) else None
    if mixed and not fwd:
        raise ValueError("the BF16 products' reference covers torch_ref's llama and gpt2 only")
    fwd = fwd or (lambda m, w, t: torch_arch.model_logits(m, w, t.tolist()))
    total = 0
    for b in range(x.shape[0]):
        logits = fwd(meta, W, torch.tensor(x[b].astype(np.int64)))
        total = total + F.cross_entropy(logits, torch.tensor(y[b].astype(np.int64)), reduction="sum")
    loss = total / x.size
    loss.backward()
    worst, bad = 0.0, []
    for name, g in grads.items():
        ref = leaves[name].grad.numpy().reshape(-1)
        err = float(np.max(np.abs(g - ref)) / max(np.max(np.abs(ref)), 1e-30))
        worst = max(worst, err)
        if err > 1e-3:
            bad.append("%s: %.2e" % (name, err))
    dl = abs(loss.item() - loss_sm)
    print("%s: loss %.8f vs %.8f (|d| %.1e), worst gradient max|d|/max|ref| = %.2e over %d tensors"
          % (os.path.basename(model), loss_sm, loss.item(), dl, worst, len(grads)))
    for b_ in bad:
        print("  " + b_)
    return bool(dl <= 1e-5 and not bad and len(grads) == len(leaves) and grads)


def main():
    if sys.argv[1] == "--jobs":
        for line in open(sys.argv[2]):
            f = line.rstrip("\n").split("\t")
            try:
                good = check(f[1], f[2], float(f[3]) if len(f) > 3 and f[3] else 0.0, len(f) > 4 and f[4] == "bf16")
                print("%s parity_%s" % ("ok  " if good else "FAIL", f[0]), flush=True)
            except Exception as e:   # a broken dump or model fails its own check, not the rest
                print("FAIL parity_%s %s: %s" % (f[0], type(e).__name__, e), flush=True)
        return 0
    alpha = float(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--lora-alpha" else 0.0
    return 0 if check(sys.argv[1], sys.argv[2], alpha, "--bf16" in sys.argv[3:]) else 1


if __name__ == "__main__":
    sys.exit(main())
