#!/usr/bin/env bash
# TFTP benchmark: bootforge against atftpd, tftpd-hpa and dnsmasq, side by
# side in one run on this machine, all driven by the atftp client over
# loopback.
#
#   bench/tftp.sh                  # full run (about 10-15 minutes; estimate printed at start)
#   REPS=1 CONC_ROUNDS=1 BIG_MIB=8 CLIENTS="20 50" bench/tftp.sh   # smoke test
#
# Measures (see bench/README.md):
#   - one 64 MiB transfer at blksize 512, 1468, 8192 and at 1468 with
#     windowsize 16 and 64; REPS (5) repetitions, median (min-max) seconds
#     and server CPU seconds;
#   - for each N in CLIENTS ("200 500"): N atftp clients fetching a 1 MiB
#     file at once (blksize 1468), released together by a lock; wall time
#     from release to the last client's exit, per-client p50 and p99,
#     slowest client, and failed transfers (non-zero exit or wrong SHA-256);
#     CONC_ROUNDS (5) rounds, median (min-max) over rounds, failures summed;
#   - peak RSS (VmHWM) of each server process, read after the last test.
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
# bootforge warns of BOOTFORGE_* variables it does not know: this one is
# the script's own, not the server's.
export -n BOOTFORGE_BIN

REPS=${REPS:-5}
CLIENTS=${CLIENTS:-200 500} # a list: one concurrency test per client count
CONC_ROUNDS=${CONC_ROUNDS:-5}
BIG_MIB=${BIG_MIB:-64}
SMALL_KIB=${SMALL_KIB:-1024}
SINGLE_TIMEOUT=${SINGLE_TIMEOUT:-300} # seconds, one 64 MiB transfer
CONC_TIMEOUT=${CONC_TIMEOUT:-120}     # seconds, one client of the concurrency test

