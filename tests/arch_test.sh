#!/usr/bin/env bash
# arch_test.sh - every architecture x weight type of issue 12 against llama.cpp's recorded
# outputs (tests/refs/arch) and the float64 PyTorch reference (tests/torch_arch.py).
#
# For each model of tests/refs/arch/gen_models.py: regenerate the F32 file and check its
# sha256 is the one llama.cpp ran on; run SmallMind on it (tests/tools/dump_logits.c: whole
# prompt and token by token; tests/tools/greedy_ids.c); quantize it with `smallmind quantize`
# to every type, check each file's sha256 against the file llama.cpp ran on, and run SmallMind
# on it; also run the llama-quantize mixes committed in tests/refs/arch/files. The criteria
# (tests/arch_check.py): F32 within 1e-4 (max|d|/max|ref|) of float64 and, for the SiLU
# architectures, of llama.cpp, with llama.cpp's greedy continuation; other types an rms error
# against the float64 logits of the same file <= 1.1x llama.cpp's and the argmax of llama.cpp
# at >= 95% of the positions.
# An architecture or type SmallMind refuses (a load error naming what is unsupported, or
# `smallmind quantize` refusing the type) is reported "not supported yet" and counted as
# skipped; ARCH_STRICT=1 counts it as a failure. ARCH_MODELS="llama gpt2" and ARCH_TYPES="Q4_K Q8_0"
# restrict the models and the `smallmind quantize` types (the committed mixes always run).
set -u
BUILD=${BUILD:-build}
SM="$BUILD/smallmind"
PY=/usr/bin/python3
REFS=tests/refs/arch
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0 skip=0
STRICT=${ARCH_STRICT:-0}
TYPES=${ARCH_TYPES:-F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K Q4_K Q5_K Q6_K IQ4_NL IQ4_XS Q4_K_M Q5_K_M}
export SM_THREADS=${SM_THREADS:-2}

if ! $PY -c "import torch, numpy" 2>/dev/null; then
    echo "skip arch: python3-torch and python3-numpy are not installed (apt-get install python3-torch python3-numpy)"
    echo "arch: 0 passed, 0 failed, 1 skipped"
    exit 0
fi
for t in "$SM" "$BUILD/dump_logits" "$BUILD/greedy_ids"; do
    [ -x "$t" ] || { echo "FAIL arch: $t is missing (make $t)"; echo "arch: 0 passed, 1 failed, 0 skipped"; exit 1; }
done

