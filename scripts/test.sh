#!/usr/bin/env bash
# Runs the whole test suite: vet, unit tests, end-to-end tests against real
# peers, and a short fuzzing run of every fuzz target. Needs root (network
# namespaces, QEMU taps) and the peers from scripts/deps.sh, which it runs.
set -euo pipefail
cd "$(dirname "$0")/.."

# Every target at 12 s, plus a build each: about 6 minutes for 20 targets;
# scripts/fuzz-long.sh runs every target for 10 minutes.
FUZZTIME=${FUZZTIME:-12s}

bash scripts/deps.sh

echo "== go mod tidy -diff"
# A diff fails the run. An error without a diff (a module that tidy needs
# but deps.sh did not download, and the registry briefly unreachable) is
# retried like the network steps in deps.sh.
for n in 1 2 3 4 5 6; do
  if tidy_diff=$(go mod tidy -diff); then
    break
  fi
  if [[ -n $tidy_diff ]]; then
    printf '%s\n' "$tidy_diff"
    echo "go.mod/go.sum are not tidy: run go mod tidy and commit the result" >&2
    exit 1
  fi
  if ((n == 6)); then
    echo "go mod tidy -diff failed" >&2
    exit 1
  fi
  echo "retry $n/6 failed: go mod tidy -diff" >&2
  sleep $((n * 3))
done

echo "== go vet"
go vet ./...

# Every package but the end-to-end tests: unit tests, with the race detector.
unit_pkgs=$(go list ./... | grep -v '^bootforge/test/')
echo "== unit tests (-race)"
# shellcheck disable=SC2086 # one package path a word
go test -race -count=1 -timeout 30m $unit_pkgs

# End-to-end tests drive real peers and QEMU, and build the bootforge under
# test themselves: -race would only instrument the harness, and slow it.
echo "== end-to-end tests"
go test -count=1 -timeout 30m ./test/...

echo "== fuzzing, $FUZZTIME per target"
# Every "func FuzzXxx" in the tree, by package.
grep -rl --include='*_test.go' '^func Fuzz' . | while read -r file; do
  pkg=./$(dirname "${file#./}")
  for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | cut -d' ' -f2); do
    echo "-- $pkg $target"
    # Go's fuzz coordinator sometimes gives up on a busy worker at the
    # deadline ("context deadline exceeded") without any failing input;
    # that run is repeated once. A real failure writes its input and stops.
    out=$(mktemp)
    if ! go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" "$pkg" 2>&1 | tee "$out"; then
      if grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written' "$out"; then
        echo "-- $pkg $target: the fuzz coordinator timed out a worker; once more"
        go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" "$pkg"
      else
        rm -f "$out"
        exit 1
      fi
    fi
    rm -f "$out"
  done
done
echo "== all tests passed"
