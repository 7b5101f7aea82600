#!/usr/bin/env bash
# HTTP benchmark: bootforge's HTTP file server against nginx (sendfile on),
# both serving the same directory on loopback over HTTP and HTTPS (one
# ECDSA P-256 certificate for both), access logs on, side by side in one run.
#
#   bench/http.sh          # full run (about 7 minutes; the estimate is printed at start)
#
# Measures (see bench/README.md), the servers taking turns, median (min-max):
#   - a 1 GiB download with curl to /dev/null, over HTTP and HTTPS: REPS (5)
#     runs each, MB/s (MB = 10^6 bytes);
#   - wrk -t2 -c64 -d8s on a 1 MiB and on an 8 KiB file, over HTTP and
#     HTTPS: WRK_REPS (5) runs each, requests/s;
#   - CPU per download / per request (server, server + client), peak RSS.
#
# Environment:
#   BOOTFORGE_BIN  use this binary instead of building ./cmd/bootforge
#   RESULTS_DIR    where the table and server logs are kept
#                  (default bench/results/http-<timestamp>, git-ignored)
#   REPS (5), WRK_REPS (5), WRK_ARGS ("-t2 -c64 -d8s"), BIG_MIB (1024),
#   WRK_KIB ("1024 8": the wrk file sizes in KiB)
#   KEEP_WORK=1    keep the temporary work directory
#   BF_AUDIT=true|false   bootforge's boot log (audit.enabled; on by
#                  default): false measures what the boot log, which nginx
#                  has no counterpart of, costs a file server
set -euo pipefail
# bootforge warns of BOOTFORGE_* variables it does not know: this one is
# the script's own, not the server's.
export -n BOOTFORGE_BIN

REPS=${REPS:-5}
WRK_REPS=${WRK_REPS:-5}
WRK_ARGS=${WRK_ARGS:--t2 -c64 -d8s}
BIG_MIB=${BIG_MIB:-1024}
read -r -a WRK_KIB <<<"${WRK_KIB:-1024 8}"
BF_AUDIT=${BF_AUDIT:-true}
[[ $BF_AUDIT == true || $BF_AUDIT == false ]] || { echo "http.sh: BF_AUDIT is true or false, not '$BF_AUDIT'" >&2; exit 2; }
PROTOS=(http https)

BENCH=http
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
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
for tool in ss awk sha256sum openssl; do command -v "$tool" >/dev/null || die "missing $tool"; done

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
  if [[ -d $WORK/logs && -d $RESULTS_DIR ]]; then
    # the access logs can have millions of lines: keep their first 1000
    local f
    for f in "$WORK"/logs/*; do
      [[ -f $f ]] || continue
      case ${f##*/} in
        bootforge.log | nginx-access.log) head -n 1000 "$f" >"$RESULTS_DIR/${f##*/}.head" 2>/dev/null || true ;;
        *) cp -a "$f" "$RESULTS_DIR"/ 2>/dev/null || true ;;
      esac
    done
  fi
  if [[ ${KEEP_WORK:-0} == 1 ]]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$WORK"/{root,logs,data,tls,nginx/tmp} "$RESULTS_DIR"
ROOT=$WORK/root

# wait_listen PID PORT: until PID (or a child of it) listens on 127.0.0.1:PORT/tcp
wait_listen() {
  local pid=$1 port=$2 _
  for _ in $(seq 100); do
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
# ---------------------------------------------------------------- time estimate

wrk_secs=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^-d/) { v = substr($i, 3); if (v == "" ) v = $(i + 1)
  n = v + 0; if (v ~ /m$/) n *= 60; print n; exit } } END { if (!n) print 10 }' <<<"$WRK_ARGS")
# 1 GiB: ~3 s to create, ~1 s per HTTP and ~2 s per HTTPS download; wrk: its duration + 1 s
EST=$(awk -v big="$BIG_MIB" -v r="$REPS" -v wr="$WRK_REPS" -v w="$wrk_secs" -v nk="${#WRK_KIB[@]}" \
  'BEGIN { printf "%.0f", 20 + big / 1024 * (3 + 2 * r * (1 + 2)) + 2 * 2 * nk * wr * (w + 1) }')
