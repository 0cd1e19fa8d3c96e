#!/usr/bin/env bash
# mpi_test.sh - data-parallel training under mpirun (Open MPI, 2 processes
# on this machine, oversubscribed; as root with --allow-run-as-root):
# 2 ranks give the loss curve of 1 rank with the same global batch, to 1e-5
# relative per step, for text, for LoRA on chat examples, and with
# gradient accumulation; every rank ends with bit-identical parameters
# (each prints a hash of them); a rank killed with SIGKILL leaves the last
# checkpoint loadable, and resuming it under mpirun ends with the
# parameters of an uninterrupted run, bit for bit.
set -u
BUILD=${BUILD:-build}
SM="$BUILD/smallmind"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0 skip=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && echo "    $2"; }

if ! command -v mpirun > /dev/null || ! "$SM" version | grep -q '^mpi: yes'; then
    if [ "${CI:-}" = true ]; then echo "FAIL mpi: mpirun or an MPI build of smallmind is missing"; echo "mpi: 0 passed, 1 failed, 0 skipped"; exit 1; fi
    echo "skip mpi: mpirun (openmpi-bin) or smallmind built with mpicc (libopenmpi-dev) is missing"
    echo "mpi: 0 passed, 0 failed, 1 skipped"
    exit 0
fi
MPIRUN=(mpirun --oversubscribe -np 2)
[ "$(id -u)" = 0 ] && MPIRUN+=(--allow-run-as-root)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1   # for any mpirun started without the flag
export OMPI_MCA_rmaps_base_oversubscribe=1
# under `make sanitize`: Open MPI's own allocations at MPI_Init/MPI_Finalize would be reported as leaks
# (the library's leaks are checked by the other suites, which never start MPI)
export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0"

for i in $(seq 1 60); do
    echo "The little cat sat on the warm mat. The big dog ran to the red ball."
    echo "Once upon a time there was a girl who loved to play in the park. $i"
done > "$TMP/corpus.txt"

