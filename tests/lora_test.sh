#!/usr/bin/env bash
# lora_test.sh - LoRA end to end: `run --lora` / `--lora-scaled` reproduce
# llama.cpp's greedy continuations with the same adapters (recorded by
# tests/refs/make_lora_refs.sh) on stories260K and its Q8_0 copy;
# merge-lora's model generates what the base with the adapters generates;
# `train --lora-rank` lowers the loss on a frozen base, writes an adapter
# llama.cpp's loader accepts (the format checks of llama-adapter.cpp are
# mirrored by sm_adapter_load) and resumes a checkpoint bit for bit; bad
# uses get one-line errors.
set -u
BUILD=${BUILD:-build}
SM="$BUILD/smallmind"
SHARED=${SM_SHARED:-../shared}
REFS=tests/refs/lora
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0 skip=0
. tests/serve_port.sh
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && echo "    $2"; }
BASE="$SHARED/models/stories260K.gguf"

if [ -e "$BASE" ]; then
    "$SM" quantize "$BASE" "$TMP/q8_0.gguf" Q8_0 2> /dev/null
    while IFS='|' read -r name type prompt n flags; do
        model=$BASE
        [ "$type" = Q8_0 ] && model="$TMP/q8_0.gguf"
        flags=${flags//stories260K-/$REFS/stories260K-}
        # shellcheck disable=SC2086
        got=$("$SM" run -m "$model" $flags -p "$prompt" -n "$n" --temp 0 --no-display-prompt 2> "$TMP/err"; printf x)
        got=${got%x}
        got=${got%$'\n'}
        plain=$("$SM" run -m "$model" -p "$prompt" -n "$n" --temp 0 --no-display-prompt 2> /dev/null)
        want=$(cat "$REFS/$name.expected"; printf x)
        want=${want%x}
        if [ "$got" = "$want" ] && [ "$plain" != "$want" ]; then
            ok "llamacpp_lora_$name"
        else
            bad "llamacpp_lora_$name" "got '$got', llama.cpp '$want' (without the adapter '$plain') $(tail -c 200 "$TMP/err")"
        fi
    done < "$REFS/cases.txt"

    # serve --lora: a greedy completion equals llama.cpp's with the same adapter
    if command -v curl > /dev/null && "$SM" serve --help > /dev/null 2>&1; then
        "$SM" serve -m "$BASE" --lora "$REFS/stories260K-a.lora.gguf" --port 0 --parallel 2 -t 1 2> "$TMP/serve.err" &
        spid=$!
        port=$(serve_port "$TMP/serve.err")
        got=$(curl -s "http://127.0.0.1:$port/v1/completions" \
              -d '{"prompt": "Once upon a time", "max_tokens": 48, "temperature": 0}' |
              /usr/bin/python3 -c 'import json, sys; sys.stdout.write(json.load(sys.stdin)["choices"][0]["text"])' 2> /dev/null)
        kill "$spid" 2> /dev/null
        wait "$spid" 2> /dev/null
        want=$(cat "$REFS/a.expected"; printf x)
        want=${want%x}
        if [ -n "$got" ] && [ "$got" = "${want%$'\n'}" ]; then ok "serve_lora_equals_llamacpp"
        else bad "serve_lora_equals_llamacpp" "got '$got', llama.cpp '$want' $(tail -c 200 "$TMP/serve.err")"; fi
    else
        skip=$((skip + 1)); echo "skip serve_lora_equals_llamacpp: no curl or no server in this build"
    fi

    # merge-lora: the merged F32 model generates what the base with the adapters does
    A="$REFS/stories260K-a.lora.gguf" B="$REFS/stories260K-b.lora.gguf"
    "$SM" merge-lora "$BASE" "$A" "$TMP/m_a.gguf" 2> "$TMP/err" \
        && "$SM" merge-lora "$BASE" "$A" "$TMP/m_ab.gguf" --lora-scaled "$B" 0.5 2>> "$TMP/err"
    for c in "a|Once upon a time|--lora $A" "ab|The little dog|--lora $A --lora-scaled $B 0.5"; do
        IFS='|' read -r name prompt flags <<< "$c"
        # shellcheck disable=SC2086
        with=$("$SM" run -m "$BASE" $flags -p "$prompt" -n 64 --temp 0 2> /dev/null)
        merged=$("$SM" run -m "$TMP/m_$name.gguf" -p "$prompt" -n 64 --temp 0 2> /dev/null)
        if [ -n "$with" ] && [ "$with" = "$merged" ]; then ok "merge_equals_runtime_$name"; else bad "merge_equals_runtime_$name" "'$with' vs '$merged' $(cat "$TMP/err")"; fi
    done
    # baked into the Q8_0 copy (requantized): a Q8_0 model, still close to the adapted F32 one
    "$SM" merge-lora "$TMP/q8_0.gguf" "$A" "$TMP/m_q8.gguf" 2> /dev/null
    "$SM" merge-lora "$BASE" "$A" "$TMP/m_t.gguf" --type Q8_0 2> /dev/null
    if "$SM" inspect "$TMP/m_q8.gguf" 2> /dev/null | grep -q "blk.0.attn_q.weight *Q8_0" \
        && "$SM" inspect "$TMP/m_t.gguf" 2> /dev/null | grep -q "blk.0.attn_v.weight *Q8_0"; then
        ok "merge_keeps_or_converts_the_type"
    else
        bad "merge_keeps_or_converts_the_type"
    fi
    printf 'Once upon a time, there was a little girl named Lily. She loved to play outside.\n%.0s' $(seq 1 30) > "$TMP/ppl.txt"
    p_base=$("$SM" perplexity -m "$BASE" -f "$TMP/ppl.txt" -c 64 2> /dev/null | sed -n 's/perplexity: \([0-9.]*\).*/\1/p')
    p_lora=$("$SM" perplexity -m "$BASE" --lora "$A" -f "$TMP/ppl.txt" -c 64 2> /dev/null | sed -n 's/perplexity: \([0-9.]*\).*/\1/p')
    p_merged=$("$SM" perplexity -m "$TMP/m_a.gguf" -f "$TMP/ppl.txt" -c 64 2> /dev/null | sed -n 's/perplexity: \([0-9.]*\).*/\1/p')
    # the adapter at run time (W x + s B (A x)) and baked in ((W + s B A) x) round differently: equal
    # to 1e-4 relative (they differ by about 1e-5), while the adapter moves it by far more
    if [ -n "$p_lora" ] && [ -n "$p_merged" ] && [ -n "$p_base" ] &&
        awk -v a="$p_lora" -v b="$p_merged" -v c="$p_base" 'BEGIN { d = a - b; e = a - c
            exit !((d < 0 ? -d : d) <= 1e-4 * a && (e < 0 ? -e : e) > 1e-2 * a) }'; then
        ok "perplexity_with_lora ($p_base without, $p_lora with, $p_merged merged)"
    else
        bad "perplexity_with_lora" "'$p_base' '$p_lora' '$p_merged'"
    fi
