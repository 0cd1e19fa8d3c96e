#!/usr/bin/env bash
# train_test.sh - `smallmind train` end to end: the loss falls below half
# its start in 200 steps and the model generates; 20 steps equal 10 +
# checkpoint + 10 resumed, bit for bit; a trainer killed with SIGKILL while
# it writes checkpoints always leaves one that loads and resumes.
set -u
BUILD=${BUILD:-build}
SM="$BUILD/smallmind"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && echo "    $2"; }

# a small corpus with structure to learn
for i in $(seq 1 40); do
    echo "The little cat sat on the warm mat. The big dog ran to the red ball."
    echo "Once upon a time there was a girl who loved to play in the park."
done > "$TMP/corpus.txt"

for arch in gpt2 llama; do
    "$SM" train --data "$TMP/corpus.txt" --out "$TMP/$arch.gguf" --arch $arch --dim 64 --layers 2 --heads 4 \
        --batch 8 --seq 64 --steps 200 --lr 3e-3 --warmup 20 --eval-every 100 --log "$TMP/$arch.csv" 2> "$TMP/err"
    first=$(sed -n 2p "$TMP/$arch.csv" | cut -d, -f2)
    last=$(tail -1 "$TMP/$arch.csv" | cut -d, -f2)
    if awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a / 2) }'; then ok "learns_${arch} ($first -> $last)"; else bad "learns_${arch}" "$first -> $last $(tail -c 300 "$TMP/err")"; fi
    out=$("$SM" run -m "$TMP/$arch.gguf" -n 60 --temp 0 2> /dev/null)
    # a character the corpus lacks falls back to byte tokens and comes back whole
    ids=$("$SM" tokenize -m "$TMP/$arch.gguf" -p "caf$(printf '\xc3\xa9') Zq" --ids --no-bos 2> /dev/null)
    if [ -n "$ids" ] && [ "$(echo "$ids" | tr -cd ',' | wc -c)" -ge 5 ]; then ok "char_vocab_byte_fallback_${arch}"; else bad "char_vocab_byte_fallback_${arch}" "$ids"; fi
    if [ $? -eq 0 ] && [ ${#out} -gt 20 ]; then ok "trained_${arch}_generates"; else bad "trained_${arch}_generates" "$out"; fi
    if [ -s "$TMP/$arch.loss.svg" ] && grep -q "<polyline" "$TMP/$arch.loss.svg"; then ok "loss_curve_${arch}"; else bad "loss_curve_${arch}"; fi
done

# a BPE vocabulary learned from the corpus: stored in the model, used by run
"$SM" train --data "$TMP/corpus.txt" --out "$TMP/bpe.gguf" --tokenizer bpe:400 --dim 64 --layers 2 --heads 4 \
    --batch 8 --seq 32 --steps 150 --lr 3e-3 --warmup 10 --eval-every 0 --log "$TMP/bpe.csv" 2> /dev/null
first=$(sed -n 2p "$TMP/bpe.csv" | cut -d, -f2); last=$(tail -1 "$TMP/bpe.csv" | cut -d, -f2)
ids=$("$SM" tokenize -m "$TMP/bpe.gguf" -p "The little cat sat on the warm mat." --ids --no-bos 2> /dev/null | tr -cd ',' | wc -c)
back=$("$SM" run -m "$TMP/bpe.gguf" -p "The little" -n 30 --temp 0 2> /dev/null)
if grep -q '"gpt2"' <("$SM" inspect "$TMP/bpe.gguf" --no-tensors) && [ "$ids" -lt 12 ] \
    && awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a / 2) }' && [ ${#back} -gt 15 ]; then
    ok "bpe_tokenizer_learned ($((ids + 1)) tokens for 35 characters; loss $first -> $last)"
else
    bad "bpe_tokenizer_learned" "ids $ids, loss $first -> $last, '$back'"
fi

# gradient checkpointing: the same gradients, bit for bit, in less memory
for arch in gpt2 llama; do
    "$SM" init "$TMP/gc-$arch.gguf" --arch $arch --dim 48 --layers 3 --heads 4 --ffn 64 --ctx 32 --vocab 300 --seed 5 2> /dev/null
    "$BUILD/grad_dump" "$TMP/gc-$arch.gguf" 2 32 "$TMP/gc-$arch.full" && "$BUILD/grad_dump" "$TMP/gc-$arch.gguf" 2 32 "$TMP/gc-$arch.ckpt" recompute
    if cmp -s "$TMP/gc-$arch.full" "$TMP/gc-$arch.ckpt"; then ok "grad_checkpointing_same_gradients_$arch"; else bad "grad_checkpointing_same_gradients_$arch"; fi