ok()   { pass=$((pass + 1)); echo "ok   $1"; }
bad()  { fail=$((fail + 1)); echo "FAIL $1"; }
unsupported() {   # name, what
    if [ "$STRICT" = 1 ]; then bad "$1: not supported: $2"; else skip=$((skip + 1)); echo "skip $1: not supported yet ($2)"; fi
}
ref_sha() { grep -F "\"$1\":" "$REFS/refs.json" | sed -n 's/.*"sha256":"\([0-9a-f]*\)".*/\1/p'; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# run_sm KIND KEY NAME FILE: SmallMind's logits of FILE, queued for arch_check.py
run_sm() {
    local kind=$1 key=$2 name=$3 f=$4 base=${4%.gguf}
    if ! "$BUILD/dump_logits" "$f" "$toks" "$base.p" "$base.d" 2> "$TMP/err"; then
        if grep -q "not supported\|cannot run\|unsupported" "$TMP/err"; then
            unsupported "$name" "$(head -1 "$TMP/err" | sed "s#$TMP/##g")"
        else
            bad "$name: dump_logits failed: $(head -3 "$TMP/err")"
        fi
        return 1
    fi
    local greedy=
    if [ "$kind" = f32 ] && [ "$silu" = yes ] && [ "$runs" = yes ]; then
        if "$BUILD/greedy_ids" "$f" "$toks" 32 > "$base.greedy" 2> "$TMP/err"; then
            greedy=$base.greedy
        else
            bad "$name: greedy_ids failed: $(head -3 "$TMP/err")"
        fi
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$key" "$f" "$toks" "$base.p" "$base.d" "$greedy" >> "$d/list"
}

# arch_check.py judges several models' files in one process (importing torch takes longer than the
# checks): BATCH models' directories are kept until their turn comes
BATCH=${ARCH_BATCH:-8}
batch_dirs=()
check_batch() {
    [ ${#batch_dirs[@]} -gt 0 ] || return 0
    local list=$TMP/batch.list
    : > "$list"
    for bd in "${batch_dirs[@]}"; do cat "$bd/list" >> "$list"; done
    if [ -s "$list" ]; then
        $PY tests/arch_check.py "$list" > "$TMP/batch.out" 2>&1
        cat "$TMP/batch.out"
        pass=$((pass + $(grep -c '^ok ' "$TMP/batch.out")))
        fail=$((fail + $(grep -c '^FAIL ' "$TMP/batch.out")))
        [ "$(grep -c '^ok \|^FAIL ' "$TMP/batch.out")" = "$(grep -c $'\t' "$list")" ] ||
            { fail=$((fail + 1)); echo "FAIL arch: arch_check.py stopped early (models ${batch_dirs[*]##*/})"; }
    fi
    rm -rf "${batch_dirs[@]}"
    batch_dirs=()
}

models=$($PY "$REFS/gen_models.py" --list)
while read -r m arch runs silu; do
    [ -z "${ARCH_MODELS:-}" ] || [[ " $ARCH_MODELS " == *" $m "* ]] || continue
    d=$TMP/$m
    mkdir -p "$d"
    : > "$d/list"
    $PY "$REFS/gen_models.py" "$d" "$m"
    toks=$($PY "$REFS/gen_models.py" --tokens "$m")
    want=$(ref_sha "$m/f32/F32")
    got=$(sha "$d/$m.gguf")
    if [ -z "$want" ]; then
        bad "arch_${m}_F32: no entry in $REFS/refs.json (run tests/refs/arch/make_refs.sh)"; rm -rf "$d"; continue
    elif [ "$want" != "$got" ]; then
        bad "arch_${m}_F32: gen_models.py wrote a different file (sha256 $got, refs $want)"; rm -rf "$d"; continue
    fi
    run_sm f32 "$m/f32/F32" "arch_${m}_F32" "$d/$m.gguf"
    for t in $TYPES; do
        name=arch_${m}_$t
        if ! "$SM" quantize "$d/$m.gguf" "$d/sm.$t.gguf" "$t" > /dev/null 2> "$TMP/err"; then
            unsupported "$name" "smallmind quantize: $(tail -1 "$TMP/err" | sed 's/^smallmind quantize: error: //;s#'"$TMP"'/##g')"
            continue
        fi
        want=$(ref_sha "$m/smallmind/$t")
        got=$(sha "$d/sm.$t.gguf")
        if [ -z "$want" ]; then
            bad "$name: no llama.cpp reference for smallmind's $t file (run make_refs.sh with QUANTIZER=smallmind)"
        elif [ "$want" != "$got" ]; then
            bad "$name: smallmind quantize wrote a different file from the one llama.cpp ran on (re-run make_refs.sh with QUANTIZER=smallmind)"
        else
            run_sm quant "$m/smallmind/$t" "$name" "$d/sm.$t.gguf"
        fi
    done
    for f in "$REFS"/files/"$m".mix-*.gguf; do
        [ -e "$f" ] || continue
        t=${f##*/"$m".}
        t=${t%.gguf}
        key="$m/llama-quantize/$t"
        if [ "$(ref_sha "$key")" != "$(sha "$f")" ]; then
            bad "arch_${m}_lq_$t: $f is not the file recorded in refs.json"
            continue
        fi
        cp "$f" "$d/lq.$t.gguf"
        run_sm quant "$key" "arch_${m}_lq_$t" "$d/lq.$t.gguf"
    done
    # the files stay for the float64 reference of each; their logits are queued in $d/list
    batch_dirs+=("$d")
    [ ${#batch_dirs[@]} -lt "$BATCH" ] || check_batch
done <<< "$models"
check_batch
echo "arch: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
