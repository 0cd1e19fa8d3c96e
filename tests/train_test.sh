#!/usr/bin/env bash
# train_test.sh - `smallmind train` end to end: the loss falls below half
# its start in 200 steps and the model generates; 20 steps equal 10 +
# checkpoint + 10 resumed, bit for bit; a trainer killed with SIGKILL while
# it writes checkpoints always leaves one that loads and resumes. Hardening
# (issue 11): damaged checkpoints, another run's settings, long and special
# output paths, write errors and stale temporary files.
set -u
BUILD=${BUILD:-build}
SM="$BUILD/smallmind"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0 skip=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && echo "    $2"; }
skp() { skip=$((skip + 1)); echo "skip $1: $2"; }

# a small corpus with structure to learn
for i in $(seq 1 40); do
    echo "The little cat sat on the warm mat. The big dog ran to the red ball."
    echo "Once upon a time there was a girl who loved to play in the park."
done > "$TMP/corpus.txt"

for arch in gpt2 llama; do
    "$SM" train --data "$TMP/corpus.txt" --out "$TMP/$arch.gguf" --arch $arch --dim 64 --layers 2 --heads 4 \
        --batch 8 --seq 64 --steps 200 --lr 3e-3 --warmup 20 --eval-every 100 --log "$TMP/$arch.csv" 2> "$TMP/err"
    first=$(sed -n 2p "$TMP/$arch.csv" | cut -d, -f2)
    last=$(tail -1 "$TMP/$arch.csv" | cut -d, -f2)
    if awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a / 2) }'; then ok "learns_${arch} ($first -> $last)"; else bad "learns_${arch}" "$first -> $last $(tail -c 300 "$TMP/err")"; fi
    out=$("$SM" run -m "$TMP/$arch.gguf" -n 60 --temp 0 2> /dev/null)
    # a character the corpus lacks falls back to byte tokens and comes back whole
    ids=$("$SM" tokenize -m "$TMP/$arch.gguf" -p "caf$(printf '\xc3\xa9') Zq" --ids --no-bos 2> /dev/null)
    if [ -n "$ids" ] && [ "$(echo "$ids" | tr -cd ',' | wc -c)" -ge 5 ]; then ok "char_vocab_byte_fallback_${arch}"; else bad "char_vocab_byte_fallback_${arch}" "$ids"; fi
    if [ $? -eq 0 ] && [ ${#out} -gt 20 ]; then ok "trained_${arch}_generates"; else bad "trained_${arch}_generates" "$out"; fi
    if [ -s "$TMP/$arch.loss.svg" ] && grep -q "<polyline" "$TMP/$arch.loss.svg"; then ok "loss_curve_${arch}"; else bad "loss_curve_${arch}"; fi
done

# a BPE vocabulary learned from the corpus: stored in the model, used by run
"$SM" train --data "$TMP/corpus.txt" --out "$TMP/bpe.gguf" --tokenizer bpe:400 --dim 64 --layers 2 --heads 4 \
    --batch 8 --seq 32 --steps 150 --lr 3e-3 --warmup 10 --eval-every 0 --log "$TMP/bpe.csv" 2> /dev/null
first=$(sed -n 2p "$TMP/bpe.csv" | cut -d, -f2); last=$(tail -1 "$TMP/bpe.csv" | cut -d, -f2)
ids=$("$SM" tokenize -m "$TMP/bpe.gguf" -p "The little cat sat on the warm mat." --ids --no-bos 2> /dev/null | tr -cd ',' | wc -c)
back=$("$SM" run -m "$TMP/bpe.gguf" -p "The little" -n 30 --temp 0 2> /dev/null)
if grep -q '"gpt2"' <("$SM" inspect "$TMP/bpe.gguf" --no-tensors) && [ "$ids" -lt 12 ] \
    && awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a / 2) }' && [ ${#back} -gt 15 ]; then
    ok "bpe_tokenizer_learned ($((ids + 1)) tokens for 35 characters; loss $first -> $last)"
else
    bad "bpe_tokenizer_learned" "ids $ids, loss $first -> $last, '$back'"
fi

