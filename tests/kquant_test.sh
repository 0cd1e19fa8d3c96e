#!/usr/bin/env bash
# kquant_test.sh [LLAMA_CPP_BIN_DIR] - the K-quant types (Q2_K, Q3_K, Q4_K,
# Q5_K, Q6_K, IQ4_XS) end to end, and `smallmind quantize`'s llama-quantize
# mixes (Q2_K, Q3_K_S/M/L, Q4_K_S/M, Q5_K_S/M, Q6_K, IQ4_XS):
#  0. models quantized to the mixes run, and their logits are checked against
#     a float64 evaluation of their dequantized weights (below);
#  1. the type of every tensor equals the one llama-quantize chose for the same
#     F32 model (recorded in tests/refs/quant_mix/types.txt: per model and mix,
#     the tensors whose type is not the mix's base type);
#  2. with a llama.cpp build (LLAMA_CPP_BIN_DIR or $LLAMA_CPP_BIN holding
#     llama-quantize and llama-simple; skipped with a message when absent):
#     the same comparison against llama-quantize run now, also on a model whose
#     rows do not divide into 256 (llama.cpp's fallback types), and llama.cpp
#     loads and runs our files of every mix (llama-simple).
#  bash tests/kquant_test.sh --record LLAMA_CPP_BIN_DIR   rewrites types.txt
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SM="$BUILD/smallmind"
SHARED=${SM_SHARED:-../shared}
REFS=tests/refs/quant_mix/types.txt
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0 skip=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && echo "$2" | sed 's/^/    /'; }
skipped() { skip=$((skip + 1)); echo "skip $1"; }

RECORD=0
if [ "${1:-}" = --record ]; then RECORD=1; shift; fi
BIN=${1:-${LLAMA_CPP_BIN:-}}
LQ="$BIN/llama-quantize"
LS="$BIN/llama-simple"

