#!/usr/bin/python3
"""gen_models.py - writes small random-weight GGUF models, one per architecture
variant of issue 12, in llama.cpp's layout, deterministically (fixed seeds,
numpy's frozen RandomState stream), so tests can regenerate the exact files
the reference values were recorded on.

    gen_models.py OUTDIR [NAME...]          write OUTDIR/NAME.gguf (all models without NAME)
    gen_models.py --gguf-py DIR OUTDIR ...  the same files written with llama.cpp's gguf-py (DIR/gguf-py or DIR)
    gen_models.py --list                    names, one a line: NAME ARCH LLAMA_CPP(yes|no) SILU(yes|no)
    gen_models.py --list-all                the same with the proxy models (llama.cpp's bound for an
                                            architecture it cannot run; recorded, not tested)
    gen_models.py --tokens NAME [N]         the fixed token sequence of that model (BOS first), comma-separated
    gen_models.py --embd-std S OUTDIR NAME... the same models with token embeddings of std S: soft logits,
                                            for the training tests' losses (not the recorded references)

Layout: metadata keys and tensor names as llama.cpp's converter (convert_hf_to_gguf.py,
gguf-py/gguf/constants.py at c392e509) writes them for each architecture; qwen3 and gemma3
postdate that snapshot and follow the later converter (Qwen3Model: qwen2's keys plus
key_length and per-head attn_q_norm/attn_k_norm; Gemma3Model: gemma2's keys without the
soft-capping, rope.freq_base for the global layers, sliding_window, q/k norms). Norm weights
are stored as llama.cpp stores them: the converter adds 1 to gemma's norm weights (HF keeps
w - 1), so every stored norm weight here is the multiplier itself, 1 + 0.1 N(0,1).

Shapes: every matrix row (ne[0]) is a multiple of 256 so that every K-quant applies.
Weights have std 1/sqrt(fan_in), biases 0.1 N(0,1). All tensors are F32 (general.file_type 0).
Peaked outputs: random weights alone give near-Gaussian logits whose top two differ by ~0.3
std, which llama.cpp's own 8-bit activation rounding (~1-2 % rms) flips at ~7 % of positions;
so the token embeddings have std 1 (0.25 for the gemma family, which multiplies them by
sqrt(dim)) and carry through the residual stream, and an untied output matrix has rows
0.9 x (embedding of token perm[j]) + 0.44 x noise, scaled to std 1/sqrt(dim): a bigram-like
model whose top logit stands clear (llama.cpp's argmax then equals the float64 one on every
file recorded). Tied models peak on the current token.
"""
import math
import os
import struct
import sys
import zlib

import numpy as np

# ---------------------------------------------------------------- vocabularies

CORPUS = (
    "the quick brown fox jumps over the lazy dog. a small model reads the words and writes them again. "
    "in the beginning there was a tiny engine that ran every layer on the cpu, one token at a time. "
    "numbers like 12345 and 67890 appear too, with symbols: (a+b)*c = d; x[i] != y[j]! "
    "then the model said: hello world, this is a test of the tokenizer and of the weights. "
    "rain falls on the green hills while the river runs to the sea under a grey sky.\n"
)


def _pairs_bpe(words, n_merges):
    """Tiny deterministic BPE training: words is a list of symbol lists; returns merges."""
    words = [list(w) for w in words]
    merges = []
    for _ in range(n_merges):
        counts = {}
        for w in words:
            for a, b in zip(w, w[1:]):
                counts[(a, b)] = counts.get((a, b), 0) + 1
        if not counts:
            break
        best = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        merges.append(best)
        for w in words:
            i = 0
            while i < len(w) - 1:
                if (w[i], w[i + 1]) == best:
                    w[i:i + 2] = [w[i] + w[i + 1]]
                else:
                    i += 1
    return merges