done
"$SM" train --data "$TMP/corpus.txt" --out "$TMP/gc.gguf" --dim 64 --layers 4 --heads 4 --batch 4 --seq 64 --steps 2 \
    --eval-every 0 --grad-checkpointing 2> "$TMP/gc.err"
if grep -q "gradient checkpointing saves" "$TMP/gc.err" && [ -s "$TMP/gc.gguf" ]; then ok "grad_checkpointing_reports_saving"; else bad "grad_checkpointing_reports_saving" "$(cat "$TMP/gc.err")"; fi

# resume: a constant learning rate makes the schedule independent of --steps
common=(--data "$TMP/corpus.txt" --arch llama --dim 32 --layers 2 --heads 4 --kv-heads 2 --batch 4 --seq 32
        --lr 1e-3 --min-lr 1e-3 --warmup 0 --eval-every 0 -t 1)
"$SM" train "${common[@]}" --steps 20 --out "$TMP/straight.gguf" 2> /dev/null
"$SM" train "${common[@]}" --steps 10 --out "$TMP/half.gguf" --checkpoint-every 10 --checkpoint "$TMP/half.ckpt" 2> /dev/null
"$SM" train "${common[@]}" --steps 20 --out "$TMP/resumed.gguf" --resume "$TMP/half.ckpt" 2> /dev/null
if [ -s "$TMP/straight.gguf" ] && cmp -s "$TMP/straight.gguf" "$TMP/resumed.gguf"; then ok "resume_is_bitwise"; else bad "resume_is_bitwise"; fi

# SIGKILL while checkpointing every step: the checkpoint left behind loads and resumes
killed_ok=0
for round in 1 2 3 4 5 6 7 8; do
    "$SM" train --data "$TMP/corpus.txt" --out "$TMP/k.gguf" --dim 48 --layers 2 --heads 4 --batch 4 --seq 32 \
        --steps 100000 --checkpoint-every 1 --checkpoint "$TMP/k.ckpt" --eval-every 0 2> /dev/null &
    pid=$!
    sleep "0.$((RANDOM % 6 + 3))"
    kill -9 $pid 2> /dev/null
    wait $pid 2> /dev/null
    [ -e "$TMP/k.ckpt" ] || continue
    step=$("$SM" inspect "$TMP/k.ckpt" --no-tensors 2> /dev/null | awk '$1 == "smallmind.train.step" { print $3 }')
    if [ -n "$step" ] && "$SM" train --data "$TMP/corpus.txt" --out "$TMP/k2.gguf" --resume "$TMP/k.ckpt" \
        --steps $((step + 1)) --eval-every 0 --batch 4 --seq 32 2> "$TMP/err" && [ -s "$TMP/k2.gguf" ]; then
        killed_ok=$((killed_ok + 1))
    else
        bad "sigkill_round_$round" "step '$step': $(cat "$TMP/err")"
    fi
done
if [ $killed_ok -ge 6 ]; then ok "sigkill_leaves_a_loadable_checkpoint ($killed_ok/8 rounds)"; else bad "sigkill_leaves_a_loadable_checkpoint" "$killed_ok/8"; fi

# bad input
expect() {
    local name=$1; shift
    "$@" > /dev/null 2> "$TMP/err"
    local rc=$?
    if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q error "$TMP/err"; then ok "$name"; else bad "$name" "rc=$rc"; fi
}
expect "train_no_data" "$SM" train --out "$TMP/x.gguf"
expect "train_missing_file" "$SM" train --data /nonexistent --out "$TMP/x.gguf"
expect "train_seq_beyond_ctx" "$SM" train --data "$TMP/corpus.txt" --out "$TMP/x.gguf" --seq 512 --ctx 64
expect "train_bad_arch" "$SM" train --data "$TMP/corpus.txt" --out "$TMP/x.gguf" --arch rnn
expect "train_resume_not_checkpoint" "$SM" train --data "$TMP/corpus.txt" --out "$TMP/x.gguf" --resume "$TMP/gpt2.gguf" --steps 300
expect "train_bpe_too_small" "$SM" train --data "$TMP/corpus.txt" --out "$TMP/x.gguf" --tokenizer bpe:100

echo "train: $pass passed, $fail failed"
[ $fail -eq 0 ]