else
    skip=$((skip + 7)); echo "skip llamacpp_lora_*, merge_*, perplexity_with_lora: ../shared is absent"
fi

# adapters on other architectures (tests/refs/make_lora_arch_refs.sh): qwen2 (q/k/v biases, NeoX RoPE),
# llama3 (RoPE frequency factors), gemma (embeddings x sqrt(dim), GEGLU), phi3 (fused QKV and
# gate+up), gemma2 (soft caps, post-norms), granite (its four scalars), stablelm (partial RoPE, biases), phi2
# (a parallel residual from one norm, the output's bias) and gptneox (in parallel, a norm each), all trained by SmallMind, the random-weight bases written again by gen_models.py; the
# same tokens as llama-cli --lora (its raw bytes read as UTF-8 with U+FFFD for invalid ones, as
# SmallMind prints them), which differ from the base's own
while IFS='|' read -r name m prompt n std; do
    base="$TMP/arch/$std/$m.gguf"
    if ! [ -e "$base" ] && ! /usr/bin/python3 tests/refs/arch/gen_models.py --embd-std "$std" "$TMP/arch/$std" "$m" \
        2> "$TMP/err"; then
        bad "llamacpp_lora_$name" "gen_models.py: $(tail -c 200 "$TMP/err")"
        continue
    fi
    "$SM" run -m "$base" --lora "$REFS/arch-$m.lora.gguf" -p "$prompt" -n "$n" --temp 0 \
        --no-display-prompt -t 1 > "$TMP/got" 2> "$TMP/err"
    "$SM" run -m "$base" -p "$prompt" -n "$n" --temp 0 --no-display-prompt -t 1 > "$TMP/plain" 2> /dev/null
    if /usr/bin/python3 -c 'import sys
