#!/usr/bin/env bash
# contention.sh - decode beside one busy process (issue 17's target: -t 2
# at least 0.9x of -t 1 under the same competitor). Each round starts
# `yes > /dev/null` (unpinned, or pinned to CPU 0 with PIN=1), measures
# tg N at -t 1 and then -t 2, and stops it; the -t 2 / -t 1 ratio of every
# round is kept and the median and quartiles are printed, for SmallMind and,
# when LLAMA_BENCH names a llama-bench binary (built outside this checkout),
# for llama.cpp under the same competitor in the same rounds.
#   [LLAMA_BENCH=/path/to/llama-bench] bash bench/contention.sh MODEL.gguf...
# Env: SMALLMIND (./build/smallmind), ROUNDS (10), N (64), PIN (0).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: [LLAMA_BENCH=...] $0 MODEL.gguf..." >&2; exit 2; }
SM=${SMALLMIND:-./build/smallmind}
ROUNDS=${ROUNDS:-10} N=${N:-64} PIN=${PIN:-0}
TMP=$(mktemp -d)
busy=
trap '[ -n "$busy" ] && kill "$busy" 2> /dev/null; rm -rf "$TMP"' EXIT

# tok/s of one tg run: engine (sm or ll), file, threads
rate() {
    if [ "$1" = sm ]; then
        "$SM" bench -m "$2" -p 0 -n "$N" -t "$3" -r 1 -o csv 2> /dev/null | tail -1 | cut -d, -f7
    else
        "$LLAMA_BENCH" -m "$2" -p 0 -n "$N" -t "$3" -r 1 -o csv 2> /dev/null |
            awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i ~ /avg_ts/) c = i } NR == 2 { gsub(/"/, "", $c); print $c }'
    fi
}
# median and quartiles of a column of numbers
stats() {
    sort -g | awk '{ v[NR] = $1 } END { printf "%.2f | %.2f-%.2f | %.2f-%.2f", v[int((NR + 1) / 2)], v[int((NR + 3) / 4)], v[int((3 * NR + 3) / 4)], v[1], v[NR] }'
}

engines=sm
[ -n "${LLAMA_BENCH:-}" ] && engines="sm ll"
echo "| model | engine | rounds | -t 1 tok/s (median) | -t 2 tok/s (median) | -t 2 / -t 1 median | quartiles | range |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for f in "$@"; do
    for e in $engines; do : > "$TMP/$e"; done
    for r in $(seq "$ROUNDS"); do
        if [ "$PIN" = 1 ]; then taskset -c 0 yes > /dev/null & else yes > /dev/null & fi
        busy=$!
        sleep 0.2
        for e in $engines; do
            one=$(rate $e "$f" 1) two=$(rate $e "$f" 2)
            echo "$one $two" >> "$TMP/$e"
        done
        kill "$busy" 2> /dev/null; wait "$busy" 2> /dev/null || true
        busy=
    done
    for e in $engines; do
        name=SmallMind; [ $e = ll ] && name=llama.cpp
        t1=$(cut -d' ' -f1 "$TMP/$e" | stats | cut -d' ' -f1)
        t2=$(cut -d' ' -f2 "$TMP/$e" | stats | cut -d' ' -f1)
        echo "| $(basename "$f" .gguf) | $name | $ROUNDS | $t1 | $t2 | $(awk '$1 > 0 { print $2 / $1 }' "$TMP/$e" | stats) |"
    done
done
echo
echo "competitor: yes > /dev/null, $([ "$PIN" = 1 ] && echo "pinned to CPU 0" || echo unpinned); $(nproc) CPUs"
