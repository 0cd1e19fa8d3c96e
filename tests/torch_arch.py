#!/usr/bin/python3
"""Independent float64 PyTorch reference for every architecture of issue 12:
llama (grouped-query attention, tied embeddings, linear RoPE scaling, Llama 3
rope_freqs, a sliding window when the file declares llama.attention.sliding_window),
qwen2, qwen3, phi3, gemma, gemma2, gemma3, olmo2, starcoder2, gpt2, stablelm (LayerNorm, q/k/v
biases, RoPE on the first rope.dimension_count values of each head, SwiGLU), phi2 (one LayerNorm
feeding attention and a GELU FFN in parallel: x + attn(h) + ffn(h); an output bias), gptneox
(parallel with a LayerNorm each, x + attn(ln1(x)) + ffn(ln2(x)), or in sequence when
use_parallel_residual is false), mixtures of experts (a llama file with experts as Mixtral's,
granitemoe, olmoe, qwen2moe: llama.cpp's llm_build_moe_ffn) and granite (embeddings
times embedding_scale, each block's output times residual_scale, scores times attention.scale,
logits divided by logit_scale, as llama.cpp's build_llama applies them), on the
weights of the file dequantized to float64 (tests/gguf_numpy.py), so the same
code gives "float64 logits from the same file's dequantized weights" for any
weight type.

    torch_arch.py MODEL TOKENS_CSV LOGITS [LOGITS...]   compare float32 logits files
        (n_tokens x n_vocab, as written by tests/tools/dump_logits.c) with the reference:
        prints the worst max|d|/max|ref| and exits 1 above 1e-4 (tests/torch_ref.py's contract)
    torch_arch.py --out OUT.f64 [--n-ctx N] [--no-swa] MODEL TOKENS_CSV
        writes the reference logits as raw float64

What each architecture computes was taken from llama.cpp c392e509 (src/llama.cpp's
build_llama/build_qwen2/build_phi3/build_gemma/build_gemma2/build_olmo2/build_starcoder2/
build_gpt2/build_phi2/build_gptneox, llm_build_norm/ffn/kqv, src/llama-model.cpp's hyper-parameters,
src/llama-context.cpp's masks, ggml's rope), except:
  - qwen3moe (not in that snapshot): qwen3's attention below and Hugging Face's
    Qwen3MoeSparseMoeBlock -- softmax of the router's logits, the top experts' weights divided
    by their sum (norm_topk_prob), SiLU-gated experts;
  - qwen3 (not in that snapshot): Hugging Face transformers' modeling_qwen3.py -- q_norm and
    k_norm are RMSNorms over each head's head_dim values, applied before RoPE (rotate_half, i.e.
    NEOX pairs), attention scale head_dim^-0.5, no biases, SiLU-gated MLP;
  - gemma3 (not in that snapshot): modeling_gemma3.py -- Gemma3RMSNorm multiplies by (1 + w),
    and GGUF stores 1 + w (the converter adds 1), so the stored weight is the multiplier; layer i
    is local (sliding window, RoPE base rope_local_base_freq = 10000, no scaling) unless
    (i + 1) % 6 == 0 (global: rope.freq_base and the linear rope.scaling); per-head q/k norms
    before RoPE; pre- and post-norms around attention and FFN; GELU(tanh)-gated FFN; embeddings
    x sqrt(dim). HF scales queries by query_pre_attn_scalar^-0.5, which GGUF does not store;
    llama.cpp's later gemma3 support uses 1/sqrt(key_length), or 1/sqrt(dim/heads) for the
    62-layer 27B, which equals query_pre_attn_scalar for every released Gemma 3: that rule is used.
  - the llama sliding window: llama.cpp c392e509 ignores llama.attention.sliding_window; here it
    means what it means for Mistral (and what phi3/gemma2 use in llama.cpp): a query at position p
    attends to keys at positions p - window < k <= p. --no-swa turns it off (llama.cpp's behaviour).
Facts of that snapshot this follows: RoPE "norm" (pairs 2i, 2i+1) for llama, "neox" (pairs i,
i + n_rot/2) for the others; gemma2 queries scaled by 1/sqrt(key_length) unless 46 layers
(1/sqrt(dim/heads)), attention soft-capping tanh(s/c)*c after that scaling, even layers local;
phi3 uses rope_factors_long when the context exceeds rope.scaling.original_context_length
(else the short ones) and multiplies cos and sin by rope.scaling.attn_factor; olmo2's q/k norms
span the whole q and k vectors; GELU is the tanh approximation everywhere (mpt too, as llama.cpp's
build_mpt: Hugging Face's MPT uses the exact one). bloom and mpt (ALiBi): Hugging Face's slopes
(alibi_slopes below, written from BLOOM's build_alibi_tensor and MPT's gen_slopes) times the key's
position added to the scores; bloom LayerNorms the embeddings (word_embeddings_layernorm). refact:
llama's blocks with ALiBi (Refact's own code computes BLOOM's slopes), no RoPE. command-r, cohere2
(build_command_r, build_cohere2; Hugging Face's Cohere and Cohere2): one LayerNorm without bias
feeding attention and the SwiGLU FFN in parallel, RoPE in adjacent pairs, logits times logit_scale;
cohere2's layers slide over the window with RoPE except every fourth, global and without RoPE. jais
(build_jais; Hugging Face's Jais): GPT-2's blocks with ALiBi (BLOOM's slopes), a SwiGLU FFN with
biases, scores times 1 / head size (muP). xverse (build_xverse): llama's blocks. orion (build_orion):
llama's blocks with LayerNorm and biases. codeshell (build_codeshell): GPT-2's blocks with NeoX RoPE.
chatglm (build_chatglm; ChatGLM's apply_rotary_pos_emb): RoPE in adjacent pairs on the first
rope.dimension_count values of each head, phi3's fused SwiGLU. falcon (build_falcon): phi2's
parallel block (one LayerNorm) with multi-query attention, NeoX RoPE, no biases on the products.
stablelm 12B (build_stablelm; Hugging Face's StableLmLayerNormPerHead): q and k LayerNorm'd per head
with each head's own weights, no bias; without ffn_norm, attention and FFN in parallel from one norm.
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_numpy import dequantize, read_gguf  # noqa: E402


def load(path):
    meta, tensors = read_gguf(path)
    W = {n: torch.from_numpy(dequantize(t)) for n, t in tensors.items()}
    return meta, W


def rms_norm(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def gelu(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def rope(x, n_head, hd, n_rot, base, neox, freq_scale=1.0, factors=None, mscale=1.0, yarn=None):
    """x: (T, n_head*hd) -> rotated; positions 0..T-1. yarn: (low, high), Hugging Face's
    _compute_yarn_parameters: pair i keeps the unscaled frequency with weight 1 - clamp((i - low) /
    (high - low), 0, 1) and takes the scaled one (times freq_scale) with the rest."""
    T = x.shape[0]
    x = x.reshape(T, n_head, hd).clone()
    i = torch.arange(n_rot // 2, dtype=torch.float64)
    theta = base ** (-2.0 * i / n_rot) * freq_scale
    if yarn is not None:
        low, high = yarn
        keep = 1.0 - torch.clamp((i - low) / max(high - low, 0.001), 0.0, 1.0)
        theta = base ** (-2.0 * i / n_rot) * (freq_scale * (1.0 - keep) + keep)
    if factors is not None:   # one per rotated pair (a longer tensor's tail is not read, as in ggml)
        theta = theta / factors[:n_rot // 2]
    ang = torch.arange(T, dtype=torch.float64)[:, None] * theta[None, :]
    c, s = (torch.cos(ang) * mscale)[:, None, :], (torch.sin(ang) * mscale)[:, None, :]
    if neox:
        ia, ib = torch.arange(n_rot // 2), torch.arange(n_rot // 2) + n_rot // 2
    else:
        ia, ib = torch.arange(0, n_rot, 2), torch.arange(1, n_rot, 2)
    a, b = x[:, :, ia].clone(), x[:, :, ib].clone()
    x[:, :, ia] = a * c - b * s
    x[:, :, ib] = a * s + b * c
    return x.reshape(T, n_head * hd)


def alibi_slopes(arch, n_head, max_bias):
    """ALiBi's slope of each head as Hugging Face computes it. BLOOM (build_alibi_tensor): for the closest power
    of two c <= n_head, 2^(-8/c)^(1..c), then 2^(-4/c)^(1, 3, 5, ...) for the rest. MPT (gen_slopes): for
    the power of two C >= n_head, 2^-(k max_bias / C), k = 1..C, the odd-numbered ones first when C > n_head."""
    if arch == "bloom":
        c = 2 ** math.floor(math.log2(n_head))
        slopes = [(2.0 ** (-8.0 / c)) ** k for k in range(1, c + 1)]
        slopes += [(2.0 ** (-4.0 / c)) ** k for k in range(1, 2 * (n_head - c), 2)]
        return torch.tensor(slopes, dtype=torch.float64)
    C = 2 ** math.ceil(math.log2(n_head))
    m = torch.tensor([2.0 ** -(k * max_bias / C) for k in range(1, C + 1)], dtype=torch.float64)
    if C != n_head:
        m = torch.cat([m[1::2], m[::2]])[:n_head]
    return m


def attention(q, k, v, n_head, n_kv, hd, scale, window=0, softcap=0.0, slopes=None):
    """Causal attention; window > 0 masks keys with p_q - p_k >= window; slopes: ALiBi's, each head's scores
    plus slope x key position (Hugging Face's form: the same softmax as minus the distance)."""
    T = q.shape[0]
    q = q.reshape(T, n_head, hd).transpose(0, 1)
    k = k.reshape(T, n_kv, hd).transpose(0, 1).repeat_interleave(n_head // n_kv, dim=0)
    v = v.reshape(T, n_kv, hd).transpose(0, 1).repeat_interleave(n_head // n_kv, dim=0)
    s = (q @ k.transpose(1, 2)) * scale
    if softcap:
        s = torch.tanh(s / softcap) * softcap
    pq = torch.arange(T)[:, None]
    pk = torch.arange(T)[None, :]
    if slopes is not None:
        s = s + slopes[:, None, None] * pk.to(torch.float64)[None, :, :]
    masked = pk > pq
    if window:
        masked = masked | (pq - pk >= window)
    s = s.masked_fill(masked, float("-inf"))
    return (torch.softmax(s, dim=-1) @ v).transpose(0, 1).reshape(T, n_head * hd)


class Hparams:
    def __init__(self, meta):
        self.m = meta
        self.arch = meta["general.architecture"]

    def get(self, key, default=None):
        return self.m.get(self.arch + "." + key, default)


def model_logits(meta, W, toks, n_ctx=None, use_swa=True, margins=None):
    """Float64 logits (len(toks) x n_vocab) of the model in meta/W for the token ids toks.
    n_ctx is the context size the engine runs with (phi3's long/short RoPE factors depend
    on it, as in llama.cpp); it defaults to len(toks)."""
    hp = Hparams(meta)
    # a vision-language model's language half on text: M-RoPE's sections all turn by the token's one position,
    # so its rotation is the plain NeoX one of the architecture it extends
    arch = {"qwen2vl": "qwen2", "qwen3vl": "qwen3", "qwen3vlmoe": "qwen3moe"}.get(hp.arch, hp.arch)
    T = len(toks)
    n_ctx = n_ctx or T
    dim = hp.get("embedding_length")
    L = hp.get("block_count")
    H = hp.get("attention.head_count")
    KV = hp.get("attention.head_count_kv", H)
    hd = hp.get("attention.key_length", dim // H)
    n_rot = hp.get("rope.dimension_count", hd)
    base = hp.get("rope.freq_base", 10000.0)
    rms_eps = hp.get("attention.layer_norm_rms_epsilon", 1e-5)
    ln_eps = hp.get("attention.layer_norm_epsilon", 1e-5)
    freq_scale = 1.0
    scaling = hp.get("rope.scaling.type", "linear")
    if scaling not in ("linear", "none", "yarn"):
        raise ValueError("rope scaling type '%s' is not implemented by this reference" % scaling)
    if scaling in ("linear", "yarn") and hp.get("rope.scaling.factor"):
        freq_scale = 1.0 / hp.get("rope.scaling.factor")
    mscale = hp.get("rope.scaling.attn_factor", 1.0)
    yarn = None
    if scaling == "yarn":
        # YaRN (Peng et al. 2023) as Hugging Face computes it: beta_fast 32, beta_slow 1; the correction
        # dimension of r rotations is n_rot ln(orig / (2 pi r)) / (2 ln base); attention factor 0.1 ln(s) + 1
        orig = hp.get("rope.scaling.original_context_length", hp.get("context_length"))
        corr = lambda r: n_rot * math.log(orig / (r * 2 * math.pi)) / (2 * math.log(base))
        yarn = (max(math.floor(corr(hp.get("rope.scaling.yarn_beta_fast", 32.0))), 0),
                min(math.ceil(corr(hp.get("rope.scaling.yarn_beta_slow", 1.0))), n_rot - 1))
        get_mscale = lambda m: 0.1 * m * math.log(1.0 / freq_scale) + 1.0
        # Hugging Face: get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim) when both are set
        # (Ministral 3: mscale 1, mscale_all_dim the file's yarn_log_multiplier), else get_mscale(factor)
        log_mul = hp.get("rope.scaling.yarn_log_multiplier", 0.0)
        mscale *= get_mscale(1.0) / get_mscale(log_mul) if log_mul else get_mscale(1.0)
    # Ministral 3 (Hugging Face's llama_4_scaling_beta): the queries at position p times
    # 1 + beta ln(1 + floor(p / original_max_position_embeddings)), after RoPE
    temp_beta = hp.get("attention.temperature_scale", 0.0) if arch == "mistral3" else 0.0
    neox = arch not in ("llama", "granite", "granitemoe", "smollm3", "internlm2", "minicpm", "ernie4_5", "mistral3", "olmo", "arcee",
                        "command-r", "cohere2", "xverse", "orion", "chatglm")
    toks = torch.tensor(toks)
    out_w = W.get("output.weight", W["token_embd.weight"])
    n_expert, n_used = hp.get("expert_count", 0), hp.get("expert_used_count", 0)

    def moe(h, i):
        """llama.cpp's llm_build_moe_ffn: softmax of the router's logits, each row's n_used most probable
        experts (renormalized for llama/granitemoe: build_llama passes norm_w), each a SiLU-gated FFN;
        qwen2moe adds a shared expert times sigmoid(w . h)."""
        probs = torch.softmax(h @ w("ffn_gate_inp.weight", i).T, dim=-1)
        if margins is not None and n_used < n_expert:
            # how near each row's choice is to a tie: the gap between the k-th and the next logit, relative
            # to the spread of the row's logits (scale-free: the rounding that could flip it scales alike)
            z = (h @ w("ffn_gate_inp.weight", i).T).sort(dim=-1, descending=True).values
            margins.append(((z[:, n_used - 1] - z[:, n_used]) / (z[:, 0] - z[:, -1])).numpy())
        top_w, top_i = probs.topk(n_used, dim=-1)
        if arch in ("llama", "granitemoe", "qwen3moe"):   # qwen3moe: Hugging Face's norm_topk_prob
            top_w = top_w / top_w.sum(-1, keepdim=True)
        gate, up, down = w("ffn_gate_exps.weight", i), w("ffn_up_exps.weight", i), w("ffn_down_exps.weight", i)
        out = torch.zeros_like(h)
        for t in range(h.shape[0]):
            for k in range(n_used):
                e = int(top_i[t, k])
                out[t] += top_w[t, k] * (down[e] @ (F.silu(gate[e] @ h[t]) * (up[e] @ h[t])))
        if arch == "qwen2moe":
            g = torch.sigmoid(h @ w("ffn_gate_inp_shexp.weight", i))[:, None]
            out = out + g * (F.silu(h @ w("ffn_gate_shexp.weight", i).T) * (h @ w("ffn_up_shexp.weight", i).T)) \
                @ w("ffn_down_shexp.weight", i).T
        return out

    def w(name, i=None):
        return W[name if i is None else "blk.%d.%s" % (i, name)]

    def lin(x, name, i):
        y = x @ w(name + ".weight", i).T
        key = "blk.%d.%s.bias" % (i, name)
        return y + W[key] if key in W else y

    x = W["token_embd.weight"][toks]
    if arch in ("gemma", "gemma2", "gemma3"):
        x = x * math.sqrt(dim)
    if arch in ("gpt2", "starcoder") or (arch == "mpt" and "position_embd.weight" in W):
        x = x + W["position_embd.weight"][:T]
    if arch == "bloom":   # word_embeddings_layernorm
        x = layer_norm(x, W["token_embd_norm.weight"], W["token_embd_norm.bias"], ln_eps)
    alibi = None
    if arch in ("bloom", "mpt", "refact", "jais"):   # refact, jais: their own code computes BLOOM's slopes
        alibi = alibi_slopes("mpt" if arch == "mpt" else "bloom", H, hp.get("attention.max_alibi_bias", 8.0))
    # granite's scalars (llama.cpp's build_llama applies them when the file has them)
    granite = arch in ("granite", "granitemoe", "minicpm")   # minicpm: the same three (no attention.scale)
    if granite:
        x = x * hp.get("embedding_scale", 1.0)
    residual = hp.get("residual_scale", 1.0) if granite else 1.0

    # per-layer attention parameters
    factors = W.get("rope_freqs.weight")
    if arch == "phi3" and "rope_factors_long.weight" in W:
        orig = hp.get("rope.scaling.original_context_length", hp.get("context_length"))
        factors = W["rope_factors_long.weight" if n_ctx > orig else "rope_factors_short.weight"]
    window = hp.get("attention.sliding_window", 0) if use_swa else 0

    layer_norm_archs = ("starcoder2", "gpt2", "stablelm", "phi2", "gptneox", "starcoder", "nemotron", "bloom", "mpt",
                        "command-r", "cohere2", "jais", "orion", "codeshell", "falcon")
    def wb(name, i=None):   # a LayerNorm's bias, 0 where the file has none (mpt)
        key = name if i is None else "blk.%d.%s" % (i, name)
        return W.get(key, 0.0)
    # stablelm 12B: no ffn_norm, attention and FFN in parallel from the one norm
    parallel = arch in ("phi2", "command-r", "cohere2", "falcon") or (arch == "stablelm" and "blk.0.ffn_norm.weight" not in W) or (arch == "gptneox" and hp.get("use_parallel_residual", True))
    for i in range(L):
        x_in = x
        # ---- attention input
        if arch in layer_norm_archs:
            h = layer_norm(x, w("attn_norm.weight", i), wb("attn_norm.bias", i), ln_eps)
        elif arch in ("olmo2", "exaone4"):
            h = x
        elif arch == "olmo":   # LayerNorm without weight or bias
            h = layer_norm(x, 1.0, 0.0, ln_eps)
        else:
            h = rms_norm(x, w("attn_norm.weight", i), rms_eps)
        if "blk.%d.attn_qkv.weight" % i in W:
            qkv = lin(h, "attn_qkv", i)
            q, k, v = qkv[:, :H * hd], qkv[:, H * hd:H * hd + KV * hd], qkv[:, H * hd + KV * hd:]
        else:
            q, k, v = lin(h, "attn_q", i), lin(h, "attn_k", i), lin(h, "attn_v", i)
        if hp.get("attention.clamp_kqv", 0.0) > 0:   # olmo's clip_qkv, before RoPE
            c = hp.get("attention.clamp_kqv")
            q, k, v = q.clamp(-c, c), k.clamp(-c, c), v.clamp(-c, c)
        if arch in ("olmo2", "olmoe"):             # whole-vector q/k RMSNorm
            q = rms_norm(q, w("attn_q_norm.weight", i), rms_eps)
            k = rms_norm(k, w("attn_k_norm.weight", i), rms_eps)
        def head_norms(q, k):
            return (rms_norm(q.reshape(T, H, hd), w("attn_q_norm.weight", i), rms_eps).reshape(T, H * hd),
                    rms_norm(k.reshape(T, KV, hd), w("attn_k_norm.weight", i), rms_eps).reshape(T, KV * hd))
        if arch in ("qwen3", "gemma3", "qwen3moe", "exaone4"):   # per-head q/k RMSNorm
            q, k = head_norms(q, k)
        if arch == "stablelm" and "blk.%d.attn_q_norm.weight" % i in W:   # Hugging Face's StableLmLayerNormPerHead
            q = layer_norm(q.reshape(T, H, hd), w("attn_q_norm.weight", i).reshape(H, hd), 0.0, ln_eps).reshape(T, H * hd)
            k = layer_norm(k.reshape(T, KV, hd), w("attn_k_norm.weight", i).reshape(KV, hd), 0.0, ln_eps).reshape(T, KV * hd)
        # ---- positions, scale, window of this layer
        layer_base, layer_scale, layer_window = base, freq_scale, window
        if arch == "gemma2":
            layer_window = window if i % 2 == 0 else 0
        cohere_global = arch == "cohere2" and (i + 1) % 4 == 0   # cohere2: every fourth layer global, no RoPE
        if arch == "cohere2":
            layer_window = 0 if cohere_global else window
        if arch == "gemma3":
            local = (i + 1) % 6 != 0
            layer_window = window if local else 0
            if local:
                layer_base, layer_scale = 10000.0, 1.0
        # smollm3: Hugging Face's no_rope_layers, every fourth layer (i + 1) % 4 == 0 without RoPE
        if arch not in ("gpt2", "starcoder", "bloom", "mpt", "refact", "jais") and not (arch == "smollm3" and (i + 1) % 4 == 0) \
                and not cohere_global:
            q = rope(q, H, hd, n_rot, layer_base, neox, layer_scale, factors, mscale, yarn)
            k = rope(k, KV, hd, n_rot, layer_base, neox, layer_scale, factors, mscale, yarn)
        if arch == "hunyuan-dense":   # Hugging Face's HunYuanDenseV1: query_layernorm / key_layernorm after RoPE
            q, k = head_norms(q, k)
        if temp_beta:
            orig = hp.get("rope.scaling.original_context_length", hp.get("context_length"))
            pos = torch.arange(T, dtype=torch.float64)
            q = q * (1.0 + temp_beta * torch.log(1.0 + torch.floor(pos / orig)))[:, None]
        scale = 1.0 / math.sqrt(hd)
        if (arch == "gemma2" and L == 46) or (arch == "gemma3" and L == 62):
            scale = 1.0 / math.sqrt(dim / H)
        if granite and hp.get("attention.scale", 0.0):
            scale = hp.get("attention.scale")
        if arch == "jais":   # muP's scale_qk_dot_by_d
            scale = 1.0 / hd
        softcap = hp.get("attn_logit_softcapping", 50.0) if arch == "gemma2" else 0.0
        a = attention(q, k, v, H, KV, hd, scale, layer_window, softcap, alibi)
        a = lin(a, "attn_output", i)
        if arch in ("gemma2", "gemma3", "olmo2", "exaone4"):
            a = rms_norm(a, w("post_attention_norm.weight", i), rms_eps)
        if not parallel:
            x = x + residual * a
        # ---- feed-forward (phi2's reads the attention's normed input h)
        if arch in ("starcoder2", "gpt2", "phi2", "gptneox", "starcoder", "nemotron", "bloom", "mpt", "codeshell", "falcon"):
            if arch not in ("phi2", "falcon"):   # these read the attention's normed input
                h = layer_norm(x, w("ffn_norm.weight", i), wb("ffn_norm.bias", i), ln_eps)
            f = lin(gelu(lin(h, "ffn_up", i)), "ffn_down", i) if arch != "nemotron" else \
                lin(F.relu(lin(h, "ffn_up", i)) ** 2, "ffn_down", i)   # nemotron: squared ReLU, no gate
        elif arch == "arcee":   # RMSNorm, squared ReLU, no gate
            f = lin(F.relu(lin(rms_norm(x, w("ffn_norm.weight", i), rms_eps), "ffn_up", i)) ** 2, "ffn_down", i)
        else:
            if arch in ("command-r", "cohere2") or (arch == "stablelm" and parallel):
                pass   # the attention's normed input (parallel)
            elif arch in ("stablelm", "jais", "orion"):
                h = layer_norm(x, w("ffn_norm.weight", i), w("ffn_norm.bias", i), ln_eps)
            else:
                h = x if arch in ("olmo2", "exaone4") else layer_norm(x, 1.0, 0.0, ln_eps) if arch == "olmo" \
                    else rms_norm(x, w("ffn_norm.weight", i), rms_eps)
            if "blk.%d.ffn_gate_inp.weight" % i in W:   # a mixture of experts
                f = moe(h, i)
                x = x + residual * f
                continue
            if arch in ("phi3", "chatglm"):        # fused gate (first half) and up (second half)
                gu = lin(h, "ffn_up", i)
                n_ff = gu.shape[1] // 2
                g = F.silu(gu[:, :n_ff]) * gu[:, n_ff:]
            else:
                act = gelu if arch in ("gemma", "gemma2", "gemma3") else F.silu
                g = act(lin(h, "ffn_gate", i)) * lin(h, "ffn_up", i)
            f = lin(g, "ffn_down", i)
            if arch in ("gemma2", "gemma3", "olmo2", "exaone4"):
                f = rms_norm(f, w("post_ffw_norm.weight", i), rms_eps)
        x = x_in + a + f if parallel else x + residual * f
    if arch == "olmo":
        x = layer_norm(x, 1.0, 0.0, ln_eps)
    elif arch in layer_norm_archs:
        x = layer_norm(x, W["output_norm.weight"], wb("output_norm.bias"), ln_eps)
    else:
        x = rms_norm(x, W["output_norm.weight"], rms_eps)
    logits = x @ out_w.T
    if "output.bias" in W:
        logits = logits + W["output.bias"]
    cap = hp.get("final_logit_softcapping", 30.0 if arch == "gemma2" else 0.0)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    if granite:
        logits = logits / hp.get("logit_scale", 1.0)
    if arch in ("command-r", "cohere2"):   # Cohere's logit_scale multiplies
        logits = logits * hp.get("logit_scale", 1.0)
    return logits


def reference(path, toks, n_ctx=None, use_swa=True, margins=None):
    """The float64 logits; with a list as margins, a mixture of experts' routing margins of each layer
    (an array of one per position) are appended to it."""
    meta, W = load(path)
    with torch.no_grad():
        return model_logits(meta, W, toks, n_ctx, use_swa, margins).numpy()


def main(argv):
    out, n_ctx, use_swa = None, None, True
    while argv and argv[0].startswith("--"):
        if argv[0] == "--out":
            out, argv = argv[1], argv[2:]
        elif argv[0] == "--n-ctx":
            n_ctx, argv = int(argv[1]), argv[2:]
        elif argv[0] == "--no-swa":
            use_swa, argv = False, argv[1:]
        else:
            print("torch_arch.py: unknown option %s" % argv[0], file=sys.stderr)
            return 2
    if len(argv) < 2 or (out is None and len(argv) < 3):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    path, toks = argv[0], [int(t) for t in argv[1].split(",")]
    ref = reference(path, toks, n_ctx, use_swa)
    if out:
        ref.astype("<f8").tofile(out)
        return 0
    worst = 0.0
    for f in argv[2:]:
        got = np.fromfile(f, dtype=np.float32).reshape(ref.shape)
        err = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
        worst = max(worst, err)
        if err > 1e-4:
            print("%s %s: max|d|/max|ref| = %.2e" % (os.path.basename(path), os.path.basename(f), err))
    print("%s: worst max|d|/max|ref| = %.2e over %d files, %d positions x %d"
          % (os.path.basename(path), worst, len(argv) - 2, *ref.shape))
    return 0 if worst <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
