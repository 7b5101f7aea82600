#!/usr/bin/env bash
# HTTP benchmark: bootforge's HTTP file server against nginx (sendfile on),
# both serving the same directory on loopback, side by side in one run.
#
#   bench/http.sh          # full run (about 2 minutes)
#
# Measures (see bench/README.md):
#   - a 1 GiB download with curl to /dev/null: REPS (3) runs each, interleaved,
#     median MB/s (MB = 10^6 bytes);
#   - wrk -t2 -c32 -d10s on a 1 MiB file: WRK_REPS (3) runs each,
#     interleaved, median requests/s and MB/s.
#
# Environment:
#   BOOTFORGE_BIN  use this binary instead of building ./cmd/bootforge
#   RESULTS_DIR    where the table and server logs are kept
#                  (default bench/results/http-<timestamp>, git-ignored)
#   REPS, WRK_REPS, WRK_ARGS ("-t2 -c32 -d10s"), BIG_MIB (1024)
#   KEEP_WORK=1    keep the temporary work directory
set -euo pipefail

REPS=${REPS:-3}
WRK_REPS=${WRK_REPS:-3}
WRK_ARGS=${WRK_ARGS:--t2 -c32 -d10s}
BIG_MIB=${BIG_MIB:-1024}
SMALL_KIB=${SMALL_KIB:-1024}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
# what was measured: the work tree as it is, uncommitted changes included
REV=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)
RESULTS_DIR=${RESULTS_DIR:-$REPO/bench/results/http-$STAMP}

