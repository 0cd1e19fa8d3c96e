#!/usr/bin/env bash
# decode_roofline.sh - decode speed of SmallMind and llama.cpp's llama-bench
# on the same GGUF files, each as a share of this machine's memory roofline:
# the bytes one decoded token reads (SmallMind's profiler: the decode pass's
# weights, KV cache and activations) divided into the read bandwidth of the
# level they live in (the profiler's own measurement, at the same thread
# count). A decode rate at 100 % reads its bytes as fast as the probe does.
#   LLAMA_BENCH=/path/to/llama-bench bash bench/decode_roofline.sh MODEL.gguf...
# Env: SMALLMIND (./build/smallmind), THREADS ("1 2"), N (64), REPS (3 per
# round), ROUNDS (2: the two programs alternate, the best of each is kept),
# MMP (1: both map the model file; 0: both read it into memory, -mmp 0).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${LLAMA_BENCH:?set LLAMA_BENCH to the path of a llama-bench binary (llama.cpp, built outside this checkout)}"
[ $# -ge 1 ] || { echo "usage: LLAMA_BENCH=... $0 MODEL.gguf..." >&2; exit 2; }
SM=${SMALLMIND:-./build/smallmind}
THREADS=${THREADS:-1 2} N=${N:-64} REPS=${REPS:-3} ROUNDS=${ROUNDS:-2} MMP=${MMP:-1}
PY=/usr/bin/python3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# the llama-bench CSV column of a field, by name
ll_col() { head -1 "$1" | tr ',' '\n' | grep -nx "\"\?$2\"\?" | cut -d: -f1; }

echo "| model | threads | MiB read per token | level | ceiling GB/s | SmallMind t/s | llama.cpp t/s | ratio | SmallMind % of roofline | llama.cpp % of roofline |"
echo "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"
for f in "$@"; do
    for t in $THREADS; do
        # the bytes of a decode pass and the ceiling of the level of its largest step
        "$SM" profile "$TMP/p.md" 1 "$N" -m "$f" -t "$t" --json "$TMP/p.json" 2> /dev/null
        read -r bytes level ceiling < <($PY - "$TMP/p.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
steps = [r for r in d["roofline"] if r["phase"] == "decode"]
big = max(steps, key=lambda r: r["bytes"])
print(big["bytes_per_pass"], big["level"], big["ceiling_gbps"])
EOF
)
        sm=0 ll=0
        for r in $(seq "$ROUNDS"); do
            s=$("$SM" bench -m "$f" -p 0 -n "$N" -t "$t" -r "$REPS" -mmp "$MMP" -o csv 2> /dev/null | tail -n +2 | cut -d, -f7)
            "$LLAMA_BENCH" -m "$f" -p 0 -n "$N" -t "$t" -r "$REPS" -mmp "$MMP" -o csv > "$TMP/ll.csv" 2> /dev/null
            l=$(sed -n 2p "$TMP/ll.csv" | cut -d, -f"$(ll_col "$TMP/ll.csv" avg_ts)" | tr -d '"')
            sm=$(awk -v a="$sm" -v b="$s" 'BEGIN { print (b > a ? b : a) }')
            ll=$(awk -v a="$ll" -v b="$l" 'BEGIN { print (b > a ? b : a) }')
        done
        awk -v m="$(basename "$f" .gguf)" -v t="$t" -v by="$bytes" -v lv="$level" -v c="$ceiling" -v s="$sm" -v l="$ll" 'BEGIN {
            roof = c * 1e9 / by
            printf "| %s | %s | %.1f | %s | %.1f | %.1f | %.1f | %.2f | %.0f %% | %.0f %% |\n",
                   m, t, by / 1048576, lv, c, s, l, s / l, 100 * s / roof, 100 * l / roof }'
    done
done
echo
echo "llama.cpp: $LLAMA_BENCH; -mmp $MMP; roofline: SmallMind's profiler (bytes of a decode pass, probe bandwidth of its level)"
