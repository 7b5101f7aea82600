#!/usr/bin/env bash
# PXE storm benchmark: CLIENTS (500) simulated machines each do a relayed DHCP
# DORA, a TFTP download of a 1 MiB loader (blksize 1468) and HTTP downloads
# of an 8 MiB kernel and a 4 MiB initrd. Run against
#   (a) bootforge alone (DHCP + TFTP + HTTP), and
#   (b) dnsmasq (DHCP + TFTP) with nginx (HTTP, sendfile on),
# RUNS times each, the two taking turns (a b, b a, a b, ...), each run on a
# freshly started server. The generator is bench/pxestorm; see its package
# comment and bench/pxestorm.md.
#
# Default (like for like): the clients' first DISCOVERs are released at
# DHCP_RATE (250/s), the same pace for both servers, and with SYNC=1 every
# client finishes DHCP, then all start TFTP at one instant, then all start
# HTTP at one instant (pxestorm -sync): each stage is the same storm for both.
# FREE=1 is the earlier free-running method: all DISCOVERs at once, each
# client going on as soon as its previous stage is done.
#
#   sudo bench/pxestorm.sh          # from anywhere; about 3-5 minutes
#
# Layout (two network namespaces joined by a veth pair, nothing on the host):
#
#   [srv ns] vsrv 198.18.0.1/24 ---- vrly 198.18.0.2/24 [rly ns]
#            route 198.19.0.0/16 via 198.18.0.2           198.19.0.1 on lo (giaddr)
#
# pxestorm binds 198.19.0.1:67 as the relay and sends relayed DHCP to
# 198.18.0.1:67; the pool is 198.19.0.0/16. TFTP and HTTP go from ephemeral
# ports on 198.19.0.1 (every client shares that address) to 198.18.0.1.
#
# Environment: CLIENTS=500 RUNS=5 DHCP_RATE=250/s SYNC=1 FREE=0
# STAGE_TIMEOUT=60s MAX_TIME=120s KEEP=1 (keep the temp dir with the
# binaries and files) RESULTS_DIR (default bench/results/pxestorm-<UTC time>,
# git-ignored: table.md, the JSON result of every run and each client's
# stage times (*.json.trace), configs and logs),
# BOOTFORGE_BIN (measure this binary instead of building ./cmd/bootforge),
# GEN_CPUS (the CPUs, a taskset list, the simulated machines run on;
# default none: left to the scheduler. On one core of two the 500
# machines are the bottleneck, and both sides take longer: whole-boot
# p50 9.9 s against 8.7 for bootforge, 10.7 against 9.9 for dnsmasq +
# nginx, bench/README.md, thirty-seventh session).
set -euo pipefail
# bootforge warns of BOOTFORGE_* variables it does not know: this one is
# the script's own, not the server's.
export -n BOOTFORGE_BIN

CLIENTS=${CLIENTS:-500}
STAGE_TIMEOUT=${STAGE_TIMEOUT:-60s}
MAX_TIME=${MAX_TIME:-120s}
KEEP=${KEEP:-0}
RUNS=${RUNS:-5}
DHCP_RATE=${DHCP_RATE:-250/s}
SYNC=${SYNC:-1}
FREE=${FREE:-0}
if [ "$FREE" = 1 ]; then DHCP_RATE=0 SYNC=0; fi
GEN_CPUS=${GEN_CPUS:-}
GEN=()
[ -z "$GEN_CPUS" ] || GEN=(taskset -c "$GEN_CPUS")
SYNC_FLAG=-sync=true
[ "$SYNC" = 1 ] || SYNC_FLAG=-sync=false
case $RUNS in '' | *[!0-9]* | 0) echo "pxestorm.sh: RUNS must be a positive integer" >&2; exit 2 ;; esac

SRV_IP=198.18.0.1
RLY_IP=198.18.0.2
GIADDR=198.19.0.1
POOL_NET=198.19.0.0/16
POOL_FIRST=198.19.0.10
POOL_LAST=198.19.255.250