read -r -a CLIENT_COUNTS <<<"$CLIENTS"
((${#CLIENT_COUNTS[@]})) || { echo "CLIENTS is empty" >&2; exit 1; }
MAXC=0
for n in "${CLIENT_COUNTS[@]}"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "CLIENTS: not a positive number: $n" >&2; exit 1; }
  ((n > MAXC)) && MAXC=$n
done
# concurrency caps of the servers, from the largest client count (+ warm-up slack)
CAP=$((MAXC + 56))

BENCH=tftp
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BENCH_CACHE=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bootforge-bench}

# Other work on this machine skews every figure: say so, in the log and table.
LOAD_START=$(loadavg)
if awk -v l="${LOAD_START%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
  log "WARNING: load average is $LOAD_START on $(nproc) cores; other work will skew the figures"
fi

# Rough run time, from earlier runs on 2 cores: per repetition the five
# single cases take about 6 s per 64 MiB per server plus 0.5 s of checks per
# transfer; a concurrency round about 1.5 s plus 25 ms per client per MiB.
EST=$(awk -v reps="$REPS" -v big="$BIG_MIB" -v rounds="$CONC_ROUNDS" -v kib="$SMALL_KIB" -v cl="$CLIENTS" 'BEGIN {
  single = reps * 4 * (6 * big / 64 + 5 * 0.5)
  n = split(cl, c, " "); conc = 0
  for (i = 1; i <= n; i++) conc += rounds * 4 * (1.5 + 1 + c[i] * (0.01 + 0.025 * kib / 1024))
  printf "about %.0f min (single transfers %.0f s, concurrency %.0f s)", (single + conc + 20) / 60, single, conc }')
log "REPS=$REPS BIG_MIB=$BIG_MIB CLIENTS=\"$CLIENTS\" CONC_ROUNDS=$CONC_ROUNDS SMALL_KIB=$SMALL_KIB: estimate $EST"

# the servers and MAXC clients need file descriptors (dnsmasq caps --tftp-max
# at what its limit allows)
if (($(ulimit -n) < 4 * MAXC + 1024)); then
  ulimit -n "$(($(ulimit -Hn) < 4 * MAXC + 1024 ? $(ulimit -Hn) : 4 * MAXC + 1024))" 2>/dev/null || true
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
chmod 700 "$WORK/data" # the store and keys: bootforge warns of a data_dir others can read
ROOT=$WORK/root

# ---------------------------------------------------------------- helpers

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
    if (NR % 2) printf "%.3f", a[(NR + 1) / 2]; else printf "%.3f", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
# stats DECIMALS VALUES...: "median (min–max)" ("" if none)
stats() {
  local d=$1
  shift
  (($#)) || { echo ""; return; }
  printf '%s\n' "$@" | sort -g | awk -v d="$d" '{ a[NR] = $1 } END {
    m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
    f = "%." d "f"
    printf f " (" f "–" f ")", m, a[1], a[NR] }'
}
# vmhwm PID: peak resident set size (VmHWM) in kB, "" if unreadable
vmhwm() { awk '$1 == "VmHWM:" { print $2 }' "/proc/$1/status" 2>/dev/null || true; }
mib() {
  if [[ -n $1 ]]; then awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; else echo "n/a"; fi
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

use_bootforge "$WORK"

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
  local port http https api
  free_port port; free_port http; free_port https; free_port api
  cat >"$WORK/bootforge.yaml" <<EOF
tftp:
  max_window_size: 64
  max_per_client: $CAP
  max_transfers: $((CAP > 1000 ? CAP : 1000))
http:
  access_log: false
api:
  listen: 127.0.0.1:$api # its default 127.0.0.1:9090 may be taken
EOF
  "$BF" --config "$WORK/bootforge.yaml" --log-level info serve --root "$ROOT" --data-dir "$WORK/data" \
    --tftp-addr "127.0.0.1:$port" --http-addr "127.0.0.1:$http" --https-addr "127.0.0.1:$https" \
    >"$WORK/logs/bootforge.log" 2>&1 &
  PID[bootforge]=$!; HOST[bootforge]=127.0.0.1; PORT[bootforge]=$port
}

start_atftpd() {
  local port; free_port port
  # --maxthread: its default of 100 would refuse most of the clients.
  LD_LIBRARY_PATH=$PEER_LD "$ATFTPD" --daemon --no-fork --bind-address 127.0.0.1 --port "$port" --user root --group root \
    --maxthread "$CAP" --logfile "$WORK/logs/atftpd.log" "$ROOT" >"$WORK/logs/atftpd.out" 2>&1 &
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
  # --tftp-max: its default of 50 would refuse most of the clients.
  dnsmasq --no-daemon --conf-file=/dev/null --port=0 --enable-tftp --tftp-root="$ROOT" \
    --listen-address="$addr" --bind-interfaces --user=root --group=root --pid-file= \
    --tftp-max="$CAP" --log-facility="$WORK/logs/dnsmasq.log" >"$WORK/logs/dnsmasq.out" 2>&1 &
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
    # shellcheck disable=SC2034 # read through a nameref in the report
    RESULT[$key]=${m:-FAIL}
  done
done

# ---------------------------------------------------------------- concurrency

declare -A CONC_WALL CONC_FAIL CONC_SLOWEST CONC_P50 CONC_P99 # "$server|$clients" -> one value per round
HPA_CHILD_HWM="" HPA_CHILD_MOST="" HPA_CHILD_SAMPLES="" # largest tftpd-hpa transfer process seen (kB), ...

# sample_children PPID STOPFILE OUTFILE: until STOPFILE exists, every 0.2 s,
# the largest VmHWM (kB) among PPID's child processes; writes
# "max_kB most_children_at_once samples".
sample_children() {
  local ppid=$1 stop=$2 out=$3 max=0 kids v most=0 samples=0 k
  while [[ ! -e $stop ]]; do
    kids=$(cat "/proc/$ppid/task/$ppid/children" 2>/dev/null || true)
    samples=$((samples + 1))
    k=$(wc -w <<<"$kids")
    ((k > most)) && most=$k
    if [[ -n $kids ]]; then
      # shellcheck disable=SC2086 # one path per child pid
      v=$(printf '/proc/%s/status\n' $kids | xargs cat 2>/dev/null | awk '$1 == "VmHWM:" && $2 > m { m = $2 } END { print m + 0 }' || true)
      ((${v:-0} > max)) && max=$v
    fi
    sleep 0.2
  done
  echo "$max $most $samples" >"$out"
}

# conc_round SERVER N ROUND: N clients at once; prints
# "wall failed slowest p50 p99 CHILD" (seconds; p50/p99 over the N
# per-client durations, failed clients included; CHILD is "-", or when
# tftpd-hpa's children were sampled, sample_children's "kB most samples").
conc_round() {
  local s=$1 n=$2 r=$3 dir=$WORK/out/conc.$1.$2.$3 lock ino i t0 deadline ready_at=0 waiting=0 ready
  local failed=0 rc start sampler="" child="" wall slowest p50 p99
  local -a cpids=() files
  mkdir -p "$dir"
  lock=$dir/lock
  : >"$lock"
  ino=$(stat -c %i "$lock")
  exec 9>"$lock"
  flock -x 9
  for i in $(seq "$n"); do
    {
      : >"$dir/ready.$i"
      flock -s "$lock" true # blocks until the parent releases the lock
      start=$EPOCHREALTIME
      rc=0
      timeout "$CONC_TIMEOUT" atftp --option "blksize 1468" -g -r small.bin -l "$dir/out.$i" \
        "${HOST[$s]}" "${PORT[$s]}" >"$dir/log.$i" 2>&1 || rc=$?
      echo "$rc $start $EPOCHREALTIME" >"$dir/rc.$i"
    } 9>&- &
    cpids+=($!)
  done
  # Release only when all N clients block in flock: /proc/locks lists each
  # blocked waiter ("->") with the lock file's inode. Scales with N: up to
  # 30 s + 0.1 s per client. If /proc/locks never shows waiters, fall back
  # to "all have written ready.*" plus a pause.
  deadline=$((SECONDS + 30 + n / 10))
  while ((SECONDS < deadline)); do
    waiting=$(awk -v ino="$ino" '$2 == "->" { split($7, a, ":"); if (a[3] == ino) k++ } END { print k + 0 }' /proc/locks)
    ((waiting >= n)) && break
    files=("$dir"/ready.*)
    ready=${#files[@]}
    if ((ready >= n && waiting == 0)); then
      ((ready_at)) || ready_at=$SECONDS
      if ((SECONDS - ready_at >= 3)); then
        log "no flock waiters visible in /proc/locks; releasing $n clients after a pause"
        sleep "$(awk -v n="$n" 'BEGIN { printf "%.2f", 0.3 + n / 500 }')"
        waiting=$n
        break
      fi
    fi
    sleep 0.05
  done
  ((waiting >= n)) || log "WARNING: $s round $r: only $waiting of $n clients waiting on the lock after $((30 + n / 10)) s; releasing anyway (the late ones start late)"
  t0=$(now)
  flock -u 9
  exec 9>&-
  # tftpd-hpa forks one process per transfer: sample the largest one once,
  # in the first round at the largest client count (costs one cat+awk per 0.2 s)
  if [[ $s == tftpd-hpa && $n == "$MAXC" && $r == 1 ]]; then
    sample_children "${PID[$s]}" "$dir/stop" "$dir/child_hwm" &
    sampler=$!
  fi
  wait "${cpids[@]}" || true
  if [[ -n $sampler ]]; then
    : >"$dir/stop"
    wait "$sampler" || true
    child=$(cat "$dir/child_hwm" 2>/dev/null || true)
  fi
  read -r wall < <(cat "$dir"/rc.* 2>/dev/null | awk -v t0="$t0" 'BEGIN { m = t0 } $3 > m { m = $3 } END { printf "%.3f\n", m - t0 }')
  # nearest-rank percentiles of the per-client durations
  read -r slowest p50 p99 < <(cat "$dir"/rc.* 2>/dev/null | awk '{ printf "%.6f\n", $3 - $2 }' | sort -g | awk '{ a[NR] = $1 } END {
    if (NR == 0) { print "0 0 0"; exit }
    i50 = int(0.5 * NR); if (i50 < 0.5 * NR) i50++
    i99 = int(0.99 * NR); if (i99 < 0.99 * NR) i99++
    printf "%.3f %.3f %.3f\n", a[NR], a[i50], a[i99] }')
  for i in $(seq "$n"); do
    read -r rc _ <"$dir/rc.$i" || rc=missing
    if [[ $rc != 0 ]] || [[ ! -f $dir/out.$i ]] || [[ $(sha256sum <"$dir/out.$i" | cut -d' ' -f1) != "$SMALL_SHA" ]]; then
      failed=$((failed + 1))
      { echo "== client $i rc=$rc"; cat "$dir/log.$i"; } >>"$WORK/logs/conc-fail.$s.$n.$r.log"
    fi
  done
  rm -rf "$dir"
  echo "$wall $failed $slowest $p50 $p99 ${child:--}"
}

for n in "${CLIENT_COUNTS[@]}"; do
  for r in $(seq "$CONC_ROUNDS"); do
    # interleaved, as above, and the order rotates each round, so that no
    # server always goes first (right after the single transfers or a rest)
    k=$(((r - 1) % ${#SERVERS[@]}))
    for s in "${SERVERS[@]:k}" "${SERVERS[@]:0:k}"; do
      key="$s|$n"
      c0=$(cpu_ns "$s" "${PID[$s]}")
      read -r wall failed slowest p50 p99 child < <(conc_round "$s" "$n" "$r")
      sleep 0.1
      cpu=$(cpu_secs "$c0" "$(cpu_ns "$s" "${PID[$s]}")")
      CPU[$s|c$n]="${CPU[$s|c$n]:-} $cpu"
      CONC_WALL[$key]="${CONC_WALL[$key]:-} $wall"
      CONC_FAIL[$key]=$((${CONC_FAIL[$key]:-0} + failed))
      CONC_SLOWEST[$key]="${CONC_SLOWEST[$key]:-} $slowest"
      CONC_P50[$key]="${CONC_P50[$key]:-} $p50"
      CONC_P99[$key]="${CONC_P99[$key]:-} $p99"
      extra=""
      if [[ $child != - ]]; then
        read -r HPA_CHILD_HWM HPA_CHILD_MOST HPA_CHILD_SAMPLES <<<"$child"
        extra=" largest_child_VmHWM=${HPA_CHILD_HWM}kB (most children at once $HPA_CHILD_MOST, $HPA_CHILD_SAMPLES samples)"
      fi
      log "concurrency $n x ${SMALL_KIB}KiB round $r $s: wall=${wall}s failed=$failed p50=${p50}s p99=${p99}s slowest_client=${slowest}s server_cpu=${cpu}s$extra"
      sleep 1
    done
  done
done

# peak RSS, read now, just before the EXIT trap stops the servers
declare -A HWM
for s in "${SERVERS[@]}"; do HWM[$s]=$(vmhwm "${PID[$s]}"); done

# ---------------------------------------------------------------- report

ratio() { # peer / bootforge
  if [[ $1 == FAIL* || $2 == FAIL* || -z $1 || -z $2 ]]; then echo "n/a"; return; fi
  awk -v p="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", p / b; else print "n/a" }'
}
# best_peer VAR KEY-SUFFIX: name of the peer with the lowest value in
# VAR[peer|KEY-SUFFIX] (FAIL and empty skipped); "" if none
best_peer() {
  local -n _v=$1
  local s best="" bv=""
  for s in "${SERVERS[@]:1}"; do
    [[ -z ${_v[$s|$2]:-} || ${_v[$s|$2]} == FAIL* ]] && continue
    if [[ -z $bv ]] || awk -v a="${_v[$s|$2]}" -v b="$bv" 'BEGIN { exit !(a < b) }'; then best=$s bv=${_v[$s|$2]}; fi
  done
  echo "$best"
}
cell() { # value plus failed-repetition marker
  local v=$1 f=${2:-0}
  if ((f)); then echo "$v ($f/$REPS failed)"; else echo "$v"; fi
}

# medians that the ratio rows compare
declare -A CPUMED WALLMED P50MED P99MED
for s in "${SERVERS[@]}"; do
  # shellcheck disable=SC2086
  for c in "${CASES[@]}"; do CPUMED[$s|$c]=$(median ${CPU[$s|$c]:-}); done
  for n in "${CLIENT_COUNTS[@]}"; do
    # shellcheck disable=SC2086
    {
      CPUMED[$s|c$n]=$(median ${CPU[$s|c$n]:-})
      WALLMED[$s|$n]=$(median ${CONC_WALL[$s|$n]:-})
      P50MED[$s|$n]=$(median ${CONC_P50[$s|$n]:-})
      P99MED[$s|$n]=$(median ${CONC_P99[$s|$n]:-})
    }
  done
done
# ratio_rows VAR KEYS...: one "peer / bootforge" row per peer, then "best peer"
ratio_rows() {
  local var=$1 s k b row
  local -n _r=$1
  shift
  for s in "${SERVERS[@]:1}"; do
    row="| $s"
    for k in "$@"; do row+=" | $(ratio "${_r[$s|$k]:-}" "${_r[bootforge|$k]:-}")"; done
    echo "$row |"
  done
  row="| **best peer**"
  for k in "$@"; do
    b=$(best_peer "$var" "$k")
    if [[ -n $b ]]; then row+=" | **$(ratio "${_r[$b|$k]}" "${_r[bootforge|$k]:-}")** ($b)"; else row+=" | n/a"; fi
  done
  echo "$row |"
}

SINGLE_COLS="| bs 512 | bs 1468 | bs 8192 | bs 1468 ws 16 | bs 1468 ws 64 |"
{
  echo "### TFTP: ${BIG_MIB} MiB single transfer and ${CLIENTS// /, } concurrent clients × ${SMALL_KIB} KiB"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), bootforge $REV, $(nproc) cores, load average $LOAD_START at start and $(loadavg) at end, $(uname -r), client $(atftp --version 2>&1 | head -n1), loopback."
  echo "Peers: atftpd $(cat "$ATFTPD_DIR/.done"), tftpd-hpa $(cat "$HPA_DIR/.done") ($(LD_LIBRARY_PATH=$PEER_LD "$INTFTPD" -V 2>&1 | head -n1)), $(dnsmasq --version | head -n1)."
  echo "Cells: median (min–max). Concurrency caps raised to $CAP (largest CLIENTS + 56)."
  echo
  echo "Single ${BIG_MIB} MiB transfer, wall seconds (median of $REPS):"
  echo
  echo "| server $SINGLE_COLS"
  echo "|---|---:|---:|---:|---:|---:|"
  for s in "${SERVERS[@]}"; do
    row="| $s"
    # shellcheck disable=SC2086
    for c in "${CASES[@]}"; do v=$(stats 3 ${SAMPLES[$s|$c]:-}); row+=" | $(cell "${v:-FAIL}" "${FAILS[$s|$c]:-0}")"; done
    echo "$row |"
  done
  echo
  echo "Ratio peer / bootforge of the medians (> 1: bootforge is faster):"
  echo
  echo "| peer $SINGLE_COLS"
  echo "|---|---:|---:|---:|---:|---:|"
  ratio_rows RESULT "${CASES[@]}"
  echo
  echo "Server CPU seconds per transfer (user + system, median of $REPS; from $CPU_SRC):"
  echo
  echo "| server $SINGLE_COLS"
  echo "|---|---:|---:|---:|---:|---:|"
  for s in "${SERVERS[@]}"; do
    row="| $s"
    # shellcheck disable=SC2086
    for c in "${CASES[@]}"; do row+=" | $(stats 2 ${CPU[$s|$c]:-})"; done
    echo "$row |"
  done
  echo
  echo "Ratio of server CPU, peer / bootforge (> 1: bootforge uses less):"
  echo
  echo "| peer $SINGLE_COLS"
  echo "|---|---:|---:|---:|---:|---:|"
  ratio_rows CPUMED "${CASES[@]}"
  for n in "${CLIENT_COUNTS[@]}"; do
    echo
    echo "$n clients at once × ${SMALL_KIB} KiB (blksize 1468), seconds, median of $CONC_ROUNDS rounds; p50/p99 over the $n clients of a round (failed ones included):"
    echo
    echo "| server | wall | client p50 | client p99 | slowest client | failed / $((n * CONC_ROUNDS)) | server CPU |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for s in "${SERVERS[@]}"; do
      # shellcheck disable=SC2086
      echo "| $s | $(stats 3 ${CONC_WALL[$s|$n]:-}) | $(stats 3 ${CONC_P50[$s|$n]:-}) | $(stats 3 ${CONC_P99[$s|$n]:-}) | $(stats 3 ${CONC_SLOWEST[$s|$n]:-}) | ${CONC_FAIL[$s|$n]:-n/a} | $(stats 2 ${CPU[$s|c$n]:-}) |"
    done
    echo
    echo "| peer / bootforge | wall | client p50 | client p99 | server CPU |"
    echo "|---|---:|---:|---:|---:|"
    for s in "${SERVERS[@]:1}"; do
      echo "| $s | $(ratio "${WALLMED[$s|$n]}" "${WALLMED[bootforge|$n]}") | $(ratio "${P50MED[$s|$n]}" "${P50MED[bootforge|$n]}") | $(ratio "${P99MED[$s|$n]}" "${P99MED[bootforge|$n]}") | $(ratio "${CPUMED[$s|c$n]}" "${CPUMED[bootforge|c$n]}") |"
    done
    row="| **best peer**"
    for v in WALLMED P50MED P99MED CPUMED; do
      k=$n
      [[ $v == CPUMED ]] && k=c$n
      declare -n _m=$v
      b=$(best_peer "$v" "$k")
      if [[ -n $b ]]; then row+=" | **$(ratio "${_m[$b|$k]}" "${_m[bootforge|$k]}")** ($b)"; else row+=" | n/a"; fi
      unset -n _m
    done
    echo "$row |"
  done
  echo
  echo "Peak RSS (VmHWM of the server process, MiB, read after the last test, before the server is stopped):"
  echo
  echo "| server | peak RSS (MiB) | note |"
  echo "|---|---:|---|"
  for s in "${SERVERS[@]}"; do
    note=""
    if [[ $s == tftpd-hpa ]]; then
      note="parent (listener) only: it forks one process per transfer"
      if [[ ${HPA_CHILD_MOST:-0} -gt 0 ]]; then
        note+="; largest transfer process in round 1 of $MAXC clients: $(mib "$HPA_CHILD_HWM") MiB (sampled every 0.2 s: $HPA_CHILD_SAMPLES samples, up to $HPA_CHILD_MOST transfer processes at once)"
      elif [[ -n $HPA_CHILD_SAMPLES ]]; then
        note+="; the sampler saw no transfer process in round 1 of $MAXC clients ($HPA_CHILD_SAMPLES samples)"
      fi
    fi
    echo "| $s | $(mib "${HWM[$s]}") | $note |"
  done
  echo
  echo "Samples (seconds):"
  echo
  for s in "${SERVERS[@]}"; do
    for c in "${CASES[@]}"; do echo "- $s, $c: wall${SAMPLES[$s|$c]:-}; server CPU${CPU[$s|$c]:-}${FAILS[$s|$c]:+ (failed: ${FAILS[$s|$c]})}"; done
    for n in "${CLIENT_COUNTS[@]}"; do
      echo "- $s, $n clients: wall${CONC_WALL[$s|$n]:-}; p50${CONC_P50[$s|$n]:-}; p99${CONC_P99[$s|$n]:-}; slowest${CONC_SLOWEST[$s|$n]:-}; server CPU${CPU[$s|c$n]:-}; failed ${CONC_FAIL[$s|$n]:-n/a}"
    done
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
if grep -qi 'restricting maximum simultaneous TFTP' "$WORK/logs/dnsmasq.log" 2>/dev/null; then
  echo "WARNING: dnsmasq lowered --tftp-max: $(grep -i 'restricting maximum simultaneous TFTP' "$WORK/logs/dnsmasq.log" | head -n1)"
fi
echo "Logs and table: $RESULTS_DIR"
