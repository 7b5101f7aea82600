#!/usr/bin/env bash
# Runs the whole test suite: vet, unit tests, end-to-end tests against real
# peers, and a short fuzzing run of every fuzz target. Needs root (network
# namespaces, QEMU taps) and the peers from scripts/deps.sh, which it runs.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-30s}

bash scripts/deps.sh

echo "== go vet"
go vet ./...

echo "== unit and end-to-end tests"
go test -count=1 -timeout 30m ./...

echo "== fuzzing, $FUZZTIME per target"
# Every "func FuzzXxx" in the tree, by package.
grep -rl --include='*_test.go' '^func Fuzz' . | while read -r file; do
  pkg=./$(dirname "${file#./}")
  for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | cut -d' ' -f2); do
    echo "-- $pkg $target"
    go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" "$pkg"
  done
done
echo "== all tests passed"
