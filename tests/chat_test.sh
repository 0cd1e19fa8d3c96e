#!/usr/bin/env bash
# chat_test.sh - `smallmind chat-template` end to end: the prompts of
# llama.cpp's chat-template tests (../shared/refs/llamacpp/chat-templates.json)
# through template files, names and models that carry a template, the chatml
# fallback for models without one, and bad input (one-line errors).
set -u
BUILD=${BUILD:-build}
SM="$BUILD/smallmind"
SHARED=${SM_SHARED:-../shared}
PY=${PYTHON:-/usr/bin/python3}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0 skip=0

ok()   { pass=$((pass + 1)); echo "ok   $1"; }
bad()  { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && echo "    $2"; }
skp()  { skip=$((skip + 1)); echo "skip $1: $2"; }
finish() { echo "chat: $pass passed, $fail failed, $skip skipped"; [ $fail -eq 0 ]; exit $?; }

# expect_error NAME PATTERN CMD...: non-zero exit below 128, exactly one line
# on stderr that says "error" and matches PATTERN (grep -E), nothing on stdout.
expect_error() {
    local name=$1 pat=$2; shift 2
    "$@" > "$TMP/out" 2> "$TMP/err" < /dev/null
    local rc=$?
    if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$(wc -l < "$TMP/err")" -eq 1 ] && grep -q error "$TMP/err" \
        && grep -qE -- "$pat" "$TMP/err" && [ ! -s "$TMP/out" ]; then
        ok "$name"
    else
        bad "$name" "rc=$rc, stderr: $(head -c 400 "$TMP/err")"
    fi
}

if "$SM" chat-template --help > "$TMP/h" 2>&1 && grep -q "usage: smallmind chat-template" "$TMP/h" \
    && grep -q "mistral-v3-tekken" "$TMP/h"; then ok "help"; else bad "help"; fi
if "$SM" --help | grep -q "chat-template"; then ok "help_main_lists_it"; else bad "help_main_lists_it"; fi
expect_error "no_messages_file" "no messages file" "$SM" chat-template --chat-template chatml
expect_error "unknown_option" "unknown option" "$SM" chat-template --frobnicate x.json

echo '[]' > "$TMP/empty.json"
if "$SM" chat-template --chat-template chatml "$TMP/empty.json" 2> "$TMP/err" | grep -q "Jansson" \
    || grep -q "built without Jansson" "$TMP/err"; then
    expect_error "without_jansson_says_how" "libjansson-dev" "$SM" chat-template --chat-template chatml "$TMP/empty.json"
    skp "chat_template" "this smallmind was built without Jansson"
    finish
fi

J=$SHARED/refs/llamacpp/chat-templates.json
if [ ! -e "$J" ]; then
    skp "chat_template_fixture" "../shared is absent"
    finish
fi

# The fixture, unpacked: the conversation as MESSAGES.json, and per case its
# template text and llama.cpp's expected prompt.
"$PY" - "$J" "$TMP" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
out = sys.argv[2]
json.dump(d["conversation"], open(out + "/conv.json", "w", encoding="utf-8"), ensure_ascii=False)
with open(out + "/cases.txt", "w") as index:
    for i, c in enumerate(d["cases"]):
        open("%s/t%02d.tmpl" % (out, i), "w", encoding="utf-8", newline="").write(c["template"])
        if c.get("expect_error"):
            index.write("%02d error\n" % i)
        else:
            open("%s/t%02d.want" % (out, i), "w", encoding="utf-8", newline="").write(c["expected_output"])
            index.write("%02d %s\n" % (i, c["name"].split(" ")[0]))
        if c.get("supported_with_jinja"):
            for ext, key in (("jwant", "expected_output_jinja"), ("bos", "bos_token"), ("eos", "eos_token")):
                open("%s/t%02d.%s" % (out, i, ext), "w", encoding="utf-8", newline="").write(c.get(key) or "")
EOF
[ -s "$TMP/cases.txt" ] || { bad "fixture_unpacked" "python could not read $J"; finish; }
want() { cat "$TMP/t$(awk -v n="$1" '$2 == n { print $1; exit }' "$TMP/cases.txt").want"; }
C=$TMP/conv.json

