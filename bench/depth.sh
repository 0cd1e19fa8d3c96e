#!/usr/bin/env bash
# depth.sh - decoding deep into the context: SmallMind's `bench -d D -n N`
# against llama.cpp's llama-batched-bench (-npp D -ntg N -npl 1, its S_TG:
# N tokens decoded one at a time after a D-token prompt) on the same GGUF
# files. At depth, each token's attention reads the whole KV cache, so this
# measures attention as well as the weights' stream. llama.cpp keeps its
# cache in F16 (its default), SmallMind in F32 (its default) unless KV=f16
# (-ctk f16 -ctv f16: the same cache as llama.cpp's). KV=q8_0 gives both
# programs a Q8_0 cache (llama.cpp's needs its flash attention, -fa).
#   LLAMA_BATCHED_BENCH=/path/to/llama-batched-bench bash bench/depth.sh MODEL.gguf...
# (llama-batched-bench is built outside this checkout, beside llama-bench.)
# Env: SMALLMIND (./build/smallmind), KV (f32, f16 or bf16: SmallMind's cache; q8_0: both's), DEPTHS ("256 800"), N (64),
# THREADS ("1 2"), ROUNDS (2: the two programs alternate, the best of each
# is kept; SmallMind's rounds are -r 3 each).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${LLAMA_BATCHED_BENCH:?set LLAMA_BATCHED_BENCH to the path of the llama-batched-bench of llama.cpp (built outside this checkout)}"
[ -x "$LLAMA_BATCHED_BENCH" ] || { echo "LLAMA_BATCHED_BENCH=$LLAMA_BATCHED_BENCH is not an executable file" >&2; exit 1; }
[ $# -ge 1 ] || { echo "usage: LLAMA_BATCHED_BENCH=... $0 MODEL.gguf..." >&2; exit 2; }
SM=${SMALLMIND:-./build/smallmind}
DEPTHS=${DEPTHS:-256 800} N=${N:-64} KV=${KV:-f32} THREADS=${THREADS:-1 2} ROUNDS=${ROUNDS:-2}
LLKV=()
[ "$KV" = q8_0 ] && LLKV=(-ctk q8_0 -ctv q8_0 -fa)

echo "| model | threads | depth | SmallMind tg$N t/s (KV $KV) | llama.cpp tg$N t/s | ratio |"
echo "|---|---:|---:|---:|---:|---:|"
for f in "$@"; do
    for t in $THREADS; do
        for d in $DEPTHS; do
            sm=0 ll=0
            for r in $(seq "$ROUNDS"); do
                s=$("$SM" bench -m "$f" -p 0 -n "$N" -d "$d" -t "$t" -r 3 -ctk "$KV" -ctv "$KV" -o csv 2> /dev/null | tail -n +2 | cut -d, -f7 || true)
                # its table: | PP | TG | B | N_KV | T_PP s | S_PP t/s | T_TG s | S_TG t/s | T s | S t/s |
                l=$("$LLAMA_BATCHED_BENCH" -m "$f" -c $((d + N)) -npp "$d" -ntg "$N" -npl 1 -t "$t" "${LLKV[@]}" 2> /dev/null |
                    awk -F'|' -v d="$d" '$2 + 0 == d && $3 + 0 > 0 { gsub(/ /, "", $9); print $9 }' | tail -1 || true)
                [ -n "$s" ] && [ -n "$l" ] || { echo "$(basename "$f"): a run at depth $d, $t threads gave no figure (do DEPTH + N tokens fit the model's context?)" >&2; exit 1; }
                sm=$(awk -v a="$sm" -v b="$s" 'BEGIN { print (b > a ? b : a) }')
                ll=$(awk -v a="$ll" -v b="$l" 'BEGIN { print (b > a ? b : a) }')
            done
            awk -v m="$(basename "$f" .gguf)" -v t="$t" -v d="$d" -v s="$sm" -v l="$ll" \
                'BEGIN { printf "| %s | %s | %s | %.1f | %.1f | %.2f |\n", m, t, d, s, l, s / l }'
        done
    done
done
echo
echo "llama.cpp: $LLAMA_BATCHED_BENCH (S_TG of -npp DEPTH -ntg $N -npl 1 ${LLKV[*]})"
