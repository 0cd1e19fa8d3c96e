#!/usr/bin/env bash
# run.sh - runs every test suite and prints the combined closing line.
# Called by `make test` and `make sanitize` (BUILD selects the build).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
if [ ! -d "${SM_SHARED:-../shared}" ]; then
    echo "note: ../shared (fixtures beside the checkout) is absent: tests that need it are skipped"
fi
total_p=0 total_f=0 total_s=0 status=0
run_suite() {
    local log; log=$(mktemp)
    "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    local line; line=$(grep -E '^[a-z]+: [0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
    if [ -z "$line" ]; then
        echo "suite '$*' ended without a result line (exit $rc)"
        total_f=$((total_f + 1))
        status=1
    else
        read -r p f s < <(echo "$line" | sed -E 's/^[a-z]+: ([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?.*/\1 \2 \4/')
        total_p=$((total_p + p)); total_f=$((total_f + f)); total_s=$((total_s + ${s:-0}))
        [ "$rc" -ne 0 ] && status=1
    fi
    rm -f "$log"
}
run_suite "$BUILD/unit_tests"
run_suite bash tests/cli_test.sh
run_suite bash tests/parity_test.sh
run_suite bash tests/profile_test.sh
run_suite bash tests/train_test.sh
run_suite bash tests/kquant_test.sh
echo "$total_p passed, $total_f failed, $total_s skipped"
[ $status -eq 0 ] && [ $total_f -eq 0 ]
