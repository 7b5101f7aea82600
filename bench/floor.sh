#!/usr/bin/env bash
# What Go's runtime costs a file server, and what bootforge's own work
# costs it: wrk on a 1 MiB and an 8 KiB file, over plain HTTP on loopback,
# against nginx, bootforge and bench/floor, the least a Go file server
# does (a goroutine per connection on Go's netpoller, as bootforge's file
# listeners; see bench/floor/main.go), the servers taking turns.
#
#   bench/floor.sh          # about 6 minutes with the defaults
#
# floor runs in up to three shapes (VARIANTS):
#   floor            the header with MSG_MORE, the file opened once
#   floor-cork       the system calls bootforge made per 1 MiB request
#                    before the thirty-ninth session: openat2, fstat,
#                    TCP_CORK on, header, cachestat, sendfile, TCP_CORK
#                    off, close
#   floor-corkfirst  the same, the cork cleared after the body's first
#                    64 KiB, as bootforge does now for a body of at
#                    most 1 MiB
# floor-cork against floor-corkfirst measures the cork alone, and floor
# against bootforge what bootforge does beyond the least. The two corked
# shapes run only on files over 64 KiB, which the floor sends with
# sendfile(2); a smaller one goes in the header's write in every shape.
#
# Environment:
#   BOOTFORGE_BIN  use this binary instead of building ./cmd/bootforge
#   BASE_BIN       also run this bootforge binary, as "bootforge-base", in
#                  the same turns: a change measured against the build
#                  before it, each round taking both
#   RESULTS_DIR    where the table is kept (default bench/results/floor-<timestamp>)
#   WRK_REPS (5), WRK_ARGS ("-t2 -c64 -d8s"), WRK_KIB ("1024 8"),
#   VARIANTS ("floor floor-cork floor-corkfirst"), KEEP_WORK=1 keeps the
#   temporary work directory
#
# Server CPU is the server's own /proc/PID/stat (nginx: master and
# workers). On loopback the kernel's TCP work is shared between sender and
# receiver in proportions that differ between servers, so requests a second
# are the figure to compare; bench/http.sh also counts the client's CPU.
set -euo pipefail
export -n BOOTFORGE_BIN

WRK_REPS=${WRK_REPS:-5}
WRK_ARGS=${WRK_ARGS:--t2 -c64 -d8s}
read -r -a WRK_KIB <<<"${WRK_KIB:-1024 8}"
read -r -a VARIANTS <<<"${VARIANTS:-floor floor-cork floor-corkfirst}"
for v in "${VARIANTS[@]}"; do
  [[ $v == floor || $v == floor-cork || $v == floor-corkfirst ]] || { echo "floor.sh: VARIANTS: unknown '$v' (floor, floor-cork, floor-corkfirst)" >&2; exit 2; }
done

BENCH=floor
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOAD_START=$(loadavg)
if awk -v l="${LOAD_START%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
  log "WARNING: load average is $LOAD_START on $(nproc) cores; other work will skew the figures"
fi
for tool in nginx wrk curl ss awk go; do command -v "$tool" >/dev/null || die "missing $tool (bench/http.sh installs nginx and wrk)"; done

