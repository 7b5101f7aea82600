#!/usr/bin/env bash
# TFTP benchmark: bootforge against atftpd, tftpd-hpa and dnsmasq, side by
# side in one run on this machine, all driven by the atftp client over
# loopback.
#
#   bench/tftp.sh                  # full run (about 5 minutes)
#   REPS=1 CONC_ROUNDS=1 bench/tftp.sh   # quicker, noisier
#
# Measures (see bench/README.md):
#   - one 64 MiB transfer at blksize 512, 1468, 8192 and at 1468 with
#     windowsize 16 and 64; REPS (3) repetitions, median seconds;
#   - CLIENTS (200) atftp clients fetching a 1 MiB file at once (blksize
#     1468), released together by a lock; wall time from release to the last
#     client's exit, and failed transfers (non-zero exit or wrong SHA-256);
#     CONC_ROUNDS (3) rounds, median wall time, failures summed.
#
# atftpd and tftpd-hpa conflict as Debian packages (both ship in.tftpd), so
# neither is installed: both .debs are fetched with `apt-get download` into a
# cache and unpacked with `dpkg-deb -x`. dnsmasq's TFTP port is fixed at 69,
# so it gets a loopback address of its own (127.0.0.X:69); the others listen
# on free ports on 127.0.0.1. Only loopback is used.
#
# Environment:
#   BOOTFORGE_BIN  use this binary instead of building ./cmd/bootforge
#   BENCH_CACHE    where the peer .debs are unpacked (default ~/.cache/bootforge-bench)
#   RESULTS_DIR    where the table and server logs are kept
#                  (default bench/results/tftp-<timestamp>, git-ignored)
#   REPS, CLIENTS, CONC_ROUNDS, BIG_MIB, SMALL_KIB
#   KEEP_WORK=1    keep the temporary work directory
set -euo pipefail

REPS=${REPS:-3}
CLIENTS=${CLIENTS:-200}
CONC_ROUNDS=${CONC_ROUNDS:-3}
BIG_MIB=${BIG_MIB:-64}
SMALL_KIB=${SMALL_KIB:-1024}
SINGLE_TIMEOUT=${SINGLE_TIMEOUT:-300} # seconds, one 64 MiB transfer
CONC_TIMEOUT=${CONC_TIMEOUT:-120}     # seconds, one client of the concurrency test

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
# what was measured: the work tree as it is, uncommitted changes included
REV=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)
RESULTS_DIR=${RESULTS_DIR:-$REPO/bench/results/tftp-$STAMP}
BENCH_CACHE=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bootforge-bench}