log "estimated duration: about $((EST / 60)) min $((EST % 60)) s (REPS=$REPS WRK_REPS=$WRK_REPS WRK_ARGS='$WRK_ARGS' BIG_MIB=$BIG_MIB)"

# ---------------------------------------------------------------- data

log "creating a ${BIG_MIB} MiB file and wrk files of ${WRK_KIB[*]} KiB"
head -c $((BIG_MIB << 20)) /dev/urandom >"$ROOT/big.bin"
for k in "${WRK_KIB[@]}"; do head -c $((k << 10)) /dev/urandom >"$ROOT/w$k.bin"; done
chmod 644 "$ROOT"/*.bin
chmod 755 "$ROOT"
BIG_SIZE=$((BIG_MIB << 20))
CHECK=w${WRK_KIB[-1]}.bin # the smallest by default: checked over both protocols before measuring
CHECK_SHA=$(sha256sum <"$ROOT/$CHECK" | cut -d' ' -f1)

# one certificate for both servers: ECDSA P-256, CN and SAN 127.0.0.1
CERT=$WORK/tls/cert.pem KEY=$WORK/tls/key.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout "$KEY" -out "$CERT" 2>"$WORK/logs/openssl.log" ||
  die "openssl could not make the certificate: $(cat "$WORK/logs/openssl.log")"
chmod 600 "$KEY"

# ---------------------------------------------------------------- servers

use_bootforge "$WORK"

SERVERS=(bootforge nginx)
declare -A PORT SPORT PID

# The access log stays on: bootforge logs each request at info level
# (internal/httpd logRequests) to stderr, here a file. max_per_client
# (default 32 requests in flight per client address) is raised above wrk's
# connections, all from 127.0.0.1, so that the bound is still counted but
# never refuses; nginx has no such bound.
tftp="" http="" https="" api="" nport="" nsport=""
free_port tftp; free_port http; free_port https; free_port api
chmod 700 "$WORK/data"
cat >"$WORK/bootforge.yaml" <<EOC
audit:
  enabled: $BF_AUDIT
http:
  access_log: true
  max_per_client: 256
  tls:
    enabled: true
    listen: 127.0.0.1:$https
    cert: $CERT
    key: $KEY
EOC
"$BF" --config "$WORK/bootforge.yaml" --log-level info serve --root "$ROOT" --data-dir "$WORK/data" \
  --tftp-addr "127.0.0.1:$tftp" --http-addr "127.0.0.1:$http" \
  --api-addr "127.0.0.1:$api" >"$WORK/logs/bootforge.log" 2>&1 &
PID[bootforge]=$!; PORT[bootforge]=$http; SPORT[bootforge]=$https; PIDS+=("$!")
cg_join bootforge "${PID[bootforge]}"

free_port nport; free_port nsport
start_nginx "$WORK" "$ROOT" "$nport" "$nsport" "$CERT" "$KEY" # its fastest honest setting (lib.sh)
PID[nginx]=$NGINX_PID; PORT[nginx]=$nport; SPORT[nginx]=$nsport; PIDS+=("$NGINX_PID")

# url SERVER PROTO
url() { if [[ $2 == https ]]; then echo "https://127.0.0.1:${SPORT[$1]}"; else echo "http://127.0.0.1:${PORT[$1]}"; fi; }
CURL_TLS=(--cacert "$CERT")
declare -A REQS TLSINFO # requests sent to each server, as counted by the clients
for s in "${SERVERS[@]}"; do
  if ! wait_listen "${PID[$s]}" "${PORT[$s]}" || ! wait_listen "${PID[$s]}" "${SPORT[$s]}"; then
    tail -n 20 "$WORK/logs/$s"* >&2 || true
    die "$s did not start on 127.0.0.1:${PORT[$s]} and :${SPORT[$s]}"
  fi
  if [[ $s == nginx ]]; then # the master and the workers it has forked
    for p in "${PID[nginx]}" $(pgrep -P "${PID[nginx]}"); do cg_join nginx "$p"; done
  fi
  for proto in "${PROTOS[@]}"; do
    REQS[$s]=$((${REQS[$s]:-0} + 1))
    [[ $(curl -fsS "${CURL_TLS[@]}" "$(url "$s" "$proto")/$CHECK" | sha256sum | cut -d' ' -f1) == "$CHECK_SHA" ]] ||
      die "$s serves a wrong $CHECK over $proto"
  done
  TLSINFO[$s]=$(openssl s_client -connect "127.0.0.1:${SPORT[$s]}" -CAfile "$CERT" </dev/null 2>/dev/null |
    awk '/Cipher is/ { sub(/^.*, /, ""); sub(/Cipher is /, ""); print; exit }')
  log "$s (pid ${PID[$s]}) on 127.0.0.1:${PORT[$s]} (http) and :${SPORT[$s]} (https, ${TLSINFO[$s]:-cipher unknown})"
done

# ---------------------------------------------------------------- 1 GiB with curl

# VAL[SERVER|CASE] and CPU[SERVER|CASE|server/total]: sample lists.
# Cases: curl-http, curl-https, wrk<KiB>-http, wrk<KiB>-https.
declare -A VAL CPU WRK_ERR
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

for proto in "${PROTOS[@]}"; do
  for rep in $(seq "$REPS"); do
    for s in "${SERVERS[@]}"; do
      key=curl-$proto
      s0=$(cpu_ns "$s" "${PID[$s]}"); c0=$(cpu_ns client 0)
      REQS[$s]=$((REQS[$s] + 1))
      read -r code size secs < <(as_client curl -s "${CURL_TLS[@]}" -o /dev/null -w '%{http_code} %{size_download} %{time_total}\n' \
        "$(url "$s" "$proto")/big.bin" || echo "000 0 0")
      if [[ $code != 200 || $size != "$BIG_SIZE" ]]; then
        log "curl $proto $s rep=$rep FAILED: http $code, $size bytes"
        VAL[$s|$key|fail]=$((${VAL[$s|$key|fail]:-0} + 1))
        continue
      fi
      note_cpu "$s" "$key" "$s0" "$c0"
      mbs=$(awk -v b="$size" -v t="$secs" 'BEGIN { printf "%.1f", b / t / 1e6 }')
      VAL[$s|$key]="${VAL[$s|$key]:-} $mbs"
      log "curl ${BIG_MIB}MiB $proto rep=$rep $s: ${secs}s ${mbs} MB/s, $NOTE"
    done
  done
done

# ---------------------------------------------------------------- wrk

for proto in "${PROTOS[@]}"; do
  for k in "${WRK_KIB[@]}"; do
    key=wrk$k-$proto
    for rep in $(seq "$WRK_REPS"); do
      for s in "${SERVERS[@]}"; do
        out=$WORK/logs/wrk.$s.$key.$rep.txt
        PORT_OF=${PORT[$s]}; [[ $proto == https ]] && PORT_OF=${SPORT[$s]}
        s0=$(cpu_ns "$s" "${PID[$s]}"); c0=$(cpu_ns client 0)
        # shellcheck disable=SC2086
        as_client wrk $WRK_ARGS "$(url "$s" "$proto")/w$k.bin" >"$out" 2>&1 || log "wrk $s exited non-zero"
        rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
        reqs=$(awk '/requests in/ { print $1 }' "$out")
        errs=$(awk '/Non-2xx|Socket errors/ { $1 = $1; printf "%s; ", $0 }' "$out")
        REQS[$s]=$((REQS[$s] + ${reqs:-0}))
        if [[ -z $rps || ${reqs:-0} -le 0 ]]; then
          log "wrk $key $s rep=$rep: FAILED, no result"; cat "$out" >&2
          # for the record: the TCP states on the server's port just after
          ss -tan "( sport = :$PORT_OF )" | awk 'NR > 1 { n[$1]++ } END { for (k in n) printf "%s %d\n", k, n[k] }' >>"$out" || true
          VAL[$s|$key|fail]=$((${VAL[$s|$key|fail]:-0} + 1))
          continue
        fi
        # CPU in microseconds per request
        note_cpu "$s" "$key" "$s0" "$c0" "$(awk -v n="$reqs" 'BEGIN { print n / 1e6 }')"
        VAL[$s|$key]="${VAL[$s|$key]:-} $rps"
        [[ -n $errs ]] && WRK_ERR[$s]="${WRK_ERR[$s]:-}$key rep $rep: $errs"
        log "wrk $WRK_ARGS $key rep=$rep $s: ${rps} req/s, $reqs requests, CPU µs/request: server ${CPU[$s|$key|server]##* }, server + wrk ${CPU[$s|$key|total]##* } ${errs}"
      done
    done
  done
done

# ---------------------------------------------------------------- RSS, access logs

# peak RSS in MiB: VmHWM of bootforge; of nginx's master and workers, summed
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
declare -A RSS
RSS[bootforge]=$(hwm_kib "${PID[bootforge]}")
RSS[nginx]=0
for p in "${PID[nginx]}" $(pgrep -P "${PID[nginx]}"); do RSS[nginx]=$((RSS[nginx] + $(hwm_kib "$p"))); done
for s in "${SERVERS[@]}"; do RSS[$s]=$(awk -v k="${RSS[$s]}" 'BEGIN { printf "%.1f", k / 1024 }'); done

sleep 2 # nginx writes its buffered access log at the latest after 1 s
declare -A LOGLINES
LOGLINES[bootforge]=$(grep -c 'msg="http request"' "$WORK/logs/bootforge.log" || true)
LOGLINES[nginx]=$(wc -l <"$WORK/logs/nginx-access.log" 2>/dev/null || echo 0)
for s in "${SERVERS[@]}"; do
  log "$s access log: ${LOGLINES[$s]} lines, ${REQS[$s]} requests counted by the clients (wrk's count leaves out those cut off at its end)"
  if ((LOGLINES[$s] < REQS[$s])); then
    log "WARNING: $s's access log has fewer lines (${LOGLINES[$s]}) than the requests sent (${REQS[$s]})"
  fi
done

# ---------------------------------------------------------------- report

ratio() { # bootforge / nginx, from the medians
  if [[ -z $1 || -z $2 ]]; then echo "n/a"; return; fi
  awk -v b="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.2f", b / n; else print "n/a" }'
}
fails() { # fails SERVER KEY: " (N failed)" or ""
  local n=${VAL[$1|$2|fail]:-0}
  ((n == 0)) || echo " ($n of $3 FAILED)"
}
# shellcheck disable=SC2086
{
  echo "### HTTP and HTTPS: bootforge vs nginx (loopback, MB = 10^6 bytes)"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), bootforge $REV, $(nproc) cores, load average $LOAD_START at start and $(loadavg) at end, $(uname -r), $(nginx -v 2>&1 | sed 's/^nginx version: //'), $(curl --version | head -n1 | cut -d' ' -f1-2), $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2), $(openssl version | cut -d' ' -f1-2); bootforge's boot log $([[ $BF_AUDIT == false ]] && echo off || echo on)."
  echo
  echo "| metric | bootforge | nginx | bootforge / nginx |"
  echo "|---|---:|---:|---:|"
  row() { # row LABEL KEY REPS PREC: median (min–max) of VAL
    local b n
    b=$(cell "-p$4" ${VAL[bootforge|$2]:-}); n=$(cell "-p$4" ${VAL[nginx|$2]:-})
    echo "| $1 | ${b:-FAIL}$(fails bootforge "$2" "$3") | ${n:-FAIL}$(fails nginx "$2" "$3") | $(ratio "$(median ${VAL[bootforge|$2]:-})" "$(median ${VAL[nginx|$2]:-})") |"
  }
  for proto in "${PROTOS[@]}"; do
    row "${BIG_MIB} MiB curl download, $proto, MB/s (median of $REPS)" "curl-$proto" "$REPS" 1
  done
  for proto in "${PROTOS[@]}"; do
    for k in "${WRK_KIB[@]}"; do
      row "wrk $WRK_ARGS, $k KiB file, $proto, requests/s (median of $WRK_REPS)" "wrk$k-$proto" "$WRK_REPS" 0
    done
  done
  echo "| peak RSS, MiB (nginx: master + workers) | ${RSS[bootforge]} | ${RSS[nginx]} | $(ratio "${RSS[bootforge]}" "${RSS[nginx]}") |"
  echo "| access log lines (requests sent) | ${LOGLINES[bootforge]} (${REQS[bootforge]}) | ${LOGLINES[nginx]} (${REQS[nginx]}) | |"
  cpu_row() { # cpu_row LABEL KEY KIND PREC
    local b n
    b=$(cell "-p$4" ${CPU[bootforge|$2|$3]:-}); n=$(cell "-p$4" ${CPU[nginx|$2|$3]:-})
    echo "| $1 | ${b:-n/a} | ${n:-n/a} | $(ratio "$(median "-p$4" ${CPU[bootforge|$2|$3]:-})" "$(median "-p$4" ${CPU[nginx|$2|$3]:-})") |"
  }
  for proto in "${PROTOS[@]}"; do
    cpu_row "CPU s per ${BIG_MIB} MiB download, $proto, server only" "curl-$proto" server 2
    cpu_row "CPU s per ${BIG_MIB} MiB download, $proto, server + curl" "curl-$proto" total 2
  done
  for proto in "${PROTOS[@]}"; do
    for k in "${WRK_KIB[@]}"; do
      cpu_row "CPU µs per wrk request, $k KiB, $proto, server only" "wrk$k-$proto" server 0
      cpu_row "CPU µs per wrk request, $k KiB, $proto, server + wrk" "wrk$k-$proto" total 0
    done
  done
  echo
  echo "Cells: median (min–max); the ratio is of the medians. The servers took turns in every repetition."
  echo "Both access logs are on: bootforge \`http.access_log: true\` at \`--log-level info\`, one line per request"
  echo "written to a file, in batches when lines come within 1 ms of a write (internal/logbuf); nginx \`access_log ... combined buffer=64k flush=1s\` (its fastest"
  echo "honest setting: lines are written in 64 KiB blocks, at the latest after 1 s). The request count"
  echo "is what curl and wrk report; wrk leaves out requests cut off when it stops, so a log may have a few more."
  echo "bootforge runs with \`http.max_per_client: 256\` (default 32), since all of wrk's connections come from"
  echo "127.0.0.1. HTTPS: one ECDSA P-256 certificate; nginx with \`ssl_protocols TLSv1.2 TLSv1.3\` and"
  echo "\`ssl_session_cache shared:SSL:10m\`; negotiated with openssl s_client: bootforge ${TLSINFO[bootforge]:-?},"
  echo "nginx ${TLSINFO[nginx]:-?}. nginx's sendfile does not apply to TLS (no kTLS here)."
  echo "CPU is user + system time from $CPU_SRC; lower is better. Loopback TCP work is charged partly"
  echo "to the sender and partly to the receiver, so compare server + client."
  echo
  echo "Samples:"
  echo
  for s in "${SERVERS[@]}"; do
    line="- $s:"
    for proto in "${PROTOS[@]}"; do line+=" curl $proto MB/s:${VAL[$s|curl-$proto]:-};"; done
    for proto in "${PROTOS[@]}"; do for k in "${WRK_KIB[@]}"; do line+=" wrk $k KiB $proto req/s:${VAL[$s|wrk$k-$proto]:-};"; done; done
    echo "$line${WRK_ERR[$s]:+ wrk errors: ${WRK_ERR[$s]}}"
  done
} | tee "$RESULTS_DIR/table.md"

echo
others=$(grep -v 'msg="http request"' "$WORK/logs/bootforge.log" | grep -E 'level=(WARN|ERROR)' || true)
if [[ -n $others ]]; then
  echo "bootforge log, WARN and ERROR lines, first 20:"
  head -n 20 <<<"$others"
else
  echo "bootforge log: no WARN or ERROR lines."
fi
echo "Logs and table: $RESULTS_DIR"