got = open(sys.argv[1], "rb").read().rstrip(b"\n").decode("utf-8")
plain = open(sys.argv[3], "rb").read().rstrip(b"\n").decode("utf-8", "replace")
want = open(sys.argv[2], "rb").read().decode("utf-8", "replace")
sys.exit(0 if got == want and got != plain else 1)' "$TMP/got" "$REFS/$name.expected" "$TMP/plain"; then
        ok "llamacpp_lora_$name"
    else
        bad "llamacpp_lora_$name" "got '$(head -c 100 "$TMP/got")' $(tail -c 200 "$TMP/err")"
    fi
done < "$REFS/arch_cases.txt"
# training: a base trained here on two corpora (long enough that its embeddings and head, which LoRA does
# not change, can express sharp predictions), frozen as Q8_0; an adapter fitted to the second corpus
for i in $(seq 1 40); do
    echo "The little cat sat on the warm mat. The big dog ran to the red ball."
    echo "Once upon a time there was a girl who loved to play in the park."
done > "$TMP/c1.txt"
for i in $(seq 1 40); do
    echo "A small bird sang in the tall tree. The old man walked to the river."
    echo "In the morning the sun rose over the green hills and the farm."
done > "$TMP/corpus.txt"
cat "$TMP/c1.txt" "$TMP/corpus.txt" > "$TMP/both.txt"
"$SM" train --data "$TMP/both.txt" --out "$TMP/base.gguf" --arch llama --dim 64 --layers 2 --heads 4 --batch 8 \
    --seq 32 --steps 100 --lr 3e-3 --warmup 10 --eval-every 0 2> /dev/null
"$SM" quantize "$TMP/base.gguf" "$TMP/base_q8.gguf" Q8_0 2> /dev/null
lora=(--init "$TMP/base_q8.gguf" --lora-rank 8 --data "$TMP/corpus.txt" --batch 8 --seq 32 --lr 1e-2 --warmup 5
      --eval-every 0 -t 1)
"$SM" train "${lora[@]}" --steps 60 --out "$TMP/a.lora.gguf" --log "$TMP/a.csv" 2> "$TMP/err"
first=$(sed -n 2p "$TMP/a.csv" | cut -d, -f2); last=$(tail -1 "$TMP/a.csv" | cut -d, -f2)
meta=$("$SM" inspect "$TMP/a.lora.gguf" 2> /dev/null)
if awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < 0.7 * a) }' && echo "$meta" | grep -q 'general.type *string *"adapter"' \
    && echo "$meta" | grep -q 'adapter.lora.alpha *f32 *8' && echo "$meta" | grep -q 'blk.1.ffn_down.weight.lora_b *F32 *8 x 64'; then
    ok "lora_training_lowers_loss_on_q8_0_base ($first -> $last)"
else
    bad "lora_training_lowers_loss_on_q8_0_base" "$first -> $last $(tail -c 300 "$TMP/err")"