WORK=$(mktemp -d /tmp/bootforge-bench-floor.XXXXXX)
chmod 755 "$WORK" # nginx workers run as nobody
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ ${KEEP_WORK:-0} == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$WORK"/{root,logs} "$RESULTS_DIR"
ROOT=$WORK/root
for k in "${WRK_KIB[@]}"; do head -c $((k << 10)) /dev/urandom >"$ROOT/w$k.bin"; done
chmod 644 "$ROOT"/*.bin
chmod 755 "$ROOT"

use_bootforge "$WORK"
log "building bench/floor"
(cd "$REPO" && go build -o "$WORK/floor" ./bench/floor)

declare -A PORT PID
SERVERS=(nginx bootforge)
if [[ -n ${BASE_BIN:-} ]]; then
  [[ -x $BASE_BIN ]] || die "BASE_BIN: $BASE_BIN is not an executable"
  SERVERS+=(bootforge-base)
fi
SERVERS+=("${VARIANTS[@]}")
for s in "${SERVERS[@]}"; do
  port=""; free_port port; PORT[$s]=$port
  case $s in
    nginx)
      start_nginx "$WORK" "$ROOT" "$port"
      PID[$s]=$NGINX_PID ;;
    bootforge*)
      tftp="" api=""; free_port tftp; free_port api
      bin=$BF; [[ $s == bootforge-base ]] && bin=$BASE_BIN
      mkdir -m 700 "$WORK/data-$s"
      printf 'http:\n  access_log: true\n  max_per_client: 256\n  tls:\n    enabled: false\n' >"$WORK/bootforge.yaml"
      "$bin" --config "$WORK/bootforge.yaml" --log-level info serve --root "$ROOT" --data-dir "$WORK/data-$s" \
        --tftp-addr "127.0.0.1:$tftp" --http-addr "127.0.0.1:$port" --api-addr "127.0.0.1:$api" >"$WORK/logs/$s.log" 2>&1 &
      PID[$s]=$! ;;
    floor) args=(-header more) ;;&
    floor-cork) args=(-header cork -reopen -cachestat) ;;&
    floor-corkfirst) args=(-header corkfirst -reopen -cachestat) ;;&
    floor*)
      "$WORK/floor" -addr "127.0.0.1:$port" -root "$ROOT" -access-log "$WORK/logs/$s-access.log" "${args[@]}" >"$WORK/logs/$s.log" 2>&1 &
      PID[$s]=$! ;;
  esac
  PIDS+=("${PID[$s]}")
done
for s in "${SERVERS[@]}"; do
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:${PORT[$s]}/w${WRK_KIB[-1]}.bin" 2>/dev/null && continue 2
    sleep 0.1
  done
  tail -n 20 "$WORK/logs/$s"* >&2 || true
  die "$s does not answer on 127.0.0.1:${PORT[$s]}"
done
for k in "${WRK_KIB[@]}"; do
  want=$(sha256sum <"$ROOT/w$k.bin" | cut -d' ' -f1)
  for s in "${SERVERS[@]}"; do
    [[ $(curl -fsS "http://127.0.0.1:${PORT[$s]}/w$k.bin" | sha256sum | cut -d' ' -f1) == "$want" ]] || die "$s serves a wrong w$k.bin"
  done
done

HZ=$(getconf CLK_TCK)
ticks() { # CPU clock ticks of a process and its children (nginx's workers)
  local t=0 p
  for p in "$1" $(pgrep -P "$1"); do t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }'))); done
  echo "$t"
}
# runs_on SERVER KIB: whether SERVER is measured on the file of KIB. The
# floor sends a file of at most 64 KiB from memory in the header's write,
# so its shapes differ only above that: there floor-cork and
# floor-corkfirst would be floor run again.
runs_on() { [[ $1 != floor-* || $2 -gt 64 ]]; }
declare -A RPS CPU
for k in "${WRK_KIB[@]}"; do
  for rep in $(seq "$WRK_REPS"); do
    for s in "${SERVERS[@]}"; do
      runs_on "$s" "$k" || continue
      t0=$(ticks "${PID[$s]}")
      # shellcheck disable=SC2086 # WRK_ARGS is a list of words
      wrk $WRK_ARGS "http://127.0.0.1:${PORT[$s]}/w$k.bin" >"$WORK/wrk.out" 2>&1 || die "wrk against $s failed: $(cat "$WORK/wrk.out")"
      t1=$(ticks "${PID[$s]}")
      grep -q "Non-2xx\|Socket errors" "$WORK/wrk.out" && log "wrk against $s: $(grep "Non-2xx\|Socket errors" "$WORK/wrk.out")"
      n=$(awk '/requests in/ { print $1 }' "$WORK/wrk.out")
      rps=$(awk '/Requests\/sec/ { print $2 }' "$WORK/wrk.out")
      cpu=$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
      RPS[$s|$k]+=" $rps"; CPU[$s|$k]+=" $cpu"
      log "wrk $WRK_ARGS w$k.bin rep=$rep $s: $rps req/s, server CPU $cpu µs a request"
    done
  done
done

{
  echo "### bootforge, nginx and the floor: wrk $WRK_ARGS, plain HTTP on loopback"
  echo
  echo "bootforge $REV;${BASE_BIN:+ bootforge-base $(bin_rev "$BASE_BIN") (BASE_BIN=$BASE_BIN);} $(nginx -v 2>&1); $(wrk -v 2>&1 | head -n 1); $(go version); $WRK_REPS runs each, taking turns;"
  echo "load average at the start $LOAD_START. Medians (min–max); ratio: requests a second against nginx's median."
  echo
  echo "| file | server | requests/s | ratio | server CPU µs a request |"
  echo "|---|---|---:|---:|---:|"
  for k in "${WRK_KIB[@]}"; do
    # shellcheck disable=SC2086 # the sample lists are words
    ref=$(median ${RPS[nginx|$k]})
    for s in "${SERVERS[@]}"; do
      runs_on "$s" "$k" || continue
      # shellcheck disable=SC2086
      echo "| $k KiB | $s | $(cell -p0 ${RPS[$s|$k]}) | $(awk -v a="$(median ${RPS[$s|$k]})" -v b="$ref" 'BEGIN { printf "%.2f", a / b }') | $(cell ${CPU[$s|$k]}) |"
    done
  done
} | tee "$RESULTS_DIR/table.md"