MIXES="Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K IQ4_XS"
base_of() { case $1 in Q2_K) echo Q2_K;; Q3_K*) echo Q3_K;; Q4_K*) echo Q4_K;; Q5_K*) echo Q5_K;; Q6_K) echo Q6_K;; IQ4_XS) echo IQ4_XS;; esac; }
# models: grouped-query (n/8, n/16 and every-third-layer rules over 16 layers),
# tied without output.weight, GPT-2 (fused QKV, position embeddings), and a
# mixture of 8 experts (llama.cpp's n_expert == 8 rules for attn_v, attn_k, attn_output)
# (name|the mixes the recorded check runs, "all" or a list|init options)
MODELS=(
    "llama_gqa4|all|--arch llama --dim 256 --layers 16 --heads 4 --kv-heads 1 --ffn 256 --vocab 300"
    "llama_tied|Q2_K Q4_K_M|--arch llama --dim 256 --layers 9 --heads 4 --ffn 512 --vocab 300 --tied"
    "gpt2|Q2_K Q3_K_M Q4_K_M Q5_K_M|--arch gpt2 --dim 256 --layers 8 --heads 4 --ffn 512 --vocab 300"
    "gpt2_tied|Q4_K_M|--arch gpt2 --dim 256 --layers 3 --heads 4 --ffn 512 --vocab 300 --tied"
    "llama_moe8|Q2_K Q3_K_M Q3_K_L Q4_K_M Q5_K_M IQ4_XS|--arch llama --dim 256 --layers 4 --heads 4 --kv-heads 2 --ffn 256 --vocab 300 --experts 8"
)
# rows of 320: llama.cpp falls back to Q5_0/Q5_1/Q8_0/IQ4_NL (live check only)
FALLBACK_MODEL="llama_ffn320|all|--arch llama --dim 256 --layers 4 --heads 4 --ffn 320 --vocab 300"
opts_of() { echo "${1##*|}"; }
mixes_of() { local m=${1#*|}; m=${m%%|*}; [ "$m" = all ] && echo "$MIXES" || echo "$m"; }

# "name type" per tensor, sorted: gguf-py for llama.cpp's files when present
# (any type), else smallmind inspect
types_of() {
    if [ -n "$BIN" ] && [ -d "$BIN/../../gguf-py" ] && /usr/bin/python3 -c "import numpy" 2>/dev/null; then
        /usr/bin/python3 - "$BIN/../../gguf-py" "$1" <<'PY' | sort
import sys
sys.path.insert(0, sys.argv[1])
from gguf import GGUFReader
for t in GGUFReader(sys.argv[2]).tensors:
    print(t.name, t.tensor_type.name)
PY
    else
        "$SM" inspect "$1" 2>/dev/null | awk '/^tensors \(/{t=1; getline; next} t && /^  /{print $1, $2} t && !/^  /{t=0}' | sort
    fi
}
# one line: the tensors not in the base type (norms and biases, always F32, left out)
summary() {  # model mix file
    local base; base=$(base_of "$2")
    echo "$1 $2:$(types_of "$3" | awk -v b="$base" '$2 != b && $1 !~ /_norm\.weight$|\.bias$/ {printf " %s=%s", $1, $2}')"
}

if [ $RECORD = 1 ]; then
    [ -x "$LQ" ] || { echo "give the llama.cpp bin directory (with llama-quantize)"; exit 2; }
    mkdir -p "$(dirname "$REFS")"
    {
        echo "# llama-quantize's per-tensor types (tensors not in the mix's base type), by tests/kquant_test.sh --record"
        for m in "${MODELS[@]}"; do
            name=${m%%|*}
            "$SM" init "$TMP/$name.gguf" $(opts_of "$m") 2>/dev/null
            for mix in $MIXES; do
                "$LQ" "$TMP/$name.gguf" "$TMP/r.gguf" "$mix" > /dev/null 2>&1 || { echo "llama-quantize $mix failed" >&2; exit 1; }
                summary "$name" "$mix" "$TMP/r.gguf"
            done
        done
    } > "$REFS"
    echo "wrote $REFS"
    exit 0
fi

# --------------------------------- 0. end to end: run, logits, every level
# Each type and mix of a small llama and a GPT-2 model: `smallmind run`
# works; the logits of the whole-prompt pass (weights dequantized, float
# activations) equal a float64 evaluation of the dequantized weights
# (tests/torch_ref.py on `smallmind quantize Q F32`) to 1e-4 on the scalar
# and AVX2 levels; token-by-token decoding (integer dots against Q8_K activations)
# stays within the activations' rounding of it, and so does a prompt on the
# AVX-512 level (the 16-row copies' integer batch products); and the error
# against the F32 model shrinks with every bit.
PY=/usr/bin/python3
if ! $PY -c "import torch, numpy" 2>/dev/null; then
    skipped "end_to_end (python3-torch and python3-numpy are not installed)"
else
    KERNELS=$("$SM" version | sed -n 's/^kernels: //p')
    toks=$(awk 'BEGIN { srand(3); for (i = 0; i < 24; i++) printf "%s%d", (i ? "," : ""), int(rand() * 300) }')
    E2E_TYPES="Q2_K Q3_K_M Q4_K_M Q5_K_M Q6_K IQ4_XS"   # every K type appears in these mixes
    for spec in "llama|--arch llama --dim 256 --layers 2 --heads 4 --kv-heads 2 --ffn 512 --vocab 300 --init-std 0.0625 --seed 3" \
                "gpt2|--arch gpt2 --dim 256 --layers 2 --heads 4 --ffn 512 --vocab 300 --init-std 0.0625 --seed 4"; do
        arch=${spec%%|*}
        "$SM" init "$TMP/e2e.gguf" ${spec#*|} 2>/dev/null
        "$BUILD/dump_logits" "$TMP/e2e.gguf" "$toks" "$TMP/f32.p" "$TMP/f32.d"
        list=""
        for t in $E2E_TYPES; do
            [ $arch = gpt2 ] && case $t in Q4_K_M|IQ4_XS) ;; *) continue;; esac
            "$SM" quantize "$TMP/e2e.gguf" "$TMP/e2e-$t.gguf" $t 2>/dev/null && "$SM" quantize "$TMP/e2e-$t.gguf" "$TMP/deq-$t.gguf" F32 2>/dev/null
            if "$SM" run -m "$TMP/e2e-$t.gguf" -p "Hi" -n 8 --temp 0 --ignore-eos > /dev/null 2>"$TMP/err"; then ok "run_${arch}_$t"
            else bad "run_${arch}_$t" "$(cat "$TMP/err")"; fi
            for k in $KERNELS; do SM_KERNELS=$k "$BUILD/dump_logits" "$TMP/e2e-$t.gguf" "$toks" "$TMP/$t-$k.p" "$TMP/$t-$k.d"; done
            list="$list $t"
        done
        $PY - "$TMP" "$toks" "$KERNELS" "$arch" $list > "$TMP/verdicts" <<'PYEOF'

import sys, numpy as np, torch
sys.path.insert(0, "tests")
import torch_ref
tmp, toks, levels, arch, types = sys.argv[1], [int(t) for t in sys.argv[2].split(",")], sys.argv[3].split(), sys.argv[4], sys.argv[5:]
f32 = np.fromfile(f"{tmp}/f32.p", dtype=np.float32)
# non-finite logits count as an infinite error (NaN would slip through max and <=)
rel = lambda a, b: float(np.sqrt(((a - b) ** 2).mean() / (b ** 2).mean())) if np.isfinite(a).all() else float("inf")
maxrel = lambda a, b: float(np.abs(a - b).max() / np.abs(b).max()) if np.isfinite(a).all() else float("inf")
vs_f32 = {}
for t in types:
    meta, W = torch_ref.read_gguf(f"{tmp}/deq-{t}.gguf")
    ref = (torch_ref.llama_logits if arch == "llama" else torch_ref.gpt2_logits)(meta, W, torch.tensor(toks)).numpy()
    worst_p, worst_d, agree = 0.0, 0.0, 1.0
    worst_pi, agree_pi = 0.0, 1.0
    for k in levels:
        p = np.fromfile(f"{tmp}/{t}-{k}.p", dtype=np.float32).reshape(ref.shape)
        d = np.fromfile(f"{tmp}/{t}-{k}.d", dtype=np.float32).reshape(ref.shape)
        if k == "avx512":
            # the 16-row copies' integer batch products: each row's input rounded
            # to 8 bits, as in decoding, so the prompt is judged as decoding is
            worst_pi = max(worst_pi, rel(p, ref))
            agree_pi = min(agree_pi, float((p.argmax(1) == ref.argmax(1)).mean()))
        else:
            worst_p = max(worst_p, maxrel(p, ref))
        worst_d = max(worst_d, rel(d, ref))
        agree = min(agree, float((d.argmax(1) == ref.argmax(1)).mean()))
    ok = worst_p <= 1e-4 and worst_pi <= 0.06 and agree_pi >= 0.85
    print("ok" if ok else "bad", f"prompt_vs_float64_{arch}_{t}", f"max|d|/max|ref|={worst_p:.1e}" +
          (f",avx512:rms={worst_pi:.3f},argmax={agree_pi:.2f}" if "avx512" in levels else ""))
    # Q8_K activations: one scale per 256, so about 0.8% per element, which
    # this random model amplifies a few times (Q8_0 weights: 2% of logits)
    ok = worst_d <= 0.06 and agree >= 0.85
    print("ok" if ok else "bad", f"decode_vs_float64_{arch}_{t}", f"rms={worst_d:.3f},argmax={agree:.2f}")
    vs_f32[t] = rel(np.fromfile(f"{tmp}/{t}-{levels[0]}.p", dtype=np.float32).reshape(ref.shape), f32.reshape(ref.shape))
order = [t for t in ["Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K"] if t in vs_f32]
bound = {"Q4_K_M": 0.4, "Q6_K": 0.15}
mono = all(vs_f32[a] > vs_f32[b] for a, b in zip(order, order[1:])) and all(vs_f32[t] < b for t, b in bound.items() if t in vs_f32)
print("ok" if mono else "bad", f"error_vs_f32_shrinks_{arch}", ",".join(f"{t}={vs_f32[t]:.3f}" for t in vs_f32))
PYEOF
        [ -s "$TMP/verdicts" ] || bad "logits_$arch" "the reference script failed"
        while read -r verdict name detail; do
            if [ "$verdict" = ok ]; then ok "$name ($detail)"; else bad "$name" "$detail"; fi
        done < "$TMP/verdicts"
    done
fi

# ---------------------------------------------- 1. against the recorded types
if [ ! -f "$REFS" ]; then
    skipped "recorded_types ($REFS is absent)"
else
    for m in "${MODELS[@]}"; do
        name=${m%%|*}
        "$SM" init "$TMP/$name.gguf" $(opts_of "$m") 2>/dev/null
        for mix in $(mixes_of "$m"); do
            want=$(grep "^$name $mix:" "$REFS")
            if ! "$SM" quantize "$TMP/$name.gguf" "$TMP/$name-$mix.gguf" "$mix" 2>"$TMP/err"; then
                bad "types_${name}_$mix" "$(cat "$TMP/err")"; continue
            fi
            got=$(BIN='' summary "$name" "$mix" "$TMP/$name-$mix.gguf")
            if [ -n "$want" ] && [ "$got" = "$want" ]; then ok "types_${name}_$mix"
            else bad "types_${name}_$mix" "$(diff <(echo "$want" | tr ' ' '\n') <(echo "$got" | tr ' ' '\n') | head -8)"; fi
        done
    done
fi

# ------------------------------------------------- 2. against llama.cpp now
if [ -z "$BIN" ] || [ ! -x "$LQ" ] || [ ! -x "$LS" ]; then
    # an extra run against a live llama.cpp; the recorded answers of part 1
    # are the suite's check, so it is not counted as skipped
    echo "note: llamacpp_live not run (no llama-quantize/llama-simple: give their directory or set LLAMA_CPP_BIN)"
else
    for m in "${MODELS[@]}" "$FALLBACK_MODEL"; do
        name=${m%%|*}
        [ -f "$TMP/$name.gguf" ] || "$SM" init "$TMP/$name.gguf" $(opts_of "$m") 2>/dev/null
        for mix in $MIXES; do
            "$LQ" "$TMP/$name.gguf" "$TMP/r.gguf" "$mix" > /dev/null 2>&1
            "$SM" quantize "$TMP/$name.gguf" "$TMP/o.gguf" "$mix" 2>/dev/null
            d=$(diff <(types_of "$TMP/r.gguf") <(types_of "$TMP/o.gguf"))
            if [ -z "$d" ]; then ok "live_types_${name}_$mix"
            elif [ "$name" = llama_ffn320 ] && ! echo "$d" | grep '^<' | grep -qvE ' (Q5_0|Q5_1|IQ4_NL)$'; then
                # llama.cpp's 32-element fallbacks this build cannot write yet: Q8_0 stands in
                skipped "live_types_${name}_$mix (llama.cpp falls back to $(echo "$d" | awk '/^</{print $3}' | sort -u | tr '\n' ' ')which this build lacks)"
            else bad "live_types_${name}_$mix" "$(echo "$d" | head -8)"; fi
        done
    done
    # llama.cpp runs our files (a real vocabulary, so the text is comparable)
    if [ -f "$SHARED/models/stories260K.gguf" ]; then
        "$SM" init "$TMP/run.gguf" --arch llama --dim 256 --layers 4 --heads 4 --kv-heads 1 --ffn 512 \
            --vocab-from "$SHARED/models/stories260K.gguf" --init-std 0.0625 --seed 7 2>/dev/null
        for mix in $MIXES; do
            "$SM" quantize "$TMP/run.gguf" "$TMP/run-$mix.gguf" "$mix" 2>/dev/null
            out=$("$LS" -m "$TMP/run-$mix.gguf" -n 16 "Once upon a time" 2>"$TMP/err")
            if [ $? = 0 ] && [[ "$out" == "<s> Once upon a time"* ]]; then
                ok "llama_simple_runs_$mix"
            else
                bad "llama_simple_runs_$mix" "$(tail -3 "$TMP/err")"
            fi
        done
    else
        skipped "llama_simple_runs ($SHARED/models/stories260K.gguf is absent)"
    fi
fi

echo "kquant: $pass passed, $fail failed, $skip skipped"
[ $fail = 0 ]
