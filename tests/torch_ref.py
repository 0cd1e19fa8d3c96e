#!/usr/bin/python3
"""Independent reference: reads a GGUF file with its own minimal reader,
runs the model in PyTorch (float64) and compares SmallMind's logits with it.

    torch_ref.py MODEL.gguf TOKENS_CSV LOGITS [LOGITS...]

Each LOGITS file is a raw float32 array of len(TOKENS) x vocab
written by tests/tools/dump_logits.c (whole-prompt evaluation, and token by
token with the KV cache). Prints the worst relative error
max|a - b| / max|b| and exits 1 above 1e-4. With KV_TYPE set the reference
rounds its keys and values to float16 or bfloat16 (KV_TYPE=f16 or bf16: an
F16 or BF16 KV cache) or to ggml's Q8_0 blocks (KV_TYPE=q8_0), and the bound is
10 % of how far that rounding moves the logits, or 1e-4 if that is larger.
"""
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


class Reader:
    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.p)[0]
        self.p += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.d[self.p:self.p + n]
        self.p += n
        return s.decode("utf-8", errors="replace")

    def value(self, t):
        if t in SCALAR:
            return self.take(SCALAR[t])
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.take("<I"), self.take("<Q")
            return [self.value(et) for _ in range(n)]
        raise ValueError("bad type %d" % t)


def read_gguf(path):
    data = open(path, "rb").read()
    r = Reader(data)
    assert data[:4] == b"GGUF"
    r.p = 4
    r.take("<I")
    n_t, n_kv = r.take("<Q"), r.take("<Q")
    meta = {}
    for _ in range(n_kv):
        k = r.string()
        meta[k] = r.value(r.take("<I"))
    infos = []
    for _ in range(n_t):
        name = r.string()
        nd = r.take("<I")
        ne = [r.take("<Q") for _ in range(nd)]
        infos.append((name, ne, r.take("<I"), r.take("<Q")))
    align = meta.get("general.alignment", 32)
    base = (r.p + align - 1) // align * align
    tensors = {}
    for name, ne, t, off in infos:
        count = int(np.prod(ne))
        dtype = {0: np.float32, 1: np.float16}[t]
        arr = np.frombuffer(data, dtype=dtype, count=count, offset=base + off).astype(np.float64)
        tensors[name] = torch.from_numpy(arr.reshape(list(reversed(ne))).copy())
    return meta, tensors


# KV_TYPE=f16 or bf16: the keys and values rounded to float16 or bfloat16 (nearest even) before
# attention uses them, as an F16 or BF16 KV cache stores them (SmallMind's -ctk/-ctv, llama.cpp's
# default cache type being f16)
KV_DTYPE = {"f16": torch.float16, "bf16": torch.bfloat16}.get(os.environ.get("KV_TYPE", ""))
KV_Q8_0 = os.environ.get("KV_TYPE", "") == "q8_0"
KV_ROUND = KV_DTYPE is not None or KV_Q8_0   # (main turns it off for the unrounded run)


