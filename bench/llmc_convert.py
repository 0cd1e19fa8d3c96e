#!/usr/bin/env python3
"""llmc_convert.py - turns a SmallMind GPT-2 GGUF (`smallmind init --arch gpt2`)
into the inputs of llm.c's CPU trainer (train_gpt2.c), for bench/llmc_compare.sh.

    llmc_convert.py model IN.gguf OUT.bin [TIED.gguf]
        OUT.bin: llm.c's model checkpoint. TIED.gguf (optional): the same GGUF
        without output.weight, so that `smallmind train --init` ties the head
        to the token embedding as llm.c does (`smallmind init` writes a copy of
        the embedding as output.weight because llama.cpp's loader wants one).
    llmc_convert.py tokens IN.gguf IDS.txt B T OUT.bin
        IDS.txt: the token ids `smallmind tokenize --ids --no-bos` printed for
        the training text. OUT.bin: llm.c's token file holding the first batch
        SmallMind's trainer makes of that stream (make_batch in
        src/train/train.c: each row starts with the BOS token, then T - 1
        tokens of the stream), as B*T + 1 contiguous tokens. llm.c's rows are
        contiguous (row b's last target is row b+1's first input, the BOS), so
        the last target of rows 0 .. B-2 differs from SmallMind's: B - 1 of the
        B*T targets; every input is the same. Prints that count.
    llmc_convert.py losses IN.gguf IDS.txt B T
        The mean cross-entropy of the first step on each program's batch, in
        float64 PyTorch (tests/torch_ref.py's GPT-2): what llm.c's and
        SmallMind's first losses must be if both start from the same model.

llm.c's formats, as its train_gpt2.c and llmc/dataloader.h read them
(karpathy/llm.c, read for this purpose; nothing of it is copied here):
  checkpoint: 256 int32 header (magic 20240326, version 3, maxT, V, L, NH, C,
  Vp = V padded up to a multiple of 128), then float32 parameters, every
  layer's tensor stacked per kind, in the order wte (Vp, C), wpe (maxT, C),
  ln1w, ln1b (L, C), qkvw (L, 3C, C), qkvb (L, 3C), attprojw (L, C, C),
  attprojb, ln2w, ln2b (L, C), fcw (L, 4C, C), fcb (L, 4C), fcprojw (L, C, 4C),
  fcprojb (L, C), lnfw, lnfb (C). Matrices are (out, in) row-major, which is
  how a GGUF matrix of ne = [in, out] lies in memory; rows V .. Vp-1 of wte
  are zero (llm.c's softmax ignores them).
  tokens: 256 int32 header (magic 20240520, version 1, token count), then
  uint16 tokens.
Our GGUF is read with tests/gguf_numpy.py.
"""
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import gguf_numpy  # noqa: E402


def f32(t):
    if t.type != gguf_numpy.F32:
        raise SystemExit("%s: expected F32 (write the model with smallmind init --type f32)" % t.name)
    return np.frombuffer(t.data, dtype="<f4").reshape(t.shape)


def write_checkpoint(meta, tensors, out):
    C = meta["gpt2.embedding_length"]
    L = meta["gpt2.block_count"]
    NH = meta["gpt2.attention.head_count"]
    maxT = meta["gpt2.context_length"]
    if meta["gpt2.feed_forward_length"] != 4 * C:
        raise SystemExit("llm.c's GPT-2 has a feed-forward size of 4 x dim")
    wte = f32(tensors["token_embd.weight"])
    V = wte.shape[0]
    Vp = (V + 127) // 128 * 128
    if "output.weight" in tensors and not np.array_equal(f32(tensors["output.weight"]), wte):
        raise SystemExit("output.weight differs from token_embd.weight: llm.c ties them")
    header = np.zeros(256, dtype="<i4")
    header[:8] = [20240326, 3, maxT, V, L, NH, C, Vp]

    def stack(name):
        return np.concatenate([f32(tensors["blk.%d.%s" % (i, name)]).reshape(-1) for i in range(L)])

    with open(out, "wb") as f:
        f.write(header.tobytes())
        f.write(wte.tobytes())
        f.write(np.zeros((Vp - V) * C, dtype="<f4").tobytes())
        f.write(f32(tensors["position_embd.weight"]).tobytes())
        for name in ("attn_norm.weight", "attn_norm.bias", "attn_qkv.weight", "attn_qkv.bias",
                     "attn_output.weight", "attn_output.bias", "ffn_norm.weight", "ffn_norm.bias",
                     "ffn_up.weight", "ffn_up.bias", "ffn_down.weight", "ffn_down.bias"):
            f.write(stack(name).astype("<f4").tobytes())
        f.write(f32(tensors["output_norm.weight"]).tobytes())
        f.write(f32(tensors["output_norm.bias"]).tobytes())
    print("llm.c checkpoint %s: maxT %d, V %d (padded %d), L %d, NH %d, C %d" % (out, maxT, V, Vp, L, NH, C))


