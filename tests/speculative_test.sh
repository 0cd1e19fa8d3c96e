#!/usr/bin/env bash
# speculative_test.sh - `run --draft`: greedy output with a draft model is
# byte for byte the output without one (the built-in model as the target, its
# Q4_0 quantization as a draft that agrees often but not always, and a
# smaller model trained here that agrees less), for several prompts, draft
# lengths, a stop string and the context filling up; sampling with a draft
# runs to its end; a draft of another vocabulary and bad values are refused.
# The acceptance rule's distribution is checked in tests/unit/test_speculative.c.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SM="$BUILD/smallmind"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0 skip=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && echo "    $2"; }
SHARED=${SM_SHARED:-../shared}
KJV=models/kjv-3m.gguf

"$SM" quantize "$KJV" "$TMP/q4.gguf" Q4_0 2> /dev/null || bad "quantize_draft"
# a small draft of another shape on the same vocabulary: a few training steps
# from a fresh model that takes the built-in model's vocabulary
printf 'In the beginning God created the heaven and the earth. And the earth was without form, and void.\n%.0s' $(seq 1 30) > "$TMP/text.txt"
"$SM" init "$TMP/small0.gguf" --arch llama --dim 64 --layers 1 --heads 2 --ffn 128 --vocab-from "$KJV" --seed 3 2> /dev/null \
    && "$SM" train --init "$TMP/small0.gguf" --data "$TMP/text.txt" --out "$TMP/small.gguf" --steps 20 --batch 2 --seq 32 \
        --eval-every 0 -t 1 > /dev/null 2>&1 || bad "train_small_draft" "$(ls "$TMP")"

same=1 accepted=""
for draft in "$TMP/q4.gguf" "$TMP/small.gguf"; do
    [ -f "$draft" ] || continue
    for p in "In the beginning" "And the LORD said unto Moses" "Blessed are"; do
        for n in 1 3 8; do
            "$SM" run -p "$p" --temp 0 -n 120 -t 1 > "$TMP/a" 2> /dev/null
            "$SM" run -p "$p" --temp 0 -n 120 -t 1 --draft "$draft" --draft-n $n > "$TMP/b" 2> "$TMP/e"
            if ! cmp -s "$TMP/a" "$TMP/b"; then same=0; echo "    differs: $draft, '$p', --draft-n $n"; fi
            accepted="$accepted $(sed -n 's/.*draft: \([0-9]*\) of \([0-9]*\).*/\1\/\2/p' "$TMP/e")"
        done
    done
done
if [ $same = 1 ]; then ok "greedy_output_identical_with_draft (accepted:$accepted)"; else bad "greedy_output_identical_with_draft"; fi
# some proposals rejected and some accepted, or the test proves little
if echo "$accepted" | tr ' ' '\n' | awk -F/ 'NF == 2 { a += $1; t += $2 } END { exit !(a > 0 && a < t) }'; then
    ok "drafts_both_accepted_and_rejected"; else bad "drafts_both_accepted_and_rejected" "$accepted"; fi

# --draft-p-min: proposals stop where the draft is unsure; output unchanged, fewer proposed
"$SM" run -p "And the LORD said unto Moses" --temp 0 -n 120 -t 1 > "$TMP/a" 2> /dev/null
"$SM" run -p "And the LORD said unto Moses" --temp 0 -n 120 -t 1 --draft "$TMP/q4.gguf" --draft-n 8 > /dev/null 2> "$TMP/e0"
"$SM" run -p "And the LORD said unto Moses" --temp 0 -n 120 -t 1 --draft "$TMP/q4.gguf" --draft-n 8 --draft-p-min 0.6 > "$TMP/b" 2> "$TMP/e"
# proposals made only where the draft is sure: fewer, and more of them accepted
drafts() { sed -n 's/.*draft: \([0-9]*\) of \([0-9]*\).*/\1 \2/p' "$1"; }
read -r acc0 all <<< "$(drafts "$TMP/e0")"; read -r acc some <<< "$(drafts "$TMP/e")"
if cmp -s "$TMP/a" "$TMP/b" && [ -n "$all" ] && [ -n "$some" ] && [ "$some" -lt "$all" ] && [ "$some" -gt 0 ] &&
   [ $((acc * all)) -gt $((acc0 * some)) ]; then
    ok "draft_p_min_proposes_fewer_same_output ($acc of $some accepted, without it $acc0 of $all)"
else bad "draft_p_min_proposes_fewer_same_output" "$acc of $some with, $acc0 of $all without; $(diff "$TMP/a" "$TMP/b" | head -3)"; fi