def q8_0_round(x):
    """Each run of 32 values as ggml's Q8_0 block holds it (quantize_row_q8_0_ref in ggml-quants.c):
    the scale d = max|x| / 127 and the values round(x / d) (half away from zero, through 1/d), all in
    float32, then d stored as float16; read back as q * d. The rows are float32 where they are cached."""
    T, D = x.shape
    b = x.to(torch.float32).reshape(T, D // 32, 32)
    d = b.abs().amax(dim=-1, keepdim=True) / torch.tensor(127.0, dtype=torch.float32)
    inv = torch.where(d != 0, torch.tensor(1.0, dtype=torch.float32) / torch.where(d != 0, d, torch.ones_like(d)),
                      torch.zeros_like(d))
    s = b * inv
    q = torch.sign(s) * torch.floor(s.abs() + 0.5)
    return (q.to(torch.float64) * d.to(torch.float16).to(torch.float64)).reshape(T, D).to(x.dtype)


def attention(q, k, v, n_heads, n_kv):
    T, D = q.shape
    hd = D // n_heads
    if KV_ROUND and KV_Q8_0:
        k, v = q8_0_round(k), q8_0_round(v)
    elif KV_ROUND:
        k, v = k.to(KV_DTYPE).to(q.dtype), v.to(KV_DTYPE).to(q.dtype)
    q = q.view(T, n_heads, hd).transpose(0, 1)
    k = k.view(T, n_kv, hd).transpose(0, 1).repeat_interleave(n_heads // n_kv, dim=0)
    v = v.view(T, n_kv, hd).transpose(0, 1).repeat_interleave(n_heads // n_kv, dim=0)
    scores = q @ k.transpose(1, 2) / hd ** 0.5
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    scores = scores.masked_fill(mask, float("-inf"))
    return (torch.softmax(scores, dim=-1) @ v).transpose(0, 1).reshape(T, D)


def rope(x, n_heads, rot, base):
    T, D = x.shape
    hd = D // n_heads
    x = x.view(T, n_heads, hd).clone()
    i = torch.arange(rot // 2, dtype=torch.float64)
    theta = base ** (-2.0 * i / rot)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * theta[None, :]
    c, s = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
    a, b = x[:, :, 0:rot:2].clone(), x[:, :, 1:rot:2].clone()
    x[:, :, 0:rot:2] = a * c - b * s
    x[:, :, 1:rot:2] = a * s + b * c
    return x.view(T, D)


# Mixed precision (tests/torch_grad.py --bf16): every weight matrix's product
# takes both operands rounded to nearest-even BF16 and sums in float64, and
# so does each of its gradients (the output's gradient rounded, with the
# other operand), as SmallMind's trainer does with BF16 products.
MIXED = False
# With LoRA (torch_grad.py) a merged matrix's weight gradient only reaches
# its adapters, whose gradients SmallMind sums in F32 from the unrounded
# output gradient and input: the forward product and the input gradient
# stay rounded, the weight gradient is not (MIXED_ROUND_WGRAD False).
MIXED_ROUND_WGRAD = True


def bf16(t):
    return t.to(torch.float32).to(torch.bfloat16).to(t.dtype)


class Bf16Product(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, w):
        ctx.save_for_backward(h, w)
        return bf16(h) @ bf16(w).T

    @staticmethod
    def backward(ctx, g):
        h, w = ctx.saved_tensors
        gr = bf16(g)
        return gr @ bf16(w), (gr.T @ bf16(h) if MIXED_ROUND_WGRAD else g.T @ h)


def product(h, w):
    """h @ w.T: a weight matrix's product (rounded as above when MIXED)."""
    return Bf16Product.apply(h, w) if MIXED else h @ w.T


def rmsnorm(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def llama_logits(meta, W, toks):
    a = "llama."
    n_layers, n_heads = meta[a + "block_count"], meta[a + "attention.head_count"]
    n_kv = meta.get(a + "attention.head_count_kv", n_heads)
    dim = meta[a + "embedding_length"]
    rot = meta.get(a + "rope.dimension_count", dim // n_heads)
    base = meta.get(a + "rope.freq_base", 10000.0)
    eps = meta.get(a + "attention.layer_norm_rms_epsilon", 1e-5)
    x = W["token_embd.weight"][toks]
    for l in range(n_layers):
        p = "blk.%d." % l
        h = rmsnorm(x, W[p + "attn_norm.weight"], eps)
        q = rope(product(h, W[p + "attn_q.weight"]), n_heads, rot, base)
        k = rope(product(h, W[p + "attn_k.weight"]), n_kv, rot, base)
        v = product(h, W[p + "attn_v.weight"])
        x = x + product(attention(q, k, v, n_heads, n_kv), W[p + "attn_output.weight"])
        h = rmsnorm(x, W[p + "ffn_norm.weight"], eps)
        gated = F.silu(product(h, W[p + "ffn_gate.weight"])) * product(h, W[p + "ffn_up.weight"])
        x = x + product(gated, W[p + "ffn_down.weight"])
    x = rmsnorm(x, W["output_norm.weight"], eps)
    return product(x, W.get("output.weight", W["token_embd.weight"]))


def gpt2_logits(meta, W, toks):
    a = "gpt2."
    n_layers, n_heads = meta[a + "block_count"], meta[a + "attention.head_count"]
    dim = meta[a + "embedding_length"]
    eps = meta.get(a + "attention.layer_norm_epsilon", 1e-5)
    T = len(toks)
    x = W["token_embd.weight"][toks] + W["position_embd.weight"][:T]
    ln = lambda t, p: F.layer_norm(t, (dim,), W[p + ".weight"], W[p + ".bias"], eps)
    for l in range(n_layers):
        p = "blk.%d." % l
        h = ln(x, p + "attn_norm")
        qkv = product(h, W[p + "attn_qkv.weight"]) + W[p + "attn_qkv.bias"]
        q, k, v = qkv[:, :dim], qkv[:, dim:2 * dim], qkv[:, 2 * dim:]
        x = x + product(attention(q, k, v, n_heads, n_heads), W[p + "attn_output.weight"]) + W[p + "attn_output.bias"]
        h = ln(x, p + "ffn_norm")
        u = F.gelu(product(h, W[p + "ffn_up.weight"]) + W[p + "ffn_up.bias"], approximate="tanh")
        x = x + product(u, W[p + "ffn_down.weight"]) + W[p + "ffn_down.bias"]
    x = ln(x, "output_norm")
    return product(x, W.get("output.weight", W["token_embd.weight"]))


def main():
    global KV_ROUND
    path, toks_csv, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    toks = [int(t) for t in toks_csv.split(",")]
    meta, W = read_gguf(path)
    arch = meta["general.architecture"]
    forward = llama_logits if arch == "llama" else gpt2_logits
    ref = forward(meta, W, torch.tensor(toks)).numpy()
    bound = 1e-4
    if KV_ROUND:
        # the bound: 10 % of what the rounding itself moves the logits (1e-4 where that is larger). An
        # implementation's own float32 sums put some keys and values on the other side of a float16
        # rounding boundary than float64's (each such one a float16 ulp, 2^-11, apart), so a share of
        # the whole effect is what a right cache gets (1-8 % here); one that rounds wrongly or not at
        # all moves the logits by about the whole effect
        KV_ROUND = False
        exact = forward(meta, W, torch.tensor(toks)).numpy()
        KV_ROUND = True
        effect = float(np.max(np.abs(exact - ref)) / np.max(np.abs(ref)))
        bound = max(1e-4, 0.1 * effect)
        print("%s: %s keys and values move the logits by %.2e; bound %.2e" % (path.split("/")[-1], os.environ["KV_TYPE"],
                                                                              effect, bound))
    worst = 0.0
    for f in files:
        got = np.fromfile(f, dtype=np.float32).reshape(ref.shape)
        err = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
        worst = max(worst, err)
        if err > bound:
            print("%s %s: max|d|/max|ref| = %.2e" % (path.split("/")[-1], f.split("/")[-1], err))
    print("%s: worst max|d|/max|ref| = %.2e over %d files, %d positions x %d" % (path.split("/")[-1], worst, len(files), *ref.shape))
    sys.exit(0 if worst <= bound else 1)


if __name__ == "__main__":
    main()
