#!/usr/bin/env bash
# llmc_compare.sh - training throughput (tokens/s) of SmallMind against llm.c's
# CPU trainer (karpathy/llm.c train_gpt2.c, OpenMP) on the same GPT-2 model,
# batch (4 x 64, which llm.c's CPU main() hard-codes), data and threads.
#
#   LLMC_TRAIN=/path/to/llm.c/train_gpt2 bash bench/llmc_compare.sh
#
# llm.c is a peer program: build it yourself outside this checkout
# (`make train_gpt2` in its directory); this script never builds or ships it.
# One random model (`smallmind init --arch gpt2`) is written in llm.c's
# checkpoint format (bench/llmc_convert.py) and, without its copy of the
# output head, given to `smallmind train --init` so both train the same tied
# model. One batch of training text, tokenized by SmallMind, is written as
# llm.c's token file; each trainer sees that batch at every step, with the
# same optimizer settings (Adam, lr 1e-4 constant, beta1 0.9, eps 1e-8, no
# weight decay, no clipping; beta2 is fixed in each program: 0.999 in llm.c's
# main(), 0.95 in SmallMind's loop, the same work per step). Their first
# losses must equal a float64 PyTorch evaluation of each program's first batch
# (checked below the table; the run fails otherwise), and the later losses
# track each other.
# llm.c runs in a work directory holding the files at the paths its main()
# opens (gpt2_124M.bin, dev/data/tinyshakespeare/tiny_shakespeare_*.bin); it
# is stopped after its step STEPS, before its first text generation.
#
# Environment:
#   SHAPE=124m|small  124m: GPT-2 124M (dim 768, 12 layers, 12 heads, ctx 1024,
#                     GPT-2 vocabulary of 50257); small: dim 256, 4 layers,
#                     8 heads, ctx 128, a 512-token byte-level vocabulary
#   STEPS=N           timed steps per run (default 5; llm.c's step 0 and
#                     SmallMind's first step are warm-up, not counted)
#   REPEAT=N          runs per program and thread count, alternating (default 1);
#                     the table shows medians over every timed step of every run
#   THREADS="1 2"     thread counts (OMP_NUM_THREADS for llm.c, -t for SmallMind)
#   WORK=DIR          keep the files there (default: a temporary directory)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SM=${SMALLMIND:-$ROOT/build/smallmind}
PY=${PYTHON:-/usr/bin/python3}
[ -n "${LLMC_TRAIN:-}" ] || { echo "set LLMC_TRAIN to llm.c's train_gpt2 (built outside this checkout)" >&2; exit 2; }
LLMC_TRAIN=$(realpath "$LLMC_TRAIN")
SHAPE=${SHAPE:-124m}
STEPS=${STEPS:-5}
REPEAT=${REPEAT:-1}
THREADS=${THREADS:-"1 2"}
B=4 T=64
if [ -n "${WORK:-}" ]; then mkdir -p "$WORK"; else WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT; fi
WORK=$(realpath "$WORK")

case $SHAPE in
    124m) shape=(--dim 768 --layers 12 --heads 12 --ffn 3072 --ctx 1024)
          vocab=(--vocab-from "${SHARED:-../shared}/vocab/ggml-vocab-gpt-2.gguf")
          label="GPT-2 124M (dim 768, 12 layers, vocab 50257)" ;;
    small) shape=(--dim 256 --layers 4 --heads 8 --ffn 1024 --ctx 128)
           vocab=(--vocab 512)
           label="small GPT-2 (dim 256, 4 layers, vocab 512)" ;;
    *) echo "SHAPE is 124m or small" >&2; exit 2 ;;
esac

# the model: SmallMind's GGUF (tied) and llm.c's checkpoint of the same weights
mkdir -p "$WORK/llmc/dev/data/tinyshakespeare"
"$SM" init "$WORK/init.gguf" --arch gpt2 "${shape[@]}" "${vocab[@]}" --tied --seed 42 2> /dev/null
"$PY" bench/llmc_convert.py model "$WORK/init.gguf" "$WORK/llmc/gpt2_124M.bin" "$WORK/model.gguf" > /dev/null
rm -f "$WORK/init.gguf"

# the data: whole lines of text until SmallMind's tokenizer makes at least one
# batch of it (and less than a batch and a row, so SmallMind's make_batch
# starts over at every step, as llm.c does with a one-batch file)
sentences=("The little cat sat on the warm mat and the big dog ran to the red ball in the park."
           "A quiet river runs past the old mill, where children fish on summer evenings."
           "She opened the window, and the smell of rain and fresh bread filled the kitchen."
           "Seven ships left the harbour at dawn, their sails bright against the grey sky.")
