#!/usr/bin/python3
"""Gradient parity: SmallMind's training loss and parameter gradients for
one batch (written by tests/tools/grad_dump.c) against PyTorch autograd in
float64 on the same GGUF, read and run by tests/torch_ref.py's independent
code. Exits 1 unless the loss agrees to 1e-5 and every gradient to 1e-3
(max|d| / max|ref| per tensor).

    torch_grad.py MODEL.gguf GRADS.bin
"""
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ref  # noqa: E402


def read_dump(path):
    d = open(path, "rb").read()
    B, T = struct.unpack_from("<ii", d, 0)
    p = 8
    x = np.frombuffer(d, dtype=np.int32, count=B * T, offset=p).reshape(B, T); p += 4 * B * T
    y = np.frombuffer(d, dtype=np.int32, count=B * T, offset=p).reshape(B, T); p += 4 * B * T
    loss, = struct.unpack_from("<d", d, p); p += 8
    grads = {}
    while p < len(d):
        n, = struct.unpack_from("<i", d, p); p += 4
        name = d[p:p + n].decode(); p += n
        c, = struct.unpack_from("<i", d, p); p += 4
        grads[name] = np.frombuffer(d, dtype=np.float32, count=c, offset=p); p += 4 * c
    return x, y, loss, grads


def main():
    model, dump = sys.argv[1], sys.argv[2]
    meta, W = torch_ref.read_gguf(model)
    for t in W.values():
        t.requires_grad_(True)
    x, y, loss_sm, grads = read_dump(dump)
    fwd = torch_ref.llama_logits if meta["general.architecture"] == "llama" else torch_ref.gpt2_logits
    total = 0
    for b in range(x.shape[0]):
        logits = fwd(meta, W, torch.tensor(x[b].astype(np.int64)))
        total = total + F.cross_entropy(logits, torch.tensor(y[b].astype(np.int64)), reduction="sum")
    loss = total / x.size
    loss.backward()
    worst, bad = 0.0, []
    for name, g in grads.items():
        ref = W[name].grad.numpy().reshape(-1)
        err = float(np.max(np.abs(g - ref)) / max(np.max(np.abs(ref)), 1e-30))
        worst = max(worst, err)
        if err > 1e-3:
            bad.append("%s: %.2e" % (name, err))
    dl = abs(loss.item() - loss_sm)
    print("%s: loss %.8f vs %.8f (|d| %.1e), worst gradient max|d|/max|ref| = %.2e over %d tensors"
          % (os.path.basename(model), loss_sm, loss.item(), dl, worst, len(grads)))
    for b_ in bad:
        print("  " + b_)
    sys.exit(0 if dl <= 1e-5 and not bad and len(grads) == len(W) else 1)


if __name__ == "__main__":
    main()