log() { printf '[http.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# Other work on this machine skews every figure: say so, in the log and table.
LOAD_START=$(loadavg)
if awk -v l="${LOAD_START%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
  log "WARNING: load average is $LOAD_START on $(nproc) cores; other work will skew the figures"
fi

missing=()
command -v nginx >/dev/null || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >&2 || { apt-get update -q >&2 && apt-get install -y -q "${missing[@]}" >&2; } ||
    die "cannot install ${missing[*]}"
fi
for tool in ss awk sha256sum; do command -v "$tool" >/dev/null || die "missing $tool"; done

WORK=$(mktemp -d /tmp/bootforge-bench-http.XXXXXX)
chmod 755 "$WORK" # nginx workers run as nobody
PIDS=()
cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -n ${CG:-} && -d $CG ]]; then
    sleep 0.2
    rmdir "$CG"/*/ "$CG" 2>/dev/null || log "could not remove cgroup $CG"
  fi
  if [[ -d $WORK/logs && -d $RESULTS_DIR ]]; then cp -a "$WORK"/logs/. "$RESULTS_DIR"/ 2>/dev/null || true; fi
  if [[ ${KEEP_WORK:-0} == 1 ]]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$WORK"/{root,logs,data,nginx/tmp} "$RESULTS_DIR"
ROOT=$WORK/root

in_use() { [[ -n $(ss -Hlntu "sport = :$1" 2>/dev/null) ]]; }
USED_PORTS=" "
free_port() { # free_port VAR
  local -n _port=$1
  local p i
  for i in $(seq 200); do
    p=$((20000 + RANDOM % 40000))
    if [[ $USED_PORTS != *" $p "* ]] && ! in_use "$p"; then
      USED_PORTS+="$p "
      _port=$p
      return
    fi
  done
  die "no free port found"
}
# wait_listen PID PORT: until PID (or a child of it) listens on 127.0.0.1:PORT/tcp
wait_listen() {
  local pid=$1 port=$2 i
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 1
    if ss -Hltnp "sport = :$port" 2>/dev/null | grep -F "127.0.0.1:$port" | grep -q "pid=$pid,"; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}
# CPU time (user + system). With cgroup v1 cpuacct writable, each server
# (nginx: master and workers) and each client run (curl, wrk) gets a cpuacct
# cgroup of its own. On loopback the kernel's TCP work is charged partly to
# the sender and partly to the receiver, in proportions that differ between
# servers, so the fair figure is server + client CPU. Without the cgroup,
# only the server's own /proc/PID/stat is read (missing nginx's workers).
CG=""
CPU_SRC="/proc/PID/stat of the server process only (nginx's workers and the clients not counted)"
if [[ -w /sys/fs/cgroup/cpuacct ]] && mkdir "/sys/fs/cgroup/cpuacct/bootforge-bench-$$" 2>/dev/null; then
  CG=/sys/fs/cgroup/cpuacct/bootforge-bench-$$
  CPU_SRC="a cpuacct cgroup per server and per client"
  mkdir "$CG/client"
fi
HZ=$(getconf CLK_TCK)
cg_join() { [[ -z $CG ]] || { mkdir -p "$CG/$1" && echo "$2" >"$CG/$1/cgroup.procs"; }; }
cpu_ns() { # cpu_ns NAME PID: CPU nanoseconds used so far by server NAME (or "client")
  if [[ -n $CG ]]; then
    cat "$CG/$1/cpuacct.usage"
  elif [[ $1 == client ]]; then
    echo 0
  else
    sed 's/.*) //' "/proc/$2/stat" | awk -v hz="$HZ" '{ printf "%.0f", ($12 + $13 + $14 + $15) * 1e9 / hz }'
  fi
}
# as_client CMD...: run CMD in the client cgroup
as_client() {
  if [[ -n $CG ]]; then
    bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG/client" "$@"
  else
    "$@"
  fi
}
cpu_secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
# median [-pN] VALUES...: the median, with N decimals (default 1)
median() {
  local prec=1
  if [[ ${1:-} == -p* ]]; then prec=${1#-p}; shift; fi
  (($#)) || { echo ""; return; }
  printf '%s\n' "$@" | sort -g | awk -v f="%.${prec}f" '{ a[NR] = $1 } END {
    if (NR % 2) printf f, a[(NR + 1) / 2]; else printf f, (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# ---------------------------------------------------------------- data

log "creating ${BIG_MIB} MiB and ${SMALL_KIB} KiB test files"
head -c $((BIG_MIB << 20)) /dev/urandom >"$ROOT/big.bin"
head -c $((SMALL_KIB << 10)) /dev/urandom >"$ROOT/small.bin"
chmod 644 "$ROOT"/*.bin
chmod 755 "$ROOT"
BIG_SIZE=$((BIG_MIB << 20))
SMALL_SHA=$(sha256sum <"$ROOT/small.bin" | cut -d' ' -f1)

# ---------------------------------------------------------------- servers

if [[ -n ${BOOTFORGE_BIN:-} ]]; then
  BF=$BOOTFORGE_BIN
else
  BF=$WORK/bootforge
  log "building bootforge"
  (cd "$REPO" && go build -o "$BF" ./cmd/bootforge)
fi

SERVERS=(bootforge nginx)
declare -A PORT PID

free_port tftp; free_port http; free_port https
cat >"$WORK/bootforge.yaml" <<'EOF'
http:
  access_log: false
EOF
"$BF" --config "$WORK/bootforge.yaml" --log-level warn serve --root "$ROOT" --data-dir "$WORK/data" \
  --tftp-addr "127.0.0.1:$tftp" --http-addr "127.0.0.1:$http" --https-addr "127.0.0.1:$https" \
  >"$WORK/logs/bootforge.log" 2>&1 &
PID[bootforge]=$!; PORT[bootforge]=$http; PIDS+=("$!")
cg_join bootforge "${PID[bootforge]}"

free_port nport
# keepalive_requests: nginx closes a keep-alive connection after 1000
# requests by default, Go's server never; raised so both keep wrk's 32
# connections. Access logs are off on both sides.
cat >"$WORK/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes auto;
pid $WORK/nginx/nginx.pid;
error_log $WORK/logs/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  default_type application/octet-stream;
  client_body_temp_path $WORK/nginx/tmp/body;
  proxy_temp_path $WORK/nginx/tmp/proxy;
  fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
  uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
  scgi_temp_path $WORK/nginx/tmp/scgi;
  server {
    listen 127.0.0.1:$nport;
    root $ROOT;
  }
}
EOF
nginx -t -q -p "$WORK/nginx" -e "$WORK/logs/nginx-error.log" -c "$WORK/nginx.conf" || die "nginx config rejected"
nginx -p "$WORK/nginx" -e "$WORK/logs/nginx-error.log" -c "$WORK/nginx.conf" >"$WORK/logs/nginx.out" 2>&1 &
PID[nginx]=$!; PORT[nginx]=$nport; PIDS+=("$!")

for s in "${SERVERS[@]}"; do
  wait_listen "${PID[$s]}" "${PORT[$s]}" || { tail -n 20 "$WORK/logs/$s"* >&2 || true; die "$s did not start on 127.0.0.1:${PORT[$s]}"; }
  if [[ $s == nginx ]]; then # the master and the workers it has forked
    for p in "${PID[nginx]}" $(pgrep -P "${PID[nginx]}"); do cg_join nginx "$p"; done
  fi
  url=http://127.0.0.1:${PORT[$s]}
  [[ $(curl -fsS "$url/small.bin" | sha256sum | cut -d' ' -f1) == "$SMALL_SHA" ]] || die "$s serves a wrong small.bin"
  log "$s (pid ${PID[$s]}) on 127.0.0.1:${PORT[$s]}"
done

# ---------------------------------------------------------------- 1 GiB with curl

declare -A CURL WRK_RPS WRK_MBS WRK_ERR CPU
# note_cpu SERVER KEY SERVER_NS0 CLIENT_NS0 [DIVISOR]: record server and
# server + client CPU since the marks, divided by DIVISOR
note_cpu() {
  local s=$1 key=$2 sv cl div=${5:-1}
  sv=$(cpu_secs "$3" "$(cpu_ns "$s" "${PID[$s]}")")
  cl=$(cpu_secs "$4" "$(cpu_ns client 0)")
  CPU[$s|$key|server]="${CPU[$s|$key|server]:-} $(awk -v v="$sv" -v d="$div" 'BEGIN { printf "%.3f", v / d }')"
  CPU[$s|$key|total]="${CPU[$s|$key|total]:-} $(awk -v v="$sv" -v c="$cl" -v d="$div" 'BEGIN { printf "%.3f", (v + c) / d }')"
  NOTE="server CPU ${sv}s, client CPU ${cl}s"
}

for rep in $(seq "$REPS"); do
  for s in "${SERVERS[@]}"; do
    s0=$(cpu_ns "$s" "${PID[$s]}"); c0=$(cpu_ns client 0)
    read -r code size secs < <(as_client curl -s -o /dev/null -w '%{http_code} %{size_download} %{time_total}\n' \
      "http://127.0.0.1:${PORT[$s]}/big.bin" || echo "000 0 0")
    if [[ $code != 200 || $size != "$BIG_SIZE" ]]; then
      log "curl $s rep=$rep FAILED: http $code, $size bytes"
      continue
    fi
    note_cpu "$s" curl "$s0" "$c0"
    mbs=$(awk -v b="$size" -v t="$secs" 'BEGIN { printf "%.1f", b / t / 1e6 }')
    CURL[$s]="${CURL[$s]:-} $mbs"
    log "curl ${BIG_MIB}MiB rep=$rep $s: ${secs}s ${mbs} MB/s, $NOTE"
  done
done

# ---------------------------------------------------------------- wrk on 1 MiB

# to_bytes 1.23GB -> bytes (wrk's units are powers of 1024)
to_bytes() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    m = 1; if (u == "KB") m = 1024; else if (u == "MB") m = 1024^2; else if (u == "GB") m = 1024^3; else if (u == "TB") m = 1024^4
    printf "%.0f", n * m }'
}

for rep in $(seq "$WRK_REPS"); do
  for s in "${SERVERS[@]}"; do
    out=$WORK/logs/wrk.$s.$rep.txt
    s0=$(cpu_ns "$s" "${PID[$s]}"); c0=$(cpu_ns client 0)
    # shellcheck disable=SC2086
    as_client wrk $WRK_ARGS "http://127.0.0.1:${PORT[$s]}/small.bin" >"$out" 2>&1 || log "wrk $s exited non-zero"
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    tps=$(awk '/^Transfer\/sec:/ { print $2 }' "$out")
    reqs=$(awk '/requests in/ { print $1 }' "$out")
    errs=$(awk '/Non-2xx|Socket errors/ { $1 = $1; printf "%s; ", $0 }' "$out")
    [[ -n $rps && -n $tps && ${reqs:-0} -gt 0 ]] || { log "wrk $s rep=$rep: no result"; cat "$out" >&2; continue; }
    # CPU in microseconds per request
    note_cpu "$s" wrk "$s0" "$c0" "$(awk -v n="$reqs" 'BEGIN { print n / 1e6 }')"
    mbs=$(awk -v b="$(to_bytes "$tps")" 'BEGIN { printf "%.1f", b / 1e6 }')
    WRK_RPS[$s]="${WRK_RPS[$s]:-} $rps"
    WRK_MBS[$s]="${WRK_MBS[$s]:-} $mbs"
    [[ -n $errs ]] && WRK_ERR[$s]="${WRK_ERR[$s]:-}$errs"
    log "wrk $WRK_ARGS 1MiB rep=$rep $s: ${rps} req/s ${mbs} MB/s, $reqs requests, CPU µs/request: server ${CPU[$s|wrk|server]##* }, server + wrk ${CPU[$s|wrk|total]##* } ${errs}"
  done
done

# ---------------------------------------------------------------- report

ratio() { # bootforge / nginx
  if [[ -z $1 || -z $2 ]]; then echo "n/a"; return; fi
  awk -v b="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.2f", b / n; else print "n/a" }'
}
# shellcheck disable=SC2086
{
  c_bf=$(median ${CURL[bootforge]:-}); c_ng=$(median ${CURL[nginx]:-})
  r_bf=$(median ${WRK_RPS[bootforge]:-}); r_ng=$(median ${WRK_RPS[nginx]:-})
  m_bf=$(median ${WRK_MBS[bootforge]:-}); m_ng=$(median ${WRK_MBS[nginx]:-})
  echo "### HTTP: bootforge vs nginx (loopback, MB = 10^6 bytes)"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), bootforge $REV, $(nproc) cores, load average $LOAD_START at start and $(loadavg) at end, $(uname -r), $(nginx -v 2>&1 | sed 's/^nginx version: //'), $(curl --version | head -n1 | cut -d' ' -f1-2), $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2)."
  echo
  echo "| metric | bootforge | nginx | bootforge / nginx |"
  echo "|---|---:|---:|---:|"
  echo "| ${BIG_MIB} MiB curl download, MB/s (median of $REPS) | ${c_bf:-FAIL} | ${c_ng:-FAIL} | $(ratio "$c_bf" "$c_ng") |"
  echo "| wrk $WRK_ARGS, ${SMALL_KIB} KiB file, requests/s (median of $WRK_REPS) | ${r_bf:-FAIL} | ${r_ng:-FAIL} | $(ratio "$r_bf" "$r_ng") |"
  echo "| wrk $WRK_ARGS, ${SMALL_KIB} KiB file, MB/s (median of $WRK_REPS) | ${m_bf:-FAIL} | ${m_ng:-FAIL} | $(ratio "$m_bf" "$m_ng") |"
  cpu_row() { # cpu_row LABEL KEY KIND PREC
    local b n
    b=$(median "-p$4" ${CPU[bootforge|$2|$3]:-}); n=$(median "-p$4" ${CPU[nginx|$2|$3]:-})
    echo "| $1 | ${b:-n/a} | ${n:-n/a} | $(ratio "$b" "$n") |"
  }
  cpu_row "CPU s per ${BIG_MIB} MiB download, server only" curl server 2
  cpu_row "CPU s per ${BIG_MIB} MiB download, server + curl" curl total 2
  cpu_row "CPU µs per wrk request, server only" wrk server 0
  cpu_row "CPU µs per wrk request, server + wrk" wrk total 0
  echo
  echo "CPU is user + system time from $CPU_SRC; lower is better. Loopback TCP work is charged partly"
  echo "to the sender and partly to the receiver, so compare server + client."
  echo
  echo "Samples:"
  echo
  for s in "${SERVERS[@]}"; do
    echo "- $s: curl MB/s:${CURL[$s]:-}; wrk req/s:${WRK_RPS[$s]:-}; wrk MB/s:${WRK_MBS[$s]:-}; CPU s/download server:${CPU[$s|curl|server]:-}, total:${CPU[$s|curl|total]:-}; CPU µs/request server:${CPU[$s|wrk|server]:-}, total:${CPU[$s|wrk|total]:-}${WRK_ERR[$s]:+; wrk errors: ${WRK_ERR[$s]}}"
  done
} | tee "$RESULTS_DIR/table.md"

echo
if [[ -s $WORK/logs/bootforge.log ]]; then
  echo "bootforge log (warn level and above), first 20 lines:"
  head -n 20 "$WORK/logs/bootforge.log"
else
  echo "bootforge log: empty (no warnings or errors)."
fi
echo "Logs and table: $RESULTS_DIR"
