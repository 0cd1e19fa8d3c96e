#!/usr/bin/env bash
# profile_test.sh - `smallmind profile` end to end on the original tool's
# models: every report section, JSON that parses, an SVG that is well formed
# (and renders, when librsvg is installed), self times covering >= 95% of
# the generation wall time, 0 bytes and 0 allocations per generated token,
# and the profiler's overhead measured and printed in the report (its
# 3% limit is a timing: bench/profile_overhead.sh checks it).
set -u
BUILD=${BUILD:-build}
SM="$BUILD/smallmind"
PY=/usr/bin/python3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0 skip=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && echo "    $2"; }

for mode in standard deep; do
    flag=""; [ $mode = deep ] && flag="--deep"
    start=$(date +%s)
    if ! "$SM" profile "$TMP/$mode.md" 3 50 $flag --json "$TMP/$mode.json" --svg "$TMP/$mode.svg" 2> "$TMP/err"; then
        bad "profile_$mode" "$(cat "$TMP/err")"; continue
    fi
    secs=$(( $(date +%s) - start ))
    if [ $secs -lt 60 ]; then ok "profile_${mode}_under_a_minute (${secs}s)"; else bad "profile_${mode}_under_a_minute" "${secs}s"; fi
    missing=""
    for h in "# SmallMind profile report" "| date |" "| total time |" "| total allocations |" "| scopes |" \
             "## System" "| CPU |" "| SIMD available |" "| compiler |" "| threads |" \
             "## Summary" "| prefill |" "| decode |" "p50 / p90 / p99" "| time to first token |" \
             "bytes allocated per generated token" "| peak RSS |" "| weights |" "| KV cache |" "session arena" \
             "## Hot paths" "## Top allocators" "## Most called" "## Call hierarchy" "## Per layer" \
             "## Insights" "GFLOP/s" "Optimise first" "## Against the original engine" "6.4 tok/s" "](${mode}.svg)"; do
        grep -qF "$h" "$TMP/$mode.md" || missing="$missing [$h]"
    done
    if [ $mode = deep ]; then
        for h in "## Kernel micro-benchmarks" "matmul 128x128x128" "matmul 256x256x256" "matmul 512x512x512" \
                 "softmax" "GELU" "SiLU" "LayerNorm" "RMSNorm"; do
            grep -qF "$h" "$TMP/$mode.md" || missing="$missing [$h]"
        done
    fi
    if [ -z "$missing" ]; then ok "profile_${mode}_sections"; else bad "profile_${mode}_sections" "missing:$missing"; fi
    if [ ! -x $PY ]; then skip=$((skip + 1)); echo "skip profile_${mode}_json: no $PY"; continue; fi
    if $PY - "$TMP/$mode.json" "$TMP/$mode.svg" > "$TMP/check" 2>&1 <<'PYEOF'
import json, sys, xml.etree.ElementTree as ET
d = json.load(open(sys.argv[1]))
s = d["summary"]
problems = []
if s["self_time_coverage_pct"] < 95: problems.append("self times cover %.1f%% of the wall time" % s["self_time_coverage_pct"])
if s["bytes_per_token"] != 0 or s["allocations_per_token"] != 0: problems.append("allocations per token: %s bytes, %s calls" % (s["bytes_per_token"], s["allocations_per_token"]))
if not d["scopes"] or s["decode_tps"] <= 0: problems.append("no scopes or no decode speed")
names = {r["name"] for r in d["scopes"]}
for n in ["prefill", "token", "sampling", "embedding", "layer", "attention norm", "QKV projection", "attention scores",
          "softmax", "attention x V", "output projection", "FFN up projection", "FFN activation",
          "FFN down projection", "final norm", "logits", "tokenizer encode", "detokenize + stream"]:
    if n not in names: problems.append("no scope " + n)
root = ET.parse(sys.argv[2]).getroot()
if not root.tag.endswith("svg") or len(list(root.iter("{http://www.w3.org/2000/svg}rect"))) < 4: problems.append("svg has no bars")
print("overhead %.3f" % s["overhead_pct"])
print("\n".join(problems))
sys.exit(1 if problems else 0)
PYEOF
    then ok "profile_${mode}_json_svg_coverage_zero_alloc"; else bad "profile_${mode}_json_svg_coverage_zero_alloc" "$(cat "$TMP/check")"; fi
    # The overhead is a timing on a shared machine, so its limit (3 %) is
    # judged by bench/profile_overhead.sh, not here: the test checks that it
    # was measured and reported (a number, and its line in the report).
    oh=$(grep overhead "$TMP/check" | awk '{print $2}')
    if awk -v o="$oh" 'BEGIN { exit !(o == o + 0 && o > -100) }' && grep -q "| profiling overhead | " "$TMP/$mode.md"; then
        ok "profile_${mode}_overhead_reported (${oh}%)"; else bad "profile_${mode}_overhead_reported" "overhead '${oh}'"; fi
    if command -v rsvg-convert > /dev/null; then
        if rsvg-convert -o "$TMP/$mode.png" "$TMP/$mode.svg" 2> "$TMP/err" && [ -s "$TMP/$mode.png" ]; then
            ok "profile_${mode}_svg_renders"; else bad "profile_${mode}_svg_renders" "$(cat "$TMP/err")"; fi
    else
        skip=$((skip + 1)); echo "skip profile_${mode}_svg_renders: rsvg-convert (librsvg2-bin) is not installed"
    fi
done

# a real model, and the short table of `run --profile`
if [ -e "${SM_SHARED:-../shared}/models/stories260K.gguf" ]; then
    if "$SM" profile "$TMP/s.md" 2 20 -m "${SM_SHARED:-../shared}/models/stories260K.gguf" 2>/dev/null \
        && grep -q "RoPE" "$TMP/s.md" && grep -q "FFN gate projection" "$TMP/s.md"; then ok "profile_llama_model"; else bad "profile_llama_model"; fi
    if "$SM" run -m "${SM_SHARED:-../shared}/models/stories260K.gguf" -p "Once" -n 20 --profile 2>&1 >/dev/null | grep -q "## Hot paths"; then
        ok "run_profile_table"; else bad "run_profile_table"; fi
fi
"$SM" profile "$TMP/x.md" 3 500 > /dev/null 2> "$TMP/err"
if [ $? -eq 2 ] && grep -q "context" "$TMP/err"; then ok "profile_too_many_tokens_refused"; else bad "profile_too_many_tokens_refused"; fi

echo "profile: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