RANDOM=42   # the same text every run
count() {  # tokens of $1 -> $WORK/ids.txt, prints the count
    printf '%s' "$1" > "$WORK/text.txt"
    "$SM" tokenize -m "$WORK/model.gguf" -f "$WORK/text.txt" --ids --no-bos > "$WORK/ids.txt"
    echo $(($(tr -cd ',' < "$WORK/ids.txt" | wc -c) + 1))
}
text="" n=0
while [ "$n" -lt $((B * T)) ]; do   # whole lines while they fit, then word by word
    line=${sentences[$((RANDOM % 4))]}
    if [ "$(count "$text$line"$'\n')" -lt $((B * T)) ]; then text+="$line"$'\n'; n=$(count "$text"); continue; fi
    for w in $line; do text+="$w "; n=$(count "$text"); [ "$n" -lt $((B * T)) ] || break; done
done
[ "$n" -lt $((B * T + T)) ] || { echo "text of $n tokens: too long for one batch" >&2; exit 1; }
"$PY" bench/llmc_convert.py tokens "$WORK/model.gguf" "$WORK/ids.txt" $B $T \
    "$WORK/llmc/dev/data/tinyshakespeare/tiny_shakespeare_train.bin" > "$WORK/tokens.txt"
cp "$WORK/llmc/dev/data/tinyshakespeare/tiny_shakespeare_train.bin" "$WORK/llmc/dev/data/tinyshakespeare/tiny_shakespeare_val.bin"

run_llmc() {  # threads run -> $WORK/llmc.T.R.log
    local log=$WORK/llmc.$1.$2.log
    ( cd "$WORK/llmc" && OMP_NUM_THREADS=$1 exec stdbuf -oL "$LLMC_TRAIN" > "$log" 2>&1 ) &
    local pid=$!
    while kill -0 "$pid" 2> /dev/null && ! grep -qs "^step $STEPS:" "$log"; do sleep 0.2; done
    kill "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
    grep -q "^step $STEPS:" "$log" || { echo "llm.c stopped early:" >&2; tail -5 "$log" >&2; exit 1; }
}
run_sm() {  # threads run -> $WORK/sm.T.R.csv
    "$SM" train --data "$WORK/text.txt" --val "$WORK/text.txt" --init "$WORK/model.gguf" --out "$WORK/out.gguf" \
        --batch $B --seq $T --steps $((STEPS + 1)) --lr 1e-4 --min-lr 1e-4 --warmup 0 --weight-decay 0 \
        --grad-clip 0 --eval-every 0 -t "$1" --log "$WORK/sm.$1.$2.csv" > /dev/null 2>&1
    rm -f "$WORK"/out.gguf*
}
median() { sort -g | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for r in $(seq 1 "$REPEAT"); do
    for t in $THREADS; do run_llmc "$t" "$r"; run_sm "$t" "$r"; done
done

echo "| shape | threads | SmallMind tok/s | llm.c tok/s | ratio |"
echo "|---|---:|---:|---:|---:|"
for t in $THREADS; do
    # llm.c: "step N: train loss X (took Y ms)", steps 1..STEPS; SmallMind's log:
    # step,loss,val_loss,lr,grad_norm,tokens_per_s (a header, then steps 1..STEPS+1)
    lc=$(cat "$WORK"/llmc.$t.*.log | awk -v bt=$((B * T)) '/^step [0-9]+:/ && $2 != "0:" { gsub(/\(took /, ""); print bt * 1000 / $(NF - 1) }' | median)
    sm=$(for f in "$WORK"/sm.$t.*.csv; do tail -n +3 "$f"; done | awk -F, '{ print $6 }' | median)
    printf "| %s | %s | %.0f | %.0f | %.2f |\n" "$label" "$t" "$sm" "$lc" "$(awk -v a="$sm" -v b="$lc" 'BEGIN { print a / b }')"
done
echo
echo "Same model, same data: $(cat "$WORK/tokens.txt" | sed 's/.*; //')."
t1=$(echo $THREADS | cut -d' ' -f1)
ref=$("$PY" bench/llmc_convert.py losses "$WORK/model.gguf" "$WORK/ids.txt" $B $T)
echo "First-step loss on each program's batch, float64 PyTorch (bench/llmc_convert.py losses; llm.c, SmallMind): $ref"
echo "Losses by step (threads $t1, run 1):"
echo "  llm.c:     $(awk '/^step [0-9]+:/ { printf "%s ", $5 }' "$WORK/llmc.$t1.1.log")"
echo "  SmallMind: $(tail -n +2 "$WORK/sm.$t1.1.csv" | awk -F, '{ printf "%s ", $2 }')"
l0=$(awk '/^step 0:/ { print $5 }' "$WORK/llmc.$t1.1.log")
s0=$(sed -n 2p "$WORK/sm.$t1.1.csv" | cut -d, -f2)
# both first losses within 1e-4 of the reference: the same model and data, or the comparison is void
echo "$ref $l0 $s0" | awk '{ d1 = $3 - $1; d2 = $4 - $2; if (d1 < 0) d1 = -d1; if (d2 < 0) d2 = -d2
    if (d1 > 1e-4 || d2 > 1e-4) { print "FIRST LOSSES DIFFER from the reference: not the same model or data"; exit 1 }
    print "First losses match the reference (llm.c " $3 ", SmallMind " $4 ")." }'
