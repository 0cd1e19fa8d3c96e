#!/usr/bin/env bash
# ab.sh - two builds of SmallMind on the same GGUF files, side by side:
# prompt (pp) and generation (tg) tokens/s of each, and NEW / OLD. The two
# run in alternation, ROUNDS times (old first in odd rounds, new first in
# even ones), and the best of each is kept, so a noisy neighbour slows both
# alike; the last column is the median over the rounds of each round's
# NEW / OLD, which a minute-long slow spell moves less than the best.
#   bash bench/ab.sh OLD_SMALLMIND NEW_SMALLMIND MODEL.gguf [MODEL.gguf ...]
# Env: THREADS (1,2), P (128), N (64), D (0: the depth, tokens already in the
# context, as bench -d), REPS (3, per round), ROUNDS (3).
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 OLD_SMALLMIND NEW_SMALLMIND MODEL.gguf..." >&2; exit 2; }
OLD=$1 NEW=$2
shift 2
THREADS=${THREADS:-1,2} P=${P:-128} N=${N:-64} D=${D:-0} REPS=${REPS:-3} ROUNDS=${ROUNDS:-3}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

echo "| model | threads | test | old t/s | new t/s | new / old | median of rounds |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for f in "$@"; do
    : > "$TMP/old.csv"
    : > "$TMP/new.csv"
    for r in $(seq "$ROUNDS"); do
        sides="old new"; [ $((r % 2)) = 0 ] && sides="new old"
        for side in $sides; do
            bin=$OLD; [ $side = new ] && bin=$NEW
            "$bin" bench -m "$f" -p "$P" -n "$N" -d "$D" -t "$THREADS" -r "$REPS" -o csv 2> /dev/null | tail -n +2 |
                sed "s/\$/,$r/" >> "$TMP/$side.csv"
        done
    done
    # CSV: model,size,params,kernels,threads,test,t/s,sd,...,round (last) - the best of each (threads, test)
    best() { awk -F, -v thr="$1" -v test="$2" '$5 == thr && $6 == test && $7 > b { b = $7 } END { printf "%.1f", b }' "$3"; }
    # the median of each round's new / old
    median() {
        awk -F, -v thr="$1" -v test="$2" 'FNR == 1 { side++ } $5 == thr && $6 == test { v[side, $NF] = $7 }
            END { for (k in v) { split(k, a, SUBSEP); if (a[1] == 1 && v[1, a[2]] > 0 && (2, a[2]) in v) r[++n] = v[2, a[2]] / v[1, a[2]] }
                  if (!n) { print "-"; exit }
                  for (i = 2; i <= n; i++) for (j = i; j > 1 && r[j] < r[j - 1]; j--) { t = r[j]; r[j] = r[j - 1]; r[j - 1] = t }
                  printf "%.3f", n % 2 ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2 }' "$3" "$4"
    }
    for thr in ${THREADS//,/ }; do
        at=""; [ "$D" -gt 0 ] && at=" @ d$D"
        for test in "pp$P$at" "tg$N$at"; do
            o=$(best "$thr" "$test" "$TMP/old.csv")
            n=$(best "$thr" "$test" "$TMP/new.csv")
            ratio=$(awk -v a="$n" -v b="$o" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')
            echo "| $(basename "$f" .gguf) | $thr | $test | $o | $n | $ratio | $(median "$thr" "$test" "$TMP/old.csv" "$TMP/new.csv") |"
        done
    done
done
