#!/usr/bin/env bash
# Records llama.cpp's greedy continuations of tests/refs/llamacpp/*.prompt on
# stories260K.gguf, as the expected output of tests/cli_test.sh.
#   LLAMA_SIMPLE=/path/to/llama-simple bash tests/refs/make_llamacpp_refs.sh
# llama.cpp is built outside this checkout; nothing of it is committed.
# The files committed were made with llama.cpp build c392e509 (llama-simple,
# which samples greedily); -n is in the .n file beside each prompt.
set -euo pipefail
cd "$(dirname "$0")/llamacpp"
: "${LLAMA_SIMPLE:?set LLAMA_SIMPLE to a llama-simple binary}"
MODEL=${MODEL:-../../../../shared/models/stories260K.gguf}
for p in *.prompt; do
    name=${p%.prompt}
    n=$(cat "$name.n")
    # llama-simple prints "<s>", the prompt's pieces, the continuation and a
    # newline; keep the continuation only.
    out=$("$LLAMA_SIMPLE" -m "$MODEL" -n "$n" "$(cat "$p")" 2>/dev/null; printf x)
    out=${out%x}
    prefix="<s> $(cat "$p")"
    [[ "$out" == "$prefix"* ]] || { echo "unexpected output for $p" >&2; exit 1; }
    printf '%s' "${out#"$prefix"}" > "$name.expected"
done
# Quantized copies made by `smallmind quantize` (deterministic), for the
# quantized kernels: case01's prompt, 100 tokens.
SM=${SM:-../../../build/smallmind}
for t in F16 Q4_0 BF16; do
    "$SM" quantize "$MODEL" "/tmp/sm-refs-$t.gguf" $t 2>/dev/null
    out=$("$LLAMA_SIMPLE" -m "/tmp/sm-refs-$t.gguf" -n 100 "$(cat case01.prompt)" 2>/dev/null; printf x)
    out=${out%x}
    printf '%s' "${out#"<s> $(cat case01.prompt)"}" > "quant_$t.expected"
    rm -f "/tmp/sm-refs-$t.gguf"
done
echo "wrote $(ls *.expected | wc -l) expected outputs"
