#!/usr/bin/env bash
# speculative_pair.sh - the speculative-decoding target case of issue 17: a
# LLaMA 110M-shape target and a LLaMA 15M-shape draft, both trained here on
# the same text (the King James Bible, Debian's bible-kjv-text, with the
# built-in model's 2048-token vocabulary), then bench/speculative.sh on them.
#   bash bench/speculative_pair.sh      (about 17 minutes of training on 2 cores)
# Env: WORK (where the models go; default /tmp/smallmind-spec), SMALLMIND
# (./build/smallmind), ROUNDS (3), and bench/speculative.sh's N, THREADS.
set -euo pipefail
cd "$(dirname "$0")/.."
SM=${SMALLMIND:-./build/smallmind}
WORK=${WORK:-/tmp/smallmind-spec}
ROUNDS=${ROUNDS:-3}
mkdir -p "$WORK"
command -v bible > /dev/null || { echo "the bible program is missing: apt-get install bible-kjv bible-kjv-text" >&2; exit 1; }
[ -s "$WORK/kjv.txt" ] || bible -l100000 "gen1:1-rev22:21" > "$WORK/kjv.txt"
train() {   # OUT STEPS LR SEED SHAPE...
    local out=$1 steps=$2 lr=$3 seed=$4
    shift 4
    [ -e "$out" ] || "$SM" train --data "$WORK/kjv.txt" --tokenizer models/kjv-3m.gguf --out "$out" --arch llama "$@" \
        --ctx 256 --batch 4 --seq 128 --steps "$steps" --lr "$lr" --warmup 20 --eval-every 50 --seed "$seed" \
        --log "${out%.gguf}.csv"
}
train "$WORK/target-110m.gguf" 200 1e-3 1 --dim 768 --layers 12 --heads 12 --ffn 2048
train "$WORK/draft-15m.gguf" 400 2e-3 2 --dim 288 --layers 6 --heads 6 --ffn 768
echo "validation loss: target $(tail -1 "$WORK/target-110m.csv" | cut -d, -f3), draft $(tail -1 "$WORK/draft-15m.csv" | cut -d, -f3)"
# the draft also quantized, as drafts usually are: a draft step then reads
# 4-8x fewer bytes for about the same agreement
for q in Q8_0 Q4_0; do
    [ -e "$WORK/draft-15m-$q.gguf" ] || "$SM" quantize "$WORK/draft-15m.gguf" "$WORK/draft-15m-$q.gguf" "$q" > /dev/null
done
for p in "And God said" "In the beginning"; do
    for dn in 4 8; do
        PROMPT="$p" DRAFT_N=$dn bash bench/speculative.sh "$WORK/target-110m.gguf" "$WORK/draft-15m.gguf" "$ROUNDS"
    done
    for q in Q8_0 Q4_0; do
        PROMPT="$p" DRAFT_N=4 bash bench/speculative.sh "$WORK/target-110m.gguf" "$WORK/draft-15m-$q.gguf" "$ROUNDS"
    done
done
