#!/usr/bin/env bash
# make_lora_arch_refs.sh - LoRA references beyond stories260K (tests/lora_test.sh):
# adapters trained by `smallmind train --lora-rank` on tests/refs/arch's
# random-weight models (written again by gen_models.py --embd-std 0.05, so
# their logits are soft enough to train): qwen2 (q/k/v biases, NeoX RoPE)
# and llama3 (Llama 3's RoPE frequency factors), committed with llama.cpp's
# greedy continuations with them (llama-cli --lora), which `smallmind run
# --lora` must reproduce.
#   LLAMA_CLI=/path/to/llama-cli bash tests/refs/make_lora_arch_refs.sh [--keep-adapters]
# llama.cpp is built outside this checkout; nothing of it is committed. The
# files committed were made with llama.cpp c392e509's llama-cli. The
# adapters' training text is Debian's GPL-3 (/usr/share/common-licenses).
set -euo pipefail
cd "$(dirname "$0")/lora"
: "${LLAMA_CLI:?set LLAMA_CLI to a llama-cli binary}"
SM=${SM:-../../../build/smallmind}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 ../arch/gen_models.py --embd-std 0.05 "$tmp" qwen2 llama3
if [ "${1:-}" != --keep-adapters ]; then
    for m in qwen2 llama3; do
        "$SM" train --init "$tmp/$m.gguf" --lora-rank 2 --lora-alpha 4 --lora-targets q,v,down \
            --data /usr/share/common-licenses/GPL-3 --out "arch-$m.lora.gguf" --steps 12 --batch 4 --seq 32 \
            --lr 3e-3 --warmup 3 --eval-every 0 --seed 1 -t 1 2> /dev/null
        rm -f "arch-$m.lora.loss.svg"
    done
fi
# each case: name | model | prompt | tokens
cases=("arch_qwen2|qwen2|the|32" "arch_llama3|llama3|GNU General|32")
: > arch_cases.txt
for c in "${cases[@]}"; do
    IFS='|' read -r name m prompt n <<< "$c"
    out=$("$LLAMA_CLI" -m "$tmp/$m.gguf" --lora "arch-$m.lora.gguf" -p "$prompt" -n "$n" --temp 0 -no-cnv \
          --no-warmup -t 1 --simple-io < /dev/null 2> /dev/null; printf x)
    out=${out%x}
    out=${out# }
    [[ "$out" == "$prompt"* ]] || { echo "unexpected output for $name: $out" >&2; exit 1; }
    out=${out#"$prompt"}
    while [[ "$out" == *$'\n' ]]; do out=${out%$'\n'}; done
    printf '%s' "$out" > "$name.expected"
    echo "$name|$m|$prompt|$n" >> arch_cases.txt
done
echo "wrote ${#cases[@]} expected outputs"
