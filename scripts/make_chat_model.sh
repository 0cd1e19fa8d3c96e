#!/usr/bin/env bash
# make_chat_model.sh - reproduces models/kjv-chat-3m.gguf, the model
# `smallmind chat` uses when no -m is given: the built-in models/kjv-3m.gguf
# taught to answer in the chatml format with a LoRA adapter trained on
# synthetic conversations made from the King James Bible
# (scripts/kjv_chat_data.py; Debian's bible-kjv, public domain), then baked
# into the Q8_0 weights with merge-lora. The chat markers (<|im_start|>,
# <|im_end|>) are not tokens of the model's 2048-token BPE vocabulary: they
# are spelled with ordinary tokens, which keeps the vocabulary, and so the
# base and every adapter trained for it, unchanged (see docs/FINETUNING.md).
#   bash scripts/make_chat_model.sh      (about an hour on 2 busy cores)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v bible > /dev/null; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y bible-kjv bible-kjv-text
fi
make -s
WORK=${WORK:-$(mktemp -d)}
STEPS=${STEPS:-300}
bible -l100000 "gen1:1-rev22:21" | /usr/bin/python3 scripts/kjv_chat_data.py "$WORK" 1
resume=()
[ -e "$WORK/kjv-chat.lora.gguf.ckpt" ] && resume=(--resume "$WORK/kjv-chat.lora.gguf.ckpt")
./build/smallmind train --init models/kjv-3m.gguf --lora-rank 32 --lora-alpha 64 --data "$WORK/train.jsonl" \
    --val "$WORK/val.jsonl" --chat-template chatml --out "$WORK/kjv-chat.lora.gguf" "${resume[@]}" \
    --batch 16 --seq 256 --steps "$STEPS" --lr 3e-3 --min-lr 1e-4 --warmup 20 --weight-decay 0 --grad-clip 1.0 \
    --seed 7 --eval-every 50 --checkpoint-every 25 --log "$WORK/kjv-chat.csv"
./build/smallmind merge-lora models/kjv-3m.gguf "$WORK/kjv-chat.lora.gguf" models/kjv-chat-3m.gguf
cp "$WORK/kjv-chat.csv" models/kjv-chat-3m.train.csv
cp "$WORK/kjv-chat.lora.loss.svg" models/kjv-chat-3m.loss.svg
echo "first and final validation loss: $(awk -F, 'NR > 1 && $3 >= 0 { v[++n] = $3 } END { print v[1], v[n] }' models/kjv-chat-3m.train.csv)"
for q in "What does John 3:16 say?" "Continue: In the beginning" "What does Psalms 23:1 say?"; do
    printf '%s\n  -> ' "$q"
    ./build/smallmind run -m models/kjv-chat-3m.gguf --temp 0 -n 80 --no-display-prompt --stop "<|im_end|>" \
        -p "<|im_start|>user
$q<|im_end|>
<|im_start|>assistant
" 2> /dev/null
done
