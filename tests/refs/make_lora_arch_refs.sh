#!/usr/bin/env bash
# make_lora_arch_refs.sh - LoRA references beyond stories260K (tests/lora_test.sh):
# adapters trained by `smallmind train --lora-rank` on tests/refs/arch's
# random-weight models (written again by gen_models.py --embd-std 0.05, so
# their logits are soft enough to train; gemma's 0.01, as its embeddings are
# scaled by sqrt(dim) and its head is tied to them): qwen2 (q/k/v biases, NeoX RoPE),
# llama3 (Llama 3's RoPE frequency factors), gemma (embeddings x sqrt(dim),
# GELU-gated FFN), phi3 (fused QKV and gate+up), gemma2 (soft-capped
# scores and logits, post-norms), granite (its four scalars), stablelm
# (LayerNorm, q/k/v biases, RoPE on part of each head), phi2 (attention and
# FFN in parallel from one LayerNorm, fused QKV, the output's bias) and gptneox
# (in parallel, a LayerNorm each), committed with
# llama.cpp's greedy continuations with them (llama-cli --lora), which
# `smallmind run --lora` must reproduce. An adapter already committed is
# kept (--retrain: train every one again).
#   LLAMA_CLI=/path/to/llama-cli bash tests/refs/make_lora_arch_refs.sh [--retrain]
# llama.cpp is built outside this checkout; nothing of it is committed. The
# files committed were made with llama.cpp c392e509's llama-cli. The
# adapters' training text is Debian's GPL-3 (/usr/share/common-licenses).
set -euo pipefail
cd "$(dirname "$0")/lora"
: "${LLAMA_CLI:?set LLAMA_CLI to a llama-cli binary}"
SM=${SM:-../../../build/smallmind}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# each model's embedding std (the models are written again with it by tests/lora_test.sh)
stds=("qwen2|0.05" "llama3|0.05" "gemma|0.01" "phi3|0.05" "gemma2|0.01" "granite|0.1" "stablelm|0.05" "phi2|0.05"
      "gptneox|0.05")
for e in "${stds[@]}"; do
    IFS='|' read -r m std <<< "$e"
    /usr/bin/python3 ../arch/gen_models.py --embd-std "$std" "$tmp/$std" "$m"
    ln -s "$tmp/$std/$m.gguf" "$tmp/$m.gguf"
done
# each model: the adapters' targets (q and v are parts of phi3's fused qkv) and the training
# sequence (phi3's and gemma2's are within their sliding windows of 16 and 8) and steps (gemma2's
# 26 layers' adapters, trained as long as the others, make it print only spaces, as the base never does)
targets=("qwen2|q,v,down|32|12" "llama3|q,v,down|32|12" "gemma|q,v,down|32|12" "phi3|q,o,up|16|12"
         "gemma2|q,v,down|8|4" "granite|q,v,down|32|30" "stablelm|q,v,down|32|12"
         "phi2|q,o,up|32|12" "gptneox|q,v,down|32|12")
for e in "${targets[@]}"; do
    IFS='|' read -r m tg seq steps <<< "$e"
    [ -e "arch-$m.lora.gguf" ] && [ "${1:-}" != --retrain ] && continue
    "$SM" train --init "$tmp/$m.gguf" --lora-rank 2 --lora-alpha 4 --lora-targets "$tg" \
        --data /usr/share/common-licenses/GPL-3 --out "arch-$m.lora.gguf" --steps "$steps" --batch 4 --seq "$seq" \
        --lr 3e-3 --warmup 3 --eval-every 0 --seed 1 -t 1 2> /dev/null
    rm -f "arch-$m.lora.loss.svg"
done
# each case: name | model | prompt | tokens | the model's embedding std
cases=("arch_qwen2|qwen2|the|32|0.05" "arch_llama3|llama3|GNU General|32|0.05" "arch_gemma|gemma|software|32|0.01"
       "arch_phi3|phi3|software|32|0.05" "arch_gemma2|gemma2|software|32|0.01" "arch_granite|granite|the|32|0.1"
       "arch_stablelm|stablelm|software|32|0.05" "arch_phi2|phi2|the|32|0.05" "arch_gptneox|gptneox|software|32|0.05")
: > arch_cases.txt
for c in "${cases[@]}"; do
    IFS='|' read -r name m prompt n std <<< "$c"
    out=$("$LLAMA_CLI" -m "$tmp/$m.gguf" --lora "arch-$m.lora.gguf" -p "$prompt" -n "$n" --temp 0 -no-cnv \
          --no-warmup -t 1 --simple-io < /dev/null 2> /dev/null; printf x)
    out=${out%x}
    out=${out# }
    [[ "$out" == "$prompt"* ]] || { echo "unexpected output for $name: $out" >&2; exit 1; }
    out=${out#"$prompt"}
    while [[ "$out" == *$'\n' ]]; do out=${out%$'\n'}; done
    printf '%s' "$out" > "$name.expected"
    echo "$name|$m|$prompt|$n|$std" >> arch_cases.txt
done
echo "wrote ${#cases[@]} expected outputs"