fi
if "$SM" run -m "$TMP/base_q8.gguf" --lora "$TMP/a.lora.gguf" -n 8 --temp 0 > /dev/null 2>&1; then ok "trained_adapter_runs"; else bad "trained_adapter_runs"; fi
# mixed precision (--bf16: the products through the frozen Q8_0 base rounded to BF16): on a CPU with
# AVX512_BF16 it learns as the F32 adapter did (the same flags; its last loss within 10 % of that one's)
if grep -qw avx512_bf16 /proc/cpuinfo && grep -qw avx512_vnni /proc/cpuinfo; then
    "$SM" train "${lora[@]}" --steps 60 --bf16 --out "$TMP/b.lora.gguf" --log "$TMP/b.csv" 2> "$TMP/err"
    bfirst=$(sed -n 2p "$TMP/b.csv" | cut -d, -f2); blast=$(tail -1 "$TMP/b.csv" | cut -d, -f2)
    if awk -v a="$bfirst" -v b="$blast" -v f="$last" 'BEGIN { d = b - f; if (d < 0) d = -d; exit !(b < 0.7 * a && d <= 0.1 * f) }'; then
        ok "lora_bf16_learns_as_f32 ($bfirst -> $blast; F32 $last)"
    else
        bad "lora_bf16_learns_as_f32" "$bfirst -> $blast, F32 $last $(tail -c 300 "$TMP/err")"
    fi
else
    if ! "$SM" train "${lora[@]}" --steps 2 --bf16 --out "$TMP/b.lora.gguf" 2> "$TMP/err" &&
        grep -q "needs a CPU with AVX512_BF16" "$TMP/err"; then
        ok "lora_bf16_refused_without_avx512_bf16"
    else
        bad "lora_bf16_refused_without_avx512_bf16" "$(tail -c 300 "$TMP/err")"
    fi
fi
# resume: 20 steps = 10 + checkpoint + 10 resumed, bit for bit
const=(--lr 1e-2 --min-lr 1e-2 --warmup 0)
"$SM" train "${lora[@]}" "${const[@]}" --steps 20 --out "$TMP/r20.gguf" 2> /dev/null
"$SM" train "${lora[@]}" "${const[@]}" --steps 10 --checkpoint-every 10 --out "$TMP/r10.gguf" 2> /dev/null
"$SM" train "${lora[@]}" "${const[@]}" --steps 20 --resume "$TMP/r10.gguf.ckpt" --out "$TMP/r10.gguf" 2> "$TMP/err"
if [ -s "$TMP/r20.gguf" ] && cmp -s "$TMP/r20.gguf" "$TMP/r10.gguf"; then ok "lora_resume_bit_for_bit"; else bad "lora_resume_bit_for_bit" "$(tail -c 300 "$TMP/err")"; fi

# chat examples: the template goes into the adapter, and from there into the merged model
for i in $(seq 1 12); do
    echo "{\"messages\": [{\"role\": \"user\", \"content\": \"Where did the bird sing? $i\"}, {\"role\": \"assistant\", \"content\": \"A small bird sang in the tall tree.\"}]}"
done > "$TMP/chat.jsonl"
"$SM" train --init "$TMP/base_q8.gguf" --lora-rank 4 --data "$TMP/chat.jsonl" --batch 2 --seq 128 --steps 4 \
    --eval-every 2 -t 1 --out "$TMP/chat.lora.gguf" 2> "$TMP/err"
"$SM" merge-lora "$TMP/base_q8.gguf" "$TMP/chat.lora.gguf" "$TMP/chat.gguf" 2>> "$TMP/err"
if grep -q "12 examples (chatml)" "$TMP/err" && "$SM" inspect "$TMP/chat.lora.gguf" 2> /dev/null | grep -q "tokenizer.chat_template" \
    && "$SM" inspect "$TMP/chat.gguf" 2> /dev/null | grep -q "tokenizer.chat_template *string *\"{% for message"; then
    ok "chat_lora_carries_its_template_into_the_merge"
else
    bad "chat_lora_carries_its_template_into_the_merge" "$(tail -c 300 "$TMP/err")"
fi

