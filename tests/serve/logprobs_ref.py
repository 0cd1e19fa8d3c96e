#!/usr/bin/python3
"""logprobs_ref.py MODEL.gguf IDS STEPS K - the independent reference for
the server's log probabilities (tests/serve/logprobs.mjs): the greedy
continuation of the comma-separated token ids IDS for STEPS tokens, run in
PyTorch float64 by tests/torch_ref.py's model (F32 or F16 GGUF files), and
at each step the K likeliest tokens' ids and log-softmax values of the
logits, as JSON: [{"ids": [...], "logprobs": [...]}, ...]."""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import torch_ref  # noqa: E402


def main():
    path, ids, steps, k = sys.argv[1], [int(t) for t in sys.argv[2].split(",")], int(sys.argv[3]), int(sys.argv[4])
    meta, W = torch_ref.read_gguf(path)
    forward = torch_ref.llama_logits if meta["general.architecture"] == "llama" else torch_ref.gpt2_logits
    out = []
    for _ in range(steps):
        lp = torch.log_softmax(forward(meta, W, torch.tensor(ids))[-1], -1)
        v, i = torch.topk(lp, k)
        out.append({"ids": i.tolist(), "logprobs": v.tolist()})
        ids.append(int(i[0]))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