# gradient checkpointing: the same gradients, bit for bit, in less memory
for arch in gpt2 llama; do
    "$SM" init "$TMP/gc-$arch.gguf" --arch $arch --dim 48 --layers 3 --heads 4 --ffn 64 --ctx 32 --vocab 300 --seed 5 2> /dev/null
    "$BUILD/grad_dump" "$TMP/gc-$arch.gguf" 2 32 "$TMP/gc-$arch.full" && "$BUILD/grad_dump" "$TMP/gc-$arch.gguf" 2 32 "$TMP/gc-$arch.ckpt" recompute
    if cmp -s "$TMP/gc-$arch.full" "$TMP/gc-$arch.ckpt"; then ok "grad_checkpointing_same_gradients_$arch"; else bad "grad_checkpointing_same_gradients_$arch"; fi
done
"$SM" train --data "$TMP/corpus.txt" --out "$TMP/gc.gguf" --dim 64 --layers 4 --heads 4 --batch 4 --seq 64 --steps 2 \
    --eval-every 0 --grad-checkpointing 2> "$TMP/gc.err"
if grep -q "gradient checkpointing saves" "$TMP/gc.err" && [ -s "$TMP/gc.gguf" ]; then ok "grad_checkpointing_reports_saving"; else bad "grad_checkpointing_reports_saving" "$(cat "$TMP/gc.err")"; fi

# resume: a constant learning rate makes the schedule independent of --steps
common=(--data "$TMP/corpus.txt" --arch llama --dim 32 --layers 2 --heads 4 --kv-heads 2 --batch 4 --seq 32
        --lr 1e-3 --min-lr 1e-3 --warmup 0 --eval-every 0 -t 1)
"$SM" train "${common[@]}" --steps 20 --out "$TMP/straight.gguf" 2> /dev/null
"$SM" train "${common[@]}" --steps 10 --out "$TMP/half.gguf" --checkpoint-every 10 --checkpoint "$TMP/half.ckpt" 2> /dev/null
"$SM" train "${common[@]}" --steps 20 --out "$TMP/resumed.gguf" --resume "$TMP/half.ckpt" 2> /dev/null
if [ -s "$TMP/straight.gguf" ] && cmp -s "$TMP/straight.gguf" "$TMP/resumed.gguf"; then ok "resume_is_bitwise"; else bad "resume_is_bitwise"; fi

# the thread count does not change the result (the products split the weights' rows between the threads): the
# same model, bit for bit, on 1 and 2 threads. Shaped so that the FFN's products take several runs of the batch
# (1024 tokens) and, with --bf16, the down projection's weight gradient rounds its 1100 x 1024 operand in two
# chunks on one thread and in one on each of two
threads_same() {
    local name=$1; shift
    for t in 1 2; do
        "$SM" train --data "$TMP/corpus.txt" --arch gpt2 --dim 128 --layers 1 --heads 4 --ffn 1100 --batch 16 --seq 64 \
            --steps 2 --eval-every 0 -t $t "$@" --out "$TMP/$name-t$t.gguf" 2> "$TMP/err"
    done
    if [ -s "$TMP/$name-t1.gguf" ] && cmp -s "$TMP/$name-t1.gguf" "$TMP/$name-t2.gguf"; then ok "$name"; else bad "$name" "$(tail -c 300 "$TMP/err")"; fi
}
threads_same train_same_bits_on_1_and_2_threads
if grep -qw avx512_bf16 /proc/cpuinfo && grep -qw avx512_vnni /proc/cpuinfo; then
    threads_same train_bf16_same_bits_on_1_and_2_threads --bf16
fi

# SIGKILL while checkpointing every step: the checkpoint left behind loads and resumes
killed_ok=0
for round in 1 2 3 4 5 6 7 8; do
    "$SM" train --data "$TMP/corpus.txt" --out "$TMP/k.gguf" --dim 48 --layers 2 --heads 4 --batch 4 --seq 32 \
        --steps 100000 --checkpoint-every 1 --checkpoint "$TMP/k.ckpt" --eval-every 0 2> /dev/null &
    pid=$!
    sleep "0.$((RANDOM % 6 + 3))"
    kill -9 $pid 2> /dev/null
    wait $pid 2> /dev/null
    [ -e "$TMP/k.ckpt" ] || continue
    step=$("$SM" inspect "$TMP/k.ckpt" --no-tensors 2> /dev/null | awk '$1 == "smallmind.train.step" { print $3 }')
    if [ -n "$step" ] && "$SM" train --data "$TMP/corpus.txt" --out "$TMP/k2.gguf" --resume "$TMP/k.ckpt" \
        --steps $((step + 1)) --eval-every 0 --batch 4 --seq 32 2> "$TMP/err" && [ -s "$TMP/k2.gguf" ]; then
        killed_ok=$((killed_ok + 1))
    else
        bad "sigkill_round_$round" "step '$step': $(cat "$TMP/err")"
    fi