REPO=$(cd "$(dirname "$0")/.." && pwd)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS_DIR=${RESULTS_DIR:-$REPO/bench/results/pxestorm-$STAMP}
[ "$(id -u)" = 0 ] || { echo "pxestorm.sh: needs root (network namespaces)" >&2; exit 1; }
export PATH=$PATH:/usr/sbin:/sbin
for tool in dnsmasq nginx ip ss go timeout pgrep; do
	command -v "$tool" >/dev/null || { echo "pxestorm.sh: missing $tool" >&2; exit 1; }
done

NS_SRV=bfpxe-srv-$$
NS_RLY=bfpxe-rly-$$
T=$(mktemp -d "${TMPDIR:-/tmp}/bench-pxestorm.XXXXXX")
chmod 755 "$T" # nginx workers may read as another user
mkdir -p "$RESULTS_DIR"
PIDS=()

log() { echo "[pxestorm.sh $(date +%T)] $*" >&2; }

stop_pids() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	PIDS=()
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_pids
	ip netns del "$NS_SRV" 2>/dev/null || true
	ip netns del "$NS_RLY" 2>/dev/null || true
	cp -a "$T"/*.log "$T"/*.out "$T"/*.yaml "$T"/*.conf "$RESULTS_DIR"/ 2>/dev/null || true
	if [ "$KEEP" = 1 ]; then log "kept $T"; else rm -rf "$T"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build ----------------------------------------------------------------

if [ -n "${BOOTFORGE_BIN:-}" ]; then
	log "building bench/pxestorm; bootforge is $BOOTFORGE_BIN"
	cp "$BOOTFORGE_BIN" "$T/bootforge"
	(cd "$REPO" && go build -o "$T/pxestorm" ./bench/pxestorm)
else
	log "building bootforge and bench/pxestorm"
	(cd "$REPO" && go build -o "$T/bootforge" ./cmd/bootforge && go build -o "$T/pxestorm" ./bench/pxestorm)
fi

# --- files ----------------------------------------------------------------

ROOT=$T/root
mkdir -p "$ROOT"
head -c $((1 << 20)) /dev/urandom >"$ROOT/loader.efi"
head -c $((8 << 20)) /dev/urandom >"$ROOT/vmlinuz"
head -c $((4 << 20)) /dev/urandom >"$ROOT/initrd.img"
chmod 644 "$ROOT"/*
chmod 755 "$ROOT"

# --- network --------------------------------------------------------------

ip netns add "$NS_SRV"
ip netns add "$NS_RLY"
ip -n "$NS_SRV" link set lo up
ip -n "$NS_RLY" link set lo up
ip -n "$NS_SRV" link add vsrv type veth peer name vrly netns "$NS_RLY"
ip -n "$NS_SRV" addr add "$SRV_IP/24" dev vsrv
ip -n "$NS_RLY" addr add "$RLY_IP/24" dev vrly
ip -n "$NS_RLY" addr add "$GIADDR/32" dev lo
ip -n "$NS_SRV" link set vsrv up
ip -n "$NS_RLY" link set vrly up
ip -n "$NS_SRV" route add "$POOL_NET" via "$RLY_IP"
in_srv() { ip netns exec "$NS_SRV" "$@"; }
in_rly() { ip netns exec "$NS_RLY" "$@"; }

# wait_up: until UDP 67, UDP 69 and TCP 8080 listen in the server namespace
# (and every PID started is alive).
wait_up() {
	local p ok
	for _ in $(seq 150); do
		for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null || return 1; done
		ok=1
		in_srv ss -Hlun 'sport = :67' | grep -q . || ok=0
		in_srv ss -Hlun 'sport = :69' | grep -q . || ok=0
		in_srv ss -Hltn 'sport = :8080' | grep -q . || ok=0
		[ "$ok" = 1 ] && return 0
		sleep 0.1
	done
	return 1
}

# srv_stats PID...: "peak_rss_kB cpu_s" of the given processes and their
# children (nginx workers), read while they run: VmHWM summed, user+sys CPU.
srv_stats() {
	local p c all=() kb=0 ticks=0 v
	for p in "$@"; do
		all+=("$p")
		for c in $(pgrep -P "$p" 2>/dev/null || true); do all+=("$c"); done
	done
	for p in "${all[@]}"; do
		v=$(awk '/^VmHWM:/ { print $2 }' "/proc/$p/status" 2>/dev/null || true)
		kb=$((kb + ${v:-0}))
		v=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || true)
		ticks=$((ticks + ${v:-0}))
	done
	awk -v kb="$kb" -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%d %.2f\n", kb, t / hz }'
}

storm() { # storm LABEL MACBASE OUT.json
	log "$1: $CLIENTS clients, DHCP_RATE=$DHCP_RATE $SYNC_FLAG"
	in_rly "${GEN[@]}" timeout --kill-after=5 $(( ${MAX_TIME%s} + 30 )) "$T/pxestorm" -server "$SRV_IP" -relay "$GIADDR" \
		-clients "$CLIENTS" -stage-timeout "$STAGE_TIMEOUT" -max-time "$MAX_TIME" -mac-base "$2" \
		-dhcp-rate "$DHCP_RATE" "$SYNC_FLAG" -label "$1" -trace "$3.trace" -json >"$3" 2>"$3.err" || true
	grep -q '"wall_s"' "$3" || { log "$1: pxestorm failed"; cat "$3.err" >&2; return 1; }
}

# --- (a) bootforge ---------------------------------------------------------

cat >"$T/bootforge.yaml" <<EOF
dhcp:
  mode: authoritative
  interfaces: [vsrv]
  rate_limit: 1000
  subnets:
    - subnet: $POOL_NET
      pools: ["$POOL_FIRST-$POOL_LAST"]
      router: $GIADDR
  loaders: # only the loader the clients (EFI x64) fetch; no warnings about absent ones
    bios: ""
    efi_x64: loader.efi
    efi_ia32: ""
    efi_arm64: ""
    efi_arm32: ""
    http_x64: ""
    http_arm64: ""
    secure_boot_x64: ""
tftp:
  max_per_client: 1000
  max_transfers: 2000
http:
  max_requests: 4096
  max_per_client: 1000 # every client shares one source address (default 32)
EOF

run_bf() { # run_bf N: one run on a fresh bootforge (new data dir)
	local out=$RESULTS_DIR/bootforge-$1.json
	rm -rf "$T/bf-data"
	mkdir -m 700 "$T/bf-data"
	ip netns exec "$NS_SRV" "$T/bootforge" --log-level warn serve --config "$T/bootforge.yaml" --root "$ROOT" \
		--data-dir "$T/bf-data" --tftp-addr "$SRV_IP:69" --http-addr "$SRV_IP:8080" --https-addr "$SRV_IP:8443" \
		--api-addr 127.0.0.1:18081 >>"$T/bootforge.log" 2>&1 &
	PIDS+=("$!")
	if wait_up; then
		storm bootforge 02:bf:50:00:00:00 "$out" && srv_stats "${PIDS[0]}" >"$out.srv" || BF_FAIL=$((BF_FAIL + 1))
	else
		log "bootforge did not come up"; BF_FAIL=$((BF_FAIL + 1))
	fi
	stop_pids
}

# --- (b) dnsmasq + nginx ---------------------------------------------------

mkdir -p "$T/nginx"
cat >"$T/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes auto;
user root root;
pid $T/nginx/nginx.pid;
error_log $T/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  default_type application/octet-stream;
  client_body_temp_path $T/nginx/body;
  proxy_temp_path $T/nginx/proxy;
  fastcgi_temp_path $T/nginx/fastcgi;
  uwsgi_temp_path $T/nginx/uwsgi;
  scgi_temp_path $T/nginx/scgi;
  server {
    listen $SRV_IP:8080;
    root $ROOT;
  }
}
EOF

run_ref() { # run_ref N: one run on a fresh dnsmasq (new lease file) and nginx
	local out=$RESULTS_DIR/ref-$1.json
	rm -f "$T/dnsmasq.leases"
	# dnsmasq needs the netmask for a range on no local subnet (relayed only).
	ip netns exec "$NS_SRV" dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 --no-ping \
		--interface=vsrv --bind-interfaces --user=root --group=root --pid-file= \
		--dhcp-authoritative --dhcp-range="$POOL_FIRST,$POOL_LAST,255.255.0.0,1h" \
		--dhcp-option=option:router,"$GIADDR" --dhcp-leasefile="$T/dnsmasq.leases" \
		--enable-tftp --tftp-root="$ROOT" --tftp-max=1000 \
		--log-facility="$T/dnsmasq.log" >>"$T/dnsmasq.out" 2>&1 &
	PIDS+=("$!")
	ip netns exec "$NS_SRV" nginx -p "$T/nginx" -e "$T/nginx-error.log" -c "$T/nginx.conf" >>"$T/nginx.out" 2>&1 &
	PIDS+=("$!")
	if wait_up; then
		if storm dnsmasq+nginx 02:bf:51:00:00:00 "$out"; then
			srv_stats "${PIDS[0]}" >"$out.srv.dnsmasq"
			srv_stats "${PIDS[1]}" >"$out.srv.nginx"
			# the table's figure is the sum; the parts stay in the results dir
			awk '{ kb += $1; cpu += $2 } END { printf "%d %.2f\n", kb, cpu }' "$out.srv.dnsmasq" "$out.srv.nginx" >"$out.srv"
		else
			REF_FAIL=$((REF_FAIL + 1))
		fi
	else
		log "dnsmasq or nginx did not come up"; tail -5 "$T/dnsmasq.out" "$T/nginx-error.log" >&2 || true
		REF_FAIL=$((REF_FAIL + 1))
	fi
	stop_pids
}

# --- runs: the sides take turns (a b, b a, a b, ...) -----------------------

BF_FAIL=0
REF_FAIL=0
for r in $(seq "$RUNS"); do
	log "run $r of $RUNS"
	if [ $((r % 2)) = 1 ]; then run_bf "$r"; run_ref "$r"; else run_ref "$r"; run_bf "$r"; fi
done

# --- report ---------------------------------------------------------------

BF_RUNS=()
REF_RUNS=()
for r in $(seq "$RUNS"); do
	[ -s "$RESULTS_DIR/bootforge-$r.json" ] && grep -q '"wall_s"' "$RESULTS_DIR/bootforge-$r.json" && BF_RUNS+=("$RESULTS_DIR/bootforge-$r.json")
	[ -s "$RESULTS_DIR/ref-$r.json" ] && grep -q '"wall_s"' "$RESULTS_DIR/ref-$r.json" && REF_RUNS+=("$RESULTS_DIR/ref-$r.json")
done
{
	echo "PXE storm, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r), bootforge ${BOOTFORGE_BIN:-$(cd "$REPO" && git describe --dirty --always 2>/dev/null)}, $(dnsmasq --version | head -1 | cut -d' ' -f1-3), $(nginx -v 2>&1 | cut -d' ' -f3)"
	echo "TFTP 1 MiB blksize 1468; HTTP 8 MiB + 4 MiB on one connection per client; DHCP relayed via $GIADDR; stage timeout $STAGE_TIMEOUT; the machines on CPUs ${GEN_CPUS:-any}, the servers on any"
	echo "peak RSS: bootforge VmHWM; dnsmasq VmHWM + nginx master and workers VmHWM, summed. Server CPU: the same processes, user+sys."
	[ "$BF_FAIL" = 0 ] && [ "$REF_FAIL" = 0 ] || echo "**FAILED runs (no result, not in the table): bootforge $BF_FAIL, dnsmasq+nginx $REF_FAIL**"
	echo
	if [ ${#BF_RUNS[@]} -gt 0 ] && [ ${#REF_RUNS[@]} -gt 0 ]; then
		"$T/pxestorm" -summary "${BF_RUNS[@]}" -vs "${REF_RUNS[@]}"
	fi
	if [ -s "$T/bootforge.log" ]; then
		echo
		echo "bootforge log (warn and above), last 20 lines:"
		tail -20 "$T/bootforge.log" | sed 's/^/    /'
	fi
} | tee "$RESULTS_DIR/table.md"
for f in "${BF_RUNS[@]}" "${REF_RUNS[@]}"; do
	"$T/pxestorm" -table "$f" >"${f%.json}.md"
done
log "table, per-run tables and JSON: $RESULTS_DIR"
[ "$BF_FAIL" = 0 ] && [ "$REF_FAIL" = 0 ]
