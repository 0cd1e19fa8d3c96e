#!/usr/bin/env bash
# Records llama.cpp's token ids for texts around special tokens (strip
# attributes, parse_special) as tests/refs/llamacpp/special_tokens.tsv, the
# expected values of the tokenizer_special_tokens_* unit tests.
#   bash tests/refs/make_special_token_refs.sh /path/to/llama-tokenize
# llama.cpp is built outside this checkout; nothing of it is committed. The
# file committed was made with llama.cpp c392e509's llama-tokenize.
# Each line: vocabulary, mode (plain = special-token text is text, special =
# parse_special), the text with \n \t \\ escaped, the ids (no BOS).
set -euo pipefail
LLAMA_TOKENIZE=${1:?usage: make_special_token_refs.sh /path/to/llama-tokenize}
cd "$(dirname "$0")"
VOCAB=${SM_SHARED:-../../../shared}/vocab
out=llamacpp/special_tokens.tsv
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
: > "$out.new"
while IFS=$'\t' read -r vocab mode text; do
    [ -z "$vocab" ] && continue
    printf '%b' "$text" > "$tmp"
    flags=(--ids --no-bos --no-escape --log-disable)
    [ "$mode" = plain ] && flags+=(--no-parse-special)
    ids=$("$LLAMA_TOKENIZE" -m "$VOCAB/ggml-vocab-$vocab.gguf" -f "$tmp" "${flags[@]}" 2> /dev/null | tail -1 | tr -d '[],')
    printf '%s\t%s\t%s\t%s\n' "$vocab" "$mode" "$text" "$ids" >> "$out.new"
done <<'CASES'
phi-3	plain	</s> a
phi-3	plain	a </s> b
phi-3	plain	</s>\n\nb
phi-3	plain	x</s>   </s>  y
phi-3	plain	  </s>
phi-3	plain	</s>\t
phi-3	plain	<s> a
phi-3	plain	<|user|>\nHi
phi-3	special	<|user|>\nHello<|end|>\n<|assistant|>
phi-3	special	<|system|> You are helpful.<|end|>\n<|user|>  hi<|end|>\n<|assistant|>\n
phi-3	special	<s> a
phi-3	special	<unk> x
phi-3	special	<|endoftext|> x
phi-3	special	</s> a
phi-3	special	[PAD32011]  z
phi-3	special	<|user|><|user|>
phi-3	special	a <|end|>
llama-spm	plain	<s>Hello</s>
llama-spm	plain	</s> a
llama-spm	special	<s>Hello</s>
llama-spm	special	<s> Hello </s> x
llama-spm	special	<unk>a
llama-spm	special	a<s>
gpt-2	plain	Hello<|endoftext|> world
gpt-2	special	Hello<|endoftext|> world
gpt-2	special	<|endoftext|><|endoftext|>
deepseek-llm	special	<｜begin▁of▁sentence｜>Hi there
deepseek-llm	plain	<｜begin▁of▁sentence｜>Hi there
CASES
mv "$out.new" "$out"
echo "wrote $(wc -l < "$out") cases to tests/refs/$out"
