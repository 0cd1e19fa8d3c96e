#!/usr/bin/env bash
# cli_test.sh - the `smallmind` command end to end: reference outputs,
# llama.cpp's greedy continuations, tokenizer vectors, help texts, the
# README's C example, and bad input (one-line errors, non-zero status,
# never a crash).
set -u
BUILD=${BUILD:-build}
SM="$BUILD/smallmind"
SHARED=${SM_SHARED:-../shared}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0 skip=0
. tests/serve_port.sh

ok()   { pass=$((pass + 1)); echo "ok   $1"; }
bad()  { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && echo "    $2"; }
skp()  { skip=$((skip + 1)); echo "skip $1: $2"; }
have() { [ -e "$SHARED/$1" ]; }

# expect_error NAME CMD...: non-zero exit below 128 (no signal), exactly one
# line on stderr that says "error", nothing on stdout.
expect_error() {
    local name=$1; shift
    "$@" > "$TMP/out" 2> "$TMP/err" < /dev/null
    local rc=$?
    local lines; lines=$(wc -l < "$TMP/err")
    if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$lines" -eq 1 ] && grep -q error "$TMP/err" && [ ! -s "$TMP/out" ]; then
        ok "$name"
    else
        bad "$name" "rc=$rc, stderr: $(head -c 300 "$TMP/err")"
    fi
}
# expect_named NAME WANT CMD...: as expect_error, and the message says WANT (a grep pattern)
expect_named() {
    local name=$1 want=$2
    shift 2
    expect_error "$name" "$@"
    grep -q "$want" "$TMP/err" && ok "${name}_named" || bad "${name}_named" "$(cat "$TMP/err")"
}

# ---------------------------------------------------------------- help
for c in run inspect tokenize init profile quantize bench perplexity train; do
    if "$SM" $c --help > "$TMP/h" 2>&1 && grep -q "usage: smallmind $c" "$TMP/h"; then ok "help_$c"; else bad "help_$c"; fi
done
if "$SM" --help | grep -q "commands:"; then ok "help_main"; else bad "help_main"; fi
expect_error "unknown_command" "$SM" frobnicate

# ---------------------------------------------------- reference outputs
G=$SHARED/models/stories260K.gguf
B=$SHARED/models/stories260K.bin
Z=$SHARED/models/tok512.bin
if have models/stories260K.gguf && have refs/stories260K.greedy.txt; then
    "$SM" run -m "$G" --temp 0 -n 256 > "$TMP/o" 2> "$TMP/e"
    if cmp -s "$TMP/o" "$SHARED/refs/stories260K.greedy.txt"; then ok "greedy_reference_gguf"; else bad "greedy_reference_gguf"; fi
    if grep -q "generated 256 tokens" "$TMP/e" && grep -q "tok/s" "$TMP/e" && grep -q "peak RSS" "$TMP/e" \
        && grep -q "first token" "$TMP/e"; then ok "stats_line"; else bad "stats_line" "$(cat "$TMP/e")"; fi
    "$SM" run -m "$B" -z "$Z" --temp 0 -n 256 > "$TMP/o" 2>/dev/null
    if cmp -s "$TMP/o" "$SHARED/refs/stories260K.greedy.txt"; then ok "greedy_reference_llama2c"; else bad "greedy_reference_llama2c"; fi
    # a llama.cpp command line with -ngl: the same output, and a note that it was ignored
    "$SM" run -m "$G" --temp 0 -n 256 -ngl 99 > "$TMP/o" 2> "$TMP/e"
    if cmp -s "$TMP/o" "$SHARED/refs/stories260K.greedy.txt" && grep -q "note: -ngl 99 ignored" "$TMP/e"; then
        ok "ngl_accepted_and_ignored"; else bad "ngl_accepted_and_ignored" "$(head -c 300 "$TMP/e")"; fi
    expect_error "ngl_bad_value" "$SM" run -m "$G" -n 1 -ngl lots
    # unchanged with every kernel level and with 2 threads
    for k in $("$SM" version | sed -n 's/^kernels: //p'); do
        for t in 1 2; do
            "$SM" run -m "$G" --temp 0 -n 256 -t $t --kernels $k > "$TMP/o" 2>/dev/null
            if cmp -s "$TMP/o" "$SHARED/refs/stories260K.greedy.txt"; then ok "greedy_reference_${k}_t$t"; else bad "greedy_reference_${k}_t$t"; fi
        done
    done
else
    skp "greedy_reference" "../shared is absent"
fi