# every case of llama.cpp's test through --chat-template FILE
n=0 good=0
while read -r i name; do
    n=$((n + 1))
    if [ "$name" = error ]; then
        "$SM" chat-template --chat-template "$TMP/t$i.tmpl" "$C" > "$TMP/o" 2> "$TMP/e"
        if [ $? -eq 1 ] && [ ! -s "$TMP/o" ] && grep -q "not one of the built-in formats" "$TMP/e"; then
            good=$((good + 1)); else echo "    case $i accepted: $(cat "$TMP/e")"; fi
    else
        "$SM" chat-template --chat-template "$TMP/t$i.tmpl" "$C" > "$TMP/o" 2> /dev/null
        if cmp -s "$TMP/o" "$TMP/t$i.want"; then good=$((good + 1)); else echo "    case $i ($name) differs"; fi
    fi
done < "$TMP/cases.txt"
if [ $n -eq 31 ] && [ $good -eq 31 ]; then ok "llamacpp_cases_by_file"; else bad "llamacpp_cases_by_file" "$good of $n"; fi

# by name: the prompts llama.cpp gives for the real templates of that format
for pair in chatml:teknium/OpenHermes-2.5-Mistral-7B llama3:Llama-3 gemma:google/gemma-7b-it phi4:phi-4 \
            megrez:Infinigence/Megrez-3B-Instruct command-r:CohereForAI/c4ai-command-r-plus; do
    name=${pair%%:*}
    "$SM" chat-template --chat-template "$name" "$C" > "$TMP/o" 2> "$TMP/e"
    if cmp -s "$TMP/o" <(want "${pair#*:}") && grep -q "template $name (by name)" "$TMP/e"; then ok "by_name_$name"
    else bad "by_name_$name" "$(head -c 300 "$TMP/o")"; fi
done
# --no-assistant leaves the assistant opening off; stdin works
"$SM" chat-template --chat-template chatml --no-assistant - < "$C" > "$TMP/o" 2> /dev/null
opening=$(printf '<|im_start|>assistant\n' | wc -c)
if cmp -s "$TMP/o" <(want teknium/OpenHermes-2.5-Mistral-7B | head -c -"$opening"); then ok "no_assistant_stdin"
else bad "no_assistant_stdin"; fi

# a model's own template: the phi-3 vocabulary carries Phi-3's
P3=$SHARED/vocab/ggml-vocab-phi-3.gguf
"$SM" chat-template -m "$P3" "$C" > "$TMP/o" 2> "$TMP/e"
if cmp -s "$TMP/o" <(want Phi-3-mini) && grep -q "template phi3 (from the model's tokenizer.chat_template)" "$TMP/e" \
    && ! grep -q warning "$TMP/e"; then ok "model_template_phi3"; else bad "model_template_phi3" "$(cat "$TMP/e")"; fi
# ... and so does a model made with its vocabulary; --chat-template wins over it
"$SM" init "$TMP/p3.gguf" --vocab-from "$P3" --dim 32 --layers 1 --heads 2 --ffn 48 2> /dev/null
"$SM" chat-template -m "$TMP/p3.gguf" "$C" > "$TMP/o" 2> /dev/null
if cmp -s "$TMP/o" <(want Phi-3-mini); then ok "model_template_init_vocab_from"; else bad "model_template_init_vocab_from"; fi
"$SM" chat-template -m "$TMP/p3.gguf" --chat-template llama3 "$C" > "$TMP/o" 2> /dev/null
if cmp -s "$TMP/o" <(want Llama-3); then ok "argument_wins_over_model"; else bad "argument_wins_over_model"; fi

# no template: chatml, with a one-line warning (the built-in model, a GGUF, a llama2.c file)
check_chatml_fallback() {
    local name=$1 pat=$2; shift 2
    "$SM" chat-template "$@" "$C" > "$TMP/o" 2> "$TMP/e"
    if [ $? -eq 0 ] && cmp -s "$TMP/o" <(want teknium/OpenHermes-2.5-Mistral-7B) \
        && [ "$(grep -c warning "$TMP/e")" -eq 1 ] && grep -q "$pat" "$TMP/e" && grep -q "template chatml" "$TMP/e"; then ok "$name"
    else bad "$name" "$(cat "$TMP/e")"; fi
}
if "$SM" chat-template "$C" > /dev/null 2>&1; then
    check_chatml_fallback "builtin_model_chatml" "no chat template"
else
    skp "builtin_model_chatml" "the built-in model is not beside smallmind"