def _byte_chars():
    """GPT-2's byte-level alphabet: printable bytes stand for themselves, the others
    are shifted to code points 256 and up, in byte order."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    chars, n = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + n)
            n += 1
    return [chars[b] for b in range(256)]


def bpe_vocab(n_vocab, specials, pre):
    """Byte-level BPE vocabulary (tokenizer.ggml.model = gpt2): 256 byte tokens, merges
    learnt from CORPUS, then the special tokens (control)."""
    bc = _byte_chars()
    words = []
    for i, w in enumerate(CORPUS.split(" ")):
        text = (" " if i else "") + w
        words.append([bc[b] for b in text.encode("utf-8")])
    merges = _pairs_bpe(words, n_vocab - 256 - len(specials))
    tokens = bc + [a + b for a, b in merges] + list(specials)
    assert len(tokens) == n_vocab and len(set(tokens)) == n_vocab, "vocabulary collision"
    types = [1] * (n_vocab - len(specials)) + [3] * len(specials)
    kv = [("tokenizer.ggml.model", "str", "gpt2"), ("tokenizer.ggml.pre", "str", pre),
          ("tokenizer.ggml.tokens", "arr_str", tokens), ("tokenizer.ggml.token_type", "arr_i32", types),
          ("tokenizer.ggml.merges", "arr_str", ["%s %s" % m for m in merges])]
    return tokens, types, kv


def spm_vocab(n_vocab, head, tail=()):
    """SentencePiece-style vocabulary (tokenizer.ggml.model = llama): the given leading
    special tokens (text, type), the 256 byte tokens <0x00>..<0xFF>, pieces learnt
    from CORPUS with '▁' for spaces, scored by merge rank, then the added tokens of
    tail (control, score -1000, as the converter marks added special tokens)."""
    words = [["\u2581"] + list(w) for w in CORPUS.replace("\n", " ").split(" ") if w]
    n_pieces = n_vocab - len(head) - 256 - len(tail)
    singles = sorted({c for w in words for c in w})
    merges = _pairs_bpe(words, n_pieces - len(singles))
    pieces = singles + [a + b for a, b in merges]
    tokens = [t for t, _ in head] + ["<0x%02X>" % b for b in range(256)] + pieces + list(tail)
    types = [ty for _, ty in head] + [6] * 256 + [1] * len(pieces) + [3] * len(tail)
    scores = [0.0] * (len(head) + 256) + [-float(i) for i in range(len(pieces))] + [-1000.0] * len(tail)
    assert len(tokens) == n_vocab and len(set(tokens)) == n_vocab, "vocabulary collision"
    kv = [("tokenizer.ggml.model", "str", "llama"), ("tokenizer.ggml.pre", "str", "default"),
          ("tokenizer.ggml.tokens", "arr_str", tokens), ("tokenizer.ggml.scores", "arr_f32", scores),
          ("tokenizer.ggml.token_type", "arr_i32", types)]
    return tokens, types, kv


LLAMA_SPM_HEAD = [("<unk>", 2), ("<s>", 3), ("</s>", 3)]
PHI3_ADDED = ["<|endoftext|>", "<|assistant|>", "<|system|>", "<|end|>", "<|user|>"]
GEMMA_SPM_HEAD = [("<pad>", 3), ("<eos>", 3), ("<bos>", 3), ("<unk>", 2), ("<start_of_turn>", 3),
                  ("<end_of_turn>", 3)]


def make_vocab(kind, n_vocab):
    """Returns (tokens, types, kv list, bos id) of one of the vocabulary kinds below."""
    def ids(tokens, **names):
        return [("tokenizer.ggml.%s_token_id" % k, "u32", tokens.index(v)) for k, v in names.items()]
    if kind in ("spm", "phi3"):
        # llama.cpp c392e509 looks up <s>, </s>, <unk> and <|endoftext|> by text when general.name
        # names phi3, and fails to load a vocabulary without them
        tail = PHI3_ADDED if kind == "phi3" else ()
        tokens, types, kv = spm_vocab(n_vocab, LLAMA_SPM_HEAD, tail)
        kv += ids(tokens, bos="<s>", eos="<|endoftext|>" if tail else "</s>", unknown="<unk>")
        kv += [("tokenizer.ggml.add_bos_token", "bool", True), ("tokenizer.ggml.add_eos_token", "bool", False)]
        return tokens, types, kv, tokens.index("<s>")
    if kind == "gemma":
        tokens, types, kv = spm_vocab(n_vocab, GEMMA_SPM_HEAD)
        kv += ids(tokens, bos="<bos>", eos="<eos>", unknown="<unk>", padding="<pad>")
        kv += [("tokenizer.ggml.add_bos_token", "bool", True), ("tokenizer.ggml.add_eos_token", "bool", False),
               ("tokenizer.ggml.add_space_prefix", "bool", False)]
        return tokens, types, kv, tokens.index("<bos>")
    if kind == "llama3":
        sp = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
        tokens, types, kv = bpe_vocab(n_vocab, sp, "llama-bpe")
        kv += ids(tokens, bos="<|begin_of_text|>", eos="<|eot_id|>")
        kv += [("tokenizer.ggml.add_bos_token", "bool", True)]
        return tokens, types, kv, tokens.index("<|begin_of_text|>")
    if kind == "smollm":
        sp = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        tokens, types, kv = bpe_vocab(n_vocab, sp, "smollm")
        kv += ids(tokens, bos="<|im_start|>", eos="<|im_end|>", unknown="<|endoftext|>", padding="<|im_end|>")
        return tokens, types, kv, tokens.index("<|im_start|>")
    if kind == "qwen2":
        sp = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        tokens, types, kv = bpe_vocab(n_vocab, sp, "qwen2")
        kv += ids(tokens, eos="<|im_end|>", padding="<|endoftext|>", bos="<|endoftext|>")
        kv += [("tokenizer.ggml.add_bos_token", "bool", False)]
        return tokens, types, kv, tokens.index("<|endoftext|>")
    if kind == "bloom":   # BLOOM's tokenizer: <unk>, <s>, </s>, <pad> (as specials here: the ids do not matter)
        sp = ["<unk>", "<s>", "</s>", "<pad>"]
        tokens, types, kv = bpe_vocab(n_vocab, sp, "bloom")
        kv += ids(tokens, bos="<s>", eos="</s>", unknown="<unk>", padding="<pad>")
        return tokens, types, kv, tokens.index("<s>")
    if kind in ("olmo2", "starcoder2", "gpt2", "phi2", "gptneox", "refact", "command-r", "jais", "codeshell", "chatglm",
                "falcon"):
        pre = {"olmo2": "dbrx", "starcoder2": "starcoder", "gpt2": "gpt-2", "phi2": "phi-2", "gptneox": "mpt",
               "refact": "refact", "command-r": "command-r", "jais": "jais", "codeshell": "codeshell",
               "chatglm": "chatglm-bpe", "falcon": "falcon"}[kind]
        tokens, types, kv = bpe_vocab(n_vocab, ["<|endoftext|>"], pre)
        kv += ids(tokens, bos="<|endoftext|>", eos="<|endoftext|>")
        if kind == "phi2":      # the converter's Phi2Model: no BOS
            kv += [("tokenizer.ggml.add_bos_token", "bool", False)]
        return tokens, types, kv, tokens.index("<|endoftext|>")
    raise ValueError(kind)


# ---------------------------------------------------------------- the models

# name: architecture, hyper-parameters and options. head_dim = attention.key_length when given
# (the converter writes key_length/value_length only when the HF config has head_dim).
BASE = dict(dim=256, layers=2, heads=4, kv=2, ffn=512, ctx=2048, vocab=384)
MODELS = {
    # TinyLlama-style: SentencePiece vocab, grouped-query attention, separate output matrix
    "llama": dict(arch="llama", vocab_kind="spm", rope_base=10000.0, eps=1e-5),
    # SmolLM2-style: tied embeddings, 8 heads of 32, 2 KV heads (groups of 4)
    "llama_tied": dict(arch="llama", vocab_kind="smollm", heads=8, kv=2, tied=True, rope_base=100000.0, eps=1e-5,
                       vocab=320),
    # Llama 3.2-style: rope_freqs.weight from the llama3 rope scaling (factor 32), tied, key_length written
    "llama3": dict(arch="llama", vocab_kind="llama3", tied=True, rope_base=500000.0, eps=1e-5, head_dim=64,
                   llama3_rope=dict(factor=32.0, low=1.0, high=4.0, orig=8192), ctx=131072),
    # linear RoPE scaling (llama.rope.scaling.type/factor), multi-head attention (kv = heads)
    "llama_linear": dict(arch="llama", vocab_kind="spm", kv=4, rope_base=10000.0, eps=1e-6,
                         rope_linear=4.0, ctx=16384),
    # Mistral-style sliding window: llama.attention.sliding_window = 8 (llama.cpp c392e509 ignores the key
    # for the llama architecture, so its logits here are those of full attention)
    "llama_swa": dict(arch="llama", vocab_kind="spm", rope_base=1000000.0, eps=1e-5, swa=8, ctx=32768),
    # Qwen2.5-style: QKV biases, tied embeddings
    "qwen2": dict(arch="qwen2", vocab_kind="qwen2", tied=True, rope_base=1000000.0, eps=1e-6, vocab=400),
    # Qwen2.5-128K-style YaRN (rope.scaling.type yarn, factor 4 over an original context of 4096; base 10000
    # so that YaRN's ramp, pairs 10..23 of 32, turns visibly over the 32 positions)
    "qwen2_yarn": dict(arch="qwen2", vocab_kind="qwen2", tied=True, rope_base=10000.0, eps=1e-6, vocab=400,
                       rope_yarn=dict(factor=4.0, orig=4096), ctx=16384),
    # Qwen3-style: per-head q/k RMSNorm, no biases, head_dim 128 != dim/heads (q is 512 wide)
    "qwen3": dict(arch="qwen3", vocab_kind="qwen2", head_dim=128, rope_base=1000000.0, eps=1e-6, vocab=400,
                  ctx=40960),
    # Phi-3-style: fused QKV and gate+up, sliding window 16 (declared as the loader requires)
    "phi3": dict(arch="phi3", vocab_kind="phi3", rope_base=10000.0, eps=1e-5, swa=16, ctx=4096),
    # Phi-3.5-style LongRoPE: rope_factors_long/short, attn_factor, original context 16 < n_ctx,
    # so the long factors apply (llama.cpp picks long when the context exceeds the original one)
    "phi3_long": dict(arch="phi3", vocab_kind="phi3", kv=4, rope_base=10000.0, eps=1e-5, swa=131072, ctx=128,
                      longrope=dict(orig=16)),
    # Phi-4-mini-style: tied embeddings (no output.weight), RoPE on 48 of each head's 64 values, LongRoPE
    # factors of 24 (the long ones: original context 16 < n_ctx), 2 KV heads
    "phi3_tied": dict(arch="phi3", vocab_kind="phi3", kv=2, tied=True, rope_base=10000.0, eps=1e-5, swa=131072,
                      ctx=128, rope_dims=48, longrope=dict(orig=16), llama_cpp=False),
    # the same model as llama.cpp c392e509 loads it: output.weight a copy of the embeddings, the LongRoPE
    # factors padded with 1 to half a head (its phi3 loader wants both; it reads only the first rot/2 factors,
    # so the logits are the same): llama.cpp's error on each quantized type bounds phi3_tied's (not tested)
    "phi3_tied_out": dict(arch="phi3", vocab_kind="phi3", kv=2, tied=True, rope_base=10000.0, eps=1e-5,
                          swa=131072, ctx=128, rope_dims=48, longrope=dict(orig=16), proxy_for="phi3_tied",
                          output_copy=True, factors_padded=True),
    # Gemma-style: one KV head (MQA), head_dim 128 (q 512 wide), GELU-gated FFN, embeddings x sqrt(dim)
    "gemma": dict(arch="gemma", vocab_kind="gemma", kv=1, head_dim=128, eps=1e-6, ctx=8192),
    # Gemma 2-style: 26 layers (llama.cpp c392e509 builds only 26/42/46), 8 heads of 64 (q 512 wide),
    # even layers slide over 8 tokens, attention and final soft-capping
    "gemma2": dict(arch="gemma2", vocab_kind="gemma", layers=26, heads=8, kv=4, head_dim=64, ffn=256, eps=1e-6,
                   swa=8, attn_softcap=5.0, final_softcap=30.0, ctx=8192),
    # Gemma 3-style: 6 layers = 5 local (window 10, base 10000) + 1 global (base 1e6, linear scaling 8)
    "gemma3": dict(arch="gemma3", vocab_kind="gemma", layers=6, heads=4, kv=2, head_dim=128, eps=1e-6, swa=10,
                   rope_base=1000000.0, rope_linear=8.0, ctx=32768),
    # OLMo 2-style: no pre-norms, full-width q/k RMSNorm, post-attention and post-FFN norms, kv = heads
    "olmo2": dict(arch="olmo2", vocab_kind="olmo2", kv=4, rope_base=500000.0, eps=1e-6, ctx=4096),
    # StarCoder2-style: LayerNorm with biases, biases on q/k/v/o and the GELU FFN, tied
    "starcoder2": dict(arch="starcoder2", vocab_kind="starcoder2", tied=True, rope_base=1000000.0, eps=1e-5,
                       ctx=16384),
    # GPT-2: learned positions, fused QKV with bias, LayerNorm, GELU FFN
    "gpt2": dict(arch="gpt2", vocab_kind="gpt2", kv=4, ffn=1024, eps=1e-5, ctx=128),
    # StarCoder (v1)-style: GPT-2's blocks with one KV head in the fused QKV (multi-query), tied
    "starcoder": dict(arch="starcoder", vocab_kind="starcoder2", kv=1, ffn=1024, eps=1e-5, ctx=128, tied=True),
    # Granite 3.x-style: llama's blocks (RoPE in adjacent pairs), tied, and its four scalars (embeddings x 2,
    # each block's output x 0.5, scores x 0.2 instead of 1/sqrt(64), logits / 2)
    "granite": dict(arch="granite", vocab_kind="smollm", tied=True, rope_base=10000.0, eps=1e-6, vocab=320,
                    ctx=4096, granite=dict(embedding_scale=2.0, residual_scale=0.5, attention_scale=0.2,
                                           logit_scale=2.0)),
    # StableLM 2-style: LayerNorm with biases, q/k/v biases, RoPE (NeoX pairs) on a quarter of each head
    # (rope.dimension_count 16 of 64), a SwiGLU FFN, a separate output matrix
    "stablelm": dict(arch="stablelm", vocab_kind="qwen2", kv=4, rope_base=10000.0, eps=1e-5, vocab=400, ctx=4096,
                     rope_dims=16),
    # Phi-2-style: one LayerNorm feeds attention and the GELU FFN in parallel, fused QKV with bias, RoPE
    # (NeoX) on 32 of each head's 64 values, biases everywhere including the output's, no BOS
    "phi2": dict(arch="phi2", vocab_kind="phi2", kv=4, ffn=1024, rope_base=10000.0, eps=1e-5, ctx=2048,
                 rope_dims=32),
    # Phi-1.5-style as older converters wrote it: Q, K, V apart with biases; grouped KV heads
    "phi2_split": dict(arch="phi2", vocab_kind="phi2", kv=2, rope_base=10000.0, eps=1e-5, ctx=2048, rope_dims=32,
                       split_qkv=True),
    # Mixtral-style llama: a mixture of 4 experts (2 per token, weights renormalized) in place of the dense FFN
    "llama_moe": dict(arch="llama", vocab_kind="spm", rope_base=1000000.0, eps=1e-5, ffn=256, ctx=32768,
                      experts=(4, 2)),
    # Granite 3.x MoE-style: granite's scalars and a mixture of 4 experts (2 per token), tied
    "granitemoe": dict(arch="granitemoe", vocab_kind="smollm", tied=True, rope_base=10000.0, eps=1e-6, vocab=320,
                       ctx=4096, ffn=256, experts=(4, 2),
                       granite=dict(embedding_scale=2.0, residual_scale=0.5, attention_scale=0.2, logit_scale=2.0)),
    # OLMoE-style: full-width q/k norms, 8 experts (2 per token, the router's probabilities as weights)
    "olmoe": dict(arch="olmoe", vocab_kind="olmo2", kv=4, rope_base=10000.0, eps=1e-5, ffn=256, ctx=4096,
                  experts=(8, 2)),
    # SmolLM3-style: llama's blocks, Llama 3's tokenizer, tied, every fourth layer without RoPE (layer 3 of 4)
    "smollm3": dict(arch="smollm3", vocab_kind="llama3", layers=4, tied=True, rope_base=10000.0, eps=1e-6),
    # its weights and tokens as a llama file (RoPE in every layer), which llama.cpp c392e509 runs: llama.cpp's
    # error on each quantized type of the same weights and depth bounds smollm3's (not tested itself)
    "smollm3_llama": dict(arch="llama", vocab_kind="llama3", layers=4, tied=True, rope_base=10000.0, eps=1e-6,
                          proxy_for="smollm3"),
    # EXAONE 3.5-style: NeoX RoPE, rope_freqs.weight from the llama3 rule (factor 8), separate output
    "exaone": dict(arch="exaone", vocab_kind="qwen2", rope_base=1000000.0, eps=1e-5, vocab=400, ctx=32768,
                   llama3_rope=dict(factor=8.0, low=1.0, high=4.0, orig=8192)),
    # InternLM2.5-style: llama's blocks (adjacent RoPE pairs), Q/K/V apart, SentencePiece, separate output
    "internlm2": dict(arch="internlm2", vocab_kind="spm", rope_base=1000000.0, eps=1e-5, ctx=32768),
    # MiniCPM-style: granite's scalars without attention.scale (embeddings x 12, block outputs x 1.4/sqrt(4)
    # = 0.7, logits / 9), SentencePiece, tied
    "minicpm": dict(arch="minicpm", vocab_kind="spm", layers=4, tied=True, rope_base=10000.0, eps=1e-5, ctx=4096,
                    embd_std=1.0 / 12, granite=dict(embedding_scale=12.0, residual_scale=0.7, logit_scale=9.0)),
    # ERNIE-4.5-0.3B-style: llama's blocks (adjacent RoPE pairs) with heads of 128 (q 512 wide at dim 256),
    # 2 KV heads, SentencePiece, tied, base 500000; not in llama.cpp c392e509
    "ernie4_5": dict(arch="ernie4_5", vocab_kind="spm", head_dim=128, tied=True, rope_base=500000.0, eps=1e-5,
                     ctx=131072),
    # its weights and tokens as a llama file, which llama.cpp c392e509 runs: the bound of each quantized type
    "ernie4_5_llama": dict(arch="llama", vocab_kind="spm", head_dim=128, tied=True, rope_base=500000.0, eps=1e-5,
                           ctx=131072, proxy_for="ernie4_5"),
    # Ministral-3-style: llama's blocks with heads of 128 (q 512 wide), YaRN x16 over an original context of 8
    # without its magnitude (yarn_log_multiplier 1), the queries times 1 + 0.1 ln(1 + floor(p / 8)) (Llama 4's
    # temperature tuning: 1.14 at the last of 32 positions), tied; not in llama.cpp c392e509
    "mistral3": dict(arch="mistral3", vocab_kind="llama3", head_dim=128, tied=True, rope_base=1000000.0, eps=1e-5,
                     ctx=128, rope_yarn=dict(factor=16.0, orig=8), yarn_log_mul=1.0, temp_scale=0.1),
    # its weights and tokens as a llama file (YaRN with its magnitude, no temperature): the bound of each
    # quantized type
    "mistral3_llama": dict(arch="llama", vocab_kind="llama3", head_dim=128, tied=True, rope_base=1000000.0,
                           eps=1e-5, ctx=128, rope_yarn=dict(factor=16.0, orig=8), proxy_for="mistral3"),
    # EXAONE-4.0-1.2B-style: olmo2's block (no pre-norms, post-norms) with per-head q/k RMSNorm, NeoX RoPE,
    # rope_freqs.weight from the llama3 rule, tied; 4 KV heads, as olmo2 in llama.cpp c392e509 (the proxy) needs;
    # not in llama.cpp c392e509
    "exaone4": dict(arch="exaone4", vocab_kind="qwen2", kv=4, tied=True, rope_base=1000000.0, eps=1e-5, vocab=400,
                    ctx=65536, llama3_rope=dict(factor=16.0, low=1.0, high=4.0, orig=8192)),
    # its weights and tokens as an olmo2 file (q/k norms over all heads, each head's weights repeated; the head
    # written out and no frequency factors, as olmo2 in llama.cpp c392e509 loads it): each quantized type's bound
    "exaone4_olmo2": dict(arch="olmo2", vocab_kind="qwen2", kv=4, tied=True, rope_base=1000000.0, eps=1e-5, vocab=400,
                          ctx=65536, qk_norm_tiled=True, output_copy=True, proxy_for="exaone4"),
    # Hunyuan-0.5B-style (hunyuan-dense): llama's blocks, NeoX RoPE, per-head q/k RMSNorm after RoPE, tied; not in
    # llama.cpp c392e509
    "hunyuan-dense": dict(arch="hunyuan-dense", vocab_kind="qwen2", kv=4, tied=True, rope_base=10000.0, eps=1e-5,
                          vocab=400, ctx=32768),
    # an olmo2 file of the same shape (q/k norms over all heads, each head's weights repeated, before RoPE; no
    # pre-norms but post-norms, so its weights differ from the draw on): each quantized type's bound
    "hunyuan_olmo2": dict(arch="olmo2", vocab_kind="qwen2", kv=4, tied=True, rope_base=10000.0, eps=1e-5,
                          vocab=400, ctx=32768, qk_norm_tiled=True, output_copy=True, proxy_for="hunyuan-dense"),
    # Qwen2-MoE-style: q/k/v biases, 4 experts of 256 (2 per token), a shared expert of 512 under a sigmoid gate
    "qwen2moe": dict(arch="qwen2moe", vocab_kind="qwen2", rope_base=1000000.0, eps=1e-6, vocab=400, ctx=8192,
                     experts=(4, 2), expert_ffn=256, shared_ffn=512),
    # OLMo-1B-0724-style: llama's blocks (adjacent RoPE pairs) with LayerNorm without weight or bias, separate
    # output, q/k/v clamped to +-1.5 (attention.clamp_kqv: OLMo-7B-0424 has 8; 1.5 clips a visible share here)
    "olmo": dict(arch="olmo", vocab_kind="gptneox", kv=4, rope_base=10000.0, eps=1e-5, ctx=4096, clamp_kqv=1.5),
    # Nemotron-Mini-style: LayerNorm with biases, NeoX RoPE on 32 of each head's 64 values, a squared-ReLU FFN
    # without a gate, separate output
    "nemotron": dict(arch="nemotron", vocab_kind="spm", kv=2, rope_base=10000.0, eps=1e-5, ctx=4096, rope_dims=32),
    # AFM-style (arcee): llama's blocks with a squared-ReLU FFN, tied; not in llama.cpp c392e509 (bound: llama.cpp
    # on nemotron, the other squared-ReLU model)
    "arcee": dict(arch="arcee", vocab_kind="llama3", tied=True, rope_base=10000.0, eps=1e-5, ctx=65536),
    # Qwen2-VL-style language half: qwen2's blocks with M-RoPE's sections (time 8, height 12, width 12 of the
    # 32 pairs), which a text token, the same position in each, turns as plain NeoX RoPE; not recorded with
    # llama.cpp c392e509 (its qwen2vl wants four positions a token): float64, and the same weights as a qwen2
    # file (qwen2vl_qwen2) for the quantized bound
    "qwen2vl": dict(arch="qwen2vl", vocab_kind="qwen2", tied=True, rope_base=1000000.0, eps=1e-6, vocab=400,
                    rope_sections=[8, 12, 12, 0]),
    "qwen2vl_qwen2": dict(arch="qwen2", vocab_kind="qwen2", tied=True, rope_base=1000000.0, eps=1e-6, vocab=400,
                          proxy_for="qwen2vl"),
    # Qwen3-VL-style: qwen3's blocks with interleaved M-RoPE sections (24, 20, 20 of 64 pairs), untied
    "qwen3vl": dict(arch="qwen3vl", vocab_kind="qwen2", head_dim=128, rope_base=5000000.0, eps=1e-6, vocab=400,
                    ctx=262144, rope_sections=[24, 20, 20, 0]),
    # Qwen3-VL-MoE-style: qwen3moe's blocks (one layer, as qwen3moe) with the sections
    "qwen3vlmoe": dict(arch="qwen3vlmoe", vocab_kind="qwen2", head_dim=128, rope_base=5000000.0, eps=1e-6,
                       vocab=400, ctx=262144, experts=(4, 2), expert_ffn=128, layers=1, rope_sections=[24, 20, 20, 0]),
    # Qwen3-MoE-style (30B-A3B): per-head q/k norms, heads of 128 (q 512 wide), 4 experts of 128 (2 per token,
    # renormalized); not in llama.cpp c392e509, so one layer: a position whose routing rounding may flip
    # (tests/arch_check.py leaves those out) changes no other position
    "qwen3moe": dict(arch="qwen3moe", vocab_kind="qwen2", head_dim=128, rope_base=1000000.0, eps=1e-6, vocab=400,
                     ctx=40960, experts=(4, 2), expert_ffn=128, layers=1),
    # Pythia-style GPT-NeoX: fused QKV with bias, RoPE (NeoX) on a quarter of each head, attention and FFN
    # in parallel each with its own LayerNorm (use_parallel_residual)
    "gptneox": dict(arch="gptneox", vocab_kind="gptneox", kv=4, ffn=1024, rope_base=10000.0, eps=1e-5, ctx=2048,
                    rope_dims=16, parallel=True),
    # GPT-NeoX with use_parallel_residual false: the FFN's norm reads the stream after attention
    # BLOOM-560m-style: ALiBi over 8 heads, the embeddings LayerNorm'd, LayerNorm and biases everywhere, a fused
    # QKV, a GELU FFN, tied (the head written out as a copy, as the converter does and llama.cpp's loader wants)
    "bloom": dict(arch="bloom", vocab_kind="bloom", heads=8, kv=8, ffn=1024, eps=1e-5, ctx=2048, tied=True,
                  output_copy=True),
    # MPT-7B-style: ALiBi (max_alibi_bias 8) over 6 heads of 128, a count that is not a power of two (the slopes
    # of heads 4 and 5 fall between the others'; dim 768 keeps rows whole 256-blocks, so one layer and FFN 256 keep
    # the file small), no biases at all (no_bias), a fused QKV clamped to +-2 (clip_qkv), LayerNorm without bias, a
    # GELU FFN, tied
    "mpt": dict(arch="mpt", vocab_kind="gptneox", dim=768, layers=1, heads=6, kv=6, ffn=256, eps=1e-5, ctx=2048, tied=True,
                clamp_kqv=2.0, max_alibi_bias=8.0),
    # Refact-1.6B-style: llama's blocks with ALiBi (span 8, no key) instead of RoPE, 8 heads of 32 and one KV head
    # (multi-query), separate output
    "refact": dict(arch="refact", vocab_kind="refact", heads=8, kv=1, eps=1e-5, ctx=4096),
    # Aya-Expanse-8B-style (command-r): one LayerNorm without bias feeding attention and the SwiGLU FFN in
    # parallel, RoPE in adjacent pairs, tied, logits times logit_scale 0.25
    "command-r": dict(arch="command-r", vocab_kind="command-r", rope_base=8000000.0, eps=1e-5, ctx=8192, tied=True,
                      logit_mul=0.25),
    # Command-R7B-style (cohere2): command-r's blocks in 4 layers, the first three sliding over 8 tokens with RoPE,
    # the fourth global without positions
    "cohere2": dict(arch="cohere2", vocab_kind="command-r", layers=4, rope_base=50000.0, eps=1e-5, ctx=8192, tied=True,
                    logit_mul=0.25, swa=8),
    # Jais-family-style: GPT-2's blocks with ALiBi (max_alibi_bias 8) over 4 heads, a SwiGLU FFN with biases on
    # gate, up and down, scores scaled by 1/64 (muP), separate output
    "jais": dict(arch="jais", vocab_kind="jais", kv=4, eps=1e-5, ctx=2048, max_alibi_bias=8.0),
    # XVERSE-7B-style: llama's blocks (adjacent RoPE pairs), separate output
    "xverse": dict(arch="xverse", vocab_kind="spm", rope_base=10000.0, eps=1e-6, ctx=8192),
    # Orion-14B-style: llama's blocks with LayerNorm and biases, separate output
    "orion": dict(arch="orion", vocab_kind="spm", kv=4, rope_base=10000.0, eps=1e-5, ctx=4096),
    # CodeShell-7B-style: GPT-2's blocks with NeoX RoPE, 2 KV heads in the fused QKV, biases everywhere
    "codeshell": dict(arch="codeshell", vocab_kind="codeshell", kv=2, ffn=1024, rope_base=10000.0, eps=1e-5, ctx=8192),
    # GLM-4-9B-style (chatglm): RMSNorm, a fused QKV with bias and 2 KV heads, RoPE in adjacent pairs on 32 of each
    # head's 64 values, gate and up in one matrix, separate output
    "chatglm": dict(arch="chatglm", vocab_kind="chatglm", kv=2, rope_base=10000.0, eps=1e-5, ctx=8192, rope_dims=32),
    # Falcon-7B-style: one LayerNorm feeding attention and the GELU FFN in parallel, one KV head in the fused QKV,
    # NeoX RoPE, no biases on the products, tied
    "falcon": dict(arch="falcon", vocab_kind="falcon", kv=1, ffn=1024, rope_base=10000.0, eps=1e-5, ctx=2048,
                   tied=True),
    # StableLM-2-12B-style: a LayerNorm per head of q and k with weights of its own ([64, heads]), no q/k/v biases,
    # attention and FFN in parallel from the one norm (no ffn_norm), RoPE (NeoX) on 16 of each head's 64 values
    "stablelm_12b": dict(arch="stablelm", vocab_kind="qwen2", kv=2, rope_base=10000.0, eps=1e-5, vocab=400, ctx=4096,
                         rope_dims=16, qk_ln_heads=True),
    "gptneox_seq": dict(arch="gptneox", vocab_kind="gptneox", kv=4, rope_base=10000.0, eps=1e-5, ctx=2048,
                        rope_dims=16, parallel=False),
}
# the language halves of vision-language models: the blocks of these architectures, on text
VL_BASE = {"qwen2vl": "qwen2", "qwen3vl": "qwen3", "qwen3vlmoe": "qwen3moe"}
# architectures whose FFN activation is SiLU (llama.cpp's GELU goes through an fp16 table)
SILU_ARCHS = {"llama", "qwen2", "qwen3", "phi3", "olmo2", "granite", "stablelm", "granitemoe", "olmoe", "qwen2moe",
              "qwen3moe", "smollm3", "exaone", "internlm2", "minicpm", "ernie4_5", "mistral3", "exaone4", "hunyuan-dense",
              "qwen2vl", "qwen3vl", "qwen3vlmoe", "olmo", "nemotron", "arcee", "refact", "command-r", "cohere2", "jais",
              "xverse", "orion", "chatglm"}
# architectures llama.cpp c392e509 can run
LLAMA_CPP_ARCHS = {"llama", "qwen2", "phi3", "gemma", "gemma2", "olmo2", "starcoder2", "gpt2", "granite", "stablelm",
                   "phi2", "gptneox", "granitemoe", "olmoe", "qwen2moe", "exaone", "internlm2", "minicpm", "starcoder",
                   "olmo", "nemotron", "bloom", "mpt", "refact", "command-r", "cohere2", "jais", "xverse", "orion",
                   "codeshell", "chatglm", "falcon"}
# architectures with LayerNorm (and its biases) instead of RMSNorm
LAYER_NORM_ARCHS = ("starcoder2", "gpt2", "stablelm", "phi2", "gptneox", "starcoder", "nemotron", "bloom", "jais", "orion",
                    "codeshell", "falcon")
# architectures with a GELU FFN and biases on every product
GELU_BIAS_ARCHS = ("starcoder2", "gpt2", "phi2", "gptneox", "starcoder", "bloom", "codeshell")


def spec(name):
    s = dict(BASE)
    s.update(MODELS[name])
    s.setdefault("head_dim", None)
    s.setdefault("embd_std", 0.25 if s["arch"].startswith("gemma") else 1.0)
    return s


def seed_of(name, what):
    return zlib.crc32(("smallmind-arch:%s:%s" % (name, what)).encode()) & 0x7FFFFFFF


def build(name):
    """Returns (kv list, tensor list) of one model; kv entries are (key, type, value),
    tensors are (name, float32 array in numpy order: shape = reversed ne)."""
    s = spec(name)
    arch_name = s["arch"]
    arch = VL_BASE.get(arch_name, arch_name)   # the blocks of a vision-language model's language half
    rs = np.random.RandomState(seed_of(s.get("proxy_for", name), "weights"))
    dim, L, H, KV, FF = s["dim"], s["layers"], s["heads"], s["kv"], s["ffn"]
    hd = s["head_dim"] or dim // H
    qdim, kvdim = H * hd, KV * hd
    tokens, types, vocab_kv, _ = make_vocab(s["vocab_kind"], s["vocab"])
    V = len(tokens)

    def mat(rows, cols):          # rows = ne[1] outputs, cols = ne[0] = fan_in
        return (rs.standard_normal((rows, cols)) / math.sqrt(cols)).astype(np.float32)

    def norm(n):
        return (1.0 + 0.1 * rs.standard_normal(n)).astype(np.float32)

    def bias(n):
        return (0.1 * rs.standard_normal(n)).astype(np.float32)

    a = arch_name + "."
    kv = [("general.architecture", "str", arch_name), ("general.type", "str", "model"),
          ("general.name", "str", "SmallMind test " + name)]
    kv += [(a + "block_count", "u32", L), (a + "context_length", "u32", s["ctx"]),
           (a + "embedding_length", "u32", dim), (a + "feed_forward_length", "u32", FF),
           (a + "attention.head_count", "u32", H)]
    if arch != "gpt2":
        kv += [(a + "attention.head_count_kv", "u32", KV)]
    if "rope_base" in s:
        kv += [(a + "rope.freq_base", "f32", s["rope_base"])]
    if arch in LAYER_NORM_ARCHS or arch in ("olmo", "mpt", "command-r", "cohere2"):
        kv += [(a + "attention.layer_norm_epsilon", "f32", s["eps"])]
    else:
        kv += [(a + "attention.layer_norm_rms_epsilon", "f32", s["eps"])]
    if s["head_dim"]:
        kv += [(a + "attention.key_length", "u32", hd), (a + "attention.value_length", "u32", hd)]
    if arch in ("llama", "smollm3", "mistral3", "arcee"):   # smollm3, mistral3: the converter's LlamaModel subclasses
        kv += [(a + "vocab_size", "u32", V), (a + "rope.dimension_count", "u32", hd)]
        if "rope_linear" in s:
            kv += [(a + "rope.scaling.type", "str", "linear"), (a + "rope.scaling.factor", "f32", s["rope_linear"])]
        if "swa" in s:
            kv += [(a + "attention.sliding_window", "u32", s["swa"])]
    if arch in ("stablelm", "phi2", "gptneox", "nemotron", "chatglm"):
        kv += [(a + "rope.dimension_count", "u32", s["rope_dims"])]
    if "rope_yarn" in s:
        kv += [(a + "rope.scaling.type", "str", "yarn"), (a + "rope.scaling.factor", "f32", s["rope_yarn"]["factor"]),
               (a + "rope.scaling.original_context_length", "u32", s["rope_yarn"]["orig"])]
    if "yarn_log_mul" in s:
        kv += [(a + "rope.scaling.yarn_log_multiplier", "f32", s["yarn_log_mul"])]
    if "rope_sections" in s:   # M-RoPE's sections (qwen2vl, qwen3vl): pairs for time, height, width, extra
        kv += [(a + "rope.dimension_sections", "arr_i32", s["rope_sections"])]
    if "clamp_kqv" in s:
        kv += [(a + "attention.clamp_kqv", "f32", s["clamp_kqv"])]
    if "logit_mul" in s:   # command-r's logit_scale (a multiplier)
        kv += [(a + "logit_scale", "f32", s["logit_mul"])]
    if arch == "cohere2":
        kv += [(a + "attention.sliding_window", "u32", s["swa"])]
    if "max_alibi_bias" in s:
        kv += [(a + "attention.max_alibi_bias", "f32", s["max_alibi_bias"])]
    if "temp_scale" in s:
        kv += [(a + "attention.temperature_scale", "f32", s["temp_scale"])]
    if arch == "gptneox":
        kv += [(a + "use_parallel_residual", "bool", s["parallel"])]
    if "experts" in s:
        kv += [(a + "expert_count", "u32", s["experts"][0]), (a + "expert_used_count", "u32", s["experts"][1])]
    if arch in ("qwen2moe", "qwen3moe"):
        kv += [(a + "expert_feed_forward_length", "u32", s["expert_ffn"])]
    if arch == "qwen2moe":
        kv += [(a + "expert_shared_feed_forward_length", "u32", s["shared_ffn"])]
    if arch in ("granite", "granitemoe", "minicpm"):
        g = s["granite"]
        kv += [(a + "vocab_size", "u32", V), (a + "rope.dimension_count", "u32", hd),
               (a + "embedding_scale", "f32", g["embedding_scale"]), (a + "residual_scale", "f32", g["residual_scale"])]
        if "attention_scale" in g:   # minicpm's files have none
            kv += [(a + "attention.scale", "f32", g["attention_scale"])]
        kv += [(a + "logit_scale", "f32", g["logit_scale"])]
    if arch == "phi3":
        longrope = "longrope" in s
        kv += [(a + "rope.scaling.original_context_length", "u32", s["longrope"]["orig"] if longrope else s["ctx"]),
               (a + "rope.dimension_count", "u32", s.get("rope_dims", hd))]
        kv += [(a + "attention.sliding_window", "u32", s["swa"])]
        if longrope:
            scale = s["ctx"] / s["longrope"]["orig"]
            attn_factor = math.sqrt(1 + math.log(scale) / math.log(s["longrope"]["orig"]))
            kv += [(a + "rope.scaling.attn_factor", "f32", attn_factor)]
    if arch == "gemma2":
        kv += [(a + "attn_logit_softcapping", "f32", s["attn_softcap"]),
               (a + "final_logit_softcapping", "f32", s["final_softcap"]),
               (a + "attention.sliding_window", "u32", s["swa"])]
    if arch == "gemma3":
        kv += [(a + "attention.sliding_window", "u32", s["swa"]),
               (a + "rope.scaling.type", "str", "linear"), (a + "rope.scaling.factor", "f32", s["rope_linear"])]
    kv += [("general.file_type", "u32", 0), ("general.quantization_version", "u32", 2)]
    kv += vocab_kv

    t = []
    es = s["embd_std"]
    embd = (es * rs.standard_normal((V, dim))).astype(np.float32)
    t.append(("token_embd.weight", embd))
    if arch == "bloom":   # the embeddings' LayerNorm
        t += [("token_embd_norm.weight", norm(dim)), ("token_embd_norm.bias", bias(dim))]
    if arch in ("gpt2", "starcoder"):
        t.append(("position_embd.weight", (0.25 * es * rs.standard_normal((s["ctx"], dim))).astype(np.float32)))
    if "llama3_rope" in s:
        r = s["llama3_rope"]
        freqs = s["rope_base"] ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
        lo_wl, hi_wl = r["orig"] / r["low"], r["orig"] / r["high"]
        f = []
        for fr in freqs:       # the llama3 rule, as convert_hf_to_gguf.py's LlamaModel computes rope_freqs
            wl = 2 * math.pi / fr
            if wl < hi_wl:
                f.append(1.0)
            elif wl > lo_wl:
                f.append(r["factor"])
            else:
                sm = (r["orig"] / wl - r["low"]) / (r["high"] - r["low"])
                f.append(1 / ((1 - sm) / r["factor"] + sm))
        t.append(("rope_freqs.weight", np.array(f, dtype=np.float32)))
    if "longrope" in s:
        rot = s.get("rope_dims", hd)
        long_f = (1.0 + 3.0 * rs.random_sample(rot // 2)).astype(np.float32)
        short_f = (1.0 + 0.2 * rs.random_sample(rot // 2)).astype(np.float32)
        if s.get("factors_padded"):
            pad = np.ones(hd // 2 - rot // 2, dtype=np.float32)
            long_f, short_f = np.concatenate([long_f, pad]), np.concatenate([short_f, pad])
        t += [("rope_factors_long.weight", long_f), ("rope_factors_short.weight", short_f)]
    for i in range(L):
        p = "blk.%d." % i
        if arch not in ("olmo2", "exaone4", "olmo"):
            t.append((p + "attn_norm.weight", norm(dim)))
            if arch in LAYER_NORM_ARCHS:
                t.append((p + "attn_norm.bias", bias(dim)))
        if arch in ("phi3", "gpt2", "gptneox", "starcoder", "bloom", "mpt", "jais", "codeshell", "chatglm", "falcon") or \
                (arch == "phi2" and not s.get("split_qkv")):
            t.append((p + "attn_qkv.weight", mat(qdim + 2 * kvdim, dim)))
            if arch not in ("phi3", "mpt", "falcon"):
                t.append((p + "attn_qkv.bias", bias(qdim + 2 * kvdim)))
        else:
            t.append((p + "attn_q.weight", mat(qdim, dim)))
            t.append((p + "attn_k.weight", mat(kvdim, dim)))
            t.append((p + "attn_v.weight", mat(kvdim, dim)))
            if arch in ("qwen2", "starcoder2", "stablelm", "phi2", "qwen2moe") and not s.get("qk_ln_heads"):
                t += [(p + "attn_q.bias", bias(qdim)), (p + "attn_k.bias", bias(kvdim)), (p + "attn_v.bias", bias(kvdim))]
            if s.get("qk_ln_heads"):   # each head's own LayerNorm weights: ne [head size, heads]
                t += [(p + "attn_q_norm.weight", norm(H * hd).reshape(H, hd)),
                      (p + "attn_k_norm.weight", norm(KV * hd).reshape(KV, hd))]
            if arch in ("qwen3", "gemma3", "qwen3moe", "exaone4", "hunyuan-dense"):
                t += [(p + "attn_q_norm.weight", norm(hd)), (p + "attn_k_norm.weight", norm(hd))]
            elif s.get("qk_norm_tiled"):   # the per-head weights of the model it stands for, over every head
                qn, kn = norm(hd), norm(hd)
                t += [(p + "attn_q_norm.weight", np.tile(qn, H)), (p + "attn_k_norm.weight", np.tile(kn, KV))]
            elif arch in ("olmo2", "olmoe"):
                t += [(p + "attn_q_norm.weight", norm(qdim)), (p + "attn_k_norm.weight", norm(kvdim))]
        t.append((p + "attn_output.weight", mat(dim, qdim)))
        if arch in GELU_BIAS_ARCHS or arch == "jais":
            t.append((p + "attn_output.bias", bias(dim)))
        if arch in ("gemma2", "gemma3", "olmo2", "exaone4"):
            t.append((p + "post_attention_norm.weight", norm(dim)))
        if arch not in ("olmo2", "phi2", "exaone4", "olmo", "command-r", "cohere2", "falcon") and not s.get("qk_ln_heads"):
            t.append((p + "ffn_norm.weight", norm(dim)))
            if arch in LAYER_NORM_ARCHS:
                t.append((p + "ffn_norm.bias", bias(dim)))
        if "experts" in s:
            # the router (std 2/sqrt(dim): logits of std ~2, so the experts chosen stand apart), then each
            # stack of n_expert matrices (numpy shape: experts, rows, cols)
            E, EF = s["experts"][0], s.get("expert_ffn", FF)
            t.append((p + "ffn_gate_inp.weight", 2.0 * mat(E, dim)))
            t.append((p + "ffn_gate_exps.weight", np.stack([mat(EF, dim) for _ in range(E)])))
            t.append((p + "ffn_up_exps.weight", np.stack([mat(EF, dim) for _ in range(E)])))
            t.append((p + "ffn_down_exps.weight", np.stack([mat(dim, EF) for _ in range(E)])))
            if arch == "qwen2moe":
                SF = s["shared_ffn"]
                t += [(p + "ffn_gate_inp_shexp.weight", (rs.standard_normal(dim) / math.sqrt(dim)).astype(np.float32)),
                      (p + "ffn_gate_shexp.weight", mat(SF, dim)), (p + "ffn_up_shexp.weight", mat(SF, dim)),
                      (p + "ffn_down_shexp.weight", mat(dim, SF))]
        elif arch in ("phi3", "chatglm"):   # gate and up in one matrix
            t.append((p + "ffn_up.weight", mat(2 * FF, dim)))
        elif arch in GELU_BIAS_ARCHS:
            t += [(p + "ffn_up.weight", mat(FF, dim)), (p + "ffn_up.bias", bias(FF))]
        elif arch == "jais":   # SwiGLU with biases
            t += [(p + "ffn_gate.weight", mat(FF, dim)), (p + "ffn_gate.bias", bias(FF)),
                  (p + "ffn_up.weight", mat(FF, dim)), (p + "ffn_up.bias", bias(FF))]
        elif arch in ("nemotron", "arcee", "mpt", "falcon"):   # no gate, no bias (nemotron, arcee: squared ReLU; mpt, falcon: GELU)
            t.append((p + "ffn_up.weight", mat(FF, dim)))
        else:
            t += [(p + "ffn_gate.weight", mat(FF, dim)), (p + "ffn_up.weight", mat(FF, dim))]
        if "experts" not in s:
            t.append((p + "ffn_down.weight", mat(dim, FF)))
        if arch in GELU_BIAS_ARCHS or arch == "jais":
            t.append((p + "ffn_down.bias", bias(dim)))
        if arch in ("gemma2", "gemma3", "olmo2", "exaone4"):
            t.append((p + "post_ffw_norm.weight", norm(dim)))
    if arch != "olmo":   # olmo's norms have no weights
        t.append(("output_norm.weight", norm(dim)))
    if arch in LAYER_NORM_ARCHS:
        t.append(("output_norm.bias", bias(dim)))
    if not s.get("tied") and arch not in ("gemma", "gemma2"):
        # a bigram-like output: row j leans on the embedding of token perm[j] (std 1/sqrt(dim) still)
        perm = rs.permutation(V)
        out = (0.9 / es) * embd[perm].astype(np.float64) + math.sqrt(1 - 0.81) * rs.standard_normal((V, dim))
        t.append(("output.weight", (out / math.sqrt(dim)).astype(np.float32)))
    if s.get("output_copy"):   # a tied model's head written out, as llama.cpp's phi3 loader wants it
        t.append(("output.weight", embd.copy()))
    if arch == "phi2":
        t.append(("output.bias", bias(V)))
    return kv, t


def token_sequence(name, n=32):
    """BOS, then n - 1 ids drawn from the ordinary (type 1 or byte) tokens."""
    s = spec(name)
    tokens, types, _, bos = make_vocab(s["vocab_kind"], s["vocab"])
    ordinary = [i for i, ty in enumerate(types) if ty in (1, 6)]
    rs = np.random.RandomState(seed_of(s.get("proxy_for", name), "tokens"))
    return [bos] + [ordinary[j] for j in rs.randint(0, len(ordinary), n - 1)]


# ---------------------------------------------------------------- GGUF writers

_VT = {"u8": 0, "i8": 1, "u16": 2, "i16": 3, "u32": 4, "i32": 5, "f32": 6, "bool": 7, "str": 8, "arr": 9,
       "u64": 10, "i64": 11, "f64": 12}
_FMT = {"u32": "<I", "i32": "<i", "f32": "<f", "bool": "<?", "u64": "<Q", "f64": "<d"}
ALIGN = 32


def _str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _value(ty, v):
    if ty == "str":
        return _str(v)
    if ty.startswith("arr_"):
        et = ty[4:]
        out = struct.pack("<IQ", _VT[et], len(v))
        if et == "str":
            return out + b"".join(_str(x) for x in v)
        return out + np.asarray(v, dtype={"i32": "<i4", "f32": "<f4"}[et]).tobytes()
    return struct.pack(_FMT[ty], v)


def write_gguf(path, kv, tensors):
    """SmallMind's own GGUF v3 writer (the container of ggml's docs/gguf.md): header,
    metadata in order, tensor infos, data aligned to 32 bytes, each tensor padded to 32."""
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv)))
    for key, ty, v in kv:
        out += _str(key) + struct.pack("<I", _VT["arr" if ty.startswith("arr_") else ty]) + _value(ty, v)
    off = 0
    for name, arr in tensors:
        out += _str(name) + struct.pack("<I", arr.ndim) + b"".join(struct.pack("<Q", d) for d in reversed(arr.shape))
        out += struct.pack("<IQ", 0, off)          # F32
        off += (arr.nbytes + ALIGN - 1) // ALIGN * ALIGN
    out += bytes(-len(out) % ALIGN)
    with open(path, "wb") as f:
        f.write(out)
        for _, arr in tensors:
            data = np.ascontiguousarray(arr, dtype="<f4").tobytes()
            f.write(data + bytes(-len(data) % ALIGN))


def write_gguf_py(path, kv, tensors, gguf_py):
    """The same file written with llama.cpp's gguf-py (for the cross-check)."""
    sys.path.insert(0, gguf_py)
    import gguf
    VT = gguf.GGUFValueType
    types = {"u32": VT.UINT32, "i32": VT.INT32, "f32": VT.FLOAT32, "bool": VT.BOOL, "str": VT.STRING}
    w = gguf.GGUFWriter(path, kv[0][2])
    for key, ty, v in kv[1:]:
        if ty.startswith("arr_"):
            w.add_array(key, [float(x) for x in v] if ty == "arr_f32" else list(v))
        else:
            w.add_key_value(key, v, types[ty])
    for name, arr in tensors:
        w.add_tensor(name, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main(argv):
    gguf_py = None
    if "--list" in argv or "--list-all" in argv:
        for n in MODELS:
            if "proxy_for" in MODELS[n] and "--list-all" not in argv:
                continue
            a = MODELS[n]["arch"]
            runs = MODELS[n].get("llama_cpp", a in LLAMA_CPP_ARCHS)   # llama_cpp False: a file it refuses
            print(n, a, "yes" if runs else "no", "yes" if a in SILU_ARCHS else "no")
        return 0
    if argv and argv[0] == "--tokens":
        n = int(argv[2]) if len(argv) > 2 else 32
        print(",".join(str(x) for x in token_sequence(argv[1], n)))
        return 0
    if len(argv) >= 2 and argv[0] == "--gguf-py":
        gguf_py = argv[1]
        if not gguf_py.rstrip("/").endswith("gguf-py"):
            gguf_py = gguf_py.rstrip("/") + "/gguf-py"
        argv = argv[2:]
    if len(argv) >= 2 and argv[0] == "--embd-std":
        for n in MODELS:
            MODELS[n] = dict(MODELS[n], embd_std=float(argv[1]))
        argv = argv[2:]
    if not argv or argv[0].startswith("-"):
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    outdir, names = argv[0], argv[1:] or list(MODELS)
    os.makedirs(outdir, exist_ok=True)
    for n in names:
        if n not in MODELS:
            print("gen_models.py: unknown model '%s' (known: %s)" % (n, " ".join(MODELS)), file=sys.stderr)
            return 2
        kv, tensors = build(n)
        path = "%s/%s.gguf" % (outdir, n)
        if gguf_py:
            write_gguf_py(path, kv, tensors, gguf_py)
        else:
            write_gguf(path, kv, tensors)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
