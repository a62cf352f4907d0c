#!/usr/bin/env bash
# Runs each cmocka test binary given as an argument with TAP output, echoes its output, and
# ends with the one summary line CI reads: "N passed, N failed, N skipped".
# A binary that crashes or exits non-zero without a failing test line counts as one failure.
set -u
export LQA_BUILD="${BUILD:-build}" LQA_FIXTURES="$PWD/tests/fixtures" CMOCKA_MESSAGE_OUTPUT=TAP
export LQA_PROGRESS=0
if [ "${SAN:-0}" = 1 ]; then
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:${ASAN_OPTIONS:-}"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
fi
passed=0 failed=0 skipped=0
failures=() failed_logs=()
for t in "$@"; do
    name=$(basename "$t")
    log=$(mktemp)
    start=$(date +%s)
    "$t" >"$log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    # cmocka's TAP: "ok N - name", "not ok N - name", and skips as "not ok N # SKIP name"
    p=$(grep -cE '^ok [0-9]+' "$log")
    s=$(grep -cE '^(not )?ok [0-9]+ # SKIP' "$log")
    f=$(grep -E '^not ok [0-9]+' "$log" | grep -vc '# SKIP')
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "not ok - $name exited with status $rc" >>"$log"; fi
    sed "s/^/[$name] /" "$log"
    echo "# $name: $p passed, $f failed, $s skipped (${secs}s)"
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    if [ "$f" -gt 0 ]; then failures+=("$name"); failed_logs+=("$log"); else rm -f "$log"; fi
done
# CI shows only the tail: repeat each failing binary's output there, with its seed
for i in "${!failed_logs[@]}"; do
    echo "# ---- ${failures[$i]} (output again) ----"
    tail -n 60 "${failed_logs[$i]}" | sed "s/^/[${failures[$i]}] /"
    rm -f "${failed_logs[$i]}"
done
[ ${#failures[@]} -gt 0 ] && echo "# failing: ${failures[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