done
if [ $killed_ok -ge 6 ]; then ok "sigkill_leaves_a_loadable_checkpoint ($killed_ok/8 rounds)"; else bad "sigkill_leaves_a_loadable_checkpoint" "$killed_ok/8"; fi

# ------------------------------------------ hardening (issue 11)
tiny=(--data "$TMP/corpus.txt" --arch llama --dim 8 --layers 1 --heads 2 --ctx 16 --batch 2 --seq 8 --eval-every 0 -t 1)
# refused: exit below 128 (no crash), an error line, and no training step taken
refused() {
    local name=$1 want=$2; shift 2
    "$@" > /dev/null 2> "$TMP/err"
    local rc=$?
    if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q "error:.*$want" "$TMP/err" && ! grep -q "step 1/" "$TMP/err"; then ok "$name"
    else bad "$name" "rc=$rc $(tail -c 300 "$TMP/err" | tr '\r' '\n' | tail -3)"; fi
}
"$SM" train "${tiny[@]}" --steps 4 --out "$TMP/h.gguf" --checkpoint-every 2 --checkpoint "$TMP/h.ckpt" 2> /dev/null
PY=/usr/bin/python3
PATCH=tests/tools/gguf_patch.py
if [ -x $PY ] && [ -s "$TMP/h.ckpt" ]; then
    # 1: a step of 2^32-5 became int -5 and curve[-5] was written (heap overflow);
    #    2^32 and 2^63 restarted silently at step 1
    for v in 4294967291 4294967296 9223372036854775808; do
        $PY $PATCH "$TMP/h.ckpt" "$TMP/bad.ckpt" kv smallmind.train.step $v
        refused "checkpoint_step_out_of_range_$v" "step $v is out of range" "$SM" train "${tiny[@]}" --steps 10 --out "$TMP/x.gguf" --resume "$TMP/bad.ckpt"
    done
    # 2: a data position of 2^64-1 overflowed pos + T and trained on memory before the tokens
    $PY $PATCH "$TMP/h.ckpt" "$TMP/bad.ckpt" kv smallmind.train.data_pos -1
    refused "checkpoint_data_pos_out_of_range" "data position" "$SM" train "${tiny[@]}" --steps 10 --out "$TMP/x.gguf" --resume "$TMP/bad.ckpt"
    # 8: negative second moments made an all-NaN model; NaN weights too
    $PY $PATCH "$TMP/h.ckpt" "$TMP/bad.ckpt" fill opt.v.blk.0.ffn_up.weight -1
    refused "checkpoint_negative_second_moment" "negative second moment" "$SM" train "${tiny[@]}" --steps 10 --out "$TMP/x.gguf" --resume "$TMP/bad.ckpt"
    $PY $PATCH "$TMP/h.ckpt" "$TMP/bad.ckpt" fill opt.m.blk.0.attn_q.weight nan
    refused "checkpoint_nan_moment" "not finite" "$SM" train "${tiny[@]}" --steps 10 --out "$TMP/x.gguf" --resume "$TMP/bad.ckpt"
    $PY $PATCH "$TMP/h.ckpt" "$TMP/bad.ckpt" fill output_norm.weight inf
    refused "checkpoint_inf_weight" "not finite" "$SM" train "${tiny[@]}" --steps 10 --out "$TMP/x.gguf" --resume "$TMP/bad.ckpt"
else
    skp "checkpoint_field_checks" "/usr/bin/python3 is missing (tests/tools/gguf_patch.py makes the damaged checkpoints)"