# chat examples in a template no built-in format knows, run as Jinja: the adapter carries it, the merged
# model has it, and training on that model runs it without --jinja (its reply tokens: the same count)
cat > "$TMP/qa.jinja" << 'EOF'
{% for m in messages %}{% if m['role'] == 'user' %}{{ '### Question: ' + m['content'] + '\n' }}{% elif m['role'] == 'assistant' %}{{ '### Reply: ' + m['content'] + eos_token }}{% else %}{{ m['content'] + '\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '### Reply: ' }}{% endif %}
EOF
"$SM" train --init "$TMP/base_q8.gguf" --lora-rank 4 --jinja --chat-template-file "$TMP/qa.jinja" --data "$TMP/chat.jsonl" \
    --batch 2 --seq 128 --steps 2 --eval-every 0 -t 1 --out "$TMP/qa.lora.gguf" 2> "$TMP/err"
"$SM" merge-lora "$TMP/base_q8.gguf" "$TMP/qa.lora.gguf" "$TMP/qa.gguf" 2>> "$TMP/err"
"$SM" train --init "$TMP/qa.gguf" --data "$TMP/chat.jsonl" --batch 2 --seq 128 --steps 1 --eval-every 0 -t 1 \
    --out "$TMP/qa2.gguf" 2> "$TMP/err2"
replies=$(sed -n 's/.*12 examples (Jinja), [0-9]* tokens, \([0-9]*\) of them in replies.*/\1/p' "$TMP/err")
if [ -n "$replies" ] && grep -q "running it as Jinja" "$TMP/err2" && grep -q "12 examples (Jinja), [0-9]* tokens, $replies of them" "$TMP/err2" \
    && "$SM" inspect "$TMP/qa.gguf" 2> /dev/null | grep -q "tokenizer.chat_template *string *\"{% for m in messages %}"; then
    ok "chat_sft_runs_a_jinja_template"
else
    bad "chat_sft_runs_a_jinja_template" "$(tail -c 300 "$TMP/err") $(tail -c 300 "$TMP/err2")"
fi
# a model template that cannot be cut into replies (its last reply differs once another turn follows):
# run unasked it gives way to chatml with a warning; with --jinja it is an error naming the message
cat > "$TMP/last.jinja" << 'EOF'
{% for m in messages %}{{ m['role'] + ': ' + m['content'] }}{% if loop.last and m['role'] == 'assistant' %}{{ eos_token }}{% endif %}{{ '\n' }}{% endfor %}{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}
EOF
for i in $(seq 1 6); do
    echo "{\"messages\": [{\"role\": \"user\", \"content\": \"Where did the bird sing? $i\"}, {\"role\": \"assistant\", \"content\": \"In the tree.\"}, {\"role\": \"user\", \"content\": \"And then?\"}, {\"role\": \"assistant\", \"content\": \"It flew away.\"}]}"
done > "$TMP/two.jsonl"
"$SM" train --init "$TMP/base_q8.gguf" --lora-rank 4 --jinja --chat-template-file "$TMP/last.jinja" --data "$TMP/chat.jsonl" \
    --batch 2 --seq 128 --steps 1 --eval-every 0 -t 1 --out "$TMP/last.lora.gguf" 2> "$TMP/err"
"$SM" merge-lora "$TMP/base_q8.gguf" "$TMP/last.lora.gguf" "$TMP/last.gguf" 2>> "$TMP/err"
"$SM" train --init "$TMP/last.gguf" --data "$TMP/two.jsonl" --batch 2 --seq 128 --steps 1 --eval-every 0 -t 1 \
    --out "$TMP/last2.gguf" 2> "$TMP/err2"
st=$?
if [ $st -eq 0 ] && grep -q "fails on these examples (.*message 1.*); using chatml" "$TMP/err2" && grep -q "6 examples (chatml)" "$TMP/err2"; then
    ok "chat_sft_model_template_that_cannot_be_cut_gives_way_to_chatml"
else
    bad "chat_sft_model_template_that_cannot_be_cut_gives_way_to_chatml" "status $st: $(tail -c 300 "$TMP/err") $(tail -c 400 "$TMP/err2")"
fi
if "$SM" train --init "$TMP/last.gguf" --data "$TMP/two.jsonl" --jinja --steps 1 --out "$TMP/last3.gguf" 2> "$TMP/err2"; then st=0; else st=$?; fi
if [ $st -eq 1 ] && grep -q "two.jsonl:1: .*message by message (message 1)" "$TMP/err2"; then
    ok "chat_sft_jinja_template_that_cannot_be_cut_is_an_error"
else
    bad "chat_sft_jinja_template_that_cannot_be_cut_is_an_error" "status $st: $(cat "$TMP/err2")"
fi

# errors
expect_error() {  # name status pattern command...
    local name=$1 want=$2 pat=$3
    shift 3
    "$@" > /dev/null 2> "$TMP/err"
    local st=$?
    if [ $st -eq "$want" ] && grep -q -e "$pat" "$TMP/err" && [ "$(wc -l < "$TMP/err")" -le 2 ]; then ok "$name"; else bad "$name" "status $st: $(cat "$TMP/err")"; fi
}
expect_error error_lora_missing_file 1 "nope.gguf" "$SM" run -m "$TMP/base.gguf" --lora "$TMP/nope.gguf" -n 1
expect_error error_lora_not_an_adapter 1 "general.type" "$SM" run -m "$TMP/base.gguf" --lora "$TMP/base.gguf" -n 1
expect_error error_lora_scaled_needs_scale 2 "scale" "$SM" run -m "$TMP/base.gguf" --lora-scaled "$TMP/a.lora.gguf"
expect_error error_lora_rank_needs_init 2 "--init" "$SM" train --data "$TMP/corpus.txt" --out "$TMP/x.gguf" --lora-rank 4
expect_error error_chat_without_model 2 "need a model" "$SM" train --data "$TMP/chat.jsonl" --out "$TMP/x.gguf"
echo '{"messages": [{"role": "user", "content": "hi"}' > "$TMP/bad.jsonl"
expect_error error_chat_template_text_needs_jinja 1 "add --jinja" "$SM" train --init "$TMP/base.gguf" --data "$TMP/chat.jsonl" \
    --chat-template-file "$TMP/qa.jinja" --out "$TMP/x.gguf"
expect_error error_chat_jinja_template_fails 1 "line 1" "$SM" train --init "$TMP/base.gguf" --data "$TMP/chat.jsonl" --jinja \
    --chat-template "{{ raise_exception('no system role') }}" --out "$TMP/x.gguf"
expect_error error_jinja_without_chat_examples 2 "chat examples" "$SM" train --init "$TMP/base.gguf" --data "$TMP/corpus.txt" \
    --jinja --out "$TMP/x.gguf"
expect_error error_chat_bad_json 1 "bad.jsonl:1" "$SM" train --init "$TMP/base.gguf" --data "$TMP/bad.jsonl" --out "$TMP/x.gguf"
expect_error error_lora_unknown_target 2 "unknown LoRA target 'wq'" "$SM" train "${lora[@]}" --steps 1 --lora-targets q,wq --out "$TMP/x.gguf"
"$SM" init "$TMP/gpt2.gguf" --arch gpt2 --dim 64 --layers 2 --heads 4 --ctx 32 --vocab 300 2> /dev/null
# a full fine-tune of a base with Llama 3's RoPE factors would write a model without them: refused
if [ -e "$TMP/arch/llama3.gguf" ]; then
    expect_error error_full_finetune_rope_factors 1 "rope_freqs" "$SM" train --init "$TMP/arch/llama3.gguf" \
        --data "$TMP/corpus.txt" --out "$TMP/x.gguf" --steps 1
fi
expect_error error_merge_wrong_base 2 "not for a gpt2 model" "$SM" merge-lora "$TMP/gpt2.gguf" "$TMP/a.lora.gguf" "$TMP/y.gguf"
echo "lora: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
