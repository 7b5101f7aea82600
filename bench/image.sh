#!/usr/bin/env bash
# Image import and verify benchmark: `bootforge image import --sha256 HEX
# FILE` of a 2 GiB file, and `bootforge image verify` of a version holding
# it, against `sha256sum FILE` on the same file, in the same run.
#
#   bench/image.sh          # about a minute, plus making the file
#
# The import reads the file, hashes it, writes it into the blob store and
# syncs it to disk; verify reads and hashes the version's files; sha256sum
# only reads and hashes. Issue #12's target is that both run at least 0.9x
# as fast as sha256sum: hashing is the only cost. See bench/README.md.
#
# Method: make SIZE_MIB (2048) MiB of random data, sync it, run sha256sum
# once to warm the page cache (its digest is the expected one), then REPS
# (3) rounds of sha256sum and import, alternating. Before each import the
# blob of the previous one is removed, so every import stores the file
# anew. Wall time, user and system CPU of each run; medians, min and max.
#
# Environment:
#   BOOTFORGE_BIN  use this binary instead of building ./cmd/bootforge
#   BENCH_TMP      where the work directory goes (default /var/tmp: not a
#                  tmpfs on Debian, so the blob really goes to disk)
#   SIZE_MIB (2048), REPS (3)
#   RESULTS_DIR    where the table goes (default bench/results/image-<time>)
#   KEEP_WORK=1    keep the work directory (and its 2 GiB file)
set -euo pipefail
# bootforge warns of BOOTFORGE_* variables it does not know: this one is
# the script's own, not the server's.
export -n BOOTFORGE_BIN

SIZE_MIB=${SIZE_MIB:-2048}
REPS=${REPS:-3}
BENCH_TMP=${BENCH_TMP:-/var/tmp}

BENCH=image
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for tool in sha256sum awk sort head sync; do command -v "$tool" >/dev/null || die "missing $tool"; done

LOAD_START=$(loadavg)
if awk -v l="${LOAD_START%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
  log "WARNING: load average is $LOAD_START on $(nproc) cores; other work will skew the figures"
fi
QEMU_START=$(pgrep -c qemu || true)
((QEMU_START == 0)) || log "WARNING: $QEMU_START QEMU processes are running; they will skew the figures"

WORK=$(mktemp -d "$BENCH_TMP/bootforge-bench-image.XXXXXX")
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ ${KEEP_WORK:-0} == 1 ]]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$WORK/data" "$WORK/root" "$RESULTS_DIR"

use_bootforge "$WORK"

SRC=$WORK/source.iso
SIZE=$((SIZE_MIB << 20))
log "making $SIZE_MIB MiB of random data in $SRC"
head -c "$SIZE" /dev/urandom >"$SRC"
sync "$SRC" # its writeback must not run during the measurements
HEX=$(sha256sum "$SRC" | cut -d' ' -f1) # also warms the page cache
log "sha256 $HEX"
BLOB=$WORK/data/blobs/sha256/$HEX

# timed NAME CMD...: run CMD, add "wall user sys" seconds to the lists of NAME
declare -A WALL USR SYS
timed() {
  local name=$1 out
  shift
  local TIMEFORMAT='%R %U %S'
  out=$({ time "$@" >"$WORK/out" 2>&1; } 2>&1) || { cat "$WORK/out" >&2; die "$name failed"; }
  read -r w u s <<<"$out"
  WALL[$name]="${WALL[$name]:-} $w"; USR[$name]="${USR[$name]:-} $u"; SYS[$name]="${SYS[$name]:-} $s"
  log "$name: ${w}s wall, ${u}s user, ${s}s sys, $(mbs "$w") MB/s"
}
mbs() { awk -v b="$SIZE" -v t="$1" 'BEGIN { printf "%.0f", b / t / 1e6 }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
minimum() { printf '%s\n' "$@" | sort -g | head -n1; }
maximum() { printf '%s\n' "$@" | sort -g | tail -n1; }

# A version holding the file, for verify (built once: versions are immutable).
ln "$SRC" "$WORK/payload" # the same bytes, not named .iso (build reads an .iso as an ISO)
"$BF" image build bench@1.0.0 --template linux --kernel "$WORK/payload" --root "$WORK/root" --data-dir "$WORK/data" >"$WORK/out" 2>&1 ||
  { cat "$WORK/out" >&2; die "image build failed"; }
BUILT=$WORK/root/images/bench/1.0.0/payload
cmp -s "$SRC" "$BUILT" || die "the built file differs from the source"
cat "$BUILT" >/dev/null # into the page cache, as the source is

for rep in $(seq "$REPS"); do
  timed sha256sum sha256sum "$SRC"
  grep -q "^$HEX " "$WORK/out" || die "sha256sum printed $(cat "$WORK/out")"
  rm -f "$BLOB"
  timed import "$BF" image import "$SRC" --sha256 "$HEX" --data-dir "$WORK/data"
  grep -q "^$HEX stored" "$WORK/out" || die "import printed $(cat "$WORK/out")"
  cmp -s "$SRC" "$BLOB" || die "the stored blob differs from the source"
  timed verify "$BF" image verify bench@1.0.0 --root "$WORK/root" --data-dir "$WORK/data"
done
rm -f "$BLOB"

# shellcheck disable=SC2086 # one value a word
{
  s_med=$(median ${WALL[sha256sum]}); i_med=$(median ${WALL[import]}); v_med=$(median ${WALL[verify]})
  echo "### image import and verify: bootforge vs sha256sum ($SIZE_MIB MiB, MB = 10^6 bytes)"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), bootforge $REV, $(nproc) cores, $(grep -m1 -o -w 'sha_ni' /proc/cpuinfo || echo 'no sha_ni'), load average $LOAD_START at start and $(loadavg) at end, QEMU processes at start: $QEMU_START, $(uname -r), $(sha256sum --version | head -n1), $(df -T "$WORK" | awk 'NR == 2 { print $2 }') at $BENCH_TMP."
  echo
  echo "| | sha256sum | bootforge image import | bootforge image verify |"
  echo "|---|---:|---:|---:|"
  echo "| wall s, median of $REPS | $s_med | $i_med | $v_med |"
  echo "| wall s, min / max | $(minimum ${WALL[sha256sum]}) / $(maximum ${WALL[sha256sum]}) | $(minimum ${WALL[import]}) / $(maximum ${WALL[import]}) | $(minimum ${WALL[verify]}) / $(maximum ${WALL[verify]}) |"
  echo "| MB/s, median | $(mbs "$s_med") | $(mbs "$i_med") | $(mbs "$v_med") |"
  echo "| user CPU s, median | $(median ${USR[sha256sum]}) | $(median ${USR[import]}) | $(median ${USR[verify]}) |"
  echo "| system CPU s, median | $(median ${SYS[sha256sum]}) | $(median ${SYS[import]}) | $(median ${SYS[verify]}) |"
  echo
  echo "Speed / sha256sum speed (median wall times): import $(awk -v s="$s_med" -v i="$i_med" 'BEGIN { printf "%.2f", s / i }'), verify $(awk -v s="$s_med" -v i="$v_med" 'BEGIN { printf "%.2f", s / i }') (target: at least 0.90)."
  echo "All runs: sha256sum${WALL[sha256sum]}; import${WALL[import]}; verify${WALL[verify]} (seconds, in order)."
} | tee "$RESULTS_DIR/table.md"
log "table written to $RESULTS_DIR/table.md"
