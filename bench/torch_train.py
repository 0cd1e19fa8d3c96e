#!/usr/bin/python3
"""PyTorch's training throughput on the same model shapes SmallMind trains,
for bench/train_compare.sh: GPT-2 or LLaMA blocks written plainly in
torch.nn, AdamW, one batch of random tokens, CPU, float32.

    torch_train.py ARCH DIM LAYERS HEADS KV_HEADS FFN VOCAB CTX BATCH SEQ THREADS STEPS [bf16]

Prints tokens per second over STEPS steps after two warm-up steps. With
bf16, the forward pass (and so its backward) runs under PyTorch's CPU
autocast to bfloat16: its mixed precision, float32 parameters and
optimizer, against SmallMind's --bf16."""
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(dim)), eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def causal_attention(q, k, v):
    T = q.size(-2)
    att = (q @ k.transpose(-2, -1)) / (q.size(-1) ** 0.5)
    att = att.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
    return torch.softmax(att, dim=-1) @ v


class Block(nn.Module):
    def __init__(self, arch, dim, heads, kv_heads, ffn):
        super().__init__()
        self.arch, self.heads, self.kv, self.hd = arch, heads, kv_heads, dim // heads
        if arch == "gpt2":
            self.n1, self.n2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
            self.qkv = nn.Linear(dim, 3 * dim)
            self.o = nn.Linear(dim, dim)
            self.up, self.down = nn.Linear(dim, ffn), nn.Linear(ffn, dim)
        else:
            self.n1, self.n2 = RMSNorm(dim), RMSNorm(dim)
            self.q = nn.Linear(dim, dim, bias=False)
            self.k = nn.Linear(dim, kv_heads * self.hd, bias=False)
            self.v = nn.Linear(dim, kv_heads * self.hd, bias=False)
            self.o = nn.Linear(dim, dim, bias=False)
            self.gate = nn.Linear(dim, ffn, bias=False)
            self.up = nn.Linear(dim, ffn, bias=False)
            self.down = nn.Linear(ffn, dim, bias=False)

    def forward(self, x, cos, sin):
        B, T, C = x.shape
        h = self.n1(x)
        if self.arch == "gpt2":
            q, k, v = self.qkv(h).split(C, dim=2)
            k = k.view(B, T, self.heads, self.hd).transpose(1, 2)
            v = v.view(B, T, self.heads, self.hd).transpose(1, 2)
        else:
            q, k, v = self.q(h), self.k(h), self.v(h)
            k = k.view(B, T, self.kv, self.hd).transpose(1, 2)
            v = v.view(B, T, self.kv, self.hd).transpose(1, 2)
        q = q.view(B, T, self.heads, self.hd).transpose(1, 2)
        if self.arch != "gpt2":
            def rope(t):
                a, b = t[..., 0::2], t[..., 1::2]
                return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)
            q, k = rope(q), rope(k)
            k = k.repeat_interleave(self.heads // self.kv, dim=1)
            v = v.repeat_interleave(self.heads // self.kv, dim=1)
        y = causal_attention(q, k, v)
        x = x + self.o(y.transpose(1, 2).reshape(B, T, C))
        h = self.n2(x)
        if self.arch == "gpt2":
            return x + self.down(F.gelu(self.up(h), approximate="tanh"))
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Model(nn.Module):
    def __init__(self, arch, dim, layers, heads, kv, ffn, vocab, ctx):
        super().__init__()
        self.arch = arch
        self.wte = nn.Embedding(vocab, dim)
        self.wpe = nn.Embedding(ctx, dim) if arch == "gpt2" else None
        self.blocks = nn.ModuleList(Block(arch, dim, heads, kv, ffn) for _ in range(layers))
        self.nf = nn.LayerNorm(dim) if arch == "gpt2" else RMSNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.wte.weight
        hd = dim // heads
        pos = torch.arange(ctx, dtype=torch.float32)[:, None] * (10000.0 ** (-torch.arange(0, hd, 2).float() / hd))[None, :]
        self.register_buffer("cos", torch.cos(pos))
        self.register_buffer("sin", torch.sin(pos))
        # GPT-2's initialisation, as SmallMind's trainer starts: N(0, 0.02)
        # weights and embeddings, zero biases. torch.nn's defaults (N(0, 1)
        # embeddings, tied to the head) start at a loss of about 270 that
        # overflows within a few steps, and a step over inf and NaN is not
        # a measure of speed.
        for mod in self.modules():
            if isinstance(mod, (nn.Linear, nn.Embedding)):
                nn.init.normal_(mod.weight, 0.0, 0.02)
            if isinstance(mod, nn.Linear) and mod.bias is not None:
                nn.init.zeros_(mod.bias)

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.wte(idx)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(T))
        for b in self.blocks:
            x = b(x, self.cos[:T], self.sin[:T])
        logits = self.head(self.nf(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def main():
    arch = sys.argv[1]
    dim, layers, heads, kv, ffn, vocab, ctx, batch, seq, threads, steps = map(int, sys.argv[2:13])
    mixed = len(sys.argv) > 13 and sys.argv[13] == "bf16"
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = Model(arch, dim, layers, heads, kv, ffn, vocab, ctx)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    x = torch.randint(0, vocab, (batch, seq))
    y = torch.randint(0, vocab, (batch, seq))
    for i in range(steps + 2):
        if i == 2:
            t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mixed):
            loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    dt = time.perf_counter() - t0
    print("%.1f" % (batch * seq * steps / dt))


if __name__ == "__main__":
    main()
