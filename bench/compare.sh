#!/usr/bin/env bash
# compare.sh - SmallMind and llama.cpp's llama-bench on the same GGUF files,
# in one run, with the ratios. LLAMA_BENCH is the path of a llama-bench built
# outside this checkout; docs/BENCHMARKS.md was measured against llama.cpp
# commit c392e509, and the commit the binary reports is printed under the table:
#   LLAMA_BENCH=/path/to/llama-bench bash bench/compare.sh [MODELS] [TYPES]
# MODELS: any of llama15m llama110m gpt2-124m (default: all three)
# TYPES:  any of F32 F16 Q8_0 Q4_0 (default: all four)
# Env: SMALLMIND (default ./build/smallmind), THREADS (1,2), REPS (3), ROUNDS
# (1: with more, the two programs run in alternation that many times and the
# best t/s of each is kept, as bench/ab.sh does: a noisy neighbour that slows
# one round slows both programs' rounds alike),
# WORK (where the model files go; default /tmp/smallmind-bench), SHARED
# (../shared, for the Llama 2 and GPT-2 vocabularies).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${LLAMA_BENCH:?set LLAMA_BENCH to the path of a llama-bench binary (llama.cpp, built outside this checkout)}"
[ -x "$LLAMA_BENCH" ] || { echo "LLAMA_BENCH=$LLAMA_BENCH is not an executable file" >&2; exit 1; }
MEASURED_COMMIT=c392e509
SM=${SMALLMIND:-./build/smallmind}
THREADS=${THREADS:-1,2}
REPS=${REPS:-3}
ROUNDS=${ROUNDS:-1}
WORK=${WORK:-/tmp/smallmind-bench}
SHARED=${SHARED:-../shared}
MODELS=${1:-"llama15m llama110m gpt2-124m"}
TYPES=${2:-"F32 F16 Q8_0 Q4_0"}
mkdir -p "$WORK"

shape() {
    case $1 in
        llama15m) echo "--arch llama --dim 288 --layers 6 --heads 6 --ffn 768 --ctx 256" ;;
        llama110m) echo "--arch llama --dim 768 --layers 12 --heads 12 --ffn 2048 --ctx 1024" ;;
        gpt2-124m) echo "--arch gpt2 --dim 768 --layers 12 --heads 12 --ffn 3072 --ctx 1024" ;;
    esac
}
vocab() {
    case $1 in
        gpt2-*) [ -e "$SHARED/vocab/ggml-vocab-gpt-2.gguf" ] && echo "--vocab-from $SHARED/vocab/ggml-vocab-gpt-2.gguf" || echo "--vocab 50257" ;;
        *) [ -e "$SHARED/vocab/ggml-vocab-llama-spm.gguf" ] && echo "--vocab-from $SHARED/vocab/ggml-vocab-llama-spm.gguf" || echo "--vocab 32000" ;;
    esac
}

echo "| model | type | threads | test | SmallMind t/s | llama.cpp t/s | ratio |"
echo "|---|---|---:|---:|---:|---:|---:|"
for m in $MODELS; do
    base="$WORK/$m-F32.gguf"
    [ -e "$base" ] || "$SM" init "$base" $(shape $m) $(vocab $m) --seed 1 2> /dev/null
    for t in $TYPES; do
        f="$WORK/$m-$t.gguf"
        [ "$t" = F32 ] || [ -e "$f" ] || "$SM" quantize "$base" "$f" $t 2> /dev/null
        : > "$WORK/sm_all.csv"
        : > "$WORK/ll.csv"
        for _ in $(seq "$ROUNDS"); do
            "$SM" bench -m "$f" -p 128 -n 64 -t "$THREADS" -r "$REPS" -o csv 2> /dev/null | tail -n +2 >> "$WORK/sm_all.csv"
            "$LLAMA_BENCH" -m "$f" -p 128 -n 64 -t "$THREADS" -r "$REPS" -o csv 2> /dev/null | tail -n +2 >> "$WORK/ll.csv"
        done
        # SmallMind's best row of each (threads, test), in the order they first came
        awk -F, '{ k = $5 "," $6; if (!(k in b)) { o[++n] = k; b[k] = -1 } if ($7 + 0 > b[k]) { b[k] = $7 + 0; row[k] = $0 } }
                 END { for (i = 1; i <= n; i++) print row[o[i]] }' "$WORK/sm_all.csv" > "$WORK/sm.csv"
        # llama-bench's CSV: n_threads and avg_ts by column name
        probe=$("$LLAMA_BENCH" -m "$f" -p 0 -n 1 -t 1 -r 1 -o csv 2> /dev/null)
        header=$(echo "$probe" | head -1)
        col() { echo "$header" | tr ',' '\n' | grep -nx "\"\?$1\"\?" | cut -d: -f1; }
        c_thr=$(col n_threads); c_pp=$(col n_prompt); c_tg=$(col n_gen); c_ts=$(col avg_ts)
        build_commit=$(echo "$probe" | sed -n 2p | cut -d, -f"$(col build_commit)" | tr -d '"')
        while IFS=, read -r model size params kernels thr test ts sd; do
            n=${test#??}
            if [ "${test:0:2}" = pp ]; then key="$c_pp"; else key="$c_tg"; fi
            ll=$(awk -F, -v thr="$thr" -v n="$n" -v ct="$c_thr" -v ck="$key" -v cs="$c_ts" \
                '{ gsub(/"/, ""); if ($ct == thr && $ck == n && $cs + 0 > b) b = $cs + 0 } END { if (b > 0) print b }' "$WORK/ll.csv")
            ratio=$(awk -v a="$ts" -v b="${ll:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
            printf "| %s | %s | %s | %s | %.1f | %s | %s |\n" "$m" "$t" "$thr" "$test" "$ts" "${ll:--}" "$ratio"
        done < "$WORK/sm.csv"
    done
done
echo
[ "$ROUNDS" -gt 1 ] && echo "Each figure: the best of $ROUNDS alternating rounds of -r $REPS."
echo "llama.cpp: llama-bench build_commit ${build_commit:-unknown} ($LLAMA_BENCH)"
case ${build_commit:-} in
    "$MEASURED_COMMIT"*) ;;
    *) echo "warning: docs/BENCHMARKS.md was measured against llama.cpp $MEASURED_COMMIT" >&2 ;;
esac
