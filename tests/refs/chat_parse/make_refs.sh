#!/bin/bash
# make_refs.sh LLAMA_CPP_DIR - builds record.cpp against a llama.cpp checkout
# and build (LLAMA_CPP_DIR/build, made with cmake outside this checkout) in a
# temporary directory and writes replies.jsonl beside replies.json.
set -euo pipefail
L=${1:?usage: make_refs.sh LLAMA_CPP_DIR}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
g++ -std=c++17 -O1 -I"$L/common" -I"$L/include" -I"$L/ggml/include" -I"$L/common/minja" \
    "$here/record.cpp" "$L/build/common/libcommon.a" -L"$L/build/bin" -lllama -lggml -lggml-base \
    -Wl,-rpath,"$L/build/bin" -o "$tmp/record"
"$tmp/record" "$here/replies.json" > "$tmp/out.jsonl"
mv "$tmp/out.jsonl" "$here/replies.jsonl"
echo "$(wc -l < "$here/replies.jsonl") replies written to $here/replies.jsonl"