fi
# 8: --resume continues the same run: another --batch, --seq or --data is refused
refused "resume_other_batch" "batch 2 --seq 8, this run has --batch 3" "$SM" train "${tiny[@]}" --batch 3 --steps 10 --out "$TMP/x.gguf" --resume "$TMP/h.ckpt"
refused "resume_other_seq" "this run has --batch 2 --seq 12" "$SM" train "${tiny[@]}" --seq 12 --steps 10 --out "$TMP/x.gguf" --resume "$TMP/h.ckpt"
sed 's/cat/cow/g' "$TMP/corpus.txt" > "$TMP/other.txt"
refused "resume_other_data" "other training data" "$SM" train "${tiny[@]}" --data "$TMP/other.txt" --steps 10 --out "$TMP/x.gguf" --resume "$TMP/h.ckpt"
if "$SM" train "${tiny[@]}" --steps 6 --out "$TMP/x.gguf" --resume "$TMP/h.ckpt" 2> /dev/null && [ -s "$TMP/x.gguf" ]; then
    ok "resume_same_run_accepted"; else bad "resume_same_run_accepted"; fi

# 3: --out of 1,100+ characters overflowed write_svg's buffer, and ckpt_path[1024]
#    put the checkpoint under a cut name; every derived name must be whole
long="$TMP"
while [ ${#long} -lt 1100 ]; do long="$long/dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"; done
mkdir -p "$long"
"$SM" train "${tiny[@]}" --steps 2 --checkpoint-every 1 --out "$long/model.gguf" > /dev/null 2> "$TMP/err"; rc=$?
if [ $rc -eq 0 ] && [ -s "$long/model.gguf" ] && [ -s "$long/model.gguf.ckpt" ] && [ -s "$long/model.loss.svg" ]; then
    ok "long_out_path_names_whole (${#long} characters)"; else bad "long_out_path_names_whole" "rc=$rc $(tail -c 300 "$TMP/err")"; fi
toolong="$TMP/$(printf 'p/%.0s' $(seq 1 2100))m.gguf"
refused "out_path_too_long_refused_first" "bytes long" "$SM" train "${tiny[@]}" --steps 2 --out "$toolong"

# 11: every output path is checked before step 1
mkdir -p "$TMP/adir"
refused "out_directory_refused_first" "is a directory" "$SM" train "${tiny[@]}" --steps 2 --out "$TMP/adir"
refused "checkpoint_directory_refused_first" "is a directory" "$SM" train "${tiny[@]}" --steps 2 --out "$TMP/x.gguf" --checkpoint-every 1 --checkpoint "$TMP/adir"
refused "log_directory_refused_first" "is a directory" "$SM" train "${tiny[@]}" --steps 2 --out "$TMP/x.gguf" --log "$TMP/adir"
refused "out_in_missing_directory_refused_first" "No such file or directory" "$SM" train "${tiny[@]}" --steps 2 --out "$TMP/nodir/x.gguf"
# 4: special files are never replaced or written; /dev/full as the log lost it silently
refused "log_dev_full_refused" "character device" "$SM" train "${tiny[@]}" --steps 2 --out "$TMP/x.gguf" --log /dev/full
if mknod "$TMP/devnode" c 1 7 2> /dev/null; then
    refused "out_device_node_refused" "character device" "$SM" train "${tiny[@]}" --steps 2 --out "$TMP/devnode"
    if [ -c "$TMP/devnode" ]; then ok "out_device_node_kept"; else bad "out_device_node_kept" "replaced by $(stat -c %F "$TMP/devnode")"; fi
else
    skp "out_device_node_refused" "mknod needs root"
fi

# 7: write errors. A file size limit (ulimit -f, SIGXFSZ ignored) makes writes
#    fail with EFBIG: the log and the curve are warnings that say what was lost,
#    the model an error, and nothing half-written stays behind. (stderr goes
#    through a pipe: a file would be cut by the same limit.)
mkdir -p "$TMP/fsz"
(trap '' XFSZ; ulimit -f 24; "$SM" train "${tiny[@]}" --steps 2200 --out "$TMP/fsz/m.gguf" --log "$TMP/fsz/m.csv" 2>&1 > /dev/null) \
    | tr '\r' '\n' | grep -v '^step' > "$TMP/err"; rc=${PIPESTATUS[0]}
rows=$(($(wc -l < "$TMP/fsz/m.csv") - 1))
if [ $rc -eq 0 ] && [ -s "$TMP/fsz/m.gguf" ] && grep -q "warning: the log is incomplete: the rows from step $((rows + 1)) of 2200 on are lost" "$TMP/err" \
    && [ "$(tail -c 1 "$TMP/fsz/m.csv" | od -An -c | tr -d ' ')" = '\n' ] && grep -q "warning: the loss curve was not written" "$TMP/err" \
    && [ ! -e "$TMP/fsz/m.loss.svg" ] && "$SM" run -m "$TMP/fsz/m.gguf" -n 2 > /dev/null 2>&1; then
    ok "log_and_curve_write_errors_warn ($rows of 2200 rows kept)"
else
    bad "log_and_curve_write_errors_warn" "rc=$rc rows=$rows $(tail -c 400 "$TMP/err" | tr '\r' '\n' | grep -v '^step' | tail -4)"
fi
rm -rf "$TMP/fsz"; mkdir -p "$TMP/fsz"
(trap '' XFSZ; ulimit -f 8; "$SM" train "${tiny[@]}" --steps 50 --out "$TMP/fsz/m.gguf" 2>&1 > /dev/null) \
    | tr '\r' '\n' | grep -v '^step' > "$TMP/err"; rc=${PIPESTATUS[0]}
if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q "cannot write '$TMP/fsz/m.gguf': File too large" "$TMP/err" && [ -z "$(ls "$TMP/fsz")" ]; then
    ok "model_write_error_fails_without_curve"
else
    bad "model_write_error_fails_without_curve" "rc=$rc, left: $(ls "$TMP/fsz") $(tail -c 200 "$TMP/err")"
fi

# 6: a checkpoint write killed by SIGKILL leaves its temporary file; the next
#    run with that checkpoint path removes it and says so. One-token batches
#    make the 10 MB checkpoint write most of each step; the watch is a busy
#    loop of shell builtins (no fork), so it catches the write even when the
#    trainer runs under the sanitizers.
mkdir -p "$TMP/kill"
caught=0 left=
for attempt in 1 2 3 4 5; do
    "$SM" train --data "$TMP/corpus.txt" --out "$TMP/kill/m.gguf" --dim 128 --layers 4 --heads 4 --batch 1 --seq 2 \
        --steps 100000 --checkpoint-every 1 --checkpoint "$TMP/kill/k.ckpt" --eval-every 0 -t 1 2> /dev/null &
    pid=$!
    deadline=$((SECONDS + 60))
    while [ $SECONDS -lt $deadline ] && kill -0 $pid 2> /dev/null; do
        if compgen -G "$TMP/kill/k.ckpt.tmp*" > /dev/null; then kill -9 $pid 2> /dev/null; caught=1; break; fi
    done
    kill -9 $pid 2> /dev/null
    wait $pid 2> /dev/null
    left=$(ls "$TMP/kill" | grep "^k.ckpt.tmp")
    [ -n "$left" ] && break   # else the rename won the race: again
done
if [ $caught -eq 1 ] && [ -n "$left" ]; then
    "$SM" train "${tiny[@]}" --steps 1 --out "$TMP/kill/m2.gguf" --checkpoint-every 1 --checkpoint "$TMP/kill/k.ckpt" > /dev/null 2> "$TMP/err"
    if grep -q "removed '$TMP/kill/$left'" "$TMP/err" && ! ls "$TMP/kill" | grep -q "^k.ckpt.tmp"; then
        ok "sigkill_temp_file_removed_and_reported"
    else
        bad "sigkill_temp_file_removed_and_reported" "left: $(ls "$TMP/kill" | tr '\n' ' ') $(tail -c 200 "$TMP/err")"
    fi
else
    bad "sigkill_temp_file_removed_and_reported" "never saw a checkpoint's temporary file to kill the writer on"
fi

# the architectures' own files: phi3 from scratch has its own head and a window (llama.cpp's loader
# requires both) and runs; a full fine-tune of a gemma3 base (tests/refs/arch: window 10, local RoPE
# base, linear scaling x8) and of a gemma2 one (window 8, soft-capping 5 and 30) writes their keys as
# the base has them; a sequence beyond the window is refused
"$SM" train --arch phi3 --data "$TMP/corpus.txt" --out "$TMP/phi3.gguf" --dim 32 --layers 1 --heads 2 --steps 2 \
    --batch 2 --seq 16 --eval-every 0 > /dev/null 2> "$TMP/err"
meta=$("$SM" inspect "$TMP/phi3.gguf" 2> /dev/null)
if echo "$meta" | grep -q '^  output.weight ' && echo "$meta" | grep -q 'phi3.attention.sliding_window  *u32' \
    && "$SM" run -m "$TMP/phi3.gguf" -p "a" -n 4 > /dev/null 2>> "$TMP/err"; then
    ok "phi3_from_scratch_has_head_and_window"
else
    bad "phi3_from_scratch_has_head_and_window" "$(tail -c 300 "$TMP/err")"
fi
if /usr/bin/python3 tests/refs/arch/gen_models.py "$TMP/archm" gemma3 gemma2 granite gptneox_seq phi2_split 2> "$TMP/err"; then
    "$SM" train --init "$TMP/archm/gemma3.gguf" --data "$TMP/corpus.txt" --out "$TMP/g3.gguf" --steps 1 --batch 1 \
        --seq 8 --eval-every 0 > /dev/null 2> "$TMP/err"
    keys() { "$SM" inspect "$1" --no-tensors 2> /dev/null | grep -E 'gemma[23]\.(attention\.sliding|rope\.|.*softcap)' | sort; }
    if [ -s "$TMP/g3.gguf" ] && [ "$(keys "$TMP/archm/gemma3.gguf" | grep -c .)" -ge 4 ] \
        && [ -z "$(comm -23 <(keys "$TMP/archm/gemma3.gguf") <(keys "$TMP/g3.gguf"))" ]; then
        ok "gemma3_full_fine_tune_keeps_window_and_rope_keys"
    else
        bad "gemma3_full_fine_tune_keeps_window_and_rope_keys" "$(keys "$TMP/g3.gguf" | tr '\n' ' ') $(tail -c 200 "$TMP/err")"
    fi
    "$SM" train --init "$TMP/archm/gemma2.gguf" --data "$TMP/corpus.txt" --out "$TMP/g2.gguf" --steps 1 --batch 1 \
        --seq 8 --eval-every 0 > /dev/null 2> "$TMP/err"
    if [ -s "$TMP/g2.gguf" ] && [ "$(keys "$TMP/archm/gemma2.gguf" | grep -c softcap)" -eq 2 ] \
        && [ -z "$(comm -23 <(keys "$TMP/archm/gemma2.gguf") <(keys "$TMP/g2.gguf"))" ]; then
        ok "gemma2_full_fine_tune_keeps_window_and_softcaps"
    else
        bad "gemma2_full_fine_tune_keeps_window_and_softcaps" "$(keys "$TMP/g2.gguf" | tr '\n' ' ') $(tail -c 200 "$TMP/err")"
    fi
    # granite's four scalars (its gradients: tests/parity_test.sh) stay in a fine-tuned file, as the file had them
    "$SM" train --init "$TMP/archm/granite.gguf" --data "$TMP/corpus.txt" --out "$TMP/gr.gguf" --steps 1 --batch 1 \
        --seq 8 --eval-every 0 > /dev/null 2> "$TMP/err"
    gkeys() { "$SM" inspect "$1" --no-tensors 2> /dev/null | grep -E 'granite\.(embedding_scale|residual_scale|attention\.scale|logit_scale)' | sort; }
    if [ -s "$TMP/gr.gguf" ] && [ "$(gkeys "$TMP/archm/granite.gguf" | grep -c .)" -eq 4 ] \
        && [ "$(gkeys "$TMP/archm/granite.gguf")" = "$(gkeys "$TMP/gr.gguf")" ]; then
        ok "granite_full_fine_tune_keeps_its_scales"
    else
        bad "granite_full_fine_tune_keeps_its_scales" "$(gkeys "$TMP/gr.gguf" | tr '\n' ' ') $(tail -c 200 "$TMP/err")"
    fi
    # a sequential GPT-NeoX stays sequential (use_parallel_residual false); a phi2 file with Q, K and V apart
    # keeps them apart (and no fused attn_qkv appears): both load in llama.cpp's layout
    "$SM" train --init "$TMP/archm/gptneox_seq.gguf" --data "$TMP/corpus.txt" --out "$TMP/nx.gguf" --steps 1 --batch 1 \
        --seq 8 --eval-every 0 > /dev/null 2> "$TMP/err"
    "$SM" train --init "$TMP/archm/phi2_split.gguf" --data "$TMP/corpus.txt" --out "$TMP/p2.gguf" --steps 1 --batch 1 \
        --seq 8 --eval-every 0 > /dev/null 2>> "$TMP/err"
    if [ -s "$TMP/nx.gguf" ] && "$SM" inspect "$TMP/nx.gguf" --no-tensors 2> /dev/null \
            | grep -Eq 'gptneox\.use_parallel_residual +bool +false' \
        && [ "$("$SM" inspect "$TMP/p2.gguf" 2> /dev/null | grep -Ec 'blk\.[0-9]+\.attn_[qkv]\.(weight|bias)')" -eq 12 ] \
        && ! "$SM" inspect "$TMP/p2.gguf" 2> /dev/null | grep -q attn_qkv \
        && "$SM" run -m "$TMP/p2.gguf" -p the -n 2 > /dev/null 2>> "$TMP/err"; then
        ok "gptneox_and_phi2_fine_tunes_keep_their_variant"
    else
        bad "gptneox_and_phi2_fine_tunes_keep_their_variant" "$(tail -c 200 "$TMP/err")"
    fi
    if ! "$SM" train --init "$TMP/archm/gemma2.gguf" --data "$TMP/corpus.txt" --out "$TMP/g2b.gguf" --steps 1 \
        --batch 1 --seq 16 > /dev/null 2> "$TMP/err" && grep -q 'sliding window of 8 tokens' "$TMP/err"; then
        ok "sequence_beyond_window_refused"
    else
        bad "sequence_beyond_window_refused" "$(tail -c 200 "$TMP/err")"
    fi
else
    bad "gen_models_for_training" "$(tail -c 200 "$TMP/err")"
fi

# bad input
expect() {
    local name=$1; shift
    "$@" > /dev/null 2> "$TMP/err"
    local rc=$?
    if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q error "$TMP/err"; then ok "$name"; else bad "$name" "rc=$rc"; fi
}
expect "train_no_data" "$SM" train --out "$TMP/x.gguf"
expect "train_missing_file" "$SM" train --data /nonexistent --out "$TMP/x.gguf"
expect "train_seq_beyond_ctx" "$SM" train --data "$TMP/corpus.txt" --out "$TMP/x.gguf" --seq 512 --ctx 64
expect "train_bad_arch" "$SM" train --data "$TMP/corpus.txt" --out "$TMP/x.gguf" --arch rnn
expect "train_resume_not_checkpoint" "$SM" train --data "$TMP/corpus.txt" --out "$TMP/x.gguf" --resume "$TMP/gpt2.gguf" --steps 300
expect "train_bpe_too_small" "$SM" train --data "$TMP/corpus.txt" --out "$TMP/x.gguf" --tokenizer bpe:100

# mixed precision (--bf16): on a CPU with AVX512_BF16 it learns the corpus as the F32 runs above did (the
# same flags; its final loss within 10 % of theirs); without one it is refused (LoRA: tests/lora_test.sh)
if grep -qw avx512_bf16 /proc/cpuinfo && grep -qw avx512_vnni /proc/cpuinfo; then
    for arch in gpt2 llama; do
        "$SM" train --data "$TMP/corpus.txt" --out "$TMP/$arch-bf16.gguf" --arch $arch --dim 64 --layers 2 --heads 4 \
            --batch 8 --seq 64 --steps 200 --lr 3e-3 --warmup 20 --eval-every 100 --log "$TMP/$arch-bf16.csv" --bf16 \
            2> "$TMP/err"
        first=$(sed -n 2p "$TMP/$arch-bf16.csv" | cut -d, -f2)
        last=$(tail -1 "$TMP/$arch-bf16.csv" | cut -d, -f2)
        f32=$(tail -1 "$TMP/$arch.csv" | cut -d, -f2)
        if awk -v a="$first" -v b="$last" -v f="$f32" 'BEGIN { d = b - f; if (d < 0) d = -d; exit !(b < a / 2 && d <= 0.1 * f) }'; then
            ok "bf16_learns_as_f32_${arch} ($first -> $last; F32 $f32)"
        else
            bad "bf16_learns_as_f32_${arch}" "$first -> $last, F32 $f32 $(tail -c 300 "$TMP/err")"
        fi
    done
else
    expect "bf16_refused_without_avx512_bf16" "$SM" train --data "$TMP/corpus.txt" --out "$TMP/x.gguf" --steps 2 --bf16
    grep -q "needs a CPU with AVX512_BF16" "$TMP/err" && ok "bf16_refusal_says_why" || bad "bf16_refusal_says_why" "$(cat "$TMP/err")"
fi

echo "train: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
