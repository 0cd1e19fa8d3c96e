#!/usr/bin/env bash
# Records llama.cpp's token ids for the gpt-2 vocabulary under every split
# the pre-tokenizer table holds: copies of ../shared's ggml-vocab-gpt-2.gguf
# whose tokenizer.ggml.pre names another pre-tokenizer (or, "none", no key
# at all), tokenized by llama-tokenize on llama.cpp's 46 vocabulary strings
# and the strings of pretok/extra.inp (cased words, contractions in capitals,
# digits, accents, combining marks, CJK, chameleon's sentinel and image
# tokens, runs of spaces and tabs). The expected values of the unit test
# tokenizer_pretok_variants.
#   bash tests/refs/make_pretok_refs.sh /path/to/llama-tokenize
# llama.cpp is built outside this checkout; nothing of it is committed. The
# files committed were made with llama.cpp c392e509's llama-tokenize.
set -euo pipefail
LLAMA_TOKENIZE=${1:?usage: make_pretok_refs.sh /path/to/llama-tokenize}
cd "$(dirname "$0")"
VOCAB=${SM_SHARED:-../../../shared}/vocab
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# every case, one file each: the shared strings (their file ends with the
# separator), then ours
{ cat "$VOCAB/ggml-vocab-gpt-2.gguf.inp" pretok/extra.inp; printf '\n__ggml_vocab_test__\n'; } |
    awk -v dir="$tmp" 'BEGIN { RS = "\n__ggml_vocab_test__\n"; ORS = "" } { print > (dir "/case" NR) }'
n=$(ls "$tmp"/case* | wc -l)
for pre in none default llama-bpe dbrx qwen2 megrez starcoder falcon deepseek-coder deepseek-llm deepseek-v3 \
    bloom viking tekken chameleon; do
    python3 gguf_set_pre.py "$VOCAB/ggml-vocab-gpt-2.gguf" "$tmp/v.gguf" "$( [ $pre = none ] && echo - || echo $pre)"
    : > "pretok/$pre.out"
    for i in $(seq 1 "$n"); do
        "$LLAMA_TOKENIZE" -m "$tmp/v.gguf" -f "$tmp/case$i" --ids --no-bos --no-escape --log-disable 2> /dev/null | tail -1 |
            tr -d '[],' >> "pretok/$pre.out"
    done
    echo "$pre: $(wc -l < "pretok/$pre.out") cases"
done
