#!/usr/bin/python3
"""fim_model.py OUT.gguf - writes tests/refs/arch's qwen2 model (gen_models.py) with
Qwen2.5-Coder's fill-in-the-middle tokens among its special tokens (<|fim_prefix|>,
<|fim_middle|>, <|fim_suffix|>, <|fim_pad|>, <|repo_name|>, <|file_sep|>; no ids in the
metadata: llama.cpp finds them by their text), deterministically, for /infill's tests
(tests/serve/native.mjs) and their references (tests/refs/make_server_native_refs.mjs)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "arch"))
import gen_models as g  # noqa: E402

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
            "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"]


def vocab(kind, n_vocab):
    tokens, types, kv = g.bpe_vocab(n_vocab, SPECIALS, "qwen2")
    kv += [("tokenizer.ggml.eos_token_id", "u32", tokens.index("<|im_end|>")),
           ("tokenizer.ggml.bos_token_id", "u32", tokens.index("<|endoftext|>")),
           ("tokenizer.ggml.add_bos_token", "bool", False)]
    return tokens, types, kv, tokens.index("<|endoftext|>")


g.make_vocab = vocab
kv, tensors = g.build("qwen2")
g.write_gguf(sys.argv[1], kv, tensors)
