#!/usr/bin/env bash
# lora_vs_full.sh - LoRA against full fine-tuning of the built-in model
# (models/kjv-3m.gguf, Q8_0) on a small corpus unlike its Bible text: the
# licence texts Debian ships in /usr/share/common-licenses (training: the
# GPL, LGPL, GFDL, Apache, MPL, CC0 and BSD texts, ~300 KB; validation: GPL-1
# and the Artistic licence, held out). Both runs take the same batches
# (--batch 16 --seq 128) and threads; the validation loss is ln(perplexity)
# of the validation text, before and after, from `smallmind perplexity -c 128`
# (llama.cpp's measure: the second half of each 128-token chunk scored) (with --lora for the adapter, on the merged weights for the full
# fine-tune). Per step: the median wall time of the steps and the process's
# CPU time per step (the machine may be shared). The two trainings run one
# after the other, so a neighbour that is busy during one of them moves that
# ratio; ROUNDS (default 5) short runs of each (10 steps), alternating, give a
# second one: the fastest step of each run, the best and the median over the
# rounds. A benchmark, not a test.
#   bash bench/lora_vs_full.sh [STEPS (default 150)] [THREADS (default 2)]
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-150}
THREADS=${2:-2}
SM=./build/smallmind
BASE=models/kjv-3m.gguf
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
L=/usr/share/common-licenses
cat $L/GPL-3 $L/GPL-2 $L/LGPL-2 $L/LGPL-2.1 $L/LGPL-3 $L/GFDL-1.2 $L/GFDL-1.3 $L/Apache-2.0 $L/MPL-1.1 $L/MPL-2.0 \
    $L/CC0-1.0 $L/BSD > "$W/train.txt"
cat $L/GPL-1 $L/Artistic > "$W/val.txt"
common=(--init "$BASE" --data "$W/train.txt" --val "$W/val.txt" --batch 16 --seq 128 --steps "$STEPS" --warmup 10
        --eval-every 0 -t "$THREADS")
val_loss() { "$SM" perplexity "$@" -f "$W/val.txt" -c 128 -t "$THREADS" 2> /dev/null |
             sed -n 's/perplexity: \([0-9.]*\).*/\1/p' | awk '{ printf "%.4f", log($1) }'; }
median_step() { tail -n +2 "$1" | awk -F, '{ print 16 * 128 / $6 }' | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
cpu_time() { /usr/bin/time -f "%U %S" -o "$W/time" "$@" 2> /dev/null; awk '{ print $1 + $2 }' "$W/time"; }

v0=$(val_loss -m "$BASE")
cpu_full=$(cpu_time "$SM" train "${common[@]}" --lr 5e-4 --min-lr 5e-5 --out "$W/full.gguf" --log "$W/full.csv")
v_full=$(val_loss -m "$W/full.gguf")
cpu_lora=$(cpu_time "$SM" train "${common[@]}" --lora-rank 16 --lora-alpha 32 --lr 2e-3 --min-lr 1e-4 \
    --out "$W/lora.gguf" --log "$W/lora.csv")
v_lora=$(val_loss -m "$BASE" --lora "$W/lora.gguf")
s_full=$(median_step "$W/full.csv"); s_lora=$(median_step "$W/lora.csv")
p_full=$("$SM" inspect "$BASE" --no-tensors 2> /dev/null | sed -n 's/.*| \([0-9.]* M\) parameters.*/\1/p')
p_lora=$({ "$SM" inspect "$W/lora.gguf" 2> /dev/null || true; } | awk '/lora_[ab] +F32/ { n += $7 / 4 } END { printf "%.2f M", n / 1e6 }')
echo "| run | trained parameters | val loss before | after | change | median s/step | CPU s/step |"
echo "|---|---|---|---|---|---|---|"
awk -v v0="$v0" -v v="$v_full" -v s="$s_full" -v c="$cpu_full" -v n="$STEPS" -v p="$p_full" \
    'BEGIN { printf "| full fine-tune | %s | %.3f | %.3f | %+.1f%% | %.3f | %.3f |\n", p, v0, v, 100 * (v - v0) / v0, s, c / n }'
awk -v v0="$v0" -v v="$v_lora" -v s="$s_lora" -v c="$cpu_lora" -v n="$STEPS" -v p="$p_lora" \
    'BEGIN { printf "| LoRA rank 16 (q,k,v,o,gate,up,down) | %s | %.3f | %.3f | %+.1f%% | %.3f | %.3f |\n", p, v0, v, 100 * (v - v0) / v0, s, c / n }'
awk -v a="$s_full" -v b="$s_lora" -v c="$cpu_full" -v d="$cpu_lora" \
    'BEGIN { printf "\nLoRA per step: %.2fx faster (median wall), %.2fx (CPU time)\n", a / b, c / d }'

# the same two trainings alternating, ROUNDS short runs each: the fastest step of every run
ROUNDS=${ROUNDS:-5}
short=(--init "$BASE" --data "$W/train.txt" --batch 16 --seq 128 --steps 10 --warmup 1 --eval-every 0 -t "$THREADS")
best_tps() { tail -n +3 "$1" | awk -F, '{ print $6 }' | sort -g | tail -1; }
: > "$W/f.txt"; : > "$W/l.txt"
for r in $(seq "$ROUNDS"); do
    "$SM" train "${short[@]}" --out "$W/sf.gguf" --log "$W/sf.csv" > /dev/null 2>&1 && best_tps "$W/sf.csv" >> "$W/f.txt"
    "$SM" train "${short[@]}" --lora-rank 16 --lora-alpha 32 --out "$W/sl.gguf" --log "$W/sl.csv" > /dev/null 2>&1 &&
        best_tps "$W/sl.csv" >> "$W/l.txt"
done
sort -g "$W/f.txt" > "$W/fs.txt"; sort -g "$W/l.txt" > "$W/ls.txt"
paste "$W/fs.txt" "$W/ls.txt" | awk -v r="$ROUNDS" '{ f[NR] = $1; l[NR] = $2 }
    END { if (NR == 0) { print "the alternating runs failed"; exit 1 }
          m = int((NR + 1) / 2)
          printf "Alternating, %d rounds of 10 steps: LoRA %.2fx the full fine-tune'"'"'s tokens/s (fastest steps: best %.0f vs %.0f), %.2fx (medians)\n", r, l[NR] / f[NR], l[NR], f[NR], l[m] / f[m] }'