fi
check_chatml_fallback "gguf_without_template_chatml" "no chat template" -m "$SHARED/models/stories260K.gguf"
check_chatml_fallback "llama2c_chatml" "no chat template" -m "$SHARED/models/stories260K.bin" -z "$SHARED/models/tok512.bin"
# a template that is recognised by no rule: chatml too, as llama-server does
"$PY" - "$P3" "$TMP/odd.gguf" <<'EOF'
import struct, sys
d = open(sys.argv[1], "rb").read()
key = b"tokenizer.chat_template"
i = d.index(struct.pack("<Q", len(key)) + key) + 8 + len(key)
assert struct.unpack("<I", d[i:i + 4])[0] == 8          # a string
n = struct.unpack("<Q", d[i + 4:i + 12])[0]
new = b"{% for m in messages %}{{ m.content }}{% endfor %}"
open(sys.argv[2], "wb").write(d[:i + 4] + struct.pack("<Q", len(new)) + new + d[i + 12 + n:])
EOF
check_chatml_fallback "unrecognised_model_template_chatml" "not one of the built-in formats" -m "$TMP/odd.gguf"

# bad input
printf '[{"role": "user", "content": "a"},\n {"role": "user" "content": "b"}]' > "$TMP/bad.json"
expect_error "bad_json_line_column" "bad.json:2:2[0-9]: invalid JSON" "$SM" chat-template --chat-template chatml "$TMP/bad.json"
echo '[{"role": "user"}]' > "$TMP/nocontent.json"
expect_error "missing_content" 'messages\[0\] has no "content"' "$SM" chat-template --chat-template chatml "$TMP/nocontent.json"
echo '[{"content": "x"}]' > "$TMP/norole.json"
expect_error "missing_role" 'messages\[0\] has no "role"' "$SM" chat-template --chat-template chatml "$TMP/norole.json"
echo '[{"role": "user", "content": "a"}, {"role": "user", "content": 3}]' > "$TMP/num.json"
expect_error "non_string_content" '\[1\]: "content" must be a string.*not a number' "$SM" chat-template --chat-template chatml "$TMP/num.json"
echo '{"role": "user", "content": "a"}' > "$TMP/obj.json"
expect_error "not_a_list" "array of messages" "$SM" chat-template --chat-template chatml "$TMP/obj.json"
printf '[{"role": "user", "content": "bad \xc3\x28"}]' > "$TMP/utf8.json"
expect_error "invalid_utf8" "utf8.json:1:[0-9]+: invalid JSON: unable to decode byte 0xc3" "$SM" chat-template --chat-template chatml "$TMP/utf8.json"
printf '[{"role": "user", "content": "nul \\u0000 here"}]' > "$TMP/nul.json"
expect_error "nul_in_string" "invalid JSON" "$SM" chat-template --chat-template chatml "$TMP/nul.json"
expect_error "unknown_template_lists_names" "unknown chat template 'llama4'.*chatml.*llama3.*zephyr" \
    "$SM" chat-template --chat-template llama4 "$C"
expect_error "unrecognised_template_file" "not one of the built-in formats" \
    "$SM" chat-template --chat-template "$TMP/t$(grep ' error$' "$TMP/cases.txt" | cut -d' ' -f1).tmpl" "$C"
expect_error "missing_messages_file" "cannot open" "$SM" chat-template --chat-template chatml "$TMP/none.json"
expect_error "bad_model" "cannot open|No such" "$SM" chat-template -m "$TMP/none.gguf" "$C"

# --jinja: the template run as a program. llama.cpp's cases with the Jinja
# output its test recorded (minja, with the case's BOS and EOS texts)
n=0 good=0
for w in "$TMP"/t*.jwant; do
    t=${w%.jwant}
    n=$((n + 1))
    "$SM" chat-template --jinja --chat-template "$t.tmpl" --bos-token "$(cat "$t.bos")" --eos-token "$(cat "$t.eos")" \
        "$C" > "$TMP/o" 2> "$TMP/e"
    if cmp -s "$TMP/o" "$w" && grep -q "run as Jinja (from the template file)" "$TMP/e"; then good=$((good + 1))
    else echo "    ${t##*/} differs: $(tail -1 "$TMP/e")"; fi
done
if [ $n -eq 29 ] && [ $good -eq 29 ]; then ok "jinja_llamacpp_cases"; else bad "jinja_llamacpp_cases" "$good of $n"; fi
# a model's own template, its BOS text removed from the front
"$SM" chat-template --jinja -m "$P3" "$C" > "$TMP/o" 2> "$TMP/e"
if cmp -s "$TMP/o" "$TMP/t$(awk '$2 == "Phi-3-mini" { print $1; exit }' "$TMP/cases.txt").jwant" \
    && grep -q "from the model's tokenizer.chat_template" "$TMP/e"; then ok "jinja_model_template"
