#!/usr/bin/env bash
# make_refs.sh - records llama.cpp's reference values for tests/arch_test.sh.
#
#   LLAMA_CPP=/path/to/llama.cpp SMALLMIND=/path/to/smallmind bash tests/refs/arch/make_refs.sh
#
# LLAMA_CPP is a llama.cpp checkout with a CMake build in build/ (or the build directory
# itself); it is built outside SmallMind and nothing of it is committed. The values committed
# were recorded with llama.cpp c392e509 (see /work/ext/README.txt for how it was built).
# SMALLMIND is a SmallMind checkout with build/smallmind (needed for QUANTIZER=smallmind).
# Options (environment):
#   QUANTIZER=all|llama|smallmind   which quantized files to record (default all):
#       llama     - llama-quantize: every pure type (--pure) and the mixes Q2_K Q3_K_M Q4_K_M
#                   Q5_K_M Q6_K; the mixes of $MIX_MODEL are copied to files/ (committed)
#       smallmind - files written by `smallmind quantize` for every type it accepts (the tests
#                   rebuild these and check their sha256, so re-run this after changing the
#                   quantizer); types it refuses are listed and skipped
#   MODELS="llama gemma2 ..."  a subset of `gen_models.py --list-all` (default: those of --list)
#   TYPES="Q4_K IQ4_XS ..."    a subset of the types (default: all)
#   WORK=DIR KEEP=1            scratch directory, kept when KEEP=1
# For every file: llama.cpp's logits over the model's fixed 32-token sequence (teacher-forced,
# F32 KV cache) and its greedy 32-token continuation (llama_logits.c), then record.py stores
# sha256, llama.cpp's error against the float64 reference of the same file and its argmax ids
# in refs.json (entries of other models/types are kept, so partial runs add to it).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
: "${LLAMA_CPP:?set LLAMA_CPP to a llama.cpp checkout built in build/ (or to its build directory)}"
if [ -x "$LLAMA_CPP/bin/llama-quantize" ] && [ -f "$LLAMA_CPP/CMakeCache.txt" ]; then
    BIN=$LLAMA_CPP/bin
    SRC=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$LLAMA_CPP/CMakeCache.txt")
elif [ -x "$LLAMA_CPP/build/bin/llama-quantize" ]; then
    BIN=$LLAMA_CPP/build/bin
    SRC=$LLAMA_CPP
else
    echo "make_refs.sh: no llama-quantize in $LLAMA_CPP/build/bin or $LLAMA_CPP/bin" >&2; exit 1
fi
QUANTIZER=${QUANTIZER:-all}
case $QUANTIZER in all|llama|smallmind) ;; *) echo "make_refs.sh: QUANTIZER must be all, llama or smallmind" >&2; exit 2;; esac
SM=
if [ "$QUANTIZER" != llama ]; then
    : "${SMALLMIND:?set SMALLMIND to a SmallMind checkout with build/smallmind (or use QUANTIZER=llama)}"
    SM=$SMALLMIND/build/smallmind
    [ -x "$SM" ] || { echo "make_refs.sh: $SM is missing (run make in $SMALLMIND)" >&2; exit 1; }
fi
WORK=${WORK:-$(mktemp -d /tmp/sm-arch-refs.XXXXXX)}
mkdir -p "$WORK"
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT
# the commit recorded: LLAMA_CPP_COMMIT when set (a build from an exported tree has no git)
export LLAMA_CPP_COMMIT=${LLAMA_CPP_COMMIT:-$(git -C "$SRC" rev-parse --short=8 HEAD 2>/dev/null || echo unknown)}
echo "llama.cpp $LLAMA_CPP_COMMIT ($BIN); scratch $WORK"

cc -O2 -o "$WORK/llama_logits" "$HERE/llama_logits.c" -I"$SRC/include" -I"$SRC/ggml/include" \
    -L"$BIN" -lllama -lggml -lggml-base -Wl,-rpath,"$BIN"

