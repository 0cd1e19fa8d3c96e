#!/usr/bin/env bash
# serve_bench.sh - `smallmind serve` against llama.cpp's llama-server on the
# same GGUF file with the same concurrency, in one run: aggregate generated
# tokens per second and percentiles of time to first token, inter-token
# latency and request latency (bench/serve_load.mjs: CLIENTS streaming
# clients x REQUESTS greedy /v1/completions requests of MAX_TOKENS tokens,
# every prompt different), and the ratios. LLAMA_SERVER is a llama-server
# built outside this checkout (docs/BENCHMARKS.md: llama.cpp c392e509).
#   bash bench/serve_bench.sh LLAMA_SERVER [MODEL.gguf]
# Env: SMALLMIND, CLIENTS (4), REQUESTS (4), MAX_TOKENS (64), THREADS (2),
# CTX (context per slot, 512), WORK. Without MODEL, the LLaMA 110M shape in Q8_0.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/serve_common.sh
LLAMA_SERVER=${1:?usage: bash bench/serve_bench.sh /path/to/llama-server [MODEL.gguf]}
[ -x "$LLAMA_SERVER" ] || { echo "$LLAMA_SERVER is not an executable file" >&2; exit 1; }
CLIENTS=${CLIENTS:-4}
REQUESTS=${REQUESTS:-4}
MAX_TOKENS=${MAX_TOKENS:-64}
THREADS=${THREADS:-2}
CTX=${CTX:-512}
MODEL=${2:-$(model_110m_q8)}
export LD_LIBRARY_PATH="$(dirname "$LLAMA_SERVER")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

run() {   # run NAME COMMAND...: start the server, warm up, measure, stop
    local name=$1 port url pid out
    shift
    port=$(free_port)
    url="http://127.0.0.1:$port"
    "$@" --port "$port" > "$WORK/$name.log" 2>&1 &
    pid=$!
    wait_ready "$url" || { stop_server $pid; tail -5 "$WORK/$name.log" >&2; exit 1; }
    node bench/serve_load.mjs "$url" 1 1 8 > /dev/null
    out=$(node bench/serve_load.mjs "$url" "$CLIENTS" "$REQUESTS" "$MAX_TOKENS")
    stop_server $pid
    echo "$out"
}

sm=$(run smallmind "$SM" serve -m "$MODEL" --parallel "$CLIENTS" -c "$CTX" -t "$THREADS")
ll=$(run llama-server "$LLAMA_SERVER" -m "$MODEL" -np "$CLIENTS" -c $((CTX * CLIENTS)) -t "$THREADS" --no-webui)
echo "smallmind:    $sm"
echo "llama-server: $ll"
echo
echo "$(basename "$MODEL"), $CLIENTS clients x $REQUESTS requests x $MAX_TOKENS tokens, $THREADS threads"
echo
echo "| metric | SmallMind | llama-server | ratio |"
echo "|---|---:|---:|---:|"
for k in tokens_per_second ttft_p50_ms ttft_p90_ms ttft_p99_ms itl_p50_ms itl_p90_ms itl_p99_ms latency_p50_ms latency_p90_ms latency_p99_ms; do
    a=$(json_field "$sm" $k) b=$(json_field "$ll" $k)
    printf "| %s | %s | %s | %s |\n" "$k" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
done
echo
echo "llama-server: $("$LLAMA_SERVER" --version 2>&1 | grep -m1 version)"
