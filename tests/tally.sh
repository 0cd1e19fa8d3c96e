# tally.sh - sourced by tests/run.sh and .ci/run: runs test suites and adds up
# their closing lines, "NAME: N passed, N failed[, N skipped]" (the name may be
# absent: `make test` itself ends with the combined line).
#   tally_run CMD...   runs CMD showing its output and its time, adds the counts
#                      of its last closing line; no such line counts as one failure, a
#                      non-zero exit fails the run
#   tally_fail WHY     counts one failure
#   tally_end          prints "N passed, N failed, N skipped"; false on any failure
tally_passed=0 tally_failed=0 tally_skipped=0 tally_status=0

tally_run() {
    local log rc line p f s start=$SECONDS
    log=$(mktemp)
    "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    echo "($* took $((SECONDS - start)) s)"
    line=$(grep -E '^([A-Za-z0-9_-]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
    rm -f "$log"
    if [ "$rc" -ne 0 ]; then
        echo "'$*' exited with status $rc"
        tally_status=1
    fi
    if [ -z "$line" ]; then
        tally_fail "'$*' ended without a closing 'N passed, N failed' line"
        return
    fi
    p=$(echo "$line" | sed -E 's/.*\b([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.*\b([0-9]+) failed.*/\1/')
    s=$(echo "$line" | sed -nE 's/.*\b([0-9]+) skipped.*/\1/p')
    tally_passed=$((tally_passed + p))
    tally_failed=$((tally_failed + f))
    tally_skipped=$((tally_skipped + ${s:-0}))
}

tally_fail() {
    echo "$1"
    tally_failed=$((tally_failed + 1))
    tally_status=1
}

tally_end() {
    echo "$tally_passed passed, $tally_failed failed, $tally_skipped skipped"
    [ "$tally_status" -eq 0 ] && [ "$tally_failed" -eq 0 ]
}
