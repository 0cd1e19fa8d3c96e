#!/usr/bin/env bash
# profile_tools_test.sh - issue 18's "must show", end to end, checked by an
# independent reader (tests/profile_check.py):
#  1. --trace is valid Chrome trace-event JSON: nesting and time order per
#     thread, thread names, counters, the ring's size stated, pool workers'
#     task spans, and step totals equal to the report's within 1 %;
#  2. --folded adds up to the report's self times within 1 %; --flame parses
#     and renders with rsvg-convert;
#  3. --compare: runs of the same build are within noise for every step; a
#     build whose GELU kernel is 20 % slower (build/smallmind_slow_gelu, made
#     by link-time wrapping, tests/tools/slow_gelu.c) has "FFN activation"
#     named slower;
#  4. train --profile: the operations' self times cover >= 95 % of the
#     step's wall time, the overhead is measured (its 3 % limit is a
#     timing: bench/profile_overhead.sh), and its trace is valid;
#  5. on the --deep model and a 110M-shape model no step is above the
#     ceiling it is judged against, and "optimise first" says memory bound
#     for the 110M model's decode (F32 weights streamed from memory: 0.5
#     FLOP/byte) and compute bound for a prefill of 128 tokens (each weight
#     used 128 times: 64 FLOP/byte).
# Timings on a shared machine move by tens of percent between runs: the
# measurements that depend on them (3, the coverage in 4) are taken again,
# up to twice more, before they count as failures.
# Under the sanitizers (BUILD=build-san) the instrumentation slows each kind
# of code by its own factor (scalar attention far more than the vector
# kernels), so the verdicts that rest on relative times (3's slower/within
# noise, 5's compute-bound prefill and the 110M model) are the plain build's
# to check; that run is about memory safety and checks the rest.
# PROFILE_TOOLS_ONLY="deep compare train roofline" runs some of the parts.
set -u
BUILD=${BUILD:-build}
ONLY=" ${PROFILE_TOOLS_ONLY:-deep compare train roofline} "
want() { case "$ONLY" in *" $1 "*) return 0 ;; esac; return 1; }
TIMED=1; [ "$BUILD" = build-san ] && TIMED=0
SM="$BUILD/smallmind"
SLOW="$BUILD/smallmind_slow_gelu"
PY=/usr/bin/python3
CHECK="$PY tests/profile_check.py"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0 skip=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && echo "$2" | sed 's/^/    /'; }
skipped() { skip=$((skip + 1)); echo "skip $1: $2"; }

if [ ! -x $PY ]; then
    echo "profile_tools: 0 passed, 0 failed, 1 skipped ($PY is missing)"
    exit 0
fi