log() { printf '[tftp.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# Other work on this machine skews every figure: say so, in the log and table.
LOAD_START=$(loadavg)
if awk -v l="${LOAD_START%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
  log "WARNING: load average is $LOAD_START on $(nproc) cores; other work will skew the figures"
fi

for tool in atftp dnsmasq ss flock sha256sum dpkg-deb apt-get timeout awk; do
  command -v "$tool" >/dev/null || die "missing $tool (apt-get install -y atftp dnsmasq iproute2 util-linux)"
done

WORK=$(mktemp -d /tmp/bootforge-bench-tftp.XXXXXX)
chmod 755 "$WORK" # tftpd-hpa drops to nobody inside its chroot
PIDS=()
cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  # clients of an interrupted concurrency round
  for pid in $(jobs -p); do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -n ${CG:-} && -d $CG ]]; then
    sleep 0.2 # forked transfer processes of tftpd-hpa exit with it
    rmdir "$CG"/*/ "$CG" 2>/dev/null || log "could not remove cgroup $CG"
  fi
  if [[ -d $WORK/logs && -d $RESULTS_DIR ]]; then cp -a "$WORK"/logs/. "$RESULTS_DIR"/ 2>/dev/null || true; fi
  if [[ ${KEEP_WORK:-0} == 1 ]]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$WORK"/{root,logs,out,data} "$RESULTS_DIR"
ROOT=$WORK/root

# ---------------------------------------------------------------- helpers

# in_use PORT [PROTO]: is anything listening on PORT (any address)?
in_use() { [[ -n $(ss -Hln${2:-tu} "sport = :$1" 2>/dev/null) ]]; }

# free_port VAR: sets VAR to a port nobody listens on (TCP or UDP) and that
# this run has not handed out yet.
USED_PORTS=" "
free_port() {
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

# wait_listen PID PROTO ADDR PORT: until PID listens on ADDR:PORT.
wait_listen() {
  local pid=$1 proto=$2 addr=$3 port=$4 i
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 1
    if ss -Hlnp"$proto" "sport = :$port" 2>/dev/null | grep -F "$addr:$port" | grep -q "pid=$pid,"; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

now() { echo "$EPOCHREALTIME"; }
# Server CPU time (user + system). Each server goes into a cpuacct cgroup of
# its own when cgroup v1 cpuacct is writable, which also counts the process
# tftpd-hpa forks for each transfer; otherwise /proc/PID/stat is read, which
# misses those (tftpd-hpa ignores SIGCHLD, so they never reach cutime).
CG=""
CPU_SRC="/proc/PID/stat, which misses the processes tftpd-hpa forks"
if [[ -w /sys/fs/cgroup/cpuacct ]] && mkdir "/sys/fs/cgroup/cpuacct/bootforge-bench-$$" 2>/dev/null; then
  CG=/sys/fs/cgroup/cpuacct/bootforge-bench-$$
  CPU_SRC="a cpuacct cgroup per server"
fi
HZ=$(getconf CLK_TCK)
cg_join() { # cg_join NAME PID
  [[ -n $CG ]] || return 0
  mkdir -p "$CG/$1" && echo "$2" >"$CG/$1/cgroup.procs"
}
cpu_ns() { # cpu_ns NAME PID: CPU nanoseconds so far
  if [[ -n $CG ]]; then
    cat "$CG/$1/cpuacct.usage"
  else
    sed 's/.*) //' "/proc/$2/stat" | awk -v hz="$HZ" '{ printf "%.0f", ($12 + $13 + $14 + $15) * 1e9 / hz }'
  fi
}
cpu_secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }

# median of the numeric arguments ("" if none)
median() {
  (($#)) || { echo ""; return; }
  printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END {
    if (NR % 2) printf "%.2f", a[(NR + 1) / 2]; else printf "%.2f", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# ---------------------------------------------------------------- peers

# unpack PKG: fetch PKG's .deb (cached) and unpack it; prints the directory.
unpack() {
  local pkg=$1 dir=$BENCH_CACHE/$1 deb
  if [[ ! -f $dir/.done ]]; then
    mkdir -p "$BENCH_CACHE/debs"
    deb=$(ls "$BENCH_CACHE"/debs/"${pkg}"_*.deb 2>/dev/null | head -n1 || true)
    if [[ -z $deb ]]; then
      log "apt-get download $pkg"
      if ! (cd "$BENCH_CACHE/debs" && apt-get -q -o APT::Sandbox::User=root download "$pkg" >&2); then
        log "apt-get download failed; running apt-get update once"
        apt-get -q update >&2 || true
        (cd "$BENCH_CACHE/debs" && apt-get -q -o APT::Sandbox::User=root download "$pkg" >&2) ||
          die "cannot download $pkg"
      fi
      deb=$(ls "$BENCH_CACHE"/debs/"${pkg}"_*.deb | head -n1)
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    dpkg-deb -x "$deb" "$dir"
    basename "$deb" >"$dir/.done"
  fi
  echo "$dir"
}

ATFTPD_DIR=$(unpack atftpd)
HPA_DIR=$(unpack tftpd-hpa)
ATFTPD=$ATFTPD_DIR/usr/sbin/atftpd
INTFTPD=$HPA_DIR/usr/sbin/in.tftpd
PEER_LD=""
# Both need libwrap.so.0 (package libwrap0). Use the system's, else unpack it.
if ! ldconfig -p | grep -q 'libwrap\.so\.0 '; then
  PEER_LD=$(unpack libwrap0)/lib/x86_64-linux-gnu
  [[ -d $PEER_LD ]] || PEER_LD=$(unpack libwrap0)/usr/lib/x86_64-linux-gnu
fi
LD_LIBRARY_PATH=$PEER_LD "$ATFTPD" --version >/dev/null 2>&1 || die "atftpd from $ATFTPD_DIR does not run"

# ---------------------------------------------------------------- bootforge

if [[ -n ${BOOTFORGE_BIN:-} ]]; then
  BF=$BOOTFORGE_BIN
else
  BF=$WORK/bootforge
  log "building bootforge"
  (cd "$REPO" && go build -o "$BF" ./cmd/bootforge)
fi

# ---------------------------------------------------------------- data

log "creating ${BIG_MIB} MiB and ${SMALL_KIB} KiB test files"
head -c $((BIG_MIB << 20)) /dev/urandom >"$ROOT/big.bin"
head -c $((SMALL_KIB << 10)) /dev/urandom >"$ROOT/small.bin"
chmod 644 "$ROOT"/*.bin
chmod 755 "$ROOT"
BIG_SHA=$(sha256sum <"$ROOT/big.bin" | cut -d' ' -f1)
SMALL_SHA=$(sha256sum <"$ROOT/small.bin" | cut -d' ' -f1)

# ---------------------------------------------------------------- servers

SERVERS=(bootforge atftpd tftpd-hpa dnsmasq)
declare -A HOST PORT PID

start_bootforge() {
  local port http https
  free_port port; free_port http; free_port https
  cat >"$WORK/bootforge.yaml" <<EOF
tftp:
  max_window_size: 64
  max_per_client: $((CLIENTS + 56))
  max_transfers: 1000
http:
  access_log: false
EOF
  "$BF" --config "$WORK/bootforge.yaml" --log-level info serve --root "$ROOT" --data-dir "$WORK/data" \
    --tftp-addr "127.0.0.1:$port" --http-addr "127.0.0.1:$http" --https-addr "127.0.0.1:$https" \
    >"$WORK/logs/bootforge.log" 2>&1 &
  PID[bootforge]=$!; HOST[bootforge]=127.0.0.1; PORT[bootforge]=$port
}

start_atftpd() {
  local port; free_port port
  # --maxthread: its default of 100 would refuse half of the 200 clients.
  LD_LIBRARY_PATH=$PEER_LD "$ATFTPD" --daemon --no-fork --bind-address 127.0.0.1 --port "$port" --user root --group root \
    --maxthread $((CLIENTS + 56)) --logfile "$WORK/logs/atftpd.log" "$ROOT" >"$WORK/logs/atftpd.out" 2>&1 &
  PID[atftpd]=$!; HOST[atftpd]=127.0.0.1; PORT[atftpd]=$port
}

start_tftpd_hpa() {
  local port; free_port port
  # forks one process per transfer, no concurrency cap; logs to syslog only
  LD_LIBRARY_PATH=$PEER_LD "$INTFTPD" -L -a "127.0.0.1:$port" -s "$ROOT" -B 65464 >"$WORK/logs/tftpd-hpa.out" 2>&1 &
  PID[tftpd-hpa]=$!; HOST[tftpd-hpa]=127.0.0.1; PORT[tftpd-hpa]=$port
}

start_dnsmasq() {
  # dnsmasq's TFTP port is fixed at 69: give it a loopback address whose
  # port 69 is free (and no wildcard listener on 69).
  local addr="" i x
  if ss -Hlnu "sport = :69" | awk '{ print $4 }' | grep -Eq '^(0\.0\.0\.0|\*|\[::\]):69$'; then
    die "something listens on *:69; dnsmasq cannot get a port 69 of its own"
  fi
  for i in $(seq 50); do
    x=127.0.0.$((100 + RANDOM % 150))
    if ! ss -Hlnu "sport = :69" | grep -qF "$x:69"; then addr=$x; break; fi
  done
  [[ -n $addr ]] || die "no free 127.0.0.X:69 for dnsmasq"
  # --tftp-max: its default of 50 would refuse most of the 200 clients.
  dnsmasq --no-daemon --conf-file=/dev/null --port=0 --enable-tftp --tftp-root="$ROOT" \
    --listen-address="$addr" --bind-interfaces --user=root --group=root --pid-file= \
    --tftp-max=$((CLIENTS + 56)) --log-facility="$WORK/logs/dnsmasq.log" >"$WORK/logs/dnsmasq.out" 2>&1 &
  PID[dnsmasq]=$!; HOST[dnsmasq]=$addr; PORT[dnsmasq]=69
}

for s in "${SERVERS[@]}"; do
  "start_${s//-/_}"
  PIDS+=("${PID[$s]}")
  cg_join "$s" "${PID[$s]}"
  if ! wait_listen "${PID[$s]}" u "${HOST[$s]}" "${PORT[$s]}"; then
    tail -n 20 "$WORK/logs/$s".* >&2 || true
    die "$s did not start listening on ${HOST[$s]}:${PORT[$s]}"
  fi
  log "$s (pid ${PID[$s]}) on ${HOST[$s]}:${PORT[$s]}"
done

# ---------------------------------------------------------------- client

# fetch SERVER FILE OUT TIMEOUT ATFTP-OPTIONS... : prints seconds, returns
# non-zero if atftp failed.
fetch() {
  local s=$1 file=$2 out=$3 to=$4 t0 t1 rc=0
  shift 4
  t0=$(now)
  timeout "$to" atftp "$@" -g -r "$file" -l "$out" "${HOST[$s]}" "${PORT[$s]}" >"$out.log" 2>&1 || rc=$?
  t1=$(now)
  sub "$t1" "$t0"
  return "$rc"
}

# warm-up and sanity check: every server serves the small file intact
for s in "${SERVERS[@]}"; do
  fetch "$s" small.bin "$WORK/out/warm" 30 --option "blksize 1468" >/dev/null ||
    die "$s: warm-up transfer failed: $(cat "$WORK/out/warm.log")"
  [[ $(sha256sum <"$WORK/out/warm" | cut -d' ' -f1) == "$SMALL_SHA" ]] || die "$s: warm-up file differs"
  rm -f "$WORK"/out/warm*
done

# ---------------------------------------------------------------- single transfers

CASES=("512" "1468" "8192" "1468 w16" "1468 w64")
declare -A RESULT  # "$server|$case" -> median seconds (or FAIL)
declare -A SAMPLES # "$server|$case" -> "t1 t2 t3"
declare -A FAILS   # "$server|$case" -> failed repetitions
declare -A CPU     # "$server|$case" -> server CPU seconds per repetition

for c in "${CASES[@]}"; do
  read -r bs w <<<"$c"
  opts=(--option "blksize $bs")
  [[ -n ${w:-} ]] && opts+=(--option "windowsize ${w#w}")
  for rep in $(seq "$REPS"); do
    for s in "${SERVERS[@]}"; do # interleaved, so drift hits every server alike
      key="$s|$c"
      out=$WORK/out/big.$s
      ok=1
      c0=$(cpu_ns "$s" "${PID[$s]}")
      secs=$(fetch "$s" big.bin "$out" "$SINGLE_TIMEOUT" "${opts[@]}") || ok=0
      sleep 0.1 # let tftpd-hpa's transfer process see the last ACK
      cpu=$(cpu_secs "$c0" "$(cpu_ns "$s" "${PID[$s]}")")
      CPU[$key]="${CPU[$key]:-} $cpu"
      if ((ok)) && [[ $(sha256sum <"$out" | cut -d' ' -f1) != "$BIG_SHA" ]]; then ok=0; fi
      if ((ok)); then
        SAMPLES[$key]="${SAMPLES[$key]:-} $secs"
      else
        FAILS[$key]=$((${FAILS[$key]:-0} + 1))
        cp "$out.log" "$WORK/logs/atftp-fail.$s.${c// /_}.$rep.log" 2>/dev/null || true
        secs="FAIL($secs)"
      fi
      log "single ${BIG_MIB}MiB blksize=$bs ${w:+windowsize=${w#w} }rep=$rep $s: $secs s (server CPU $cpu s)"
      rm -f "$out" "$out.log"
    done
  done
done

for s in "${SERVERS[@]}"; do
  for c in "${CASES[@]}"; do
    key="$s|$c"
    # shellcheck disable=SC2086
    m=$(median ${SAMPLES[$key]:-})
    RESULT[$key]=${m:-FAIL}
  done
done

# ---------------------------------------------------------------- concurrency

declare -A CONC_WALL CONC_FAIL CONC_SLOWEST
# conc_round SERVER ROUND: prints "wall failed slowest_client"
conc_round() {
  local s=$1 r=$2 dir=$WORK/out/conc.$1.$2 lock i n t0 wall failed=0 line rc start end
  mkdir -p "$dir"
  lock=$dir/lock
  : >"$lock"
  exec 9>"$lock"
  flock -x 9
  for i in $(seq "$CLIENTS"); do
    {
      : >"$dir/ready.$i"
      flock -s "$lock" true # blocks until the parent releases the lock
      start=$EPOCHREALTIME
      rc=0
      timeout "$CONC_TIMEOUT" atftp --option "blksize 1468" -g -r small.bin -l "$dir/out.$i" \
        "${HOST[$s]}" "${PORT[$s]}" >"$dir/log.$i" 2>&1 || rc=$?
      echo "$rc $start $EPOCHREALTIME" >"$dir/rc.$i"
    } 9>&- &
  done
  for i in $(seq 600); do
    n=$(find "$dir" -maxdepth 1 -name 'ready.*' | wc -l)
    ((n >= CLIENTS)) && break
    sleep 0.05
  done
  sleep 0.3 # let the last ones reach flock
  t0=$(now)
  flock -u 9
  exec 9>&-
  wait
  wall=$(cat "$dir"/rc.* | awk -v t0="$t0" 'BEGIN { m = t0 } $3 > m { m = $3 } END { printf "%.3f", m - t0 }')
  slowest=$(cat "$dir"/rc.* | awk 'BEGIN { m = 0 } $3 - $2 > m { m = $3 - $2 } END { printf "%.3f", m }')
  for i in $(seq "$CLIENTS"); do
    read -r rc _ <"$dir/rc.$i" || rc=missing
    if [[ $rc != 0 ]] || [[ ! -f $dir/out.$i ]] || [[ $(sha256sum <"$dir/out.$i" | cut -d' ' -f1) != "$SMALL_SHA" ]]; then
      failed=$((failed + 1))
      { echo "== client $i rc=$rc"; cat "$dir/log.$i"; } >>"$WORK/logs/conc-fail.$s.$r.log"
    fi
  done
  rm -rf "$dir"
  echo "$wall $failed $slowest"
}

for r in $(seq "$CONC_ROUNDS"); do
  for s in "${SERVERS[@]}"; do
    c0=$(cpu_ns "$s" "${PID[$s]}")
    read -r wall failed slowest < <(conc_round "$s" "$r")
    sleep 0.1
    cpu=$(cpu_secs "$c0" "$(cpu_ns "$s" "${PID[$s]}")")
    CPU[$s|conc]="${CPU[$s|conc]:-} $cpu"
    CONC_WALL[$s]="${CONC_WALL[$s]:-} $wall"
    CONC_FAIL[$s]=$((${CONC_FAIL[$s]:-0} + failed))
    CONC_SLOWEST[$s]="${CONC_SLOWEST[$s]:-} $slowest"
    log "concurrency round $r $s: $CLIENTS x ${SMALL_KIB}KiB wall=${wall}s failed=$failed slowest_client=${slowest}s server_cpu=${cpu}s"
    sleep 1
  done
done

# ---------------------------------------------------------------- report

ratio() { # peer / bootforge
  if [[ $1 == FAIL* || $2 == FAIL* || -z $1 || -z $2 ]]; then echo "n/a"; return; fi
  awk -v p="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", p / b; else print "n/a" }'
}
cell() { # value plus failed-repetition marker
  local v=$1 f=${2:-0}
  if ((f)); then echo "$v ($f/$REPS failed)"; else echo "$v"; fi
}

{
  echo "### TFTP: ${BIG_MIB} MiB single transfer (median of $REPS, seconds) and $CLIENTS concurrent clients"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), bootforge $REV, $(nproc) cores, load average $LOAD_START at start and $(loadavg) at end, $(uname -r), client $(atftp --version 2>&1 | head -n1), loopback."
  echo "Peers: atftpd $(cat "$ATFTPD_DIR/.done"), tftpd-hpa $(cat "$HPA_DIR/.done"), $(dnsmasq --version | head -n1)."
  echo
  hdr="| server | bs 512 | bs 1468 | bs 8192 | bs 1468 ws 16 | bs 1468 ws 64 | ${CLIENTS}×${SMALL_KIB} KiB wall (s, median of $CONC_ROUNDS) | failed / $((CLIENTS * CONC_ROUNDS)) | slowest client (s) |"
  echo "$hdr"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for s in "${SERVERS[@]}"; do
    row="| $s"
    for c in "${CASES[@]}"; do row+=" | $(cell "${RESULT[$s|$c]}" "${FAILS[$s|$c]:-0}")"; done
    # shellcheck disable=SC2086
    row+=" | $(median ${CONC_WALL[$s]}) | ${CONC_FAIL[$s]} | $(printf '%s\n' ${CONC_SLOWEST[$s]} | sort -g | tail -n1) |"
    echo "$row"
  done
  echo
  echo "Ratio peer_time / bootforge_time (> 1: bootforge is faster):"
  echo
  echo "| peer | bs 512 | bs 1468 | bs 8192 | bs 1468 ws 16 | bs 1468 ws 64 | ${CLIENTS} clients |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for s in "${SERVERS[@]:1}"; do
    row="| $s"
    for c in "${CASES[@]}"; do row+=" | $(ratio "${RESULT[$s|$c]}" "${RESULT[bootforge|$c]}")"; done
    # shellcheck disable=SC2086
    row+=" | $(ratio "$(median ${CONC_WALL[$s]})" "$(median ${CONC_WALL[bootforge]})") |"
    echo "$row"
  done
  echo
  echo "Server CPU seconds (user + system, median; less sensitive to other load than wall time; from $CPU_SRC):"
  echo
  echo "| server | bs 512 | bs 1468 | bs 8192 | bs 1468 ws 16 | bs 1468 ws 64 | ${CLIENTS} clients |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for s in "${SERVERS[@]}"; do
    row="| $s"
    # shellcheck disable=SC2086
    for c in "${CASES[@]}" conc; do row+=" | $(median ${CPU[$s|$c]:-})"; done
    echo "$row |"
  done
  echo
  echo "Samples (seconds):"
  echo
  for s in "${SERVERS[@]}"; do
    for c in "${CASES[@]}"; do echo "- $s, $c: wall${SAMPLES[$s|$c]:-}; server CPU${CPU[$s|$c]:-}${FAILS[$s|$c]:+ (failed: ${FAILS[$s|$c]})}"; done
    echo "- $s, ${CLIENTS} clients: wall${CONC_WALL[$s]}; server CPU${CPU[$s|conc]:-}"
  done
} | tee "$RESULTS_DIR/table.md"

echo
# bootforge's own view of failures: transfers that did not end "ok"
bad=$(grep -E 'level=(WARN|ERROR)' "$WORK/logs/bootforge.log" || true)
if [[ -n $bad ]]; then
  echo "bootforge WARN/ERROR log lines ($(wc -l <<<"$bad")), first 20:"
  head -n 20 <<<"$bad"
else
  echo "bootforge log: no WARN/ERROR lines."
fi
echo "Logs and table: $RESULTS_DIR"