else bad "jinja_model_template" "$(cat "$TMP/e")"; fi
# the template llama.cpp's built-in formatter does not recognise runs
"$SM" chat-template --jinja -m "$TMP/odd.gguf" "$C" > "$TMP/o" 2> /dev/null
if [ "$(cat "$TMP/o")" = "$("$PY" -c 'import json,sys; print("".join(m["content"] for m in json.load(open(sys.argv[1]))), end="")' "$C")" ]
then ok "jinja_unrecognised_template_runs"; else bad "jinja_unrecognised_template_runs" "$(head -c 200 "$TMP/o")"; fi

# a tool's result without any other tool field: a template that writes tool calls and results (Qwen2.5's
# manner) gets it as it is; one that writes neither gets minja's polyfill (a user turn holding it as JSON).
# The expected prompts are llama-server c392e509's POST /apply-template with --jinja --chat-template-file
# of these two templates (its tool capabilities are probed whatever the request holds).
cat > "$TMP/tool_native.jinja" <<'EOF'
{%- for message in messages %}
{%- if message.role == "tool" %}<|im_start|>user
<tool_response>
{{ message.content }}
</tool_response><|im_end|>
{% elif message.role == "assistant" and message.tool_calls %}<|im_start|>assistant
{%- for tool_call in message.tool_calls %}
<tool_call>
{"name": "{{ tool_call.function.name }}", "arguments": {{ tool_call.function.arguments | tojson }}}
</tool_call>
{%- endfor %}<|im_end|>
{% else %}<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}
EOF
printf '{%% for m in messages %%}{{ m.role }}: {{ m.content }}\n{%% endfor %%}' > "$TMP/tool_plain.jinja"
printf '[{"role":"user","content":"Hi"},{"role":"tool","content":"18C"}]' > "$TMP/tool_result.json"
want_native=$'<|im_start|>user\nHi<|im_end|>\n<|im_start|>user\n<tool_response>\n18C\n</tool_response><|im_end|>\n<|im_start|>assistant\n'
want_plain=$'user: Hi\nuser: {\n  "tool_response": {\n    "content": "18C"\n  }\n}\n'
for kind in native plain; do
    want_var=want_$kind
    got=$("$SM" chat-template --jinja --chat-template "$TMP/tool_$kind.jinja" "$TMP/tool_result.json" 2> /dev/null; echo x)
    if [ "${got%x}" = "${!want_var}" ]; then ok "jinja_tool_result_alone_$kind"
    else bad "jinja_tool_result_alone_$kind" "$(printf '%s' "${got%x}" | head -c 300)"; fi
done

# `chat-template --jinja` with a request's tools and tool fields prints the prompt `serve --jinja` builds:
# tests/refs/server_tools' 99 answers of llama-server c392e509's /apply-template (11 templates x 9
# requests, the built-in chat model), the same prompt or, where the template raised, an error naming it
if [ ! -e "$SHARED/refs/llamacpp/chat-templates.json" ]; then
    echo "skip jinja_tools_cli_matches_llama_server: ../shared is absent"; skip=$((skip + 1))
else
    verdict=$("$PY" - "$SM" "$SHARED/refs/llamacpp/chat-templates.json" tests/refs/server_tools "$TMP" <<'PYEOF2'
import json, os, subprocess, sys
sm, shared, d, tmp = sys.argv[1:5]
cases = {c["name"]: c["template"] for c in json.load(open(shared, encoding="utf-8"))["cases"]}
ref = json.load(open(os.path.join(d, "requests.json"), encoding="utf-8"))
good, bad = 0, []
for line in open(os.path.join(d, "responses.jsonl"), encoding="utf-8"):
    if not line.strip():
        continue
    w = json.loads(line)
    t = w["template"]
    args = [sm, "chat-template", "-m", "models/kjv-chat-3m.gguf", "--jinja"]
    if t:
        text = cases[t["shared"]] if "shared" in t else open(os.path.join(d, t["file"]), encoding="utf-8").read()
        path = os.path.join(tmp, "cli_tools.jinja")
        open(path, "w", encoding="utf-8").write(text)
        args += ["--chat-template", path]
    req = os.path.join(tmp, "cli_tools.json")
    json.dump(ref["requests"][w["request"]], open(req, "w", encoding="utf-8"))
    r = subprocess.run(args + [req], capture_output=True)
    if w["status"] == 200:
        ok = r.returncode == 0 and r.stdout.decode("utf-8") == w["body"]["prompt"]
    else:
        ok = r.returncode != 0 and w["body"]["error"]["message"].split(" at row ")[0] in r.stderr.decode("utf-8")
    if ok:
        good += 1
    else:
        bad.append("%s request %d" % ((t or {}).get("file") or (t or {}).get("shared") or "model's", w["request"]))
print(good, len(bad), "; ".join(bad[:5]))
PYEOF2
)
    read -r good nbad rest <<< "$verdict"
    if [ "${good:-0}" -eq 99 ] && [ "$nbad" = 0 ]; then ok "jinja_tools_cli_matches_llama_server"
    else bad "jinja_tools_cli_matches_llama_server" "$good of 99: $rest"; fi