ALL_MODELS=$($PY "$HERE/gen_models.py" --list | awk '{print $1}')
MODELS=${MODELS:-$ALL_MODELS}
PURE="F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K Q4_K Q5_K Q6_K IQ4_NL IQ4_XS"
MIXES="Q2_K Q3_K_M Q4_K_M Q5_K_M Q6_K"
SM_TYPES="$PURE Q4_K_M Q5_K_M"
MIX_MODEL=${MIX_MODEL:-llama_tied}
wanted() { [ -z "${TYPES:-}" ] || [[ " $TYPES " == *" $1 "* ]]; }

for m in $MODELS; do
    info=$($PY "$HERE/gen_models.py" --list-all | awk -v m="$m" '$1 == m')
    [ -n "$info" ] || { echo "make_refs.sh: unknown model $m" >&2; exit 2; }
    runs=$(echo "$info" | awk '{print $3}')          # yes: llama.cpp c392e509 runs this architecture
    d=$WORK/$m
    mkdir -p "$d"
    $PY "$HERE/gen_models.py" "$d" "$m"
    toks=$($PY "$HERE/gen_models.py" --tokens "$m")
    : > "$d/list"
    run() {   # key file
        local key=$1 f=$2 base=${2%.gguf}
        if [ "$runs" = yes ]; then
            "$WORK/llama_logits" "$f" "$toks" "$base.logits" "$base.greedy"
            printf '%s\t%s\t%s\t%s\t%s\t64\n' "$key" "$f" "$toks" "$base.logits" "$base.greedy" >> "$d/list"
        else
            printf '%s\t%s\t%s\t-\t-\t64\n' "$key" "$f" "$toks" >> "$d/list"
        fi
    }
    wanted F32 && run "$m/f32/F32" "$d/$m.gguf"
    if [ "$QUANTIZER" != smallmind ] && [ "$runs" = yes ]; then
        for t in $PURE; do
            wanted "$t" || continue
            "$BIN/llama-quantize" --pure "$d/$m.gguf" "$d/lq.$t.gguf" "$t" 1 > "$d/q.log" 2>&1 \
                || { tail -3 "$d/q.log" >&2; exit 1; }
            run "$m/llama-quantize/$t" "$d/lq.$t.gguf"
        done
        for t in $MIXES; do
            wanted "mix-$t" || wanted "$t" || continue
            "$BIN/llama-quantize" "$d/$m.gguf" "$d/lq.mix-$t.gguf" "$t" 1 > "$d/q.log" 2>&1 \
                || { tail -3 "$d/q.log" >&2; exit 1; }
            run "$m/llama-quantize/mix-$t" "$d/lq.mix-$t.gguf"
            if [ "$m" = "$MIX_MODEL" ]; then
                mkdir -p "$HERE/files"
                cp "$d/lq.mix-$t.gguf" "$HERE/files/$m.mix-$t.gguf"
            fi
        done
    fi
    if [ "$QUANTIZER" != llama ]; then
        for t in $SM_TYPES; do
            wanted "$t" || continue
            if "$SM" quantize "$d/$m.gguf" "$d/sm.$t.gguf" "$t" > /dev/null 2> "$d/sm.err"; then
                run "$m/smallmind/$t" "$d/sm.$t.gguf"
            else
                echo "  smallmind quantize does not write $t for $m: $(tail -1 "$d/sm.err")"
            fi
        done
    fi
    $PY "$HERE/record.py" "$HERE" "$d/list"
    rm -rf "$d"
done
echo "refs: $(grep -c '"sha256"' "$HERE/refs.json") entries in $HERE/refs.json"
du -cb "$HERE/refs.json" "$HERE/logits" "$HERE/files" 2>/dev/null | tail -1 | awk '{printf "committed binaries and refs: %.2f MB\n", $1 / 1e6}'
