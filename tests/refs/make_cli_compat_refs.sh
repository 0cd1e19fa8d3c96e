#!/usr/bin/env bash
# make_cli_compat_refs.sh - the references of tests/cli_test.sh's llama.cpp
# command-line cases: llama-cli's greedy output (prompt and continuation) on
# stories260K for each line of cli_compat/cases.txt (name | prompt | tokens |
# options, the same options for both programs: escapes in the prompt, -r,
# the OpenAI penalties, and options that change nothing), which `smallmind
# run` must print too.
#   LLAMA_CLI=/path/to/llama-cli bash tests/refs/make_cli_compat_refs.sh
# llama.cpp is built outside this checkout; nothing of it is committed. The
# files committed were made with llama.cpp c392e509's llama-cli.
set -euo pipefail
cd "$(dirname "$0")/cli_compat"
: "${LLAMA_CLI:?set LLAMA_CLI to a llama-cli binary}"
MODEL=${MODEL:-../../../../shared/models/stories260K.gguf}
n=0
while IFS='|' read -r name prompt tokens flags; do
    # shellcheck disable=SC2086
    out=$("$LLAMA_CLI" -m "$MODEL" -p "$prompt" -n "$tokens" --temp 0 $flags -no-cnv --simple-io -t 1 \
          < /dev/null 2> /dev/null; printf x)
    out=${out%x}
    out=${out# }                      # SentencePiece's leading space before the echoed prompt
    while [[ "$out" == *$'\n' ]]; do out=${out%$'\n'}; done
    printf '%s' "$out" > "$name.expected"
    n=$((n + 1))
done < cases.txt
echo "wrote $n expected outputs"