# ---------------------------------------------------------------- 1, 2, 5 (deep)
if want deep; then
    if "$SM" profile "$TMP/deep.md" 3 20 --deep -t 2 --json "$TMP/deep.json" --trace "$TMP/deep.trace.json" \
            --folded "$TMP/deep.folded" --flame "$TMP/deep.flame.svg" 2> "$TMP/err"; then
        if out=$($CHECK trace "$TMP/deep.trace.json" "$TMP/deep.json" 2>&1); then ok "trace_valid_nested_totals ($(echo "$out" | tail -1))"
        else bad "trace_valid_nested_totals" "$out"; fi
        if out=$($CHECK folded "$TMP/deep.folded" "$TMP/deep.json" 2>&1); then ok "folded_sums_to_self_times ($out)"
        else bad "folded_sums_to_self_times" "$out"; fi
        if out=$($CHECK flame "$TMP/deep.flame.svg" "QKV projection" "FFN up projection" "layer 3" 2>&1); then ok "flame_svg_parses"
        else bad "flame_svg_parses" "$out"; fi
        if command -v rsvg-convert > /dev/null; then
            for f in deep.flame.svg deep.roofline.svg; do
                if rsvg-convert -o "$TMP/$f.png" "$TMP/$f" 2> "$TMP/err" && [ -s "$TMP/$f.png" ]; then ok "renders_$f"
                else bad "renders_$f" "$(cat "$TMP/err")"; fi
            done
        else
            skipped "flame_renders" "rsvg-convert (librsvg2-bin) is not installed"
        fi
        if grep -q "## Roofline" "$TMP/deep.md" && grep -q "](deep.roofline.svg)" "$TMP/deep.md"; then ok "roofline_section_and_chart"
        else bad "roofline_section_and_chart"; fi
        if out=$($CHECK roofline "$TMP/deep.json" 2>&1); then ok "deep_no_step_above_its_ceiling ($out)"
        else bad "deep_no_step_above_its_ceiling" "$out"; fi
    else
        bad "profile_deep_trace" "$(cat "$TMP/err")"
    fi

    # a timeline from run --profile, pool workers included
    if [ -e "${SM_SHARED:-../shared}/models/stories260K.gguf" ]; then
        if "$SM" run -m "${SM_SHARED:-../shared}/models/stories260K.gguf" -p "Once" -n 20 --temp 0 -t 2 --profile \
                --trace "$TMP/run.trace.json" --folded "$TMP/run.folded" --flame "$TMP/run.svg" > /dev/null 2> "$TMP/err" \
            && out=$($CHECK trace "$TMP/run.trace.json" 2>&1) && grep -q '"worker 1"' "$TMP/run.trace.json" \
            && [ -s "$TMP/run.folded" ] && $CHECK flame "$TMP/run.svg" "prefill" > /dev/null; then ok "run_profile_trace ($out)"
        else bad "run_profile_trace" "$(cat "$TMP/err") $out"; fi
    else
        skipped "run_profile_trace" "../shared/models/stories260K.gguf is absent"
    fi
    "$SM" run -m x.gguf --trace "$TMP/t.json" > /dev/null 2> "$TMP/err"
    if [ $? -eq 2 ] && grep -q "come with --profile" "$TMP/err"; then ok "trace_needs_profile"; else bad "trace_needs_profile" "$(cat "$TMP/err")"; fi
fi

