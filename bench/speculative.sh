#!/usr/bin/env bash
# speculative.sh - speculative decoding's speed: `smallmind run` greedy on
# TARGET with and without --draft DRAFT, alternating, ROUNDS times each;
# prints each side's median tokens/s, their ratio, the draft's acceptance
# rate, and whether the outputs were identical (they must be).
#   bash bench/speculative.sh TARGET.gguf DRAFT.gguf [ROUNDS]
# Env: SMALLMIND (./build/smallmind), N (tokens, 128), DRAFT_N (4, the default),
# THREADS (1), PROMPT ("Once upon a time").
set -euo pipefail
cd "$(dirname "$0")/.."
SM=${SMALLMIND:-./build/smallmind}
T=${1:?usage: bench/speculative.sh TARGET.gguf DRAFT.gguf [ROUNDS]}
D=${2:?usage: bench/speculative.sh TARGET.gguf DRAFT.gguf [ROUNDS]}
ROUNDS=${3:-5}
N=${N:-128} DN=${DRAFT_N:-4} TH=${THREADS:-1} P=${PROMPT:-Once upon a time}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
tps() { sed -n 's/.*generated [0-9]* tokens (\([0-9.]*\) tok\/s).*/\1/p' "$1"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
: > "$TMP/plain"; : > "$TMP/spec"; same=yes
for r in $(seq 1 "$ROUNDS"); do
    "$SM" run -m "$T" -p "$P" --temp 0 -n "$N" -t "$TH" --ignore-eos > "$TMP/a" 2> "$TMP/ea"
    "$SM" run -m "$T" -p "$P" --temp 0 -n "$N" -t "$TH" --ignore-eos --draft "$D" --draft-n "$DN" > "$TMP/b" 2> "$TMP/eb"
    tps "$TMP/ea" >> "$TMP/plain"; tps "$TMP/eb" >> "$TMP/spec"
    cmp -s "$TMP/a" "$TMP/b" || same=no
done
a=$(median < "$TMP/plain"); b=$(median < "$TMP/spec")
acc=$(sed -n 's/.*draft: \(.*\)$/\1/p' "$TMP/eb")
printf 'target %s, draft %s, %s tokens, --draft-n %s, %s threads\n' "$(basename "$T")" "$(basename "$D")" "$N" "$DN" "$TH"
printf 'plain %.1f tok/s, speculative %.1f tok/s: %.2fx (median of %s alternating runs); draft: %s; identical output: %s\n' \
    "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN { print b / a }')" "$ROUNDS" "$acc" "$same"