# -------------------------------- greedy continuations made by llama.cpp
if have models/stories260K.gguf; then
    for p in tests/refs/llamacpp/*.prompt; do
        name=$(basename "$p" .prompt)
        n=$(cat "${p%.prompt}.n")
        { cat "$p"; cat "${p%.prompt}.expected"; } > "$TMP/want"
        "$SM" run -m "$G" -p "$(cat "$p")" -n "$n" --temp 0 > "$TMP/o" 2>/dev/null
        if cmp -s "$TMP/o" "$TMP/want"; then ok "llamacpp_${name}_gguf"; else bad "llamacpp_${name}_gguf" "$(diff "$TMP/o" "$TMP/want" | head -5)"; fi
        "$SM" run -m "$B" -z "$Z" -p "$(cat "$p")" -n "$n" --temp 0 > "$TMP/o" 2>/dev/null
        if cmp -s "$TMP/o" "$TMP/want"; then ok "llamacpp_${name}_llama2c"; else bad "llamacpp_${name}_llama2c"; fi
    done
    # quantized by smallmind quantize, run by both engines
    for t in F16 Q4_0 BF16; do
        "$SM" quantize "$G" "$TMP/q-$t.gguf" $t 2>/dev/null
        { cat tests/refs/llamacpp/case01.prompt; cat tests/refs/llamacpp/quant_$t.expected; } > "$TMP/want"
        "$SM" run -m "$TMP/q-$t.gguf" -p "$(cat tests/refs/llamacpp/case01.prompt)" -n 100 --temp 0 > "$TMP/o" 2>/dev/null
        if cmp -s "$TMP/o" "$TMP/want"; then ok "llamacpp_quantized_$t"; else bad "llamacpp_quantized_$t"; fi
    done
    # the prompt from a file gives the same as -p
    "$SM" run -m "$G" -f tests/refs/llamacpp/case03.prompt -n 100 --temp 0 > "$TMP/o" 2>/dev/null
    { cat tests/refs/llamacpp/case03.prompt; cat tests/refs/llamacpp/case03.expected; } > "$TMP/want"
    if cmp -s "$TMP/o" "$TMP/want"; then ok "prompt_file"; else bad "prompt_file"; fi
    # seeds reproduce
    a=$("$SM" run -m "$G" -p "Once" -n 40 --seed 5 2>/dev/null); b=$("$SM" run -m "$G" -p "Once" -n 40 --seed 5 2>/dev/null)
    c=$("$SM" run -m "$G" -p "Once" -n 40 --seed 6 2>/dev/null)
    if [ "$a" = "$b" ] && [ "$a" != "$c" ]; then ok "seed_reproduces"; else bad "seed_reproduces"; fi
    # --stop ends before the stop text
    out=$("$SM" run -m "$G" --temp 0 -n 256 --stop "park" 2>/dev/null)
    if [ "$out" = "Once upon a time, there was a little girl named Lily. She loved to play outside in the " ]; then
        ok "stop_string"; else bad "stop_string" "$out"; fi
else
    skp "llamacpp_continuations" "../shared is absent"
fi

# ------------------------------------- tokenizer vectors through the CLI
for v in llama-spm phi-3 gpt-2 mpt starcoder deepseek-coder deepseek-llm; do
    f=$SHARED/vocab/ggml-vocab-$v.gguf
    if [ ! -e "$f" ]; then skp "cli_tokenize_$v" "../shared is absent"; continue; fi
    awk -v dir="$TMP" 'BEGIN { RS = "\n__ggml_vocab_test__\n"; ORS = "" } { print > (dir "/case" NR) }' "$f.inp"
    i=0 mism=0
    while IFS= read -r want; do
        i=$((i + 1))
        [ -e "$TMP/case$i" ] || : > "$TMP/case$i"
        got=$("$SM" tokenize -m "$f" -f "$TMP/case$i" --ids --no-bos 2>/dev/null | tr -d '[],')
        [ "$(echo $got)" = "$(echo $want)" ] || mism=$((mism + 1))
    done < "$f.out"
    if [ $i -eq 46 ] && [ $mism -eq 0 ]; then ok "cli_tokenize_$v"; else bad "cli_tokenize_$v" "$mism of $i differ"; fi
done

# special-token text with --parse-special (ids: llama.cpp's, from tests/refs/llamacpp/special_tokens.tsv)
if have vocab/ggml-vocab-phi-3.gguf; then
    f=$SHARED/vocab/ggml-vocab-phi-3.gguf
    got=$("$SM" tokenize -m "$f" -p $'<|user|>\nHello<|end|>\n<|assistant|>' --ids --no-bos --parse-special 2>&1)
    plain=$("$SM" tokenize -m "$f" -p '<|end|>' --ids --no-bos 2>&1)
    if [ "$got" = "[32010, 15043, 32007, 32001]" ] && [ "$plain" != "[32007]" ]; then ok "cli_tokenize_parse_special"
    else bad "cli_tokenize_parse_special" "$got / $plain"; fi
else
    skp "cli_tokenize_parse_special" "../shared is absent"
fi

# -------------------------------------------------------------- inspect
if have models/stories260K.gguf; then
    "$SM" inspect "$G" > "$TMP/o" 2>&1
    if grep -q "GGUF v3" "$TMP/o" && grep -q "blk.4.ffn_up.weight" "$TMP/o" && grep -q "tensors (48)" "$TMP/o" \
        && grep -q "llama.attention.head_count_kv" "$TMP/o"; then ok "inspect_gguf"; else bad "inspect_gguf"; fi
    "$SM" inspect "$B" -z "$Z" > "$TMP/o" 2>&1
    if grep -q "llama2.c" "$TMP/o" && grep -q "llama2c.n_kv_heads" "$TMP/o"; then ok "inspect_llama2c"; else bad "inspect_llama2c"; fi
fi

# inspect lists a file SmallMind cannot run, names what is missing and exits 1:
# an unknown architecture, and a weight type without kernels (IQ2_XXS)
"$SM" init "$TMP/u.gguf" --dim 256 --layers 1 --heads 4 --ffn 256 --vocab 300 2> /dev/null
/usr/bin/python3 - "$TMP/u.gguf" "$TMP/u-arch.gguf" "$TMP/u-type.gguf" <<'PYEOF'
import struct, sys
d = bytearray(open(sys.argv[1], "rb").read())
# another architecture: every "llama" (the key prefix too) becomes "lamma"
# (the first length-prefixed "llama" is general.architecture's value)
open(sys.argv[2], "wb").write(bytes(d).replace(b"llama.", b"lamma.").replace(b"\x05\x00\x00\x00\x00\x00\x00\x00llama",
                                                                           b"\x05\x00\x00\x00\x00\x00\x00\x00lamma", 1))
# blk.0.attn_q.weight (256 x 256, F32) typed IQ2_XXS (16): its tensor info is
# name, n_dims (u32), ne (2 x u64), then the type (u32)
name = b"blk.0.attn_q.weight"
i = d.find(struct.pack("<Q", len(name)) + name) + 8 + len(name) + 4 + 16
struct.pack_into("<I", d, i, 16)
open(sys.argv[3], "wb").write(bytes(d))
PYEOF
for u in arch type; do
    "$SM" inspect "$TMP/u-$u.gguf" > "$TMP/o" 2> "$TMP/e"; rc=$?
    # the list of architectures whole (a 256-byte buffer once cut it inside a name)
    want="architecture 'lamma' is not supported (supported: llama, .*, hunyuan-dense, qwen2vl, qwen3vl, qwen3vlmoe, .*, refact, command-r, cohere2, jais, xverse, orion, codeshell, chatglm, falcon)"
    [ $u = type ] && want="type IQ2_XXS"
    if [ $rc -eq 1 ] && grep -q "tensors (" "$TMP/o" && grep -q "cannot run this model" "$TMP/e" && grep -q "$want" "$TMP/e"; then
        ok "inspect_unsupported_$u"; else bad "inspect_unsupported_$u" "rc=$rc $(cat "$TMP/e")"; fi
done
expect_error "run_unsupported_type" "$SM" run -m "$TMP/u-type.gguf" -p hi -n 1
# a tensor the architecture does not have (as a variant's extra norms): refused, as llama.cpp refuses it,
# rather than left out of the forward pass
if /usr/bin/python3 - "$TMP/u-extra.gguf" <<'PYEOF' 2> "$TMP/e"
import sys
import numpy as np
sys.path.insert(0, "tests/refs/arch")
import gen_models as g
kv, t = g.build("llama")
t.insert(3, ("blk.0.attn_q_norm.weight", np.ones(64, dtype=np.float32)))
g.write_gguf(sys.argv[1], kv, t)
PYEOF
then
    expect_named "run_extra_tensor_refused" "tensor 'blk.0.attn_q_norm.weight' is not one a llama model has" \
        "$SM" run -m "$TMP/u-extra.gguf" -p hi -n 1
else
    bad "run_extra_tensor_refused" "could not write the file: $(tail -c 200 "$TMP/e")"
fi
# files written from tests/refs/arch's models, altered: the script on stdin, with gen_models as g, numpy as
# np and the directory to write to as d
GEN_VARIANTS='import sys; sys.path.insert(0, "tests/refs/arch"); import numpy as np; import gen_models as g
d = sys.argv[1]
exec(sys.stdin.read())'
# phi2's Q, K and V come fused or apart, never both, part, or a mix of layers; a bias needs its matrix;
# gptneox's use_parallel_residual is a boolean (each a file gen_models.py's model altered)
if /usr/bin/python3 -c "$GEN_VARIANTS" "$TMP" <<'PYEOF' 2> "$TMP/e"
kv, t = g.build("phi2")
q = [x for x in g.build("phi2_split")[1] if x[0].startswith("blk.0.attn_q.")]
g.write_gguf(d + "/phi2-both.gguf", kv, t + q[:1])
kv2, t2 = g.build("phi2_split")
w2 = dict(t2)
one = [x for x in t2 if not any(x[0].startswith("blk.1.attn_" + p + ".") for p in "qkv")]
one += [("blk.1.attn_qkv.weight", np.concatenate([w2["blk.1.attn_%s.weight" % p] for p in "qkv"])),
        ("blk.1.attn_qkv.bias", np.concatenate([w2["blk.1.attn_%s.bias" % p] for p in "qkv"]))]
g.write_gguf(d + "/phi2-mix.gguf", kv2, one)
g.write_gguf(d + "/phi2-part.gguf", kv2, [x for x in t2 if x[0] != "blk.0.attn_k.weight" and x[0] != "blk.0.attn_k.bias"])
g.write_gguf(d + "/phi2-bias.gguf", kv, t + [x for x in t2 if x[0] == "blk.0.attn_q.bias"])
kv3, t3 = g.build("gptneox")
g.write_gguf(d + "/neox-bool.gguf", [(k, "u32", 1) if k.endswith("use_parallel_residual") else (k, ty, v)
                                     for k, ty, v in kv3], t3)
PYEOF
then
    for c in "both|has both" "mix|has layers of both kinds" "part|has part of them" "bias|Q/K/V bias without its weight" \
             "bool|'gptneox.use_parallel_residual' is not a boolean"; do
        IFS='|' read -r f want <<< "$c"
        file=$TMP/phi2-$f.gguf; [ "$f" = bool ] && file=$TMP/neox-bool.gguf
        expect_named "run_qkv_variant_$f" "$want" "$SM" run -m "$file" -p hi -n 1
    done
else
    bad "run_qkv_variant" "could not write the files: $(tail -c 200 "$TMP/e")"
fi
# a mixture of experts needs its router and every stack in every layer, as many experts as expert_count
# says, no more used than there are, and no dense FFN beside them; training one is refused by name
if /usr/bin/python3 -c "$GEN_VARIANTS" "$TMP" <<'PYEOF' 2> "$TMP/e"
kv, t = g.build("llama_moe")
g.write_gguf(d + "/moe-stack.gguf", kv, [x for x in t if x[0] != "blk.1.ffn_up_exps.weight"])
g.write_gguf(d + "/moe-used.gguf", [(k, ty, 5) if k.endswith("expert_used_count") else (k, ty, v) for k, ty, v in kv], t)
g.write_gguf(d + "/moe-count.gguf", kv, [(n, a[:3]) if n == "blk.0.ffn_gate_exps.weight" else (n, a) for n, a in t])
g.write_gguf(d + "/moe-dense.gguf", kv, t + [("blk.0.ffn_gate.weight", np.zeros((256, 256), dtype=np.float32))])
g.write_gguf(d + "/moe.gguf", kv, t)
g.write_gguf(d + "/moe-lora.gguf", [("general.architecture", "str", "llama"), ("general.type", "str", "adapter"),
                                    ("adapter.type", "str", "lora"), ("adapter.lora.alpha", "f32", 2.0)],
             [("blk.0.ffn_gate_exps.weight.lora_a", np.zeros((2, 256), dtype=np.float32)),
              ("blk.0.ffn_gate_exps.weight.lora_b", np.zeros((1024, 2), dtype=np.float32))])
PYEOF
then
    for c in "stack|has not every stack" "used|expert_used_count 5 is more than expert_count 4" \
             "count|expected \[256, 256, 4\]" "dense|has both experts and a dense FFN"; do
        IFS='|' read -r f want <<< "$c"
        expect_named "run_moe_$f" "$want" "$SM" run -m "$TMP/moe-$f.gguf" -p hi -n 1
    done
    # init writes one (Mixtral-style llama here) that runs and says what it is; a MoE architecture needs --experts
    if "$SM" init "$TMP/moe-init.gguf" --arch llama --dim 64 --layers 2 --heads 4 --ffn 64 --ctx 64 --vocab 300 \
            --experts 4 --experts-used 2 2> "$TMP/err" && "$SM" run -m "$TMP/moe-init.gguf" -p hi -n 4 > /dev/null 2>> "$TMP/err" \
        && "$SM" inspect "$TMP/moe-init.gguf" 2>> "$TMP/err" | grep -q '4 experts (2 per token)' \
        && "$SM" inspect "$TMP/moe-init.gguf" 2>> "$TMP/err" | grep -q 'blk.1.ffn_down_exps.weight *F32 *64 x 64 x 4'; then
        ok "init_moe_runs"
    else
        bad "init_moe_runs" "$(tail -c 300 "$TMP/err")"
    fi
    expect_named "init_moe_needs_experts" "olmoe model is a mixture of experts: give --experts N" \
        "$SM" init "$TMP/moe-x.gguf" --arch olmoe --dim 64 --layers 1 --heads 4 --vocab 300
    expect_named "run_moe_expert_adapter_refused" \
        "adapters of a mixture of experts' experts ('blk.0.ffn_gate_exps.weight') are not supported" \
        "$SM" run -m "$TMP/moe.gguf" --lora "$TMP/moe-lora.gguf" -p hi -n 1
    printf 'the quick brown fox jumps over the lazy dog. %.0s' $(seq 40) > "$TMP/moe.txt"
    expect_named "train_moe_refused" "training does not support a mixture of experts" \
        "$SM" train --init "$TMP/moe.gguf" --data "$TMP/moe.txt" --out "$TMP/moe-t.gguf" --steps 1 --seq 16
else
    bad "run_moe_variants" "could not write the files: $(tail -c 200 "$TMP/e")"
fi

# ------------------------------- generated Unicode tables are reproducible
if [ -e /usr/share/unicode/UnicodeData.txt ] && [ -x /usr/bin/python3 ]; then
    if /usr/bin/python3 tools/gen_unicode_tables.py > "$TMP/ut.c" && cmp -s "$TMP/ut.c" src/text/unicode_tables.c; then
        ok "unicode_tables_regenerate"; else bad "unicode_tables_regenerate" "tools/gen_unicode_tables.py output differs"; fi
else
    skp "unicode_tables_regenerate" "Debian's unicode-data is not installed"
fi

# ------------------------------------------- init -> inspect -> run
for arch in llama gpt2; do
    if [ $arch = llama ]; then opts="--dim 60 --layers 3 --heads 6 --kv-heads 2 --ffn 100 --ctx 48 --vocab 350"
    else opts="--dim 36 --layers 2 --heads 4 --ffn 70 --ctx 40 --vocab 300 --tied"; fi
    if "$SM" init "$TMP/$arch.gguf" --arch $arch $opts 2> "$TMP/err"; then
        "$SM" inspect "$TMP/$arch.gguf" > "$TMP/o" 2>&1
        want_dim=$(echo $opts | sed -E 's/.*--dim ([0-9]+).*/\1/')
        if grep -q "arch $arch | vocab $(echo $opts | sed -E 's/.*--vocab ([0-9]+).*/\1/') | context $(echo $opts | sed -E 's/.*--ctx ([0-9]+).*/\1/') | dim $want_dim | layers $(echo $opts | sed -E 's/.*--layers ([0-9]+).*/\1/')" "$TMP/o" \
            && grep -q "ffn $(echo $opts | sed -E 's/.*--ffn ([0-9]+).*/\1/')" "$TMP/o"; then ok "init_inspect_$arch"; else bad "init_inspect_$arch" "$(tail -1 "$TMP/o")"; fi
        if "$SM" run -m "$TMP/$arch.gguf" -p "Hello there" -n 30 --seed 3 > "$TMP/o" 2> "$TMP/e" && grep -q "generated" "$TMP/e"; then
            ok "init_run_$arch"; else bad "init_run_$arch" "$(cat "$TMP/e")"; fi
    else
        bad "init_$arch" "$(cat "$TMP/err")"
    fi
