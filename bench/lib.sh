# Helpers shared by bench/http.sh, tftp.sh and image.sh; sourced, not run.
#
#   BENCH=http; source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# sets REPO (the checkout), STAMP (UTC time, for names), REV (what was
# measured: the work tree as it is, uncommitted changes included) and
# RESULTS_DIR (bench/results/$BENCH-$STAMP unless the caller set it), and
# defines log, die, loadavg, in_use, free_port and use_bootforge.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
REV=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)
RESULTS_DIR=${RESULTS_DIR:-$REPO/bench/results/$BENCH-$STAMP}

log() { printf '[%s.sh %(%H:%M:%S)T] %s\n' "$BENCH" -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# in_use PORT [PROTO]: is anything listening on PORT (any address)?
in_use() { [[ -n $(ss -Hln"${2:-tu}" "sport = :$1" 2>/dev/null) ]]; }

# free_port VAR: sets VAR to a port nobody listens on (TCP or UDP) and that
# this run has not handed out yet.
USED_PORTS=" "
free_port() {
  local -n _port=$1
  local p _
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 40000))
    if [[ $USED_PORTS != *" $p "* ]] && ! in_use "$p"; then
      USED_PORTS+="$p "
      _port=$p
      return
    fi
  done
  die "no free port found"
}

# use_bootforge DIR: sets BF to the bootforge to measure: BOOTFORGE_BIN,
# with its own commit (when it was built with VCS stamping) put in REV
# beside the work tree's, or one built from the work tree into DIR.
use_bootforge() {
  if [[ -z ${BOOTFORGE_BIN:-} ]]; then
    BF=$1/bootforge
    log "building bootforge"
    (cd "$REPO" && go build -o "$BF" ./cmd/bootforge)
    return
  fi
  BF=$BOOTFORGE_BIN
  local r
  r=$(go version -m "$BF" 2>/dev/null | awk '$2 ~ /^vcs\.revision=/ { r = substr($2, 14, 12) } $2 == "vcs.modified=true" { d = "-dirty" } END { if (r != "") print r d }' || true)
  REV="${r:-unknown} (BOOTFORGE_BIN=$BF; work tree $REV)"
}
