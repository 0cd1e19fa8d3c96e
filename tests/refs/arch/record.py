#!/usr/bin/python3
"""record.py - second half of make_refs.sh: turns llama.cpp's raw outputs into the
compact reference entries of refs.json.

    record.py REFS_DIR LIST

LIST has one line per model file llama.cpp ran on, tab-separated:
    KEY  MODEL_FILE  TOKENS_CSV  LLAMA_LOGITS(float32)  LLAMA_GREEDY  N_CTX
KEY is MODEL/QUANTIZER/TYPE (QUANTIZER: f32, llama-quantize or smallmind). For each
line it computes, with tests/torch_arch.py, the float64 logits of the same file's
dequantized weights and stores in REFS_DIR/refs.json (entries of other keys are kept):
sha256 and size of the file, its tensor types, the tokens, llama.cpp's rms error and
max|d|/max|ref| against that reference, llama.cpp's argmax per position, its greedy
continuation and the reference's own argmax. F32 files also keep llama.cpp's logits as
float32 in REFS_DIR/logits/MODEL.F32.f32 (the F32 checks need every value).
"""
import hashlib
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import gen_models  # noqa: E402
import torch_arch  # noqa: E402
from gguf_numpy import TYPE_NAMES, read_gguf  # noqa: E402


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tensor_types(path):
    _, tensors = read_gguf(path)
    count = {}
    for t in tensors.values():
        n = TYPE_NAMES[t.type]
        count[n] = count.get(n, 0) + 1
    return dict(sorted(count.items()))


def main(refs_dir, listing):
    path = os.path.join(refs_dir, "refs.json")
    refs = json.load(open(path)) if os.path.exists(path) else {"entries": {}}
    os.makedirs(os.path.join(refs_dir, "logits"), exist_ok=True)
    for line in open(listing):
        if not line.strip():
            continue
        key, model_file, toks_csv, lc_logits, lc_greedy, n_ctx = line.rstrip("\n").split("\t")
        model, quantizer, qtype = key.split("/")
        toks = [int(t) for t in toks_csv.split(",")]
        ref = torch_arch.reference(model_file, toks, int(n_ctx))
        # llama.cpp c392e509 ignores llama.attention.sliding_window: its error is measured against
        # the reference without the window (what it computes), and the entry says so
        ignores_swa = model == "llama_swa"
        lref = torch_arch.reference(model_file, toks, int(n_ctx), use_swa=False) if ignores_swa else ref
        e = {
            "model": model, "arch": gen_models.MODELS[model]["arch"], "quantizer": quantizer, "type": qtype,
            "sha256": sha256(model_file), "bytes": os.path.getsize(model_file),
            "tensor_types": tensor_types(model_file), "tokens": toks, "n_vocab": ref.shape[1], "n_ctx": int(n_ctx),
            "ref_rms": float(np.sqrt(np.mean(ref * ref))),
            "ref_argmax": [int(i) for i in ref.argmax(1)],
        }
        if lc_logits == "-":      # an architecture llama.cpp c392e509 cannot run: the file's identity only
            refs["entries"][key] = e
            print("%-40s (no llama.cpp) sha256 %s" % (key, e["sha256"][:16]))
            continue
        lc = np.fromfile(lc_logits, dtype="<f4").reshape(ref.shape)
        d = lc.astype(np.float64) - lref
        e.update({
            "llama_rms": float(np.sqrt(np.mean(d * d))),
            "llama_maxrel": float(np.max(np.abs(d)) / np.max(np.abs(lref))),
            "llama_argmax": [int(i) for i in lc.argmax(1)],
            "llama_greedy": [int(i) for i in open(lc_greedy).read().strip().split(",")],
            "llama_cpp": os.environ.get("LLAMA_CPP_COMMIT", "unknown"),
        })
        if ignores_swa:
            e["llama_ignores_sliding_window"] = True
        if qtype == "F32":
            out = os.path.join(refs_dir, "logits", "%s.F32.f32" % model)
            lc.astype("<f4").tofile(out)
            e["llama_logits"] = os.path.relpath(out, refs_dir)
        refs["entries"][key] = e
        agree = np.mean(lc.argmax(1) == lref.argmax(1))
        print("%-40s llama.cpp vs float64: rms %.2e  max|d|/max|ref| %.2e  argmax %.3f"
              % (key, e["llama_rms"], e["llama_maxrel"], agree))
    # one entry a line, so that a re-run shows as a readable diff
    items = sorted(refs["entries"].items())
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write('{"format": 1, "entries": {\n')
        for i, (k, e) in enumerate(items):
            f.write(" %s: %s%s\n" % (json.dumps(k), json.dumps(e, separators=(",", ":")), "," if i + 1 < len(items) else ""))
        f.write("}}\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1], sys.argv[2])
