#!/usr/bin/env bash
# Runs every fuzz target in the tree, one at a time, for FUZZTIME each
# (10 minutes unless set), and prints per target the executions and
# whether it found a failing input. A failing input is written by Go under
# the package's testdata/fuzz/FuzzXxx/; commit it as a seed once fixed.
# Exits non-zero if any target failed. Usage: scripts/fuzz-long.sh [REGEXP]
# runs only the targets whose name matches REGEXP.
set -uo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-10m}
only=${1:-.}
summary=$(mktemp)
logdir=$(mktemp -d)
failed=0

while read -r file; do
  pkg=./$(dirname "${file#./}")
  for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | cut -d' ' -f2); do
    [[ $target =~ $only ]] || continue
    log=$logdir/${target}.log
    echo "-- $pkg $target for $FUZZTIME (log: $log)"
    go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" "$pkg" >"$log" 2>&1
    rc=$?
    # The last progress line: "fuzz: elapsed: 2m0s, execs: 123456 (...), new interesting: ..."
    execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    if ((rc == 0)); then
      result="no crash"
    elif grep -q 'Failing input written' "$log"; then
      result="CRASH: $(grep -o 'testdata/fuzz/[^ ]*' "$log" | tail -1)"
      failed=1
    elif grep -q 'context deadline exceeded' "$log"; then
      result="no crash (the coordinator timed out a worker at the deadline)"
    else
      result="FAILED (exit $rc): $(grep -m1 -E 'FAIL|panic|error' "$log")"
      failed=1
    fi
    printf '%-10s %-24s execs %-12s %s\n' "$(basename "$pkg")" "$target" "${execs:-0}" "$result" | tee -a "$summary"
  done
done < <(grep -rl --include='*_test.go' '^func Fuzz' . | sort)

echo "== summary, $FUZZTIME per target"
cat "$summary"
rm -f "$summary"
exit $failed