# same_curve NAME A.csv B.csv: every step's loss and validation loss within 1e-5 relative
same_curve() {
    local why
    why=$(awk -F, 'NR == FNR { if (FNR > 1) { l[$1] = $2; v[$1] = $3 } next }
        FNR > 1 { n++; if (!($1 in l)) { print "step " $1 " missing"; exit 1 }
                  for (k = 2; k <= 3; k++) { a = (k == 2 ? l[$1] : v[$1]); b = $k; d = a - b; if (d < 0) d = -d
                      m = (a < 0 ? -a : a); if (d > 1e-5 * m + 1e-12) { print "step " $1 ": " a " vs " b; exit 1 } } }
        END { if (n < 2) { print "too few steps"; exit 1 } }' "$2" "$3")
    if [ $? -eq 0 ]; then ok "$1"; else bad "$1" "$why"; fi
}
# same_hashes NAME ERR: both ranks printed the same parameter hash
same_hashes() {
    local h
    h=$(sed -n 's/.*rank [01] of 2: parameters fnv1a \([0-9a-f]*\)/\1/p' "$2" | sort -u)
    if [ "$(grep -c 'parameters fnv1a' "$2")" = 2 ] && [ "$(echo "$h" | wc -l)" = 1 ]; then ok "$1 ($h)"; else bad "$1" "$(grep -a 'fnv1a\|error' "$2")"; fi
}

common=(--data "$TMP/corpus.txt" --arch llama --dim 48 --layers 2 --heads 4 --kv-heads 2 --ffn 96 --ctx 160
        --batch 4 --seq 32 --steps 12 --warmup 2 --lr 3e-3 --eval-every 4 -t 1)
"$SM" train "${common[@]}" --out "$TMP/one.gguf" --log "$TMP/one.csv" 2> "$TMP/one.err"
"${MPIRUN[@]}" "$SM" train "${common[@]}" --out "$TMP/two.gguf" --log "$TMP/two.csv" > "$TMP/two.out" 2> "$TMP/two.err"
same_curve "two_ranks_same_curve_text" "$TMP/one.csv" "$TMP/two.csv"
same_hashes "two_ranks_identical_parameters_text" "$TMP/two.err"
if head -1 "$TMP/two.csv" | grep -q allreduce_ms && [ -s "$TMP/two.gguf" ] && "$SM" run -m "$TMP/two.gguf" -n 4 > /dev/null 2>&1; then
    ok "rank0_writes_model_and_allreduce_time"
else
    bad "rank0_writes_model_and_allreduce_time" "$(tail -c 300 "$TMP/two.err")"
fi

# the profiler under MPI: the exchange is the training profile's "all-reduce" step (rank 0's report),
# and profiling changes no number
"${MPIRUN[@]}" "$SM" train "${common[@]}" --out "$TMP/prof.gguf" --log "$TMP/prof.csv" --profile > /dev/null 2> "$TMP/prof.err"
ms=$(sed -n 's/^| all-reduce | \([0-9.]*\) | [0-9.]* % |$/\1/p' "$TMP/prof.profile.md" 2> /dev/null | head -1)
if [ -n "$ms" ] && awk -v m="$ms" 'BEGIN { exit !(m > 0) }'; then
    ok "profile_times_the_allreduce ($ms ms per step)"
else
    bad "profile_times_the_allreduce" "$(grep -a 'all-reduce' "$TMP/prof.profile.md" 2> /dev/null; tail -c 300 "$TMP/prof.err")"
fi
same_curve "profiled_two_ranks_same_curve" "$TMP/one.csv" "$TMP/prof.csv"

# gradient accumulation: 2 micro-batches of the global batch per step
"$SM" train "${common[@]}" --accum 2 --out "$TMP/one_acc.gguf" --log "$TMP/one_acc.csv" 2> /dev/null
"${MPIRUN[@]}" "$SM" train "${common[@]}" --accum 2 --out "$TMP/two_acc.gguf" --log "$TMP/two_acc.csv" > /dev/null 2> "$TMP/acc.err"
same_curve "two_ranks_same_curve_accumulation" "$TMP/one_acc.csv" "$TMP/two_acc.csv"

# LoRA on a frozen Q8_0 base, chat examples with a loss mask
"$SM" quantize "$TMP/one.gguf" "$TMP/base_q8.gguf" Q8_0 2> /dev/null
for i in $(seq 1 24); do
    echo "{\"messages\": [{\"role\": \"user\", \"content\": \"Where did the cat sit? $i\"}, {\"role\": \"assistant\", \"content\": \"The little cat sat on mat $i.\"}]}"
    echo "{\"messages\": [{\"role\": \"user\", \"content\": \"Who ran $((i * 7 % 24))?\"}, {\"role\": \"assistant\", \"content\": \"The big dog ran to the red ball $((i * 7 % 24)) times.\"}]}"
done > "$TMP/chat.jsonl"
lora=(--init "$TMP/base_q8.gguf" --lora-rank 4 --data "$TMP/chat.jsonl" --batch 4 --seq 128 --steps 8 --warmup 1
      --lr 1e-2 --eval-every 4 -t 1)
"$SM" train "${lora[@]}" --out "$TMP/one.lora.gguf" --log "$TMP/one_lora.csv" 2> "$TMP/one_lora.err"
"${MPIRUN[@]}" "$SM" train "${lora[@]}" --out "$TMP/two.lora.gguf" --log "$TMP/two_lora.csv" > /dev/null 2> "$TMP/two_lora.err"
if awk -F, 'NR > 1 && $2 > 0.1 { n++ } END { exit !(n >= 8) }' "$TMP/one_lora.csv"; then
    same_curve "two_ranks_same_curve_lora_chat" "$TMP/one_lora.csv" "$TMP/two_lora.csv"
else
    bad "two_ranks_same_curve_lora_chat" "the replies were not in the batches: $(head -3 "$TMP/one_lora.csv" | tr '\n' ' ')"
fi
same_hashes "two_ranks_identical_parameters_lora_chat" "$TMP/two_lora.err"

# a batch that does not divide among the ranks is refused, on every rank, without a hang
if ! timeout 60 "${MPIRUN[@]}" "$SM" train "${common[@]}" --batch 3 --out "$TMP/x.gguf" > /dev/null 2> "$TMP/div.err" \
    && grep -q "does not divide among 2 processes" "$TMP/div.err"; then
    ok "indivisible_batch_refused"
else
    bad "indivisible_batch_refused" "$(tail -c 300 "$TMP/div.err")"
fi

# SIGKILL of one rank while checkpoints are written every step: the last one loads, and resuming it
# under mpirun reaches the parameters of an uninterrupted run
long=("${common[@]}" --steps 100 --eval-every 0 --lr 1e-3 --min-lr 1e-3 --warmup 0)
"${MPIRUN[@]}" "$SM" train "${long[@]}" --out "$TMP/full.gguf" > /dev/null 2> "$TMP/full.err"
full_hash=$(sed -n 's/.*rank 0 of 2: parameters fnv1a \([0-9a-f]*\)/\1/p' "$TMP/full.err")
for victim in 0 1; do
    rm -f "$TMP/k.gguf"*
    "${MPIRUN[@]}" "$SM" train "${long[@]}" --out "$TMP/k.gguf" --checkpoint-every 1 > /dev/null 2> "$TMP/k.err" &
    mp=$!
    for i in $(seq 1 600); do [ -e "$TMP/k.gguf.ckpt" ] && break; sleep 0.05; done
    sleep 0.1   # a few more checkpoints, well before the last step
    # the ranks are mpirun's children, in rank order
    pid=$(pgrep -P $mp | sed -n "$((victim + 1))p")
    [ -n "$pid" ] && kill -9 "$pid"
    wait $mp 2> /dev/null
    killed=$?
    if [ -n "$pid" ] && [ $killed -ne 0 ] && "$SM" run -m "$TMP/k.gguf.ckpt" -n 3 > /dev/null 2> "$TMP/run.err"; then
        at=$("$SM" inspect "$TMP/k.gguf.ckpt" --no-tensors 2> /dev/null | sed -n 's/.*smallmind.train.step *u64 *//p')
        ok "sigkill_rank${victim}_leaves_loadable_checkpoint (at step $at of 100)"
    else
        bad "sigkill_rank${victim}_leaves_loadable_checkpoint" "pid '$pid', mpirun status $killed; $(tail -c 300 "$TMP/run.err")"
    fi
    "${MPIRUN[@]}" "$SM" train "${long[@]}" --out "$TMP/k.gguf" --resume "$TMP/k.gguf.ckpt" > /dev/null 2> "$TMP/res.err"
    h=$(sed -n 's/.*rank 0 of 2: parameters fnv1a \([0-9a-f]*\)/\1/p' "$TMP/res.err")
    if [ -n "$full_hash" ] && [ "$h" = "$full_hash" ]; then
        ok "resume_under_mpi_matches_uninterrupted_rank${victim}"
    else
        bad "resume_under_mpi_matches_uninterrupted_rank${victim}" "'$h' vs '$full_hash': $(tail -c 300 "$TMP/res.err")"
    fi
done
echo "mpi: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
