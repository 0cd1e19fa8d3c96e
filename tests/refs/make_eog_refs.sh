#!/usr/bin/env bash
# Records llama.cpp's end-of-generation tokens (llama_vocab_is_eog) of the
# vocabularies in ../shared/vocab, stories260K, the built-in model and the
# small vocabularies of tests/unit/eog_vocabs.h (written by
# tests/tools/eog_vocabs.c, built with `make build/eog_vocabs`) as
# tests/refs/llamacpp/eog.txt, the expected values of
# tests/unit/test_chat_session.c (eog_tokens_match_llamacpp).
#   LLAMA_DIR=/path/to/llama.cpp bash tests/refs/make_eog_refs.sh
# LLAMA_DIR is a llama.cpp checkout built in LLAMA_DIR/build; nothing of it
# is committed. The file committed was made with llama.cpp c392e509.
set -euo pipefail
cd "$(dirname "$0")"
: "${LLAMA_DIR:?set LLAMA_DIR to a built llama.cpp checkout}"
SHARED=${SM_SHARED:-../../../shared}
B=$LLAMA_DIR/build
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
${CC:-cc} -std=c11 -O1 -I"$LLAMA_DIR/include" -I"$LLAMA_DIR/ggml/include" eog_refs.c -L"$B/bin" -lllama \
    -Wl,-rpath,"$B/bin" -o "$tmp/eog_refs"
(cd ../.. && make -s build/eog_vocabs) && ../../build/eog_vocabs "$tmp"
"$tmp/eog_refs" "$SHARED"/vocab/*.gguf "$SHARED"/models/stories260K.gguf ../../models/kjv-3m.gguf "$tmp"/eog-*.gguf \
    > llamacpp/eog.txt
echo "wrote $(wc -l < llamacpp/eog.txt) vocabularies to tests/refs/llamacpp/eog.txt"