# ---------------------------------------------------------------- 3 (compare)
if want compare; then
    # A GPT-2 shape with a wide FFN, so the GELU calls (4096 values) dwarf the
    # wrapper's two clock reads, and 8 layers and 230 tokens, so a run lasts
    # about 2 s. This machine has quiet and busy moments lasting seconds (a
    # compute-bound call takes 1.4 times as long in a busy one, twice the
    # injected change), and a run of 50 ms falls in one or the other, making
    # its median call bimodal from run to run; the fastest of a step's 230
    # calls in a 2-second run is taken in a quiet moment, about the same in
    # every run, and the comparison judges a step on whichever of the two
    # measures spreads less over the base runs. The builds take turns (base,
    # same, slowed), each side pooling its reports, so the machine's drifts
    # land in every side; when a round's verdicts are not both right, another
    # round adds its runs to the pools (the evidence accumulates; nothing is
    # thrown away).
    "$SM" init "$TMP/wide.gguf" --arch gpt2 --dim 256 --layers 8 --heads 4 --ffn 4096 --ctx 256 --vocab 256 2> /dev/null
    same_ok=0 slow_ok=0 base_ok=0 A="" B="" C=""
    # (under the sanitizers only the tables are checked: two short rounds)
    rounds="1 2 3 4 5 6 7 8" per_round="2 230"; [ $TIMED = 0 ] && rounds="1 2" per_round="2 20"
    for round in $rounds; do
        # the order rotates each round (a b c, b c a, c a b, ...): a drift
        # within a round does not always favour the same side
        case $((round % 3)) in 1) order="a b c" ;; 2) order="b c a" ;; 0) order="c a b" ;; esac
        for who in $order; do
            bin="$SM"; [ $who = c ] && bin="$SLOW"
            "$bin" profile "$TMP/$who$round.md" $per_round -m "$TMP/wide.gguf" -t 1 --json "$TMP/$who$round.json" 2> /dev/null
        done
        A="$A${A:+,}$TMP/a$round.json" B="$B${B:+,}$TMP/b$round.json" C="$C${C:+,}$TMP/c$round.json"
        [ $round -lt 2 ] && continue
        "$SM" profile --compare "$A" "$B" > "$TMP/same.md" 2> "$TMP/err"
        "$SM" profile --compare "$A" "$C" > "$TMP/slow.md" 2>> "$TMP/err"
        steps_same=$(sed -n '/^## Steps/,/^\*\*Overall/p' "$TMP/same.md" | grep '^| [a-zA-Z]' | grep -v '^| step ')
        same_ok=0 slow_ok=0
        if [ -n "$steps_same" ] && ! echo "$steps_same" | grep -qE '\| (slower|faster) \|'; then same_ok=1; fi
        if grep -E '^\| FFN activation \|' "$TMP/slow.md" | grep -q '| slower |'; then slow_ok=1; fi
        [ $same_ok = 1 ] && [ $slow_ok = 1 ] && break
    done
    runs=$((${per_round% *} * round))
    if [ $TIMED = 0 ]; then
        # the comparison's tables, without judging its verdicts
        if grep -qE '^\| FFN activation \|.*\| (slower|faster|within noise) \|' "$TMP/slow.md"; then ok "compare_names_a_verdict_per_step"
        else bad "compare_names_a_verdict_per_step" "$(cat "$TMP/slow.md" "$TMP/err" | tail -5)"; fi
    elif [ $same_ok = 1 ]; then ok "compare_same_build_within_noise ($runs runs a side)"
    else bad "compare_same_build_within_noise" "$(grep -E '\| (slower|faster) \|' "$TMP/same.md")"; fi
    # The interval the same build gets for the GELU step is the machine's noise
    # for it: when it is wider than +-15 %, no method can resolve a 20 % change
    # from these runs, and a "within noise" whose estimate is still at least
    # x1.1 is reported as such (skipped) instead of guessed; an estimate below
    # x1.1 (the slowdown not seen: a wrapper that spins for nothing fails
    # here) or "faster" is a failure whatever the noise.
    gelu_same=$(grep -E '^\| FFN activation \|' "$TMP/same.md" | cut -d'|' -f7 | tr -d ' x' | sed 's/to/ /')
    gelu_est=$(grep -E '^\| FFN activation \|' "$TMP/slow.md" | cut -d'|' -f6 | tr -d ' x')
    if [ $TIMED = 0 ]; then :
    elif [ $slow_ok = 1 ]; then ok "compare_names_slowed_gelu ($(grep -E '^\| FFN activation \|' "$TMP/slow.md" | cut -d'|' -f6-8 | tr -s ' '), $runs runs a side)"
    elif grep -E '^\| FFN activation \|' "$TMP/slow.md" | grep -q '| within noise |' \
        && awk -v e="$gelu_est" 'BEGIN { exit !(e >= 1.1) }' \
        && awk -v r="$gelu_same" 'BEGIN { split(r, x, " "); exit !(x[1] < 0.85 || x[2] > 1.15) }'; then
        skipped "compare_names_slowed_gelu" "this machine's noise for the step (the same build's interval x${gelu_same/ / to x}) cannot resolve a 20 % change now"
    else bad "compare_names_slowed_gelu" "$(grep -E '^\| FFN activation \|' "$TMP/slow.md") $(cat "$TMP/err")"; fi
    for v in "decode tokens/s" "ms/token p50" "ms/token p90" "ms/token p99" "allocations per token" "bytes allocated per token"; do
        grep -q "^| $v |" "$TMP/same.md" || { bad "compare_overall_rows" "no row $v"; base_ok=2; }
    done
    [ $base_ok = 0 ] && ok "compare_overall_rows"
    # one report a side: its runs share one process's moment, which the comparison says
    "$SM" profile --compare "$TMP/a1.json" "$TMP/b1.json" > "$TMP/single.md" 2> "$TMP/err"
    if grep -q "^\*\*Each side is one report\*\*" "$TMP/single.md" && ! grep -q "one report\*\*" "$TMP/same.md"; then
        ok "compare_says_one_report_a_side"
    else bad "compare_says_one_report_a_side" "$(grep -c "one report" "$TMP/single.md" "$TMP/same.md")"; fi
    # --baseline: the same comparison, of a new run, in its report
    if "$SM" profile "$TMP/bl.md" 2 20 -m "$TMP/wide.gguf" -t 1 --baseline "$TMP/a1.json" 2> "$TMP/err" \
        && grep -q "## Profile comparison" "$TMP/bl.md" && grep -q "^\*\*Overall: " "$TMP/bl.md" \
        && grep -q "against .*a1.json: " "$TMP/err"; then ok "baseline_section"; else bad "baseline_section" "$(tail -3 "$TMP/err")"; fi
    "$SM" profile --compare "$TMP/a1.json" > /dev/null 2> "$TMP/err"
    if [ $? -eq 2 ]; then ok "compare_needs_two_reports"; else bad "compare_needs_two_reports"; fi
    echo '{"runs": []}' > "$TMP/norun.json"
    "$SM" profile --compare "$TMP/norun.json" "$TMP/a1.json" > /dev/null 2> "$TMP/err"
    if [ $? -eq 1 ] && grep -q "per-run samples" "$TMP/err"; then ok "compare_refuses_report_without_runs"
    else bad "compare_refuses_report_without_runs" "$(cat "$TMP/err")"; fi
