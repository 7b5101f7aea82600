#!/usr/bin/env bash
# PXE storm benchmark: CLIENTS (500) simulated machines power on at once and
# each does a relayed DHCP DORA, a TFTP download of a 1 MiB loader (blksize
# 1468) and HTTP downloads of an 8 MiB kernel and a 4 MiB initrd. Run against
#   (a) bootforge alone (DHCP + TFTP + HTTP), then
#   (b) dnsmasq (DHCP + TFTP) with nginx (HTTP, sendfile on).
# The generator is bench/pxestorm; see its package comment for the details.
#
#   sudo bench/pxestorm.sh          # from anywhere; about 1-3 minutes
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
# Environment: CLIENTS=500 STAGE_TIMEOUT=60s MAX_TIME=120s KEEP=1 (keep the
# temp dir with configs, logs and JSON results).
set -euo pipefail

CLIENTS=${CLIENTS:-500}
STAGE_TIMEOUT=${STAGE_TIMEOUT:-60s}
MAX_TIME=${MAX_TIME:-120s}
KEEP=${KEEP:-0}

SRV_IP=198.18.0.1
RLY_IP=198.18.0.2
GIADDR=198.19.0.1
POOL_NET=198.19.0.0/16
POOL_FIRST=198.19.0.10
POOL_LAST=198.19.255.250

REPO=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "pxestorm.sh: needs root (network namespaces)" >&2; exit 1; }
export PATH=$PATH:/usr/sbin:/sbin
for tool in dnsmasq nginx ip ss go timeout; do
	command -v "$tool" >/dev/null || { echo "pxestorm.sh: missing $tool" >&2; exit 1; }
done

NS_SRV=bfpxe-srv-$$
NS_RLY=bfpxe-rly-$$
T=$(mktemp -d "${TMPDIR:-/tmp}/bench-pxestorm.XXXXXX")
chmod 755 "$T" # nginx workers may read as another user
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
	if [ "$KEEP" = 1 ]; then log "kept $T"; else rm -rf "$T"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build ----------------------------------------------------------------

log "building bootforge and bench/pxestorm"
(cd "$REPO" && go build -o "$T/bootforge" ./cmd/bootforge && go build -o "$T/pxestorm" ./bench/pxestorm)

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
	local i p ok
	for i in $(seq 150); do
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

storm() { # storm LABEL MACBASE OUT.json
	log "$1: $CLIENTS clients"
	in_rly timeout --kill-after=5 $(( ${MAX_TIME%s} + 30 )) "$T/pxestorm" -server "$SRV_IP" -relay "$GIADDR" \
		-clients "$CLIENTS" -stage-timeout "$STAGE_TIMEOUT" -max-time "$MAX_TIME" -mac-base "$2" \
		-label "$1" -json >"$3" 2>"$3.err" || true
	grep -q '"wall_s"' "$3" || { log "$1: pxestorm failed"; cat "$3.err" >&2; return 1; }
}

# --- (a) bootforge ---------------------------------------------------------

mkdir -p "$T/bf-data"
cat >"$T/bootforge.yaml" <<EOF
dhcp:
  mode: authoritative
  interfaces: [vsrv]
  rate_limit: 1000
  subnets:
    - subnet: $POOL_NET
      pools: ["$POOL_FIRST-$POOL_LAST"]
      router: $GIADDR
tftp:
  max_per_client: 1000
  max_transfers: 2000
http:
  max_requests: 4096
EOF
ip netns exec "$NS_SRV" "$T/bootforge" --log-level warn serve --config "$T/bootforge.yaml" --root "$ROOT" \
	--data-dir "$T/bf-data" --tftp-addr "$SRV_IP:69" --http-addr "$SRV_IP:8080" --https-addr "$SRV_IP:8443" \
	--api-addr 127.0.0.1:18081 >"$T/bootforge.log" 2>&1 &
PIDS+=("$!")
BF_OK=1
if wait_up; then
	storm bootforge 02:bf:50:00:00:00 "$T/bootforge.json" || BF_OK=0
else
	log "bootforge did not come up"; BF_OK=0
fi
BF_CPU=$(awk '{ printf "%.1f", ($14 + $15) / '"$(getconf CLK_TCK)"' }' "/proc/${PIDS[0]}/stat" 2>/dev/null || echo -)
stop_pids

# --- (b) dnsmasq + nginx ---------------------------------------------------

# dnsmasq needs the netmask for a range on no local subnet (relayed only).
ip netns exec "$NS_SRV" dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 --no-ping \
	--interface=vsrv --bind-interfaces --user=root --group=root --pid-file= \
	--dhcp-authoritative --dhcp-range="$POOL_FIRST,$POOL_LAST,255.255.0.0,1h" \
	--dhcp-option=option:router,"$GIADDR" --dhcp-leasefile="$T/dnsmasq.leases" \
	--enable-tftp --tftp-root="$ROOT" --tftp-max=1000 \
	--log-facility="$T/dnsmasq.log" >"$T/dnsmasq.out" 2>&1 &
PIDS+=("$!")
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
ip netns exec "$NS_SRV" nginx -p "$T/nginx" -e "$T/nginx-error.log" -c "$T/nginx.conf" >"$T/nginx.out" 2>&1 &
PIDS+=("$!")
REF_OK=1
if wait_up; then
	storm dnsmasq+nginx 02:bf:51:00:00:00 "$T/ref.json" || REF_OK=0
else
	log "dnsmasq or nginx did not come up"; tail -5 "$T/dnsmasq.out" "$T/nginx-error.log" >&2 || true; REF_OK=0
fi
DM_CPU=$(awk '{ printf "%.1f", ($14 + $15) / '"$(getconf CLK_TCK)"' }' "/proc/${PIDS[0]}/stat" 2>/dev/null || echo -)
stop_pids

# --- report ---------------------------------------------------------------

echo
echo "PXE storm, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r), bootforge $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null), $(dnsmasq --version | head -1 | cut -d' ' -f1-3), $(nginx -v 2>&1 | cut -d' ' -f3)"
echo "$CLIENTS clients at once; DHCP relayed via $GIADDR; TFTP 1 MiB blksize 1468; HTTP 8 MiB + 4 MiB on one connection per client; stage timeout $STAGE_TIMEOUT"
echo "server process CPU (user+sys s): bootforge $BF_CPU, dnsmasq $DM_CPU (nginx workers not counted)"
echo
[ "$BF_OK" = 1 ] && "$T/pxestorm" -table "$T/bootforge.json" && echo
[ "$REF_OK" = 1 ] && "$T/pxestorm" -table "$T/ref.json" && echo
if [ "$BF_OK" = 1 ] && [ "$REF_OK" = 1 ]; then
	echo "Ratio bootforge / (dnsmasq+nginx), below 1 means bootforge is faster:"
	echo
	"$T/pxestorm" -compare "$T/bootforge.json" "$T/ref.json"
fi
if [ -s "$T/bootforge.log" ]; then
	echo
	echo "bootforge log (warn and above), last 20 lines:"
	tail -20 "$T/bootforge.log" | sed 's/^/    /'
fi
[ "$BF_OK" = 1 ] && [ "$REF_OK" = 1 ]
