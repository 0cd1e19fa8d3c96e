#!/usr/bin/env bash
# make_lora_refs.sh - the LoRA references of tests/lora_test.sh: two adapters
# for stories260K trained by `smallmind train --lora-rank` (committed, since
# a retrained adapter differs in its last bits from machine to machine), and
# llama.cpp's greedy continuations with them (llama-cli --lora /
# --lora-scaled), which SmallMind's `run --lora` must reproduce.
#   LLAMA_CLI=/path/to/llama-cli bash tests/refs/make_lora_refs.sh [--keep-adapters]
# llama.cpp is built outside this checkout; nothing of it is committed. The
# files committed were made with llama.cpp c392e509's llama-cli (-no-cnv,
# --temp 0: greedy). With --keep-adapters the committed adapters are reused
# and only llama.cpp's outputs are recorded again. The adapters' training text
# is the King James Bible (Debian's bible-kjv, public domain).
set -euo pipefail
cd "$(dirname "$0")/lora"
: "${LLAMA_CLI:?set LLAMA_CLI to a llama-cli binary}"
SM=${SM:-../../../build/smallmind}
MODEL=${MODEL:-../../../../shared/models/stories260K.gguf}
if [ "${1:-}" != --keep-adapters ]; then
    command -v bible > /dev/null || { echo "needs bible-kjv (apt-get install bible-kjv)"; exit 1; }
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    # the verses' text without chapter headings and verse numbers
    verses() { bible -l100000 "$1" | sed -E '/^[0-9A-Za-z ]+ [0-9]+$/d; /^ *$/d; s/^ *[0-9]+ //'; }
    verses "gen1:1-gen11:32" > "$tmp/a.txt"
    verses "ps1:1-ps41:13" > "$tmp/b.txt"
    # a: every projection, rank 4, alpha 8; b: q, v and down, rank 2, alpha 4
    "$SM" train --init "$MODEL" --lora-rank 4 --lora-alpha 8 --data "$tmp/a.txt" --out stories260K-a.lora.gguf \
        --steps 40 --batch 8 --seq 64 --lr 5e-3 --warmup 5 --eval-every 0 --seed 1 2> /dev/null
    "$SM" train --init "$MODEL" --lora-rank 2 --lora-alpha 4 --lora-targets q,v,down --data "$tmp/b.txt" \
        --out stories260K-b.lora.gguf --steps 20 --batch 8 --seq 64 --lr 3e-3 --warmup 5 --eval-every 0 --seed 2 2> /dev/null
    rm -f stories260K-?.lora.loss.svg
fi
# a Q8_0 copy made by `smallmind quantize` (deterministic), for a quantized base
Q8=$(mktemp --suffix=.gguf)
"$SM" quantize "$MODEL" "$Q8" Q8_0 2> /dev/null
# each case: name | base | prompt | tokens | llama-cli's adapter flags (the same as smallmind run's);
# cases.txt names the base's type (F32: stories260K itself, Q8_0: its quantized copy)
cases=(
    "a|$MODEL|Once upon a time|48|--lora stories260K-a.lora.gguf"
    "a_b_half|$MODEL|The little dog|48|--lora stories260K-a.lora.gguf --lora-scaled stories260K-b.lora.gguf 0.5"
    "b_scaled|$MODEL|Lily wanted to|48|--lora-scaled stories260K-b.lora.gguf 1.2"
    "a_q8_0|$Q8|Once upon a time|48|--lora stories260K-a.lora.gguf"
)
: > cases.txt
for c in "${cases[@]}"; do
    IFS='|' read -r name base prompt n flags <<< "$c"
    # llama-cli echoes the prompt (with SentencePiece's leading space) before the continuation
    # shellcheck disable=SC2086
    out=$("$LLAMA_CLI" -m "$base" $flags -p "$prompt" -n "$n" --temp 0 -no-cnv --no-warmup -t 1 --simple-io \
        < /dev/null 2> /dev/null; printf x)
    out=${out%x}
    out=${out# }
    [[ "$out" == "$prompt"* ]] || { echo "unexpected output for $name: $out" >&2; exit 1; }
    out=${out#"$prompt"}
    out=${out%$'\n'}
    out=${out%$'\n'}
    printf '%s' "$out" > "$name.expected"
    echo "$name|$([ "$base" = "$Q8" ] && echo Q8_0 || echo F32)|$prompt|$n|$flags" >> cases.txt
done
rm -f "$Q8"
echo "wrote ${#cases[@]} expected outputs"