fi

# `chat --jinja` evaluates that prompt: the first turn's token count is the
# Jinja prompt's (the built-in phi3 format, which keeps the system turn, makes 20)
printf '[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]' > "$TMP/sys_user.json"
"$SM" chat-template --jinja -m "$TMP/p3.gguf" "$TMP/sys_user.json" > "$TMP/jp.txt" 2> /dev/null
n_tok=$("$SM" tokenize -m "$TMP/p3.gguf" -f "$TMP/jp.txt" --parse-special --ids 2> /dev/null | tr -cd ',' | wc -c)
got=$(printf 'Hello\n' | "$SM" chat -m "$TMP/p3.gguf" --jinja -sys "Be brief." -n 2 --temp 0 -v 2>&1 | grep -o 'prompt [0-9]* evaluated')
if [ "$got" = "prompt $((n_tok + 1)) evaluated" ] && [ "$n_tok" -gt 5 ]; then ok "chat_jinja_evaluates_the_jinja_prompt"
else bad "chat_jinja_evaluates_the_jinja_prompt" "chat: '$got', the Jinja prompt: $((n_tok + 1)) tokens"; fi
expect_error "chat_jinja_bad_template" "cannot be run as Jinja: chat template line 1: unknown filter 'nope'" \
    "$SM" chat -m "$TMP/p3.gguf" --jinja --chat-template '{{ messages|nope }}' -n 1

# the language, against Jinja2 itself: templates of our own (one feature
# group each) rendered by Jinja2 in Hugging Face's environment, with
# llama.cpp's system fallback and BOS/EOS removal (tests/tools/jinja2_render.py)
if ! "$PY" -c 'import jinja2' 2> /dev/null; then
    bad "jinja2_reference" "python3-jinja2 is missing: bash scripts/install_deps.sh installs it"
else
    mkdir -p "$TMP/j2"
    "$PY" tests/tools/jinja2_render.py tests/refs/jinja/feature_templates.json "$C" '<s>' '</s>' "$TMP/j2"
    n=0 good=0
    for t in "$TMP"/j2/*.jinja; do
        b=${t%.jinja}
        n=$((n + 1))
        if [ -e "$b.error" ]; then echo "    ${b##*/}: Jinja2 failed: $(cat "$b.error")"; continue; fi
        "$SM" chat-template --jinja --chat-template "$t" --bos-token '<s>' --eos-token '</s>' "$C" > "$TMP/o" 2> "$TMP/e"
        if cmp -s "$TMP/o" "$b.want"; then good=$((good + 1))
        else echo "    ${b##*/} differs from Jinja2: $(tail -1 "$TMP/e")"; diff "$b.want" "$TMP/o" | head -4; fi
    done
    if [ $n -ge 27 ] && [ $good -eq $n ]; then ok "jinja_matches_jinja2"; else bad "jinja_matches_jinja2" "$good of $n"; fi
fi

# bad templates: one line naming the template's line, nothing on stdout
printf 'ok\n{%% for m in messages %%}\n{{ m.content + }}\n{%% endfor %%}' > "$TMP/syntax.jinja"
expect_error "jinja_syntax_error_line" "chat template line 3: an expression is missing" \
    "$SM" chat-template --jinja --chat-template "$TMP/syntax.jinja" "$C"
printf "{{ raise_exception('Roles must alternate') }}" > "$TMP/raise.jinja"
expect_error "jinja_raise_exception" "the template raised an error: Roles must alternate" \
    "$SM" chat-template --jinja --chat-template "$TMP/raise.jinja" "$C"
printf '{%% for i in range(999999) %%}{%% for k in range(999999) %%}{%% endfor %%}{%% endfor %%}' > "$TMP/loop.jinja"
expect_error "jinja_runaway_loop" "runs too long|more than" \
    timeout 60 "$SM" chat-template --jinja --chat-template "$TMP/loop.jinja" "$C"
finish