done
# a tied llama head is simply absent; a tied gpt2 head is written as a copy
# of the embedding (llama.cpp's gpt2 loader requires the tensor)
"$SM" init "$TMP/llama-tied.gguf" --arch llama --dim 32 --layers 1 --heads 2 --ffn 48 --vocab 300 --tied 2> /dev/null
if grep -q "heads 6 (kv 2)" <("$SM" inspect "$TMP/llama.gguf" 2>&1) && grep -qE "^  output\.weight" <("$SM" inspect "$TMP/llama.gguf" 2>&1) \
    && ! grep -qE "^  output\.weight" <("$SM" inspect "$TMP/llama-tied.gguf" 2>&1) \
    && grep -qE "^  output\.weight" <("$SM" inspect "$TMP/gpt2.gguf" 2>&1); then ok "init_gqa_and_tied"; else bad "init_gqa_and_tied"; fi
expect_error "init_bad_arch" "$SM" init "$TMP/x.gguf" --arch rwkv
expect_error "init_dim_not_multiple" "$SM" init "$TMP/x.gguf" --dim 50 --heads 3
expect_error "init_kv_heads_not_divisor" "$SM" init "$TMP/x.gguf" --dim 60 --heads 6 --kv-heads 4
expect_error "init_odd_llama_head" "$SM" init "$TMP/x.gguf" --dim 60 --heads 4
expect_error "init_vocab_too_small" "$SM" init "$TMP/x.gguf" --vocab 100
expect_error "init_no_output" "$SM" init --dim 64
expect_error "init_unwritable" "$SM" init /nonexistent/dir/x.gguf
expect_error "gpt2_context_beyond_positions" "$SM" run -m "$TMP/gpt2.gguf" -c 41 -p "Hi"