# the default round: 4 proposals (the same run as --draft-n 4, not as 8)
"$SM" run -p "Blessed are" --temp 0 -n 120 -t 1 --draft "$TMP/q4.gguf" > /dev/null 2> "$TMP/ed"
"$SM" run -p "Blessed are" --temp 0 -n 120 -t 1 --draft "$TMP/q4.gguf" --draft-n 4 > /dev/null 2> "$TMP/e4"
"$SM" run -p "Blessed are" --temp 0 -n 120 -t 1 --draft "$TMP/q4.gguf" --draft-n 8 > /dev/null 2> "$TMP/e8"
d=$(drafts "$TMP/ed") d4=$(drafts "$TMP/e4") d8=$(drafts "$TMP/e8")
if [ -n "$d" ] && [ "$d" = "$d4" ] && [ "$d" != "$d8" ]; then ok "draft_n_default_4 ($d; with 8: $d8)"
else bad "draft_n_default_4" "default '$d', --draft-n 4 '$d4', --draft-n 8 '$d8'"; fi

# a stop string, and the context filling up
"$SM" run -p "And God said" --temp 0 -n 300 --stop "light" > "$TMP/a" 2> /dev/null
"$SM" run -p "And God said" --temp 0 -n 300 --stop "light" --draft "$TMP/q4.gguf" > "$TMP/b" 2> /dev/null
if cmp -s "$TMP/a" "$TMP/b"; then ok "stop_string_with_draft"; else bad "stop_string_with_draft" "$(diff "$TMP/a" "$TMP/b" | head -4)"; fi
"$SM" run -p "And God said" --temp 0 -n -1 -c 64 > "$TMP/a" 2> /dev/null
"$SM" run -p "And God said" --temp 0 -n -1 -c 64 --draft "$TMP/q4.gguf" > "$TMP/b" 2> "$TMP/e"
if cmp -s "$TMP/a" "$TMP/b" && grep -q "context full" "$TMP/e"; then ok "context_full_with_draft"
else bad "context_full_with_draft" "$(tail -2 "$TMP/e")"; fi

# chat: replies with a draft are the replies without one (the draft follows the conversation)
printf 'Who made the heaven?\nAnd the earth?\nAnd the sea?\n' | "$SM" chat --temp 0 -n 60 > "$TMP/a" 2> /dev/null
printf 'Who made the heaven?\nAnd the earth?\nAnd the sea?\n' | "$SM" chat --temp 0 -n 60 --draft "$TMP/q4.gguf" > "$TMP/b" 2> "$TMP/e"
if [ -s "$TMP/a" ] && cmp -s "$TMP/a" "$TMP/b"; then ok "chat_with_draft_identical"; else bad "chat_with_draft_identical" "$(tail -2 "$TMP/e")"; fi

# sampling with a draft: runs, reproducible with a seed
"$SM" run -p "In the beginning" --temp 0.9 -s 5 -n 100 --draft "$TMP/q4.gguf" > "$TMP/a" 2> "$TMP/e" \
    && "$SM" run -p "In the beginning" --temp 0.9 -s 5 -n 100 --draft "$TMP/q4.gguf" > "$TMP/b" 2> /dev/null
if cmp -s "$TMP/a" "$TMP/b" && grep -q "generated 100 tokens\|end of generation" "$TMP/e"; then ok "sampled_with_draft_reproducible"
else bad "sampled_with_draft_reproducible" "$(tail -2 "$TMP/e")"; fi

expect_error() {
    local name=$1 pat=$2; shift 2
    "$@" > "$TMP/o" 2> "$TMP/e"
    local rc=$?
    if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -qiE "$pat" "$TMP/e"; then ok "$name"; else bad "$name" "status $rc: $(head -c 300 "$TMP/e")"; fi
}
if [ -f "$SHARED/models/stories260K.gguf" ]; then
    expect_error "draft_of_another_vocabulary_refused" "vocabulary" "$SM" run -p "In" -n 5 --draft "$SHARED/models/stories260K.gguf"
else
    skip=$((skip + 1)); echo "skip draft_of_another_vocabulary_refused: $SHARED is absent"
fi
expect_error "draft_n_out_of_range" "draft-n" "$SM" run -n 5 --draft "$TMP/q4.gguf" --draft-n 0
expect_error "draft_p_min_out_of_range" "draft-p-min" "$SM" run -n 5 --draft "$TMP/q4.gguf" --draft-p-min 1.5
expect_error "draft_with_grammar_refused" "grammar" "$SM" run -n 5 --draft "$TMP/q4.gguf" --json
expect_error "draft_with_penalty_refused" "penalty" "$SM" run -n 5 --draft "$TMP/q4.gguf" --repeat-penalty 1.1
expect_error "missing_draft_named" "$TMP/none.gguf" "$SM" run -n 5 --draft "$TMP/none.gguf"
echo "speculative: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
