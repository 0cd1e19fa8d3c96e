#!/usr/bin/env bash
# run.sh - runs each libFuzzer target for a fixed time (FUZZ_SECONDS, default
# 30) under ASan+UBSan, seeded with ../shared's files when present (and
# fuzz_checkpoint with a checkpoint `smallmind train` makes here). Fails if
# a target finds a crash, a leak or undefined behaviour.
set -u
cd "$(dirname "$0")/../.."
SECS=${FUZZ_SECONDS:-30}
SHARED=${SM_SHARED:-../shared}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0 passed=0 failed=0
for t in build-fuzz/fuzz_*; do
    name=$(basename "$t")
    corpus="$work/$name"
    mkdir -p "$corpus"
    case $name in
        fuzz_gguf) for f in "$SHARED"/models/*.gguf "$SHARED"/vocab/*.gguf; do [ -e "$f" ] && [ "$(stat -c %s "$f")" -lt 2000000 ] && cp "$f" "$corpus/"; done
            # tiny files of the architectures whose keys the shared models lack (YaRN's and the
            # temperature's, M-RoPE's sections, post-norms, experts, ALiBi's span, the embeddings' norm)
            [ -x build/smallmind ] || make -s build/smallmind > /dev/null
            for arch in mistral3 qwen3vl exaone4 hunyuan-dense olmo nemotron gemma3 qwen3moe bloom mpt cohere2 command-r jais; do
                experts=""; [ "$arch" = qwen3moe ] && experts="--experts 2"
                build/smallmind init "$corpus/init-$arch.gguf" --arch "$arch" --dim 16 --layers 1 --heads 2 --ffn 16 \
                    --ctx 16 --vocab 260 $experts 2> /dev/null || echo "note: no $arch seed (smallmind init failed)"
            done ;;
        fuzz_llama2c)
            if [ -e "$SHARED/models/stories260K.bin" ]; then
                size=$(stat -c %s "$SHARED/models/stories260K.bin")
                { printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((size & 255)) $((size >> 8 & 255)) $((size >> 16 & 255)) $((size >> 24 & 255)))"
                  cat "$SHARED/models/stories260K.bin" "$SHARED/models/tok512.bin"; } > "$corpus/seed"
            fi ;;
        fuzz_checkpoint)
            # a real checkpoint of a tiny model, made for the run fuzz_checkpoint.c expects
            # (--batch 2 --seq 8, under 1000 steps, a stream of at most 4096 tokens)
            [ -x build/smallmind ] || make -s build/smallmind > /dev/null
            for i in $(seq 1 12); do echo "The little cat sat on the warm mat. The big dog ran to the red ball."; done > "$work/text"
            build/smallmind train --data "$work/text" --out "$work/seed.gguf" --arch llama --dim 8 --layers 1 --heads 2 \
                --ctx 16 --batch 2 --seq 8 --steps 3 --checkpoint-every 3 --checkpoint "$corpus/seed.ckpt" --eval-every 0 -t 1 \
                2> /dev/null || echo "note: no seed checkpoint (smallmind train failed)" ;;
        fuzz_adapter) cp tests/refs/lora/*.gguf "$corpus/" ;;
        fuzz_chat_template)
            # flags, then template \0 role \0 content ...
            i=0
            for tmpl in chatml llama2-sys-bos mistral-v1 gemma orion gigachat minicpm "{{ '<|im_start|>' }}" \
                     "[INST] <<SYS>>" "<|assistant|><|user|></s>"; do
                printf '\x03%s\0system\0  Be brief \0user\0Hello\0assistant\0 Hi \0user\0\xc3\xa9t\xc3\xa9' "$tmpl" \
                    > "$corpus/seed$i"
                i=$((i + 1))
            done ;;
        fuzz_server_request)
            # endpoint byte, the body up to a NUL, then token pieces split at 0xFF
            printf '\x00{"messages":[{"role":"user","content":"hi"}],"max_tokens":5,"stop":["ab","c"],"temperature":0}\0a\xffb\xffca' > "$corpus/chat"
            printf '\x00{"messages":[{"role":"user","content":[{"type":"text","text":"a"}]}],"stop":"xy"}\0 \xc3\xff\xa9x\xe2\x82\xffyz' > "$corpus/text"
            printf '\x01{"prompt":[1,2,3],"stream":true,"stream_options":{"include_usage":true},"seed":7}\0\xf0\x9f\xff\x98\x80' > "$corpus/completion"
            printf '\x02{"input":["a","b"],"encoding_format":"base64"}' > "$corpus/embeddings"
            printf '\x00{"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"schema":{"type":"object","properties":{"a":{"type":"integer","minimum":0}},"required":["a"]}}}}' > "$corpus/schema"
            printf '\x01{"prompt":"x","response_format":{"type":"json_object"}}' > "$corpus/object"
            # byte 7 (a completion, /6 odd): llama-server's own /completion
            printf '\x07{"prompt":"x","n_predict":0,"n_probs":3,"grammar":"root ::= \\"a\\"","stop":["a","b","c","d","e","f"],"seed":-1}\0ab\xffc' > "$corpus/native"
            printf '\x07{"prompt":[1,2],"json_schema":{"type":"object","properties":{"n":{"type":"integer"}}},"stream":true}' > "$corpus/native_schema"
            # byte 13 (/12 odd too): /infill
            printf '\x0d{"input_prefix":["a",5,"b"],"input_suffix":"c","prompt":"d","input_extra":[{"text":"e","filename":"f"},{"text":"g"}],"n_predict":3}' > "$corpus/infill"
            # byte 3: chat with --jinja (tools allowed)
            printf '\x03{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\\"a\\": [1, 2.5, null, true]}"}}]},{"role":"tool","tool_call_id":"c1","name":"f","content":"ok"}],"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object","properties":{"a":{"type":"array"}}}}}],"tool_choice":"required","parallel_tool_calls":true}' > "$corpus/tools" ;;
        fuzz_server_responses)
            # even byte: a Responses request body; odd: a chat completion, then chat chunks, NUL-separated
            printf '\x00{"input":[{"role":"user","content":[{"type":"input_text","text":"a"}]},{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"ok"}],"instructions":"b","tools":[{"type":"function","name":"f","parameters":{"type":"object"}}],"tool_choice":{"type":"function","name":"f"},"max_output_tokens":9,"stream":true}' > "$corpus/request"
            printf '\x02{"input":"hi","text":{"format":{"type":"json_schema","name":"x","schema":{"type":"object","properties":{"a":{"type":"integer"}}}}}}' > "$corpus/schema"
            printf '\x01{"id":"chatcmpl-ab","created":1,"model":"m","choices":[{"message":{"content":"x","reasoning_content":"r","tool_calls":[{"id":"c","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}\0{"id":"chatcmpl-ab","choices":[{"delta":{"role":"assistant","reasoning_content":"t"}}]}\0{"choices":[{"delta":{"content":"h\u00e9"}}]}\0{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":"{\\"a\\""}}]}}]}\0{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]},"finish_reason":"tool_calls"}]}\0{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}' > "$corpus/answer"
            printf '\x01{}\0{"id":"x"}\0{"error":{"message":"m","code":500}}' > "$corpus/error" ;;
        fuzz_sft)
            # template byte (model's, llama3, Jinja), then JSONL records
            rec='{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What does John 3:16 say?"}, {"role": "assistant", "content": "For God so loved the world."}]}'
            two='{"messages": [{"role": "user", "content": "Hi \u00e9"}, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "More"}, {"role": "assistant", "content": [{"type": "text", "text": "Yes"}]}]}'
            for b in 0 1 2; do printf "\\x0$b%s\n%s\n" "$rec" "$two" > "$corpus/seed$b"; done ;;
        fuzz_jinja)
            # the template text: llama.cpp's test templates and ours (tests/refs/jinja)
            ${PYTHON:-/usr/bin/python3} - "$SHARED/refs/llamacpp/chat-templates.json" tests/refs/jinja/feature_templates.json \
                "$corpus" <<'PYEOF' || printf '{%% for m in messages %%}{{ m.role }}{%% endfor %%}' > "$corpus/seed"
import json, os, sys
n = 0
for path, key in ((sys.argv[1], "cases"), (sys.argv[2], "templates")):
    if not os.path.exists(path):
        continue
    for c in json.load(open(path, encoding="utf-8"))[key]:
        open(os.path.join(sys.argv[3], "seed%d" % n), "w", encoding="utf-8").write(c["template"])
        n += 1
PYEOF
            ;;
        fuzz_server_util)
            # endpoint byte (0 tokenize, 1 detokenize, 2 apply-template, 3 and 4 a reply with tools), then the body
            # (for a reply, a byte picking its format first)
            printf '\x00{"content":"In the beginning<|endoftext|>\xc3\xa9","add_special":true,"with_pieces":true}' > "$corpus/tokenize"
            printf '\x00{"content":["a",5,"b"]}' > "$corpus/mixed"
            printf '\x01{"tokens":[2047,99,195,33]}' > "$corpus/detokenize"
            printf '\x02{"messages":[{"role":"system","content":"s"},{"role":"user","content":"hi"}]}' > "$corpus/template"
            printf '\x02{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":null,"tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","content":"1"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}' > "$corpus/tools"
            # the replies of tests/refs/chat_parse: \x03, the format's byte (tools.c's order from 0, +9 with built-in
            # tools, +18 as --reasoning-format none reads them), the text
            ${PYTHON:-/usr/bin/python3} - tests/refs/chat_parse/replies.json "$corpus" <<'PYEOF' || true
import json, os, sys
order = ["generic", "hermes", "llama3", "nemo", "functionary31", "functionary32", "firefunction", "r7b", "deepseek_r1"]
for n, c in enumerate(json.load(open(sys.argv[1], encoding="utf-8"))["cases"]):
    f = c["format"]
    pick = order.index("llama3") + 9 if f == "llama3_builtin" else order.index(f[:-5]) + 18 if f.endswith("_none") else order.index(f)
    open(os.path.join(sys.argv[2], "reply%d" % n), "wb").write(bytes([3, pick]) + c["text"].encode())
PYEOF
            ;;
        fuzz_grammar)
            i=0
            for f in "$SHARED"/grammars/*.gbnf; do
                [ -e "$f" ] || continue
                size=$(stat -c %s "$f")
                { printf "$(printf '\\x%02x\\x%02x' $((size & 255)) $((size >> 8 & 255)))"
                  cat "$f"; printf '1. e4 e5\n{"a": [1, "x\xc3\xa9"]}\n- item\n'; } > "$corpus/seed$i"
                i=$((i + 1))
            done ;;
        fuzz_json_schema)
            if command -v python3 >/dev/null && [ -e "$SHARED/refs/llamacpp/json-schema-to-grammar.json" ]; then
                python3 - "$SHARED" "$corpus" <<'PY'
import json, sys
i = 0
for name in ("json-schema-to-grammar.json", "grammar-integration.json"):
    for c in json.load(open(sys.argv[1] + "/refs/llamacpp/" + name))["cases"]:
        if "schema_text" in c:
            open("%s/seed%d" % (sys.argv[2], i), "w").write(c["schema_text"])
            i += 1
PY
            fi ;;
        fuzz_profile_json)
            # a report with two runs (one without the robust measures) and two steps
            printf '{"model": {"path": "m"}, "workload": {"inferences": 2, "tokens": 3, "prompt_tokens": 1}, "system": {"kernels": "avx2", "threads": 2}, "runs": [{"wall_ms": 1.5, "decode_tps": 10, "self_ms": {"a": 0.5, "b": 0.25}, "self_ms_robust": {"a": 0.4, "b": 0.2}, "self_ms_fastest": {"a": 0.3, "b": 0.1}}, {"wall_ms": 2, "self_ms": {"a": 0.6}}]}' \
                > "$corpus/seed" ;;
        fuzz_session) FUZZ_SESSION_SEED="$corpus/seed" "$t" -runs=0 "$corpus" > /dev/null 2>&1 ;;
        fuzz_tokenizer)
            if [ -e "$SHARED/models/tok512.bin" ]; then
                { printf '\x00\x02\x10\x00Once upon a time'; cat "$SHARED/models/tok512.bin"; } > "$corpus/seed"
            fi ;;
    esac
    echo "fuzzing $name for ${SECS}s"
    if "$t" -max_total_time="$SECS" -max_len=2000000 -rss_limit_mb=4096 -print_final_stats=0 "$corpus" \
        > "$work/$name.log" 2>&1; then
        passed=$((passed + 1))
        echo "ok   $name ($(grep -o 'Done [0-9]* runs' "$work/$name.log" | tail -1))"
    else
        failed=$((failed + 1))
        status=1
        echo "FAIL $name"
        tail -40 "$work/$name.log"
    fi
done
echo "fuzz: $passed passed, $failed failed"
exit $status
