#!/usr/bin/env bash
# train_default_model.sh - reproduces models/kjv-3m.gguf, the model
# `smallmind run` uses when no -m is given: a 3-million-parameter LLaMA-style
# model with a 2048-token byte-level BPE vocabulary, trained on the King
# James Bible (Debian's bible-kjv-text, public domain; read with bible-kjv's
# `bible` program), then quantized to Q8_0.
#   bash scripts/train_default_model.sh          (about 20 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v bible > /dev/null; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y bible-kjv bible-kjv-text
fi
make -s
WORK=${WORK:-$(mktemp -d)}
bible -l100000 "gen1:1-rev22:21" > "$WORK/kjv.txt"
./build/smallmind train --data "$WORK/kjv.txt" --val-split 0.02 --tokenizer bpe:2048 --out "$WORK/kjv-3m-f32.gguf" \
    --arch llama --dim 192 --layers 6 --heads 6 --ffn 512 --ctx 256 \
    --batch 16 --seq 128 --steps 1400 --lr 2e-3 --min-lr 1e-4 --warmup 50 --weight-decay 0.1 --grad-clip 1.0 \
    --seed 1337 --eval-every 200 --checkpoint-every 200 --log "$WORK/kjv-3m.csv"
./build/smallmind quantize "$WORK/kjv-3m-f32.gguf" models/kjv-3m.gguf Q8_0
cp "$WORK/kjv-3m.csv" models/kjv-3m.train.csv
cp "$WORK/kjv-3m-f32.loss.svg" models/kjv-3m.loss.svg
echo "final validation loss: $(tail -1 "$WORK/kjv-3m.csv" | cut -d, -f3)"