fi

# ---------------------------------------------------------------- 4 (train)
if want train; then
    for i in $(seq 1 40); do
        echo "The little cat sat on the warm mat. The big dog ran to the red ball."
        echo "Once upon a time there was a girl who loved to play in the park."
    done > "$TMP/corpus.txt"
    train_ok=0
    for attempt in 1 2 3; do
        if "$SM" train --data "$TMP/corpus.txt" --out "$TMP/t.gguf" --arch llama --dim 64 --layers 2 --heads 4 \
                --batch 4 --seq 64 --steps 21 --eval-every 0 -t 1 --profile --trace "$TMP/t.trace.json" \
                --folded "$TMP/t.folded" 2> "$TMP/err"; then
            out=$($CHECK train "$TMP/t.profile.json" 2>&1)
            rc=$?
            oh=$(echo "$out" | sed -n 's/^overhead //p')
            if [ $rc -eq 0 ] && awk -v o="$oh" 'BEGIN { exit !(o == o + 0) }'; then train_ok=1; break; fi
        else
            out=$(cat "$TMP/err")
        fi
    done
    if [ $train_ok = 1 ]; then ok "train_profile_coverage ($(echo "$out" | head -1), attempt $attempt)"
    else bad "train_profile_coverage" "$out"; fi
    if [ -s "$TMP/t.profile.md" ] && grep -q "## Per layer" "$TMP/t.profile.md" && grep -q "## Per operation" "$TMP/t.profile.md" \
        && grep -q "AdamW moments" "$TMP/t.profile.md" && grep -q "all-reduce" "$TMP/t.profile.md" \
        && grep -q "GFLOP/s" "$TMP/t.profile.md" && [ -s "$TMP/t.roofline.svg" ]; then ok "train_profile_sections"
    else bad "train_profile_sections"; fi
    if out=$($CHECK trace "$TMP/t.trace.json" "$TMP/t.profile.json" 2>&1); then ok "train_trace_valid ($(echo "$out" | tail -1))"
    else bad "train_trace_valid" "$out"; fi
    "$SM" train --data "$TMP/corpus.txt" --out "$TMP/t2.gguf" --steps 2 --trace "$TMP/x.json" > /dev/null 2> "$TMP/err"
    if [ $? -eq 2 ]; then ok "train_trace_needs_profile"; else bad "train_trace_needs_profile" "$(cat "$TMP/err")"; fi
    # mixed precision (where the CPU has AVX512_BF16; elsewhere train_test.sh checks the refusal): the
    # products are BF16 dots, judged against the measured BF16 peak
    if grep -qw avx512_bf16 /proc/cpuinfo && grep -qw avx512_vnni /proc/cpuinfo; then
        if "$SM" train --data "$TMP/corpus.txt" --out "$TMP/tb.gguf" --arch llama --dim 64 --layers 2 --heads 4 \
                --batch 4 --seq 64 --steps 5 --eval-every 0 -t 1 --profile --bf16 2> "$TMP/err" \
            && out=$($CHECK train "$TMP/tb.profile.json" bf16 2>&1) && grep -q "BF16 dot peak" "$TMP/tb.profile.md"; then
            ok "train_profile_bf16_products_against_the_bf16_peak"
        else
            bad "train_profile_bf16_products_against_the_bf16_peak" "${out:-$(tail -c 300 "$TMP/err")}"
        fi
    fi
