#!/usr/bin/env bash
# serve_bench.sh - `smallmind serve` against llama.cpp's llama-server on the
# same GGUF file with the same concurrency, in one run: aggregate generated
# tokens per second and percentiles of time to first token, inter-token
# latency and request latency (bench/serve_load.mjs: CLIENTS streaming
# clients x REQUESTS greedy /v1/completions requests of MAX_TOKENS tokens,
# every prompt different), and the ratios. LLAMA_SERVER is a llama-server
# built outside this checkout (docs/BENCHMARKS.md: llama.cpp c392e509).
#   bash bench/serve_bench.sh LLAMA_SERVER [MODEL.gguf]
# Both servers run at once and are measured in alternation, ROUNDS times,
# each keeping its best round (the machine is shared).
# Env: SMALLMIND, CLIENTS (4), REQUESTS (4), MAX_TOKENS (64), THREADS (2),
# CTX (context per slot, 512), ROUNDS (2), WORK. Without MODEL, the LLaMA
# 110M shape in Q8_0.
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
ROUNDS=${ROUNDS:-2}
MODEL=${2:-$(model_110m_q8)}
export LD_LIBRARY_PATH="$(dirname "$LLAMA_SERVER")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

start() {   # start NAME COMMAND...: a server on a free port; sets its pid and url
    local name=$1 port
    shift
    port=$(free_port)
    "$@" --port "$port" > "$WORK/$name.log" 2>&1 &
    eval "${name}_pid=$!; ${name}_url=http://127.0.0.1:$port"
}

start sm "$SM" serve -m "$MODEL" --parallel "$CLIENTS" -c "$CTX" -t "$THREADS"
start ll "$LLAMA_SERVER" -m "$MODEL" -np "$CLIENTS" -c $((CTX * CLIENTS)) -t "$THREADS" --no-webui
trap 'stop_server $sm_pid; stop_server $ll_pid' EXIT
wait_ready "$sm_url" || { tail -5 "$WORK/sm.log" >&2; exit 1; }
wait_ready "$ll_url" || { tail -5 "$WORK/ll.log" >&2; exit 1; }
node bench/serve_load.mjs "$sm_url" 1 1 8 > /dev/null   # warm up: the weights in memory
node bench/serve_load.mjs "$ll_url" 1 1 8 > /dev/null
# alternate, ROUNDS times, and keep each server's best round (by throughput)
sm="" ll="" best_sm=0 best_ll=0
for r in $(seq "$ROUNDS"); do
    a=$(node bench/serve_load.mjs "$sm_url" "$CLIENTS" "$REQUESTS" "$MAX_TOKENS")
    b=$(node bench/serve_load.mjs "$ll_url" "$CLIENTS" "$REQUESTS" "$MAX_TOKENS")
    echo "round $r smallmind:    $a"
    echo "round $r llama-server: $b"
    ta=$(json_field "$a" tokens_per_second) tb=$(json_field "$b" tokens_per_second)
    if awk -v x="$ta" -v y="$best_sm" 'BEGIN { exit !(x > y) }'; then sm=$a best_sm=$ta; fi
    if awk -v x="$tb" -v y="$best_ll" 'BEGIN { exit !(x > y) }'; then ll=$b best_ll=$tb; fi
done
echo
echo "$(basename "$MODEL"), $CLIENTS clients x $REQUESTS requests x $MAX_TOKENS tokens, $THREADS threads, best of $ROUNDS rounds"
echo
echo "| metric | SmallMind | llama-server | ratio |"
echo "|---|---:|---:|---:|"
for k in tokens_per_second decode_tokens_per_second ttft_p50_ms ttft_p90_ms ttft_p99_ms itl_p50_ms itl_p90_ms itl_p99_ms \
         latency_p50_ms latency_p90_ms latency_p99_ms; do
    x=$(json_field "$sm" $k) y=$(json_field "$ll" $k)
    printf "| %s | %s | %s | %s |\n" "$k" "$x" "$y" "$(awk -v a="$x" -v b="$y" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
done
echo
echo "llama-server: $("$LLAMA_SERVER" --version 2>&1 | grep -m1 version)"
