#!/usr/bin/env bash
# Records llama.cpp's chat-template formatting (llama_chat_apply_template
# and common_chat_format_single) as tests/refs/llamacpp/chat_builtin.txt, the
# expected outputs of tests/unit/test_chat_template.c (see chat_refs.cpp for
# the cases and the file format).
#   LLAMA_DIR=/path/to/llama.cpp bash tests/refs/make_chat_refs.sh
# LLAMA_DIR is a llama.cpp checkout built in LLAMA_DIR/build (libllama.so and
# common/libcommon.a); nothing of it is committed. The file committed was
# made with llama.cpp c392e509.
set -euo pipefail
cd "$(dirname "$0")"
: "${LLAMA_DIR:?set LLAMA_DIR to a built llama.cpp checkout}"
B=$LLAMA_DIR/build
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
${CXX:-g++} -std=c++17 -O1 -I"$LLAMA_DIR/include" -I"$LLAMA_DIR/common" -I"$LLAMA_DIR/ggml/include" \
    chat_refs.cpp "$B/common/libcommon.a" -L"$B/bin" -lllama -lggml -lggml-base -Wl,-rpath,"$B/bin" -lpthread \
    -o "$tmp/chat_refs"
# (minja, behind common_chat_format_single, chats on stderr)
"$tmp/chat_refs" > llamacpp/chat_builtin.txt 2> /dev/null
echo "wrote $(grep -c '^end 0$' llamacpp/chat_builtin.txt) cases to tests/refs/llamacpp/chat_builtin.txt"