fi

# ---------------------------------------------------------------- 5 (ceilings, advice)
if want roofline; then
    "$SM" init "$TMP/small.gguf" --arch gpt2 --dim 128 --layers 1 --heads 4 --ffn 512 --ctx 256 --vocab 256 2> /dev/null
    if ! "$SM" profile "$TMP/cb.md" 5 1 -m "$TMP/small.gguf" --prompt 128 -t 1 --json "$TMP/cb.json" 2> "$TMP/err"; then
        bad "advice_prefill" "$(cat "$TMP/err")"
    elif [ $TIMED = 0 ]; then
        if out=$($CHECK roofline "$TMP/cb.json" 2>&1) && grep -q "Optimise first" "$TMP/cb.md"; then
            ok "advice_no_step_above_its_ceiling ($out)"
        else bad "advice_no_step_above_its_ceiling" "$out"; fi
    elif out=$($CHECK roofline "$TMP/cb.json" compute 2>&1) && grep "Optimise first" "$TMP/cb.md" | grep -q "compute bound" \
        && grep "Optimise first" "$TMP/cb.md" | grep -q "(prefill)"; then ok "advice_compute_bound_prefill ($out)"
    else bad "advice_compute_bound_prefill" "$out $(grep "Optimise first" "$TMP/cb.md")"; fi
    # which peak bounds a product: the float model's none int8; its Q8_0 copy's prompt projections
    # int8 on the avx512 kernels (integer batch products), judged against the measured int8 peak
    if out=$($CHECK int8 "$TMP/cb.json" float 2>&1) \
        && "$SM" quantize "$TMP/small.gguf" "$TMP/small-q8.gguf" Q8_0 > /dev/null 2> "$TMP/err" \
        && "$SM" profile "$TMP/q8.md" 2 1 -m "$TMP/small-q8.gguf" --prompt 64 -t 1 --json "$TMP/q8.json" 2>> "$TMP/err" \
        && out="$out; $($CHECK int8 "$TMP/q8.json" quantized 2>&1)"; then
        ok "int8_products_against_the_int8_peak ($out)"
    else bad "int8_products_against_the_int8_peak" "$out $(cat "$TMP/err")"; fi
    if [ $TIMED = 0 ]; then :
    elif [ "${SM_SKIP_110M:-0}" = 1 ]; then
        skipped "model_110m" "SM_SKIP_110M=1"
    elif "$SM" init "$TMP/m110.gguf" --arch llama --dim 768 --layers 12 --heads 12 --ffn 2048 --ctx 1024 --vocab 32000 2> "$TMP/err" \
        && "$SM" profile "$TMP/m110.md" 1 2 -m "$TMP/m110.gguf" --prompt 1 -t 2 --json "$TMP/m110.json" 2>> "$TMP/err"; then
        # 110M F32 weights (440 MB) stream from DRAM, or partly from L3 where it is as large as this
        # VM's 260 MiB: the first step is memory bound against one of the two
        if out=$($CHECK roofline "$TMP/m110.json" memory 2>&1) && grep "Optimise first" "$TMP/m110.md" | grep -q "memory bound" \
            && $PY -c "import json,sys; r=json.load(open(sys.argv[1]))['roofline'][0]; sys.exit(not(r['level'] in ('L3', 'DRAM')))" "$TMP/m110.json"
        then ok "110m_no_step_above_ceiling_advice_memory_bound ($out)"
        else bad "110m_no_step_above_ceiling_advice_memory_bound" "$out $(grep "Optimise first" "$TMP/m110.md")"; fi
    else
        bad "model_110m" "$(tail -3 "$TMP/err")"
    fi
    rm -f "$TMP/m110.gguf"
fi

echo "profile_tools: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
