#!/usr/bin/env bash
# train_compare.sh - training throughput (tokens/s) of SmallMind and of
# PyTorch on CPU (Debian's python3-torch with libopenblas0-pthread, as a user
# would run it, with OpenBLAS's kernels for this CPU; bench/torch_train.py)
# on the same model shapes, batch, sequence length and threads, side by side
# in one run: in F32, and on a CPU with AVX512_BF16 also in mixed precision
# (SmallMind's --bf16 against PyTorch's CPU autocast to bfloat16).
#   bash bench/train_compare.sh          (needs ../shared for the vocabularies)
#   PRECISIONS="f32 bf16" chooses the tables (default: both where the CPU can)
set -euo pipefail
cd "$(dirname "$0")/.."
SM=${SMALLMIND:-./build/smallmind}
SHARED=${SHARED:-../shared}
# PyTorch's matrix products are OpenBLAS's: without it Debian's torch falls
# back to the reference BLAS, 10-50x slower, and the comparison means nothing.
blas=$(readlink -f /usr/lib/"$(gcc -print-multiarch)"/libblas.so.3 2> /dev/null || true)
case "$blas" in
    *openblas*) ;;
    *) echo "train_compare: libblas.so.3 is not OpenBLAS ($blas): apt-get install libopenblas0-pthread" >&2; exit 1 ;;
esac
# OpenBLAS 0.3.21 (Debian 12) does not know every CPU model: on the Sapphire
# Rapids VM of docs/BENCHMARKS.md it falls back to its Prescott (SSE3)
# kernels, 4x slower than its SkylakeX ones. Unless OPENBLAS_CORETYPE is
# set, pick the kernels for what the CPU supports, and say which ran.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
    core=$(OPENBLAS_VERBOSE=2 /usr/bin/python3 -c "import torch; torch.ones(2, 2) @ torch.ones(2, 2)" 2>&1 | sed -n 's/^Core: //p')
    if [ "$core" = Prescott ] || [ -z "$core" ]; then
        if grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX
        elif grep -qw avx2 /proc/cpuinfo; then export OPENBLAS_CORETYPE=Haswell; fi
    fi
fi
core=$(OPENBLAS_VERBOSE=2 /usr/bin/python3 -c "import torch; torch.ones(2, 2) @ torch.ones(2, 2)" 2>&1 | sed -n 's/^Core: //p')
echo "PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)'), OpenBLAS $blas, core ${core:-?}${OPENBLAS_CORETYPE:+ (OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE)}"
echo
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for i in $(seq 1 200); do echo "The little cat sat on the warm mat and the big dog ran to the red ball in the park."; done > "$TMP/text.txt"
PRECISIONS=${PRECISIONS:-f32 $(grep -qw avx512_bf16 /proc/cpuinfo && echo bf16 || true)}
run() {  # name arch dim layers heads kv ffn vocab_file vocab ctx batch seq steps
    local name=$1 arch=$2 dim=$3 layers=$4 heads=$5 kv=$6 ffn=$7 vf=$8 vocab=$9 ctx=${10} batch=${11} seq=${12} steps=${13}
    local smflag= ptflag=
    [ "$precision" = bf16 ] && smflag=--bf16 ptflag=bf16
    for t in 1 2; do
        # shellcheck disable=SC2086
        sm=$("$SM" train --data "$TMP/text.txt" --tokenizer "$vf" --out "$TMP/m.gguf" --arch "$arch" --dim "$dim" \
            --layers "$layers" --heads "$heads" --kv-heads "$kv" --ffn "$ffn" --ctx "$ctx" --batch "$batch" --seq "$seq" \
            --steps "$steps" --warmup 1 --eval-every 0 -t "$t" --log "$TMP/log.csv" $smflag 2> /dev/null; \
            tail -n +3 "$TMP/log.csv" | awk -F, '{ s += $6; n++ } END { printf "%.0f", s / n }')
        # shellcheck disable=SC2086
        pt=$(OPENBLAS_NUM_THREADS=$t /usr/bin/python3 bench/torch_train.py "$arch" "$dim" "$layers" "$heads" "$kv" "$ffn" \
            "$vocab" "$ctx" "$batch" "$seq" "$t" "$((steps - 2))" $ptflag)
        echo "| $name | $t | $sm | $pt | $(awk -v a="$sm" -v b="$pt" 'BEGIN { printf "%.2f", a / b }') |"
    done
}
for precision in $PRECISIONS; do
    if [ "$precision" = bf16 ]; then
        echo
        echo "Mixed precision: SmallMind --bf16 against PyTorch under torch.autocast(\"cpu\", dtype=torch.bfloat16)"
        echo
    fi
    echo "| shape | threads | SmallMind tok/s | PyTorch tok/s | ratio |"
    echo "|---|---:|---:|---:|---:|"
    run "deep-profile (GPT-2, dim 256, 4 layers, vocab 512)" gpt2 256 4 8 8 1024 "$SHARED/models/stories260K.gguf" 512 128 8 128 8
    run "LLaMA 15M (dim 288, 6 layers, vocab 32000)" llama 288 6 6 6 768 "$SHARED/vocab/ggml-vocab-llama-spm.gguf" 32000 256 8 128 5
done
