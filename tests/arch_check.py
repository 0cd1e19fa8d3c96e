#!/usr/bin/python3
"""arch_check.py - the checks of tests/arch_test.sh for one model's files.

    arch_check.py LIST

LIST lines (tab-separated): KIND KEY MODEL_FILE TOKENS_CSV PROMPT_LOGITS DECODE_LOGITS [GREEDY_IDS]
  KIND f32:   SmallMind's logits (whole prompt, and token by token) of the F32 file against the
              float64 reference (tests/torch_arch.py), max|d|/max|ref| <= 1e-4; for the SiLU
              architectures also against llama.cpp's recorded logits (<= 1e-4), and the greedy
              32-token continuation must equal llama.cpp's.
  KIND quant: a quantized file. The float64 reference is computed from the file's own dequantized
              weights; SmallMind's rms error against it must be <= 1.1 x llama.cpp's rms error
              against the same reference (recorded in tests/refs/arch/refs.json for the file with
              the same sha256), and SmallMind's argmax must agree with llama.cpp's at >= 95% of
              the positions.
KEY is MODEL/QUANTIZER/TYPE as in refs.json. Two cases where llama.cpp c392e509 cannot serve:
  - llama_swa: llama.cpp ignores llama.attention.sliding_window, so SmallMind is checked against
    the windowed float64 reference only (F32), and its argmax against that reference (quantized);
    the rms bound still uses llama.cpp's own error (against its own, windowless, reference);
  - qwen3, gemma3 (no llama.cpp support): F32 against the float64 reference only; quantized files
    by relative rms (rms / rms(ref)) <= 1.1 x llama.cpp's relative rms for the same type on the
    closest architecture it runs (qwen2 for qwen3, gemma2 for gemma3; llama-quantize files), and
    argmax against the float64 reference; qwen3moe likewise (against qwen2moe), leaving out the
    positions whose expert choice is within 3% of a tie in float64 (at most a fifth of them).
Prints one "ok ..." or "FAIL ..." line per file.
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import torch_arch  # noqa: E402

REFS = os.path.join(HERE, "refs", "arch")
SILU = {"llama", "qwen2", "qwen3", "phi3", "olmo2", "exaone", "internlm2", "minicpm", "ernie4_5", "mistral3", "exaone4",
        "hunyuan-dense", "qwen2vl", "qwen3vl", "qwen3vlmoe", "olmo", "nemotron", "arcee", "refact", "command-r",
        "cohere2", "jais", "xverse", "orion", "chatglm"}
PROXY = {"qwen3": "qwen2", "gemma3": "gemma2", "qwen3moe": "qwen2moe", "smollm3": "smollm3_llama",
         "phi3_tied": "phi3_tied_out", "ernie4_5": "ernie4_5_llama",
         "mistral3": "mistral3_llama", "exaone4": "exaone4_olmo2",
         "hunyuan-dense": "hunyuan_olmo2", "qwen2vl": "qwen2vl_qwen2", "qwen3vl": "qwen2", "qwen3vlmoe": "qwen2moe",
         "arcee": "nemotron"}


def maxrel(a, ref):
    return float(np.max(np.abs(a - ref)) / np.max(np.abs(ref)))


def rms(a, ref):
    return float(np.sqrt(np.mean((a - ref) ** 2)))


def main(listing):
    entries = json.load(open(os.path.join(REFS, "refs.json")))["entries"]
    for line in open(listing):
        if not line.strip():
            continue
        f = line.rstrip("\n").split("\t")
        kind, key, model_file, toks_csv, p_file, d_file = f[:6]
        greedy_file = f[6] if len(f) > 6 else None
        model, quantizer, qtype = key.split("/")
        name = "arch_%s_%s%s" % (model, "" if quantizer in ("f32", "smallmind") else "lq_", qtype)
        e = entries.get(key)
        toks = [int(t) for t in toks_csv.split(",")]
        if e is not None and e["tokens"] != toks:
            print("FAIL %s: the token sequence differs from the one in refs.json" % name)
            continue
        margins = []
        ref = torch_arch.reference(model_file, toks, len(toks), margins=margins)
        outs = {m: np.fromfile(p, dtype="<f4").reshape(ref.shape).astype(np.float64)
                for m, p in (("prompt", p_file), ("decode", d_file))}
        problems, notes = [], []
        arch = e["arch"] if e else None
        has_llama = e is not None and "llama_rms" in e
        ignores_swa = e is not None and e.get("llama_ignores_sliding_window", False)
        if kind == "f32":
            for m, o in outs.items():
                err = maxrel(o, ref)
                notes.append("%s %.1e" % (m, err))
                if err > 1e-4:
                    problems.append("%s: max|d|/max|ref| = %.2e against float64 (limit 1e-4)" % (m, err))
            if has_llama and arch in SILU and not ignores_swa:
                lc = np.fromfile(os.path.join(REFS, e["llama_logits"]), dtype="<f4").reshape(ref.shape)
                for m, o in outs.items():
                    err = maxrel(o, lc.astype(np.float64))
                    notes.append("vs llama.cpp %.1e" % err)
                    if err > 1e-4:
                        problems.append("%s: max|d|/max|llama.cpp| = %.2e (limit 1e-4)" % (m, err))
                if greedy_file:
                    got = [int(t) for t in open(greedy_file).read().strip().split(",")]
                    same = got == e["llama_greedy"]
                    notes.append("greedy %s" % ("= llama.cpp" if same else "differs"))
                    if not same:
                        problems.append("greedy continuation %s differs from llama.cpp's %s"
                                        % (",".join(map(str, got)), ",".join(map(str, e["llama_greedy"]))))
        else:
            if has_llama:
                bound, what = 1.1 * e["llama_rms"], "llama.cpp %.2e" % e["llama_rms"]
                want = np.array(e["ref_argmax"] if ignores_swa else e["llama_argmax"])
                against = "float64" if ignores_swa else "llama.cpp"
                scale = 1.0
            else:
                proxy_key = "%s/llama-quantize/%s" % (PROXY.get(model, ""), qtype)
                pe = entries.get(proxy_key) or entries.get(proxy_key.replace("/llama-quantize/", "/llama-quantize/mix-"))
                if pe is None or "llama_rms" not in pe:
                    print("FAIL %s: no llama.cpp error to compare with (%s is not in refs.json)" % (name, proxy_key))
                    continue
                scale = float(np.sqrt(np.mean(ref ** 2)))
                bound = 1.1 * pe["llama_rms"] / pe["ref_rms"]
                what = "llama.cpp on %s %.2e relative" % (PROXY[model], pe["llama_rms"] / pe["ref_rms"])
                want, against = ref.argmax(1), "float64"
            keep = np.ones(len(toks), dtype=bool)
            if margins and not has_llama:
                # a mixture of experts without llama.cpp's own error on the file: a position whose routing is
                # within 3% of a tie (relative logit gap in float64) is decided by any engine's rounding, so it
                # is left out (one layer in the test model: a flip there changes no other position)
                keep = np.min(margins, axis=0) >= 0.03
                notes.append("%d of %d positions near a routing tie left out" % (len(toks) - keep.sum(), len(toks)))
                if keep.sum() < 0.8 * len(toks):
                    problems.append("%d of %d positions are near a routing tie: the model checks too little"
                                    % (len(toks) - keep.sum(), len(toks)))
            for m, o in outs.items():
                r = rms(o[keep], ref[keep]) / scale
                agree = float(np.mean(o.argmax(1)[keep] == want[keep]))
                notes.append("%s rms %.2e argmax %d/%d" % (m, r, int(round(agree * keep.sum())), keep.sum()))
                if r > bound:
                    problems.append("%s: rms error %.2e > 1.1 x %s" % (m, r, what))
                if agree < 0.95:
                    problems.append("%s: argmax agrees with %s at %.0f%% of positions (need 95%%)"
                                    % (m, against, 100 * agree))
            notes.append("(%s)" % what)
        if problems:
            print("FAIL %s: %s" % (name, "; ".join(problems)))
        else:
            print("ok   %s: %s" % (name, ", ".join(notes)))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1])
