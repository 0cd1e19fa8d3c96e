#!/usr/bin/env bash
# Records how llama.cpp quantizes and dequantizes the types of
# src/kernels/quant_legacy.h, as the expected values of
# tests/unit/test_types_legacy.c (llamacpp.txt):
#   LLAMA_CPP=/path/to/llama.cpp bash tests/refs/legacy_types/make_refs.sh
# LLAMA_CPP is a built checkout (build/bin/llama-quantize, build/bin/libggml-base.so,
# gguf-py); nothing of it is committed. The committed file was made with
# llama.cpp c392e509.
set -euo pipefail
cd "$(dirname "$0")"
: "${LLAMA_CPP:?set LLAMA_CPP to a built llama.cpp checkout}"
SM=${SM:-../../../build/smallmind}
PY=${PY:-/usr/bin/python3}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
TENSOR=blk.0.ffn_up.weight
# a model llama.cpp loads; one matrix gets the formula values (256 x 256)
"$SM" init "$T/base.gguf" --dim 256 --layers 1 --heads 4 --ffn 256 --ctx 64 --vocab 512 --seed 7 2>/dev/null
"$PY" gen.py "$LLAMA_CPP/gguf-py" fill "$T/base.gguf" "$TENSOR"
cc -O2 -o "$T/ggml_dequant" ggml_dequant.c -I"$LLAMA_CPP/ggml/include" -L"$LLAMA_CPP/build/bin" -lggml-base \
    -Wl,-rpath,"$LLAMA_CPP/build/bin"
args=()
for t in Q4_1 Q5_0 Q5_1 IQ4_NL BF16; do
    "$LLAMA_CPP/build/bin/llama-quantize" --pure "$T/base.gguf" "$T/$t.gguf" "$t" > "$T/log" 2>&1 || { cat "$T/log"; exit 1; }
    num=$("$PY" gen.py "$LLAMA_CPP/gguf-py" extract "$T/$t.gguf" "$TENSOR" "$T/$t.bin")
    "$T/ggml_dequant" "$num" $((256 * 256)) "$T/$t.bin" "$T/$t.f32"
    args+=("$t" "$T/$t.bin" "$T/$t.f32")
done
"$PY" gen.py "$LLAMA_CPP/gguf-py" record llamacpp.txt "$TENSOR" 256 256 "${args[@]}"
echo "wrote $(pwd)/llamacpp.txt"
