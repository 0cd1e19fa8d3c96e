#!/usr/bin/env bash
# make_refs.sh LLAMA_CPP_DIR - regenerates ggml_k.txt, the expected values of
# tests/unit/test_types_k.c (types_k_ggml_*), with llama.cpp's own ggml:
# builds ggml_ref.c against LLAMA_CPP_DIR's headers and build/bin libraries,
# runs it, and cross-checks its dequantized values with gguf-py's numpy
# dequantizers (LLAMA_CPP_DIR/gguf-py), a second implementation.
#   tests/refs/types_k/make_refs.sh /work/ext/llama.cpp
set -eu
LC=${1:?usage: make_refs.sh LLAMA_CPP_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cc -O2 -o "$TMP/ggml_ref" "$HERE/ggml_ref.c" -I"$LC/ggml/include" -L"$LC/build/bin" -lggml-base -lggml-cpu -lggml -lm \
    -Wl,-rpath,"$LC/build/bin"
"$TMP/ggml_ref" > "$TMP/ggml_k.txt"
/usr/bin/python3 - "$LC/gguf-py" "$TMP/ggml_k.txt" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from gguf import quants, GGMLQuantizationType as T
typ = None
n = 0
block = None
for line in open(sys.argv[2]):
    tag, *rest = line.split()
    if tag == "type":
        typ = T[rest[0].upper()]
    elif tag == "block":
        block = np.frombuffer(bytes.fromhex(rest[0]), dtype=np.uint8)
    elif tag == "deq":
        want = np.array([float(v) for v in rest], dtype=np.float32)
        got = quants.dequantize(block, typ).astype(np.float32).ravel()
        if not np.allclose(got, want, rtol=1e-6, atol=1e-7):
            sys.exit(f"gguf-py and ggml disagree on a {typ.name} block: max diff {np.abs(got - want).max()}")
        n += 1
print(f"gguf-py agrees with ggml on {n} blocks")
PY
cp "$TMP/ggml_k.txt" "$HERE/ggml_k.txt"
echo "wrote $HERE/ggml_k.txt"
