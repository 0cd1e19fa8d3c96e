#!/usr/bin/env bash
# mpi_train.sh - data-parallel training on this machine: full fine-tuning of
# the built-in model (3.05 M parameters: a 12.2 MB gradient all-reduce per
# step) on the licence texts of /usr/share/common-licenses, the same global
# batch (--batch 16 --seq 128) as 1 process x 2 threads and as 2 processes x
# 1 thread (mpirun). Prints the median tokens/s of the steps, the time per
# step in MPI_Allreduce and in the barrier before it (waiting for the slowest
# rank), from the profiler (`train --profile`: the "all-reduce" step of rank 0)
# and from `smallmind train`'s own summary, and MPI_Allreduce of the
# same size on its own (bench/mpi_allreduce.c). A benchmark, not a test.
#   bash bench/mpi_train.sh [STEPS (default 30)]
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-30}
SM=./build/smallmind
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
MPIRUN=(mpirun --oversubscribe -np 2)
[ "$(id -u)" = 0 ] && MPIRUN+=(--allow-run-as-root)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1   # for any mpirun started without the flag
L=/usr/share/common-licenses
cat $L/GPL-3 $L/GPL-2 $L/LGPL-2 $L/LGPL-2.1 $L/LGPL-3 $L/GFDL-1.2 $L/GFDL-1.3 $L/Apache-2.0 $L/MPL-1.1 $L/MPL-2.0 > "$W/train.txt"
common=(--init models/kjv-3m.gguf --data "$W/train.txt" --val-split 0 --batch 16 --seq 128 --steps "$STEPS" --warmup 5
        --lr 5e-4 --eval-every 0)
median_tps() { tail -n +2 "$1" | cut -d, -f6 | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
"$SM" train "${common[@]}" -t 2 --out "$W/one.gguf" --log "$W/one.csv" 2> /dev/null
"${MPIRUN[@]}" "$SM" train "${common[@]}" -t 1 --out "$W/two.gguf" --log "$W/two.csv" --profile 2> "$W/two.err" > /dev/null
# the profiler's "all-reduce" step (rank 0's timed steps: the exchange and the wait for the slower rank)
prof_ms() { sed -n "s/^| $1 | \([0-9.]*\) | \([0-9.]*\) %.*/\1 ms (\2 % of the step)/p" "$W/two.profile.md"; }
echo "| layout | tokens/s (median step) | all-reduce per step (profiler) | smallmind's summary |"
echo "|---|---|---|---|"
echo "| 1 rank x 2 threads | $(median_tps "$W/one.csv") | - | - |"
echo "| 2 ranks x 1 thread | $(median_tps "$W/two.csv") | $(prof_ms all-reduce) | $(sed -n 's/.*all-reduce of \(.*\)/\1/p' "$W/two.err") |"
mpicc -O2 -o "$W/mpi_allreduce" bench/mpi_allreduce.c
"${MPIRUN[@]}" "$W/mpi_allreduce" 3050000 50
