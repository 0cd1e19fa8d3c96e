#!/usr/bin/env bash
# make_perplexity_refs.sh - the perplexity references of tests/cli_test.sh:
# llama.cpp's llama-perplexity on the same model files, text and context as
# `smallmind perplexity`, which must print the same figure (both score the
# second half of each chunk, llama.cpp's method).
#   LLAMA_PERPLEXITY=/path/to/llama-perplexity bash tests/refs/make_perplexity_refs.sh
# llama.cpp is built outside this checkout; nothing of it is committed. The
# figures committed were made with llama.cpp c392e509. perplexity/text.txt was
# generated once for this purpose and committed as it is: 120 sentences of one
# pattern ("Once upon a time, NAME found THING in PLACE. ...") with names,
# things and places picked at random, in the style of stories260K's text.
set -euo pipefail
cd "$(dirname "$0")/../.."   # paths below are the checkout's
: "${LLAMA_PERPLEXITY:?set LLAMA_PERPLEXITY to a llama-perplexity binary}"
SM=${SM:-build/smallmind}
SHARED=${SHARED:-../shared}
REFS=tests/refs/perplexity
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# a Q8_0 copy made by `smallmind quantize` (deterministic), for a quantized file
"$SM" quantize "$SHARED/models/stories260K.gguf" "$tmp/stories260K-q8_0.gguf" Q8_0 2> /dev/null
model() {  # the name cases.txt uses -> a path
    case $1 in
        stories260K) echo "$SHARED/models/stories260K.gguf" ;;
        stories260K-q8_0) echo "$tmp/stories260K-q8_0.gguf" ;;
        kjv-3m) echo models/kjv-3m.gguf ;;
    esac
}
# each case: name | model | -c | llama-perplexity's extra flags (the same as smallmind's)
cases=(
    "stories_c128|stories260K|128|"
    "stories_c32|stories260K|32|"
    "stories_q8_0_c64|stories260K-q8_0|64|"
    "stories_lora_c64|stories260K|64|--lora tests/refs/lora/stories260K-a.lora.gguf"
    "kjv_c64|kjv-3m|64|"
    "stories_5_chunks_c64|stories260K|64|--chunks 5"
)
: > "$REFS/cases.txt"
for c in "${cases[@]}"; do
    IFS='|' read -r name m ctx flags <<< "$c"
    # shellcheck disable=SC2086
    ppl=$("$LLAMA_PERPLEXITY" -m "$(model "$m")" -f "$REFS/text.txt" -c "$ctx" -b "$ctx" -t 1 $flags 2>&1 |
          sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p')
    [ -n "$ppl" ] || { echo "no estimate for $name" >&2; exit 1; }
    echo "$name|$m|$ctx|$flags|$ppl" >> "$REFS/cases.txt"
done
echo "wrote ${#cases[@]} cases"