# ------------------------------------------- llama-cli's options
# llama-cli's greedy output for the same options (tests/refs/make_cli_compat_refs.sh):
# escapes in the prompt (its default) or not, -r, the OpenAI penalties, and
# options that change nothing here (-b, -fa, --mlock, ...)
if have models/stories260K.gguf; then
    while IFS='|' read -r name prompt tokens flags; do
        # shellcheck disable=SC2086
        got=$("$SM" run -m "$G" -p "$prompt" -n "$tokens" --temp 0 $flags -t 1 2> "$TMP/e"; printf x)
        got=${got%x}
        while [[ "$got" == *$'\n' ]]; do got=${got%$'\n'}; done
        want=$(cat "tests/refs/cli_compat/$name.expected"; printf x)
        want=${want%x}
        if [ "$got" = "$want" ]; then ok "llamacpp_options_$name"; else bad "llamacpp_options_$name" "got '$got', llama-cli '$want' $(tail -c 200 "$TMP/e")"; fi
    done < tests/refs/cli_compat/cases.txt
    "$SM" run -m "$G" -p "Once upon a time" -n 100 --temp 0 -r Lily -t 1 > /dev/null 2> "$TMP/e"
    if grep -q "stop: reverse prompt" "$TMP/e" && grep -q "note: -b 64 ignored" < <("$SM" run -m "$G" -p Hi -n 1 -b 64 2>&1); then
        ok "llamacpp_options_say_what_they_did"; else bad "llamacpp_options_say_what_they_did" "$(cat "$TMP/e")"; fi
    # llama-server's spellings: -np, -a, -to, and flags that are always on here
    if command -v curl > /dev/null && "$SM" serve --help > /dev/null 2>&1; then
        "$SM" serve -m "$G" -np 2 -a mymodel -to 30 --metrics -cb --jinja -fa -b 512 --port 0 -t 1 2> "$TMP/serve.err" &
        spid=$!
        port=$(serve_port "$TMP/serve.err")
        models=$(curl -s "http://127.0.0.1:$port/v1/models")
        kill "$spid" 2> /dev/null
        wait "$spid" 2> /dev/null
        if [[ "$models" == *'"id":"mymodel"'* ]] && grep -q "2 slots" "$TMP/serve.err"; then ok "llama_server_options"
        else bad "llama_server_options" "$models $(tail -c 300 "$TMP/serve.err")"; fi
    else
        skp "llama_server_options" "no curl or no server in this build"
    fi
else
    skp "llamacpp_options_*" "../shared/models/stories260K.gguf is absent"
fi
expect_error "flash_attn_bad_value" "$SM" run -m "$TMP/gpt2.gguf" -p Hi --flash-attn=sometimes
expect_error "batch_size_zero" "$SM" run -m "$TMP/gpt2.gguf" -p Hi -b 0
expect_error "reverse_prompt_empty" "$SM" run -m "$TMP/gpt2.gguf" -p Hi -r ""

