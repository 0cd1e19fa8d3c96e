#!/usr/bin/env bash
# serve_scaling.sh - continuous batching, measured: aggregate decode
# throughput of `smallmind serve --parallel 4` with 4 concurrent streaming
# clients against 1 client, on the LLaMA 110M shape in Q8_0 (issue 14's
# target: 4 clients >= 2.5x one). Each client sends REQUESTS greedy requests
# of MAX_TOKENS tokens with short prompts; decode throughput is the rate
# tokens stream out after the first (bench/serve_load.mjs), summed over the
# clients; the wall-clock rate, prompts included, is shown too. The two
# phases alternate ROUNDS times and the best of each is kept (the machine is
# shared). Not a test: it prints the numbers.
#   bash bench/serve_scaling.sh [MODEL.gguf]
# Env: SMALLMIND (./build/smallmind), THREADS (2), REQUESTS (3), MAX_TOKENS (64),
# ROUNDS (2), WORK (/tmp/smallmind-bench; the model is made there once).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/serve_common.sh
THREADS=${THREADS:-2}
REQUESTS=${REQUESTS:-2}
MAX_TOKENS=${MAX_TOKENS:-96}
ROUNDS=${ROUNDS:-3}
MODEL=${1:-$(model_110m_q8)}

port=$(free_port)
"$SM" serve -m "$MODEL" --port "$port" --parallel 4 -c 512 -t "$THREADS" 2> "$WORK/serve_scaling.log" &
pid=$!
trap 'stop_server $pid' EXIT
url="http://127.0.0.1:$port"
wait_ready "$url"
node bench/serve_load.mjs "$url" 1 1 8 > /dev/null   # warm up: the weights in memory
max() { awk -v a="$1" -v b="$2" 'BEGIN { print (b > a) ? b : a }'; }
best1=0 best4=0 wall1=0 wall4=0
for r in $(seq "$ROUNDS"); do
    one=$(node bench/serve_load.mjs "$url" 1 "$REQUESTS" "$MAX_TOKENS" 4)
    four=$(node bench/serve_load.mjs "$url" 4 "$REQUESTS" "$MAX_TOKENS" 4)
    d1=$(json_field "$one" decode_tokens_per_second) d4=$(json_field "$four" decode_tokens_per_second)
    echo "round $r: decode 1 client $d1 tok/s, 4 clients $d4 tok/s"
    echo "  1 client:  $one"
    echo "  4 clients: $four"
    best1=$(max "$best1" "$d1") best4=$(max "$best4" "$d4")
    wall1=$(max "$wall1" "$(json_field "$one" tokens_per_second)") wall4=$(max "$wall4" "$(json_field "$four" tokens_per_second)")
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "| model | threads | measure | 1 client tok/s | 4 clients tok/s (aggregate) | 4 / 1 |"
echo "|---|---:|---|---:|---:|---:|"
printf "| %s | %s | decode | %.1f | %.1f | %s |\n" "$(basename "$MODEL")" "$THREADS" "$best1" "$best4" "$(ratio "$best4" "$best1")"
printf "| %s | %s | wall clock, prompts included | %.1f | %.1f | %s |\n" "$(basename "$MODEL")" "$THREADS" "$wall1" "$wall4" \
    "$(ratio "$wall4" "$wall1")"