def write_untied(path, out, drop="output.weight"):
    """Copies a GGUF file without one tensor (metadata bytes as they are)."""
    data = memoryview(open(path, "rb").read())
    g = gguf_numpy.read_layout(path, data)
    version, n_kv, kv_start, kv_end, infos, align = g.version, g.n_kv, g.kv_start, g.kv_end, g.infos, g.align
    _, tensors = gguf_numpy.read_gguf(path)
    keep = [i for i in infos if i[0] != drop]
    head = bytearray(b"GGUF" + struct.pack("<IQQ", version, len(keep), n_kv))
    head += data[kv_start:kv_end]
    off, offs = 0, []
    for name, ne, t, _ in keep:
        offs.append(off)
        nb = len(tensors[name].data)
        head += struct.pack("<Q", len(name.encode())) + name.encode() + struct.pack("<I", len(ne))
        head += struct.pack("<%dQ" % len(ne), *ne) + struct.pack("<IQ", t, off)
        off += (nb + align - 1) // align * align
    with open(out, "wb") as f:
        f.write(head)
        f.write(b"\0" * (-len(head) % align))
        for (name, _, _, _), o in zip(keep, offs):
            nb = len(tensors[name].data)
            f.write(tensors[name].data)
            f.write(b"\0" * (-nb % align))


def read_ids(ids_path, B, T):
    ids = [int(x) for x in open(ids_path).read().replace("[", " ").replace("]", " ").replace(",", " ").split()]
    if len(ids) < B * T:
        raise SystemExit("%d tokens, a batch needs %d" % (len(ids), B * T))
    return ids


def llmc_tokens(meta, ids, B, T):
    """The B*T + 1 tokens of llm.c's file: SmallMind's first batch, row after row."""
    bos = meta.get("tokenizer.ggml.bos_token_id", -1)
    toks = []
    for b in range(B):
        s = ids[b * T:(b + 1) * T]
        toks += [bos if bos >= 0 else s[0]] + s[:T - 1]
    toks.append(ids[B * T - 1])
    return toks


def write_tokens(meta, ids_path, B, T, out):
    ids = read_ids(ids_path, B, T)
    toks = llmc_tokens(meta, ids, B, T)
    if max(toks) >= 65536:
        raise SystemExit("token id beyond uint16")
    differ = sum(1 for b in range(B - 1) if ids[b * T + T - 1] != toks[(b + 1) * T])
    header = np.zeros(256, dtype="<i4")
    header[:3] = [20240520, 1, len(toks)]
    with open(out, "wb") as f:
        f.write(header.tobytes())
        f.write(np.array(toks, dtype="<u2").tobytes())
    print("llm.c tokens %s: %d tokens (one batch of %d x %d); targets that differ from SmallMind's: %d of %d"
          % (out, len(toks), B, T, differ, B * T))


def reference_losses(path, ids_path, B, T):
    import torch
    import torch.nn.functional as F
    import torch_ref
    meta, W = torch_ref.read_gguf(path)
    ids = read_ids(ids_path, B, T)
    toks = llmc_tokens(meta, ids, B, T)
    out = []
    for targets in ([toks[b * T + 1:(b + 1) * T + 1] for b in range(B)],   # llm.c: the next token of the file
                    [ids[b * T:(b + 1) * T] for b in range(B)]):           # SmallMind: make_batch's
        loss = 0.0
        for b in range(B):
            logits = torch_ref.gpt2_logits(meta, W, torch.tensor(toks[b * T:(b + 1) * T]))
            loss += F.cross_entropy(logits, torch.tensor(targets[b]), reduction="sum").item()
        out.append(loss / (B * T))
    print("%.6f %.6f" % tuple(out))


def main(argv):
    if len(argv) >= 3 and argv[0] == "model":
        meta, tensors = gguf_numpy.read_gguf(argv[1])
        if meta.get("general.architecture") != "gpt2":
            raise SystemExit("not a gpt2 GGUF")
        write_checkpoint(meta, tensors, argv[2])
        if len(argv) > 3:
            write_untied(argv[1], argv[3])
    elif len(argv) == 6 and argv[0] == "tokens":
        meta, _ = gguf_numpy.read_gguf(argv[1])
        write_tokens(meta, argv[2], int(argv[3]), int(argv[4]), argv[5])
    elif len(argv) == 5 and argv[0] == "losses":
        reference_losses(argv[1], argv[2], int(argv[3]), int(argv[4]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