# ------------------------------------------- quantize, bench, perplexity
if have models/stories260K.gguf; then
    "$SM" run -m "$G" --temp 0 -n 300 --ignore-eos > "$TMP/story.txt" 2>/dev/null
    ppl() { "$SM" perplexity -m "$1" -f "$TMP/story.txt" -c 128 2>/dev/null | sed -n 's/^perplexity: \([0-9.]*\).*/\1/p'; }
    p32=$(ppl "$G")
    for t in F16 Q8_0 Q4_0 Q4_K Q6_K Q4_0_MIXED; do
        "$SM" quantize "$G" "$TMP/s-$t.gguf" $t 2>/dev/null
        "$SM" inspect "$TMP/s-$t.gguf" > "$TMP/i" 2>&1
        pq=$(ppl "$TMP/s-$t.gguf")
        # the model's own greedy text is easy for it: perplexity near 1-3, and
        # quantization may cost a little but not a lot
        if [ -n "$pq" ] && awk -v a="$p32" -v b="$pq" 'BEGIN { exit !(a > 1 && a < 3 && b < a * 1.25) }'; then
            ok "quantize_${t}_perplexity ($p32 -> $pq)"; else bad "quantize_${t}_perplexity" "$p32 -> $pq"; fi
    done
    # llama.cpp's llama-perplexity on the same files, text and -c (recorded by
    # tests/refs/make_perplexity_refs.sh): the same figure, to 5e-4 on F32 files
    # (the engines' sums differ in their last bits) and 2e-3 on Q8_0 ones
    # (llama.cpp also rounds the activations to 8 bits: 7.5e-4 here)
    "$SM" quantize "$G" "$TMP/stories260K-q8_0.gguf" Q8_0 2>/dev/null
    while IFS='|' read -r name m ctx flags want; do
        case $m in
            stories260K) path=$G ;; stories260K-q8_0) path=$TMP/stories260K-q8_0.gguf ;; *) path=models/$m.gguf ;;
        esac
        tol=5e-4
        [ "$("$SM" inspect "$path" 2>/dev/null | grep -c "weight *Q8_0")" -gt 0 ] && tol=2e-3
        # shellcheck disable=SC2086
        got=$("$SM" perplexity -m "$path" -f tests/refs/perplexity/text.txt -c "$ctx" $flags 2>/dev/null |
              sed -n 's/^perplexity: \([0-9.]*\).*/\1/p')
        if [ -n "$got" ] && awk -v a="$got" -v b="$want" -v t="$tol" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= t * b) }'; then
            ok "perplexity_equals_llamacpp_$name ($got, llama.cpp $want, within $tol)"
        else
            bad "perplexity_equals_llamacpp_$name" "got '$got', llama.cpp $want"
        fi
    done < tests/refs/perplexity/cases.txt
    # K-quant blocks are 256 wide: stories260K's 64-wide rows fall back to
    # Q8_0, so the placement is checked on a model with 256-wide rows
    "$SM" init "$TMP/k.gguf" --dim 256 --layers 1 --heads 4 --ffn 512 --vocab 300 2>/dev/null
    "$SM" quantize "$TMP/k.gguf" "$TMP/k-mixed.gguf" 2>/dev/null
    "$SM" quantize "$TMP/k.gguf" "$TMP/k-q4k.gguf" Q4_K 2>/dev/null
    "$SM" quantize "$G" "$TMP/s-fallback.gguf" Q4_K 2>/dev/null
    if grep -qE "^  output.weight +Q6_K" <("$SM" inspect "$TMP/k-mixed.gguf") && grep -qE "attn_q.weight +Q4_0" <("$SM" inspect "$TMP/k-mixed.gguf") \
        && grep -qE "ffn_up.weight +Q4_K" <("$SM" inspect "$TMP/k-q4k.gguf") && grep -qE "ffn_down.weight +Q4_K" <("$SM" inspect "$TMP/k-q4k.gguf") \
        && grep -qE "attn_q.weight +Q8_0" <("$SM" inspect "$TMP/s-fallback.gguf") \
        && "$SM" run -m "$TMP/k-q4k.gguf" -p "Hi" -n 8 > /dev/null 2>&1; then
        ok "quantize_types_placed"; else bad "quantize_types_placed"; fi
    # the 32-element types and BF16 (src/kernels/quant_legacy.h): the perplexity
    # survives them; on a model whose rows all divide into 32 blocks every
    # matrix (16) takes the type, general.file_type is llama.cpp's number for
    # it (llama.h's LLAMA_FTYPE_MOSTLY_*), and `run --temp 0` writes the same
    # text twice
    "$SM" init "$TMP/l.gguf" --dim 128 --layers 2 --heads 4 --ffn 256 --vocab 300 --init-std 0.08 2>/dev/null
    for tf in Q4_1:3 Q5_0:8 Q5_1:9 IQ4_NL:25 BF16:32; do
        t=${tf%:*}
        "$SM" quantize "$G" "$TMP/s-$t.gguf" $t 2>/dev/null
        pq=$(ppl "$TMP/s-$t.gguf")
        if [ -n "$pq" ] && awk -v a="$p32" -v b="$pq" 'BEGIN { exit !(a > 1 && a < 3 && b < a * 1.25) }'; then
            ok "quantize_${t}_perplexity ($p32 -> $pq)"; else bad "quantize_${t}_perplexity" "$p32 -> $pq"; fi
        "$SM" quantize "$TMP/l.gguf" "$TMP/l-$t.gguf" $t 2>/dev/null
        # every matrix in the type, and llama.cpp's file type number for it
        n=$("$SM" inspect "$TMP/l-$t.gguf" 2>/dev/null | grep -cE "weight +$t |general.file_type +u32 +${tf#*:}\$")
        a=$("$SM" run -m "$TMP/l-$t.gguf" -p "Hi" -n 16 --temp 0 2>/dev/null); b=$("$SM" run -m "$TMP/l-$t.gguf" -p "Hi" -n 16 --temp 0 2>/dev/null)
        if [ "$n" = 17 ] && [ ${#a} -gt 2 ] && [ "$a" = "$b" ]; then ok "quantize_${t}_runs"; else bad "quantize_${t}_runs" "$n lines, '$a'"; fi
    done
    expect_error "quantize_unknown_type" "$SM" quantize "$G" "$TMP/x.gguf" Q3_X
    expect_error "quantize_same_file" "$SM" quantize "$G" "$G" Q8_0
    expect_error "quantize_missing_input" "$SM" quantize /nonexistent.gguf "$TMP/x.gguf" Q8_0
    "$SM" bench -m "$G" -p 32 -n 16 -t 1,2 -r 2 -o md > "$TMP/b.md" 2>/dev/null
    if [ "$(grep -c '| pp32 |\|| tg16 |' "$TMP/b.md")" = 4 ]; then ok "bench_md"; else bad "bench_md" "$(cat "$TMP/b.md")"; fi
    "$SM" bench -m "$G" -p 32 -n 16 -t 1 -r 2 -o json > "$TMP/b.json" 2>/dev/null
    if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import json,sys; d=json.load(open('$TMP/b.json')); sys.exit(not (len(d)==2 and all(r['avg_ts']>0 for r in d)))"; then
        ok "bench_json"; else bad "bench_json"; fi
    "$SM" bench -m "$G" -p 32 -n 0 -t 1 -r 1 -o csv > "$TMP/b.csv" 2>/dev/null
    if [ "$(wc -l < "$TMP/b.csv")" = 2 ] && head -1 "$TMP/b.csv" | grep -q "avg_ts"; then ok "bench_csv"; else bad "bench_csv"; fi
    expect_error "bench_bad_threads" "$SM" bench -m "$G" -t 1,x
    expect_error "bench_too_long" "$SM" bench -m "$G" -p 100000
    # -d: both tests after that many tokens (llama-bench's n_depth); depth plus either test must fit the context
    "$SM" bench -m "$G" -p 8 -n 8 -d 200 -t 1 -r 1 -o json > "$TMP/b.json" 2>/dev/null
    if /usr/bin/python3 -c "import json,sys; d=json.load(open('$TMP/b.json')); sys.exit(not ([r['test'] for r in d]==['pp8 @ d200','tg8 @ d200'] and all(r['n_depth']==200 and r['avg_ts']>0 for r in d)))"; then
        ok "bench_depth"; else bad "bench_depth" "$(cat "$TMP/b.json")"; fi
    expect_error "bench_depth_too_deep" "$SM" bench -m "$G" -p 8 -n 64 -d 2000
    expect_error "bench_depth_negative" "$SM" bench -m "$G" -d -1
    # -ctk / -ctv f16: an F16 KV cache (llama.cpp's flags and names); half the cache's bytes in the profile
    "$SM" bench -m "$G" -p 8 -n 8 -d 100 -t 1 -r 1 -ctk f16 -ctv f16 -o json > "$TMP/b.json" 2>/dev/null
    if /usr/bin/python3 -c "import json,sys; d=json.load(open('$TMP/b.json')); sys.exit(not (len(d)==2 and all(r['type_k']=='f16' and r['type_v']=='f16' and r['avg_ts']>0 for r in d)))"; then
        ok "bench_kv_f16"; else bad "bench_kv_f16" "$(cat "$TMP/b.json")"; fi
    "$SM" bench -m "$G" -p 8 -n 0 -t 1 -r 1 -ctv f16 > "$TMP/b.md" 2>/dev/null
    if grep -q '| f32 | f16 | pp8 |' "$TMP/b.md"; then ok "bench_kv_f16_md_columns"; else bad "bench_kv_f16_md_columns" "$(cat "$TMP/b.md")"; fi
    a=$("$SM" run -m "$G" -p "Once upon a time" -n 24 --temp 0 -ctk f16 -ctv f16 2>/dev/null)
    b=$("$SM" run -m "$G" -p "Once upon a time" -n 24 --temp 0 --cache-type-k=f16 --cache-type-v=f16 -t 1 2>/dev/null)
    if [ ${#a} -gt 30 ] && [ "$a" = "$b" ]; then ok "run_kv_f16"; else bad "run_kv_f16" "'$a' / '$b'"; fi
    for kv in f32 f16; do
        "$SM" profile "$TMP/p-$kv.md" 1 4 -m "$G" -t 1 -ctk $kv -ctv $kv --json "$TMP/p-$kv.json" > /dev/null 2>&1
    done
    if /usr/bin/python3 -c "
import json, sys
a, b = (json.load(open(f))['summary']['kv_cache_bytes'] for f in ('$TMP/p-f32.json', '$TMP/p-f16.json'))
sys.exit(not (a > 0 and b * 2 == a))" 2> "$TMP/err"; then ok "profile_kv_f16_half_the_bytes"; else bad "profile_kv_f16_half_the_bytes" "$(cat "$TMP/err")"; fi
    "$SM" bench -m "$G" -p 8 -n 8 -t 1 -r 1 -ctk bf16 -ctv bf16 -o csv > "$TMP/b.csv" 2>/dev/null
    if [ "$(cut -d, -f10,11 "$TMP/b.csv" | tail -1)" = "bf16,bf16" ]; then ok "bench_kv_bf16"; else bad "bench_kv_bf16" "$(cat "$TMP/b.csv")"; fi
    a=$("$SM" run -m "$G" -p "Once upon a time" -n 24 --temp 0 -ctk bf16 -ctv bf16 2>/dev/null)
    if [ ${#a} -gt 30 ]; then ok "run_kv_bf16"; else bad "run_kv_bf16" "'$a'"; fi
    # --no-mmap: the model read into memory of its own, the same tokens;
    # bench says so in a column (llama-bench's -mmp), profile in its memory line
    a=$("$SM" run -m "$G" -p "Once upon a time" -n 24 --temp 0 -t 1 2>/dev/null)
    b=$("$SM" run -m "$G" -p "Once upon a time" -n 24 --temp 0 -t 1 --no-mmap 2>"$TMP/err")
    if [ ${#a} -gt 30 ] && [ "$a" = "$b" ] && ! grep -q ignored "$TMP/err"; then ok "run_no_mmap"; else bad "run_no_mmap" "'$a' / '$b' $(cat "$TMP/err")"; fi
    "$SM" bench -m "$G" -p 8 -n 8 -t 1 -r 1 -mmp 0 -o csv > "$TMP/b.csv" 2>/dev/null
    "$SM" bench -m "$G" -p 8 -n 0 -t 1 -r 1 --mmap 1 -o csv > "$TMP/b1.csv" 2>/dev/null
    if [ "$(tail -1 "$TMP/b.csv" | cut -d, -f12)" = 0 ] && [ "$(head -1 "$TMP/b.csv" | cut -d, -f12)" = use_mmap ] &&
       [ "$(tail -1 "$TMP/b1.csv" | cut -d, -f12)" = 1 ]; then
        ok "bench_mmp"; else bad "bench_mmp" "$(cat "$TMP/b.csv" "$TMP/b1.csv")"; fi
    "$SM" bench -m "$G" -p 8 -n 0 -t 1 -r 1 --no-mmap > "$TMP/b.md" 2>/dev/null
    if grep -q '| 1 | 0 | pp8 |' "$TMP/b.md"; then ok "bench_no_mmap_md_column"; else bad "bench_no_mmap_md_column" "$(cat "$TMP/b.md")"; fi
    expect_error "bench_mmp_bad" "$SM" bench -m "$G" -mmp 2
    "$SM" profile "$TMP/p-read.md" 1 4 -m "$G" -t 1 --no-mmap --json "$TMP/p-read.json" > /dev/null 2>&1
    if /usr/bin/python3 -c "
import json, sys
s = json.load(open('$TMP/p-read.json'))['summary']
sys.exit(not (s['weights_read'] is True and s['weights_resident_bytes'] == s['weights_mapped_bytes'] > 0))" 2> "$TMP/err" &&
       grep -q 'read into memory (--no-mmap)' "$TMP/p-read.md"; then
        ok "profile_no_mmap_weights_read_and_resident"; else bad "profile_no_mmap_weights_read_and_resident" "$(cat "$TMP/err")"; fi
    expect_named "kv_q4_0_not_supported" "f32, f16, bf16 or q8_0" "$SM" run -m "$G" -p Hi -n 1 -ctk q4_0
    # a Q8_0 cache: blocks of 32 values of a head (the built-in model's heads are 32; stories260K's 8)
    expect_named "kv_q8_0_needs_heads_of_32" "blocks of 32" "$SM" run -m "$G" -p Hi -n 1 -ctk q8_0 -ctv q8_0
    a=$("$SM" run -m models/kjv-3m.gguf -p "In the beginning" -n 24 --temp 0 -t 1 -ctk q8_0 -ctv q8_0 2>"$TMP/err")
    b=$("$SM" run -m models/kjv-3m.gguf -p "In the beginning" -n 24 --temp 0 -t 2 -ctk q8_0 -ctv q8_0 2>/dev/null)
    if [ ${#a} -gt 30 ] && [ "$a" = "$b" ]; then ok "run_kv_q8_0"; else bad "run_kv_q8_0" "'$a' / '$b' $(cat "$TMP/err")"; fi
    "$SM" bench -m models/kjv-3m.gguf -p 8 -n 8 -t 1 -r 1 -ctk q8_0 -ctv q8_0 -o csv > "$TMP/b.csv" 2>/dev/null
    if [ "$(cut -d, -f10,11 "$TMP/b.csv" | tail -1)" = "q8_0,q8_0" ]; then ok "bench_kv_q8_0"; else bad "bench_kv_q8_0" "$(cat "$TMP/b.csv")"; fi
    "$SM" profile "$TMP/p-q8.md" 1 4 -m models/kjv-3m.gguf -t 1 -ctk q8_0 -ctv q8_0 --json "$TMP/p-q8.json" > /dev/null 2>&1
    "$SM" profile "$TMP/p-k32.md" 1 4 -m models/kjv-3m.gguf -t 1 --json "$TMP/p-k32.json" > /dev/null 2>&1
    if /usr/bin/python3 -c "
import json, sys
a, b = (json.load(open(f))['summary']['kv_cache_bytes'] for f in ('$TMP/p-k32.json', '$TMP/p-q8.json'))
sys.exit(not (a > 0 and b * 128 == a * 34))" 2> "$TMP/err"; then ok "profile_kv_q8_0_34_bytes_for_32_values"; else bad "profile_kv_q8_0_34_bytes_for_32_values" "$(cat "$TMP/err")"; fi
    expect_error "kv_bad_type" "$SM" bench -m "$G" -ctv f8
    expect_error "perplexity_no_file" "$SM" perplexity -m "$G"
fi

# ------------------------------------------------------------ bad input
expect_error "no_model" env SMALLMIND_MODEL=/nonexistent.gguf "$SM" run -p hi
# the built-in default model, from a build directory and from the checkout's top
if [ -e models/kjv-3m.gguf ]; then
    for bin in "$SM" ./smallmind; do
        out=$("$bin" run -p "And God said" -n 80 --seed 7 2> /dev/null)
        words=0
        for w in LORD God unto thee thou shall hath Israel said; do case $out in *"$w"*) words=$((words + 1));; esac; done
        if [ $words -ge 3 ]; then ok "default_model_writes_bible ($bin: $words of 9 words)"; else bad "default_model_writes_bible ($bin)" "$out"; fi
    done
else
    bad "default_model_present" "models/kjv-3m.gguf is missing"
fi
expect_error "missing_model" "$SM" run -m /nonexistent.gguf
expect_error "directory_model" "$SM" run -m /tmp
: > "$TMP/empty.gguf"
expect_error "empty_model" "$SM" run -m "$TMP/empty.gguf"
if have models/stories260K.gguf; then
    for n in 3 100 5000 500000; do
        head -c $n "$G" > "$TMP/trunc.gguf"
        expect_error "truncated_model_$n" "$SM" run -m "$TMP/trunc.gguf" -n 4
    done
    expect_error "bin_without_tokenizer" "$SM" run -m "$B" -n 4
    expect_error "wrong_tokenizer" "$SM" run -m "$B" -z "$SHARED/models/tokenizer.bin" -n 4
    expect_error "empty_prompt" "$SM" run -m "$G" -p ""
    expect_error "invalid_utf8_prompt" "$SM" run -m "$G" -p $'caf\xc3'
    printf 'caf\xc3\xa9 \xff' > "$TMP/bad.txt"
    expect_error "invalid_utf8_file" "$SM" run -m "$G" -f "$TMP/bad.txt"
    : > "$TMP/empty.txt"
    expect_error "empty_prompt_file" "$SM" run -m "$G" -f "$TMP/empty.txt"
    expect_error "missing_prompt_file" "$SM" run -m "$G" -f /nonexistent.txt
    expect_error "prompt_longer_than_context" "$SM" run -m "$G" -c 8 -p "Once upon a time there was a girl named Lily who liked to play"
    expect_error "n_not_a_number" "$SM" run -m "$G" -n abc
    expect_error "n_absurd" "$SM" run -m "$G" -n 99999999999999
    expect_error "ctx_negative" "$SM" run -m "$G" -c -5
    expect_error "ctx_absurd" "$SM" run -m "$G" -c 999999999
    expect_error "temp_negative" "$SM" run -m "$G" --temp -1
    expect_error "temp_nan" "$SM" run -m "$G" --temp nan
    expect_error "top_p_above_one" "$SM" run -m "$G" --top-p 2
    expect_error "threads_zero" "$SM" run -m "$G" -t 0
    expect_error "unknown_kernels" "$SM" run -m "$G" --kernels sse9
    expect_error "seed_garbage" "$SM" run -m "$G" --seed 12x
    expect_error "unknown_flag" "$SM" run -m "$G" --frobnicate
    expect_error "missing_value" "$SM" run -m "$G" -n
    expect_error "tokenize_no_text" "$SM" tokenize -m "$G"
    expect_error "tokenize_bad_utf8" "$SM" tokenize -m "$G" -p $'\xc3('
    expect_error "vocab_only_cannot_run" "$SM" run -m "$SHARED/vocab/ggml-vocab-llama-spm.gguf"
fi

# ------------------------------------------ hardening (issue 11)
# Inputs are checked before they are read: a FIFO or a device is refused at
# once (the old loader blocked forever in open()).
mkfifo "$TMP/fifo"
for c in "run -m $TMP/fifo -n 2" "inspect $TMP/fifo" "tokenize -m $TMP/fifo -p hi" "run -m $TMP/llama.gguf -f $TMP/fifo" \
         "tokenize -m $TMP/llama.gguf -f $TMP/fifo" "perplexity -m $TMP/llama.gguf -f $TMP/fifo" "run -m /dev/null" \
         "init $TMP/x.gguf --vocab-from $TMP/fifo"; do
    name=$(echo "$c" | awk '{ print $1 }')
    timeout 20 "$SM" $c > "$TMP/out" 2> "$TMP/err" < /dev/null
    rc=$?
    if [ $rc -ne 0 ] && [ $rc -lt 124 ] && grep -q "not a regular file" "$TMP/err"; then ok "fifo_input_refused ($c)"
    else bad "fifo_input_refused ($c)" "rc=$rc $(head -c 200 "$TMP/err")"; fi
done
if have models/stories260K.bin; then
    timeout 20 "$SM" run -m "$B" -z "$TMP/fifo" -n 2 > /dev/null 2> "$TMP/err"; rc=$?
    if [ $rc -ne 0 ] && [ $rc -lt 124 ] && grep -q "FIFO" "$TMP/err"; then ok "fifo_tokenizer_refused"; else bad "fifo_tokenizer_refused" "rc=$rc"; fi
fi

# Outputs: only regular files are written; special files are refused and
# left as they were (the old writer renamed its file over them).
small=(--dim 32 --layers 1 --heads 2 --ffn 48 --ctx 32 --vocab 300)
"$SM" init "$TMP/fifo" "${small[@]}" > /dev/null 2> "$TMP/err"; rc=$?
if [ $rc -ne 0 ] && [ -p "$TMP/fifo" ] && grep -q "not a regular file" "$TMP/err"; then ok "init_refuses_fifo"; else bad "init_refuses_fifo" "rc=$rc"; fi
if mknod "$TMP/devfull" c 1 7 2> /dev/null; then
    # a copy of /dev/full's node, so that a writer that replaces it harms nothing
    "$SM" init "$TMP/devfull" "${small[@]}" > /dev/null 2> "$TMP/err"; rc=$?
    if [ $rc -ne 0 ] && [ -c "$TMP/devfull" ] && grep -q "character device" "$TMP/err"; then ok "init_refuses_device_node"
    else bad "init_refuses_device_node" "rc=$rc $(cat "$TMP/err")"; fi
else
    skp "init_refuses_device_node" "mknod needs root"
fi
mkdir -p "$TMP/outdir"
expect_error "init_refuses_directory" "$SM" init "$TMP/outdir" "${small[@]}"
ln -s "$TMP/nowhere/x.gguf" "$TMP/dangling.gguf"
expect_error "init_refuses_dangling_symlink" "$SM" init "$TMP/dangling.gguf" "${small[@]}"
# a symbolic link: its target is written (atomically), the link stays
"$SM" init "$TMP/src.gguf" "${small[@]}" 2> /dev/null
"$SM" init "$TMP/target.gguf" "${small[@]}" --seed 9 2> /dev/null
ln -s target.gguf "$TMP/link.gguf"
"$SM" quantize "$TMP/src.gguf" "$TMP/link.gguf" Q8_0 > /dev/null 2>&1; rc=$?
if [ $rc -eq 0 ] && [ -L "$TMP/link.gguf" ] && grep -qE "attn_q.weight +Q8_0" <("$SM" inspect "$TMP/target.gguf" 2> /dev/null); then
    ok "quantize_writes_symlink_target"; else bad "quantize_writes_symlink_target" "rc=$rc"; fi
expect_error "quantize_output_is_input_via_link" "$SM" quantize "$TMP/target.gguf" "$TMP/link.gguf" Q8_0
if ls "$TMP" | grep -q "tmp"; then bad "no_temporary_files_left" "$(ls "$TMP" | grep tmp)"; else ok "no_temporary_files_left"; fi
# profile: every output is checked before the profiling starts
rm -f "$TMP/p.md"
"$SM" profile "$TMP/p.md" 1 4 -m "$TMP/src.gguf" --json "$TMP/outdir" > /dev/null 2> "$TMP/err"; rc=$?
if [ $rc -ne 0 ] && [ ! -e "$TMP/p.md" ] && grep -q "is a directory" "$TMP/err"; then ok "profile_outputs_checked_first"
else bad "profile_outputs_checked_first" "rc=$rc $(tail -c 200 "$TMP/err")"; fi
# what goes to stdout must be written: a full disk is an error
"$SM" inspect "$TMP/src.gguf" > /dev/full 2> "$TMP/err"; rc=$?
if [ $rc -ne 0 ] && grep -q "cannot write the output" "$TMP/err"; then ok "stdout_write_error"; else bad "stdout_write_error" "rc=$rc"; fi

# perplexity: -c 2 scores no token (it printed "-nan over 0 tokens")
for i in $(seq 1 30); do echo "the quick brown fox jumps over the lazy dog"; done > "$TMP/text.txt"
expect_error "perplexity_ctx_too_small" "$SM" perplexity -m "$TMP/src.gguf" -f "$TMP/text.txt" -c 2
out=$("$SM" perplexity -m "$TMP/src.gguf" -f "$TMP/text.txt" -c 3 2> /dev/null)
if echo "$out" | grep -qE "^perplexity: [0-9.]+ over [1-9][0-9]* tokens"; then ok "perplexity_ctx_3_scores"; else bad "perplexity_ctx_3_scores" "$out"; fi

# a GPT-2 model from init runs without a prompt, from its BOS token
"$SM" init "$TMP/g2.gguf" --arch gpt2 --dim 32 --layers 1 --heads 2 --ffn 64 --ctx 32 --vocab 300 2> /dev/null
if "$SM" run -m "$TMP/g2.gguf" -n 5 --seed 1 > /dev/null 2> "$TMP/err" && grep -q "prompt 1 tokens" "$TMP/err"; then
    ok "gpt2_runs_without_prompt"; else bad "gpt2_runs_without_prompt" "$(cat "$TMP/err")"; fi

PY=/usr/bin/python3
PATCH=tests/tools/gguf_patch.py
if [ -x $PY ]; then
    # a byte-level vocabulary without the tokens of H, e, l, o: -p Hello says which byte
    $PY $PATCH "$TMP/g2.gguf" "$TMP/nobytes.gguf" token 72 "<no_H>" token 101 "<no_e>" token 108 "<no_l>" token 111 "<no_o>"
    expect_error "byte_vocab_cannot_encode_prompt" "$SM" run -m "$TMP/nobytes.gguf" -p Hello -n 3
    if grep -q "byte 0x48 ('H')" "$TMP/err"; then ok "byte_vocab_names_missing_byte"; else bad "byte_vocab_names_missing_byte" "$(cat "$TMP/err")"; fi
    # general.alignment = 1 (valid GGUF, tensors at odd offsets): loads and runs as the aligned file
    $PY $PATCH "$TMP/llama.gguf" "$TMP/align1.gguf" realign 1
    want=$("$SM" run -m "$TMP/llama.gguf" -p "Hello" -n 12 --temp 0 2> /dev/null)
    got=$("$SM" run -m "$TMP/align1.gguf" -p "Hello" -n 12 --temp 0 2> "$TMP/err")
    if [ -n "$want" ] && [ "$want" = "$got" ] && grep -q "general.alignment  *u32  *1$" <("$SM" inspect "$TMP/align1.gguf" 2> /dev/null); then
        ok "alignment_1_accepted"; else bad "alignment_1_accepted" "$(cat "$TMP/err")"; fi
    # tensors whose bytes overlap: loaded, with a warning
    $PY $PATCH "$TMP/llama.gguf" "$TMP/overlap.gguf" overlap blk.0.ffn_norm.weight blk.0.attn_norm.weight
    if "$SM" run -m "$TMP/overlap.gguf" -p Hi -n 3 > /dev/null 2> "$TMP/err" && grep -q "warning: tensors .*ffn_norm.*overlap" "$TMP/err" && grep -q "attn_norm" "$TMP/err" \
        && "$SM" inspect "$TMP/overlap.gguf" 2> /dev/null | grep -q "^warning: .*overlap"; then
        ok "overlapping_tensors_warn"; else bad "overlapping_tensors_warn" "$(cat "$TMP/err")"; fi
    # NaN weights: the first token's logits are checked, the layer named
    $PY $PATCH "$TMP/llama.gguf" "$TMP/nan.gguf" fill blk.1.ffn_up.weight nan
    expect_error "nan_weights_name_layer" "$SM" run -m "$TMP/nan.gguf" -p Hi -n 3 --no-display-prompt
    if grep -q "layer 1's .*ffn_up" "$TMP/err"; then ok "nan_weights_name_layer_text"; else bad "nan_weights_name_layer_text" "$(cat "$TMP/err")"; fi
    expect_error "nan_weights_check_mode" "$SM" run -m "$TMP/nan.gguf" -p Hi -n 3 --check --no-display-prompt
    if grep -q "layer 1 produced NaN" "$TMP/err"; then ok "nan_weights_check_mode_text"; else bad "nan_weights_check_mode_text" "$(cat "$TMP/err")"; fi
    # finite weights that overflow: check mode finds the layer
    $PY $PATCH "$TMP/llama.gguf" "$TMP/overflow.gguf" scale blk.0.ffn_up.weight 1e30 scale blk.0.ffn_down.weight 1e30
    expect_error "overflow_detected" "$SM" run -m "$TMP/overflow.gguf" -p Hi -n 3 --no-display-prompt
    "$SM" run -m "$TMP/overflow.gguf" -p Hi -n 3 --check --no-display-prompt > /dev/null 2> "$TMP/err"
    if grep -q "layer 0 produced NaN or Inf" "$TMP/err"; then ok "overflow_check_mode_names_layer"; else bad "overflow_check_mode_names_layer" "$(cat "$TMP/err")"; fi
else
    skp "hostile_model_files" "/usr/bin/python3 is missing (tests/tools/gguf_patch.py makes them)"
fi

# ------------------------------------------- the README's C API example
awk '/^```c$/ { on = 1; next } /^```$/ { on = 0 } on' README.md > "$TMP/example.c"
if [ ! -s "$TMP/example.c" ]; then
    bad "readme_example" "no \`\`\`c block in README.md"
elif ${CC:-cc} ${CFLAGS:-} -std=c11 -Iinclude -o "$TMP/example" "$TMP/example.c" "$BUILD/libsmallmind.a" -lm -lpthread 2> "$TMP/cc"; then
    if have models/stories260K.gguf; then
        if "$TMP/example" "$G" > "$TMP/o" 2>&1 && [ -s "$TMP/o" ]; then ok "readme_example"; else bad "readme_example" "$(head -3 "$TMP/o")"; fi
    else
        skp "readme_example_run" "../shared is absent"
    fi
else
    bad "readme_example" "does not compile: $(head -3 "$TMP/cc")"
fi

echo "cli: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
