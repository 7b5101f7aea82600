#!/usr/bin/env bash
# DHCP server benchmark: Kea 2.2, dnsmasq and bootforge (if its DHCP server
# is in the build), each driven by bench/dhcpload acting as a relay agent.
# bootforge runs in three modes: "bootforge" (its embedded SQLite store),
# "bootforge-pg" (one server on PostgreSQL) and "bootforge-pg2" (two servers
# sharing one PostgreSQL database, each driven by its own generator with
# half the clients; the row adds their leases per second).
#
#   sudo bench/dhcp.sh            # from the repository root (or anywhere)
#
# Layout (two network namespaces joined by a veth pair, nothing on the host):
#
#   [srv ns] vsrv 198.18.0.1/24 ---- vrly 198.18.0.2/24 [rly ns]
#            route 198.19.0.0/16 via 198.18.0.2           198.19.0.1/16 (giaddr)
#
# The generator binds 198.19.0.1:67 and sends relayed DISCOVER/REQUEST with
# giaddr 198.19.0.1 unicast to 198.18.0.1:67. The pool is in 198.19.0.0/16,
# the subnet giaddr is in, so every server selects it by giaddr the standard
# way (Kea also gets "relay": {"ip-addresses": [giaddr]}). Servers answer to
# giaddr:67 through the route.
#
# Every server is started fresh (empty lease database in a new temp dir) for
# every run. Each inflight level is run RUNS times, the servers taking turns
# (SERVERS in order, then reversed, ...); the summary gives the median and
# the min-max of the runs, and ratios of medians. Environment knobs:
#   CLIENTS=20000 INFLIGHTS="16 64" RUNS=5 TIMEOUT=2s MAX_TIME=480s
#   SERVERS="kea kea-info bootforge bootforge-pg bootforge-pg2"
#            kea: Kea at log severity KEA_SEVERITY (default WARN, its fastest
#            honest setting); kea-info: Kea at INFO, its default; dnsmasq is
#            left out unless named: it takes 200 to 330 s per run
#   MAC_ORDER=scatter|seq
#   KEEP=1   keep the temp dir (configs, logs, lease files, JSON results,
#            each run's per-client times: trace.txt)
#   BOOTFORGE_BIN=path   measure this binary instead of building ./cmd/bootforge
#   TMPDIR=/tmp   where the temp dir (and so every lease database) goes
#   BF_STORE_SYNC=full|normal   bootforge's store_sync: full fsyncs each
#                 group commit (survives power loss), normal survives a crash
#                 of the process only, like Kea's memfile and dnsmasq
#   BF_AUDIT=true|false   bootforge's boot log (audit.enabled; on by default)
#   HTTP_LOAD=CONNS   while each bootforge run leases, wrk fetches an 8 KiB
#                 file over HTTP from the relay's namespace on CONNS
#                 connections (one thread): a file server's boot-log events
#                 share the store's writer with the leases. The leases/s
#                 fall (wrk takes CPU); the ACK p99 says whether a lease
#                 waits behind the boot log. 0 (default): no HTTP load
#   GENERATOR=dhcpload|perfdhcp   perfdhcp: ISC's own generator (Kea's
#                 kea-admin package) instead of dhcpload. It offers DORAs at
#                 fixed rates, RATES="3000 6000 9000 12000" a second, each for
#                 PERIOD=5 seconds, single-threaded (-g single), with PXE
#                 options 93 (BIOS) and 60 (PXEClient), and reports what was
#                 answered and how late; no percentiles, no lease checks.
#                 bootforge-pg2 is not run this way
#   GEN_CPUS=LIST   the CPUs (a taskset list) the generators and HTTP_LOAD's
#                 wrk run on; default the last CPU (none on a 1-CPU host),
#                 "" leaves them to the scheduler. Every server is faster
#                 with the generator off its core, Kea (single-threaded) by
#                 1.7x on this 2-core host (dhcp.md, "Layout"). The servers
#                 are never pinned
#   PG_ADMIN=postgres:///bootforge_test?host=/var/run/postgresql   where the
#                 PostgreSQL modes create (and drop) a database per run; the
#                 server is Debian's cluster that scripts/deps.sh starts
#
#   [srv2 ns] vsrv2 198.18.1.1/24 ---- vrly2 198.18.1.2/24 [rly ns]   (bootforge-pg2 only)
#             route 198.19.0.0/16 via 198.18.1.2            198.19.0.2/16 (second giaddr)
set -euo pipefail
# bootforge warns of BOOTFORGE_* variables it does not know: this one is
# the script's own, not the server's.
export -n BOOTFORGE_BIN

CLIENTS=${CLIENTS:-20000}
INFLIGHTS=${INFLIGHTS:-"16 64"}
RUNS=${RUNS:-5}
TIMEOUT=${TIMEOUT:-2s}
MAX_TIME=${MAX_TIME:-480s}          # per generator run (dhcpload -max-time); dnsmasq needs ~300 s
SERVERS=${SERVERS:-"kea kea-info bootforge bootforge-pg bootforge-pg2"}
PG_ADMIN=${PG_ADMIN:-"postgres:///bootforge_test?host=/var/run/postgresql"}
MAC_ORDER=${MAC_ORDER:-scatter}     # dhcpload -mac-order: scatter (mixed fleet) or seq
KEEP=${KEEP:-0}
HTTP_LOAD=${HTTP_LOAD:-0}
BF_STORE_SYNC=${BF_STORE_SYNC:-full}
BF_AUDIT=${BF_AUDIT:-true}
GENERATOR=${GENERATOR:-dhcpload}
RATES=${RATES:-"3000 6000 9000 12000"}
PERIOD=${PERIOD:-5}
if [ -z "${GEN_CPUS+set}" ]; then
	GEN_CPUS=
	(($(nproc) < 2)) || GEN_CPUS=$(($(nproc) - 1))
fi
[[ $BF_STORE_SYNC == full || $BF_STORE_SYNC == normal ]] || { echo "dhcp.sh: BF_STORE_SYNC is full or normal, not '$BF_STORE_SYNC'" >&2; exit 2; }
[[ $BF_AUDIT == true || $BF_AUDIT == false ]] || { echo "dhcp.sh: BF_AUDIT is true or false, not '$BF_AUDIT'" >&2; exit 2; }
case $GENERATOR in
dhcpload) ;;
perfdhcp)
	[[ $PERIOD =~ ^[1-9][0-9]*$ ]] || { echo "dhcp.sh: PERIOD is whole seconds, not '$PERIOD'" >&2; exit 2; }
	for r in $RATES; do [[ $r =~ ^[1-9][0-9]*$ ]] || { echo "dhcp.sh: RATES are DORAs a second, not '$r'" >&2; exit 2; }; done
	[[ " $SERVERS " != *" bootforge-pg2 "* ]] || { echo "dhcp.sh: GENERATOR=perfdhcp runs one generator: leave bootforge-pg2 out of SERVERS" >&2; exit 2; }
	INFLIGHTS=$RATES # the levels the runs go through
	;;
*) echo "dhcp.sh: GENERATOR is dhcpload or perfdhcp, not '$GENERATOR'" >&2; exit 2 ;;
esac

SRV_IP=198.18.0.1
RLY_IP=198.18.0.2
GIADDR=198.19.0.1
SRV2_IP=198.18.1.1
RLY2_IP=198.18.1.2
GIADDR2=198.19.0.2
POOL_NET=198.19.0.0/16
POOL_FIRST=198.19.0.10
POOL_LAST=198.19.255.250
ip4num() { local IFS=.; set -- $1; echo $((($1 << 24) + ($2 << 16) + ($3 << 8) + $4)); }
POOL_SIZE=$(($(ip4num $POOL_LAST) - $(ip4num $POOL_FIRST) + 1))
# Each client takes an address for good (its lease outlives the run), so a
# run with more clients than the pool ends in one 2 s timeout per client
# beyond it: tens of minutes of nothing measured.
[[ $CLIENTS =~ ^[0-9]+$ ]] && ((CLIENTS >= 1 && CLIENTS <= POOL_SIZE)) ||
	{ echo "dhcp.sh: CLIENTS is 1 to $POOL_SIZE (the pool's addresses), not '$CLIENTS'" >&2; exit 2; }

REPO=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "dhcp.sh: needs root (network namespaces)" >&2; exit 1; }

NS_SRV=bfdhcp-srv-$$
NS_RLY=bfdhcp-rly-$$
NS_SRV2=bfdhcp-srv2-$$
T=$(mktemp -d "${TMPDIR:-/tmp}/bench-dhcp.XXXXXX") # lease files live here: disk vs tmpfs matters
DAEMON_PID=
DAEMON2_PID= # the second bootforge of bootforge-pg2
WRK_PID=     # HTTP_LOAD's wrk
PG_DB=       # the PostgreSQL database of the current run
POLICY_RC_CREATED=0

log() { echo "[dhcp.sh $(date +%T)] $*" >&2; }

stop_daemon() {
	local pid2=${DAEMON2_PID:-}
	DAEMON2_PID=
	[ -n "$pid2" ] && DAEMON_PID=$pid2 stop_daemon
	local pid=${DAEMON_PID:-}
	DAEMON_PID=
	[ -n "$pid" ] || return 0
	# peak resident memory of the server process (ip netns exec has exec'd it)
	LAST_RSS_MIB=$(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status" 2>/dev/null || true)
	# and its CPU seconds, user and system, since it started (fields 14
	# and 15 of stat, in clock ticks; no server's name has a space)
	LAST_CPU_S=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$pid/stat" 2>/dev/null || true)
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

stop_wrk() {
	[ -n "$WRK_PID" ] || return 0
	kill "$WRK_PID" 2>/dev/null || true
	wait "$WRK_PID" 2>/dev/null || true
	WRK_PID=
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_wrk
	stop_daemon
	drop_pg
	ip netns del "$NS_SRV" 2>/dev/null || true
	ip netns del "$NS_SRV2" 2>/dev/null || true
	ip netns del "$NS_RLY" 2>/dev/null || true
	[ "$POLICY_RC_CREATED" = 1 ] && rm -f /usr/sbin/policy-rc.d
	if [ "$KEEP" = 1 ]; then log "kept $T"; else rm -rf "$T"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- packages -------------------------------------------------------------

apt_retry() {
	local i
	for i in 1 2 3 4 5; do
		if "$@"; then return 0; fi
		log "attempt $i failed: $*; retrying"
		sleep $((i * 5))
	done
	return 1
}

# A package's own service: stop it if it is running (never touches a kea or
# dnsmasq someone started by hand; only the ones the packages' pid files name).
stop_package_services() {
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
		for s in kea-dhcp4-server dnsmasq; do
			if systemctl is-active --quiet "$s" 2>/dev/null; then
				log "stopping package service $s"
				systemctl stop "$s" || true
			fi
		done
	fi
	local f pid
	for f in /run/kea-dhcp4-server.pid /run/kea-dhcp4.kea-dhcp4.pid /run/kea/kea-dhcp4.kea-dhcp4.pid \
		/run/dnsmasq/dnsmasq.pid; do
		[ -r "$f" ] || continue
		pid=$(tr -dc 0-9 <"$f")
		[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || continue
		case $(cat "/proc/$pid/comm" 2>/dev/null) in
		kea-dhcp4 | dnsmasq)
			log "stopping package daemon $(cat /proc/$pid/comm) (pid $pid, $f)"
			case $f in
			*dnsmasq*) service dnsmasq stop >/dev/null 2>&1 || kill "$pid" ;;
			*) service kea-dhcp4-server stop >/dev/null 2>&1 || kill "$pid" ;;
			esac
			;;
		esac
	done
}

ensure_packages() {
	local missing=()
	command -v kea-dhcp4 >/dev/null || [ -x /usr/sbin/kea-dhcp4 ] || missing+=(kea-dhcp4-server)
	command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || missing+=(dnsmasq)
	[ "$HTTP_LOAD" = 0 ] || command -v wrk >/dev/null || missing+=(wrk)
	[ "$GENERATOR" != perfdhcp ] || command -v perfdhcp >/dev/null || [ -x /usr/sbin/perfdhcp ] || missing+=(kea-admin)
	if [ ${#missing[@]} -gt 0 ]; then
		log "installing ${missing[*]}"
		if [ ! -e /usr/sbin/policy-rc.d ]; then # keep the packages from starting their services
			printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
			chmod +x /usr/sbin/policy-rc.d
			POLICY_RC_CREATED=1
		fi
		export DEBIAN_FRONTEND=noninteractive
		apt_retry timeout 300 apt-get update
		apt_retry timeout 600 apt-get install -y --no-install-recommends "${missing[@]}"
		if [ "$POLICY_RC_CREATED" = 1 ]; then rm -f /usr/sbin/policy-rc.d; POLICY_RC_CREATED=0; fi
	fi
	stop_package_services
}

[[ $MAX_TIME =~ ^[0-9]+[smh]?$ ]] || { echo "dhcp.sh: MAX_TIME like 480s or 8m" >&2; exit 2; }
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "dhcp.sh: RUNS must be a positive integer" >&2; exit 2; }
ensure_packages
export PATH=$PATH:/usr/sbin:/sbin

# --- build ----------------------------------------------------------------

log "building bench/dhcpload"
(cd "$REPO" && go build -o "$T/dhcpload" ./bench/dhcpload)
BOOTFORGE_BUILT=0
if [ -n "${BOOTFORGE_BIN:-}" ]; then
	cp "$BOOTFORGE_BIN" "$T/bootforge"
	BOOTFORGE_BUILT=1
elif (cd "$REPO" && timeout 300 go build -o "$T/bootforge" ./cmd/bootforge) >"$T/bootforge-build.log" 2>&1; then
	BOOTFORGE_BUILT=1
else
	log "bootforge does not build (see below); its rows will say so"
	tail -5 "$T/bootforge-build.log" >&2 || true
fi

# --- network --------------------------------------------------------------

ip netns add "$NS_SRV"
ip netns add "$NS_RLY"
ip -n "$NS_SRV" link set lo up
ip -n "$NS_RLY" link set lo up
ip -n "$NS_SRV" link add vsrv type veth peer name vrly netns "$NS_RLY"
ip -n "$NS_SRV" addr add "$SRV_IP/24" dev vsrv
ip -n "$NS_RLY" addr add "$RLY_IP/24" dev vrly
ip -n "$NS_RLY" addr add "$GIADDR/16" dev vrly
ip -n "$NS_SRV" link set vsrv up
ip -n "$NS_RLY" link set vrly up
ip -n "$NS_SRV" route add "$POOL_NET" via "$RLY_IP"
ip netns add "$NS_SRV2"
ip -n "$NS_SRV2" link set lo up
ip -n "$NS_SRV2" link add vsrv2 type veth peer name vrly2 netns "$NS_RLY"
ip -n "$NS_SRV2" addr add "$SRV2_IP/24" dev vsrv2
ip -n "$NS_RLY" addr add "$RLY2_IP/24" dev vrly2
ip -n "$NS_RLY" addr add "$GIADDR2/16" dev vrly2
ip -n "$NS_SRV2" link set vsrv2 up
ip -n "$NS_RLY" link set vrly2 up
ip -n "$NS_SRV2" route add "$POOL_NET" via "$RLY2_IP"
# Daemons are started as "ip netns exec ... &" (ip execs the daemon, so $! is
# the daemon's pid); short commands go through these helpers.
in_srv() { ip netns exec "$NS_SRV" "$@"; }
in_rly() { ip netns exec "$NS_RLY" "$@"; }
# GEN: the generator's command prefix, its CPUs (GEN_CPUS).
GEN=()
[ -z "$GEN_CPUS" ] || GEN=(taskset -c "$GEN_CPUS")

# wait_port67: until something listens on UDP 67 in the server namespace.
wait_port67() {
	local i
	for i in $(seq 100); do
		if in_srv ss -Hlun 'sport = :67' 2>/dev/null | grep -q .; then return 0; fi
		[ -n "$DAEMON_PID" ] && ! kill -0 "$DAEMON_PID" 2>/dev/null && return 1
		sleep 0.1
	done
	return 1
}

# --- servers --------------------------------------------------------------
# start_<server> DIR: start it fresh with its state in DIR, set DAEMON_PID,
# return non-zero if it did not come up.

start_kea() { kea_start "$1" "${KEA_SEVERITY:-WARN}"; }
start_kea-info() { kea_start "$1" INFO; }

# kea_start DIR SEVERITY: Kea with its main logger at SEVERITY.
kea_start() {
	local d=$1 severity=$2
	cat >"$d/kea.json" <<EOF
{
  "Dhcp4": {
    "interfaces-config": { "interfaces": [ "vsrv" ], "dhcp-socket-type": "udp" },
    "lease-database": { "type": "memfile", "persist": true, "name": "$d/kea-leases4.csv", "lfc-interval": 0 },
    "valid-lifetime": 3600,
    "renew-timer": 1800,
    "rebind-timer": 3150,
    "next-server": "$SRV_IP",
    "client-classes": [
      { "name": "efi-x64", "test": "option[93].hex == 0x0007", "boot-file-name": "snponly.efi" },
      { "name": "bios", "test": "option[93].hex == 0x0000", "boot-file-name": "undionly.kpxe" }
    ],
    "subnet4": [ {
      "id": 1,
      "subnet": "$POOL_NET",
      "pools": [ { "pool": "$POOL_FIRST - $POOL_LAST" } ],
      "relay": { "ip-addresses": [ "$GIADDR" ] },
      "option-data": [ { "name": "routers", "data": "$GIADDR" } ]
    } ],
    "loggers": [
      { "name": "kea-dhcp4", "severity": "$severity", "output_options": [ { "output": "$d/kea.log" } ] },
      { "name": "kea-dhcp4.options", "severity": "WARN", "output_options": [ { "output": "$d/kea-options.log" } ] }
    ]
  }
}
EOF
	KEA_PIDFILE_DIR=$d KEA_LOCKFILE_DIR=$d ip netns exec "$NS_SRV" kea-dhcp4 -c "$d/kea.json" >"$d/kea.out" 2>&1 &
	DAEMON_PID=$!
	wait_port67
}

start_dnsmasq() {
	local d=$1
	# --keep-in-foreground, not --no-daemon: that one also copies every log
	# line to stderr.
	ip netns exec "$NS_SRV" dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 --no-ping \
		--interface=vsrv --bind-interfaces --user=root --group=root --pid-file= \
		--dhcp-authoritative \
		--dhcp-range="$POOL_FIRST,$POOL_LAST,255.255.0.0,1h" \
		--dhcp-option=option:router,"$GIADDR" \
		--dhcp-lease-max=200000 --dhcp-leasefile="$d/dnsmasq.leases" \
		--dhcp-match=set:efi64,option:client-arch,7 \
		--dhcp-boot=tag:efi64,snponly.efi,,"$SRV_IP" --dhcp-boot=tag:!efi64,undionly.kpxe,,"$SRV_IP" \
		--log-facility="$d/dnsmasq.log" >"$d/dnsmasq.out" 2>&1 &
	DAEMON_PID=$!
	wait_port67
}

# PostgreSQL modes: a fresh database per run, migrated by bootforge itself.
new_pg() {
	drop_pg
	PG_DB=bfbench_$$_$1
	psql -qX "$PG_ADMIN" -c "CREATE DATABASE $PG_DB" >/dev/null || { PG_DB=; return 1; }
	"$T/bootforge" store migrate "$(pg_url)" >/dev/null
}
pg_url() {
	local base=${PG_ADMIN%%\?*} query=
	[[ $PG_ADMIN == *\?* ]] && query="?${PG_ADMIN#*\?}"
	echo "${base%/*}/$PG_DB$query"
}
drop_pg() {
	[ -n "${PG_DB:-}" ] || return 0
	psql -qX "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
	PG_DB=
}

start_bootforge() { bf_start "$1" ""; }
start_bootforge-pg() { [ "$BOOTFORGE_BUILT" = 1 ] && new_pg "$run_idx" && bf_start "$1" "$(pg_url)"; }
start_bootforge-pg2() {
	[ "$BOOTFORGE_BUILT" = 1 ] && new_pg "$run_idx" && bf_start "$1" "$(pg_url)" || return $?
	# The second server, in its own namespace, on the same database.
	local d2=$1/second
	mkdir -p "$d2/root" "$d2/data"
	cp "$1"/root/* "$d2/root/"
	sed 's/\[vsrv\]/[vsrv2]/' "$1/bootforge.yaml" >"$d2/bootforge.yaml"
	ip netns exec "$NS_SRV2" "$T/bootforge" serve --config "$d2/bootforge.yaml" --root "$d2/root" --data-dir "$d2/data" \
		--tftp-addr "$SRV2_IP:69" --http-addr "$SRV2_IP:8080" --https-addr "$SRV2_IP:8443" --api-addr "$SRV2_IP:9090" \
		>"$d2/bootforge.out" 2>&1 &
	DAEMON2_PID=$!
	local i
	for i in $(seq 100); do
		ip netns exec "$NS_SRV2" ss -Hlun 'sport = :67' 2>/dev/null | grep -q . && return 0
		sleep 0.1
	done
	return 1
}

# bf_start DIR STORE_URL: bootforge on its SQLite store (URL empty) or on
# PostgreSQL.
bf_start() {
	local d=$1 url=$2
	[ "$BOOTFORGE_BUILT" = 1 ] || return 1
	mkdir -p "$d/root" "$d/data"
	: >"$d/root/undionly.kpxe"
	: >"$d/root/snponly.efi"
	head -c 8192 /dev/urandom >"$d/root/small.bin" # HTTP_LOAD's file
	printf '#!ipxe\nexit\n' >"$d/root/boot.ipxe"
	cat >"$d/bootforge.yaml" <<EOF
store_sync: $BF_STORE_SYNC
audit:
  enabled: $BF_AUDIT
store:
  url: "$url"
dhcp:
  mode: authoritative
  interfaces: [vsrv]
  rate_limit: 1000
  subnets:
    - subnet: $POOL_NET
      pools: ["$POOL_FIRST-$POOL_LAST"]
      router: $GIADDR
EOF
	ip netns exec "$NS_SRV" "$T/bootforge" serve --config "$d/bootforge.yaml" --root "$d/root" --data-dir "$d/data" \
		--tftp-addr "$SRV_IP:69" --http-addr "$SRV_IP:8080" --https-addr "$SRV_IP:8443" \
		>"$d/bootforge.out" 2>&1 &
	DAEMON_PID=$!
	wait_port67 || return 1
	# It listens; does it lease? A few clients with a short timeout tell.
	in_rly timeout 20 "$T/dhcpload" -server "$SRV_IP" -relay "$GIADDR" -clients 4 -inflight 1 \
		-timeout 1s -mac-base 02:bf:ff:00:00:00 -json >"$d/probe.json" 2>/dev/null || return 2
	# It does: start again on an empty lease database.
	stop_daemon
	mv "$d/bootforge.out" "$d/bootforge-probe.out"
	rm -rf "$d/data"
	mkdir -p "$d/data"
	if [ -n "$url" ]; then
		psql -qX "$url" -c "DELETE FROM leases; DELETE FROM events" >/dev/null
	fi
	ip netns exec "$NS_SRV" "$T/bootforge" serve --config "$d/bootforge.yaml" --root "$d/root" --data-dir "$d/data" \
		--tftp-addr "$SRV_IP:69" --http-addr "$SRV_IP:8080" --https-addr "$SRV_IP:8443" \
		>"$d/bootforge.out" 2>&1 &
	DAEMON_PID=$!
	wait_port67
}

# Lease file check: how many lease records and distinct addresses the server
# wrote (Kea: one CSV line per lease write; dnsmasq: one line per lease).
lease_check() {
	local srv=$1 d=$2
	case $srv in
	kea | kea-info)
		[ -r "$d/kea-leases4.csv" ] || { echo "- -"; return; }
		echo "$(tail -n +2 "$d/kea-leases4.csv" | grep -c .) $(tail -n +2 "$d/kea-leases4.csv" | cut -d, -f1 | sort -u | grep -c .)"
		;;
	dnsmasq)
		[ -r "$d/dnsmasq.leases" ] || { echo "- -"; return; }
		echo "$(grep -c . "$d/dnsmasq.leases") $(awk '{print $3}' "$d/dnsmasq.leases" | sort -u | grep -c .)"
		;;
	bootforge-pg | bootforge-pg2)
		psql -qXtA -F ' ' "$(pg_url)" -c "select count(*), count(distinct ip) from leases where state = 'bound'" 2>/dev/null || echo "- -"
		;;
	bootforge)
		local db=$d/data/bootforge.db
		if [ -r "$db" ] && command -v sqlite3 >/dev/null; then
			sqlite3 -separator ' ' "$db" "select count(*), count(distinct ip) from leases where state = 'bound';" 2>/dev/null || echo "- -"
		else
			echo "- -"
		fi
		;;
	esac
}

# seconds 480s|8m|1h|90: a Go duration of that simple form, in whole seconds.
seconds() {
	case $1 in
	*h) echo $((${1%h} * 3600)) ;;
	*m) echo $((${1%m} * 60)) ;;
	*s) echo "${1%s}" ;;
	*) echo "$1" ;;
	esac
}

jget() { sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p" "$2" | tr -d '"'; }

# --- runs -----------------------------------------------------------------

# run_one SERVER INFLIGHT RUN: start SERVER fresh, drive CLIENTS clients
# through it, stop it, and note its rows.
run_one() {
	local srv=$1 inflight=$2 run=$3 d rc macbase gen2 r lps recs addrs
	run_idx=$((run_idx + 1))
	d="$T/$srv-$inflight-$run"
	mkdir -p "$d"
	log "$srv, $([ "$GENERATOR" = perfdhcp ] && echo offered || echo inflight) $inflight, run $run of $RUNS: starting the server fresh"
	rc=0
	"start_$srv" "$d" || rc=$?
	if [ "$rc" != 0 ]; then
		stop_daemon
		if [ "$srv" = bootforge ] && [ "$rc" = 2 ]; then
			echo "bootforge: DHCP listens on port 67 but leased nothing to a 4-client probe" >&2
			tail -5 "$d/bootforge.out" >&2 || true
			ROWS+=("| bootforge | $inflight | $run | DHCP listens but the probe got no lease | | | | | | | | |")
		elif [ "$srv" = bootforge ]; then
			echo "bootforge: DHCP not available in this build" >&2
			ROWS+=("| bootforge | $inflight | $run | bootforge: DHCP not available in this build | | | | | | | | |")
		else
			log "$srv did not start; see $d"
			tail -5 "$d"/*.out >&2 || true
			ROWS+=("| $srv | $inflight | $run | did not start | | | | | | | | |")
		fi
		return
	fi
	if [ "$GENERATOR" = perfdhcp ]; then
		perf_run "$srv" "$inflight" "$d"
		return
	fi
	macbase=$(printf '02:bf:%02x:00:00:00' $((run_idx % 256)))
	log "$srv, inflight $inflight: $CLIENTS clients (mac base $macbase)"
	if [ "$HTTP_LOAD" != 0 ] && [[ $srv == bootforge* ]]; then
		# not through in_rly, whose subshell would be the PID: ip netns
		# exec execs wrk, so WRK_PID is wrk's
		ip netns exec "$NS_RLY" "${GEN[@]}" wrk -t1 -c"$HTTP_LOAD" -d"$(seconds "$MAX_TIME")s" "http://$SRV_IP:8080/small.bin" >"$d/wrk.out" 2>&1 &
		WRK_PID=$!
		sleep 1 # under load before the first lease
	fi
	# dhcpload stops itself after -max-time; the outer timeout is a backstop.
	if [ "$srv" = bootforge-pg2 ]; then
		# Half the clients to each server, at the same time; the row
		# is the first generator's, with the two rates added.
		in_rly "${GEN[@]}" timeout --kill-after=5 "$(($(seconds "$MAX_TIME") + 60))" "$T/dhcpload" \
			-server "$SRV2_IP" -relay "$GIADDR2" -clients "$((CLIENTS / 2))" -inflight "$inflight" \
			-timeout "$TIMEOUT" -max-time "$MAX_TIME" -mac-base "$(printf '02:c0:%02x:00:00:00' $((run_idx % 256)))" -mac-order "$MAC_ORDER" \
			-label "$srv second inflight=$inflight" -json >"$d/result2.json" 2>"$d/dhcpload2.err" &
		gen2=$!
		in_rly "${GEN[@]}" timeout --kill-after=5 "$(($(seconds "$MAX_TIME") + 60))" "$T/dhcpload" \
			-server "$SRV_IP" -relay "$GIADDR" -clients "$((CLIENTS - CLIENTS / 2))" -inflight "$inflight" \
			-timeout "$TIMEOUT" -max-time "$MAX_TIME" -mac-base "$macbase" -mac-order "$MAC_ORDER" \
			-label "$srv inflight=$inflight" -json >"$d/result.json" 2>"$d/dhcpload.err" || true
		wait "$gen2" || true
	else
		in_rly "${GEN[@]}" timeout --kill-after=5 "$(($(seconds "$MAX_TIME") + 60))" "$T/dhcpload" \
			-server "$SRV_IP" -relay "$GIADDR" -clients "$CLIENTS" -inflight "$inflight" \
			-timeout "$TIMEOUT" -max-time "$MAX_TIME" -mac-base "$macbase" -mac-order "$MAC_ORDER" \
			-trace "$d/trace.txt" -label "$srv inflight=$inflight" -json >"$d/result.json" 2>"$d/dhcpload.err" || true
	fi
	stop_wrk
	sleep 0.5 # let the server finish writing its last leases
	LAST_RSS_MIB= LAST_CPU_S=
	stop_daemon
	RSS+=("$srv|$inflight|${LAST_RSS_MIB:-}")
	if ! grep -q leases_per_sec "$d/result.json"; then
		ROWS+=("| $srv | $inflight | $run | generator failed | | | | | | | | |")
		cat "$d/dhcpload.err" >&2 || true
		return
	fi
	r=$d/result.json
	lps=$(jget leases_per_sec "$r")
	if [ "$srv" = bootforge-pg2 ] && grep -q leases_per_sec "$d/result2.json" 2>/dev/null; then
		lps=$(awk -v a="$lps" -v b="$(jget leases_per_sec "$d/result2.json")" 'BEGIN { print a + b }')
		log "$srv: the two generators: $(jget leases_per_sec "$r") + $(jget leases_per_sec "$d/result2.json") leases/s, $(jget completed "$r") + $(jget completed "$d/result2.json") ACKs"
	fi
	LPS[$srv-$inflight-$run]=$lps
	ROWS+=("$srv|$inflight|$run|$r")
	read -r recs addrs < <(lease_check "$srv" "$d")
	drop_pg
	CHECKS+=("| $srv | $inflight | $run | $(jget completed "$r") | $(jget distinct_ips "$r") | $recs | $addrs | $(jget mismatches "$r") | $(jget no_opt82_echo "$r") | $(jget with_bootfile "$r") | $(jget stray "$r") | $(jget aborted "$r") | $(printf '%.2f' "$(jget cpu_s "$r")") | ${LAST_CPU_S:-?} | $(jget load_start "$r") / $(jget load_end "$r") |")
	# server CPU per ACK, µs: the whole life of the process (start, the
	# run, shutdown) over the ACKs its generator saw
	if [ -n "${LAST_CPU_S:-}" ] && [ "$(jget completed "$r")" -gt 0 ] 2>/dev/null; then
		CPU+=("$srv|$inflight|$(awk -v c="$LAST_CPU_S" -v n="$(jget completed "$r")" 'BEGIN { printf "%.1f", c * 1e6 / n }')")
	fi
	log "$srv, inflight $inflight, run $run: $(printf '%.0f' "$lps") leases/s, $(jget completed "$r") ACKs"
}

# rcvbuf_errors: datagrams the relay namespace's kernel dropped because a
# socket's receive buffer was full: the generator's, as nothing else
# receives there.
rcvbuf_errors() {
	in_rly awk '$1 == "Udp:" { if (!c) { for (i = 2; i <= NF; i++) if ($i == "RcvbufErrors") c = i } else print $c }' /proc/net/snmp
}

# perf_run SERVER RATE DIR: perfdhcp offers RATE DORAs a second to the
# running server for PERIOD seconds; the server is stopped and the run's
# row added to PERF: server|rate|ACKs a second of PERIOD|answered %|ACK
# avg ms|ACK max ms|generator socket drops|server CPU µs per ACK.
perf_run() {
	local srv=$1 rate=$2 d=$3 drops row vci
	# PXE firmware's option 60, and option 93 client architecture 0 (BIOS)
	vci=$(printf 'PXEClient:Arch:00000:UNDI:002001' | od -An -tx1 | tr -d ' \n')
	drops=$(rcvbuf_errors)
	# -W: a second after the last DORA for the replies still on their way
	in_rly "${GEN[@]}" timeout --kill-after=5 $((PERIOD + 60)) perfdhcp -4 -g single -l "$GIADDR" -L 67 \
		-R "$CLIENTS" -r "$rate" -p "$PERIOD" -W 1000000 -o 93,0000 -o "60,$vci" "$SRV_IP" >"$d/perfdhcp.out" 2>&1 || true
	drops=$(($(rcvbuf_errors) - drops))
	sleep 0.5
	LAST_CPU_S=
	stop_daemon
	# perfdhcp prints DISCOVER-OFFER's statistics, then REQUEST-ACK's
	if row=$(awk -v drops="$drops" -v cpu="${LAST_CPU_S:-0}" -v period="$PERIOD" '
		/^sent packets:/ { sent[++i] = $3 }
		/^received packets:/ { recv[i] = $3 }
		/^avg delay:/ { avg[i] = $3 }
		/^max delay:/ { max[i] = $3 }
		END {
			if (i < 2 || sent[1] == 0) exit 1
			printf "%.0f|%.2f|%.2f|%.1f|%d|%.0f", recv[2] / period, 100 * recv[2] / sent[1], avg[2], max[2], drops, recv[2] ? cpu * 1e6 / recv[2] : 0
		}' "$d/perfdhcp.out"); then
		PERF+=("$srv|$rate|$row")
		log "$srv, $rate offered: $(cut -d'|' -f1,2 <<<"$row" | sed 's/|/ DORAs\/s, answered % /')"
	else
		log "$srv, $rate offered: perfdhcp failed"
		tail -5 "$d/perfdhcp.out" >&2 || true
		PERF+=("$srv|$rate|failed")
	fi
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
PERF=()
declare -A LPS
ROWS=()
CHECKS=()
RSS=()
CPU=()
run_idx=0
read -r -a ORDER <<<"$SERVERS"
for inflight in $INFLIGHTS; do
	for run in $(seq "$RUNS"); do
		# The servers take turns: in order on odd runs, reversed on even ones,
		# so that neither side always goes first on a warm or cold machine.
		servers=("${ORDER[@]}")
		if ((run % 2 == 0)); then
			servers=()
			for ((i = ${#ORDER[@]} - 1; i >= 0; i--)); do servers+=("${ORDER[i]}"); done
		fi
		for srv in "${servers[@]}"; do
			run_one "$srv" "$inflight" "$run"
		done
	done
done

# --- report ---------------------------------------------------------------

ratio() { # $1 / $2, or - unless both are numbers
	[[ ${1:-} =~ ^[0-9.]+$ && ${2:-} =~ ^[0-9.]+$ ]] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }' || echo -
}

# stats: the median, min and max of the numbers on stdin (the median of an
# even count is the mean of the middle two); nothing for no numbers.
stats() {
	sort -g | awk 'NF { v[++n] = $1 } END { if (n == 0) exit; m = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2; print m, v[1], v[n] }'
}

# field SERVER INFLIGHT KEY: KEY of every completed run of SERVER at INFLIGHT,
# one per line (leases_per_sec: the row's rate, both generators' for pg2).
field() {
	local row srv inflight run r
	for row in "${ROWS[@]}"; do
		[[ $row == "|"* ]] && continue
		IFS='|' read -r srv inflight run r <<<"$row"
		[ "$srv" = "$1" ] && [ "$inflight" = "$2" ] || continue
		if [ "$3" = leases_per_sec ]; then echo "${LPS[$srv-$inflight-$run]}"; else jget "$3" "$r"; fi
	done
}

# cell SERVER INFLIGHT KEY FORMAT: "median (min–max)" of KEY.
cell() {
	local m lo hi
	read -r m lo hi < <(field "$1" "$2" "$3" | stats) || true
	[ -n "${m:-}" ] || { echo -; return; }
	printf "$4 ($4–$4)" "$m" "$lo" "$hi"
}

# median SERVER INFLIGHT KEY [FORMAT]: the median of KEY, printed with
# FORMAT if given; "-" if no run completed.
median() {
	local m
	m=$(field "$1" "$2" "$3" | stats | cut -d' ' -f1)
	if [ -z "$m" ]; then echo -; elif [ -n "${4:-}" ]; then printf "$4" "$m"; else echo "$m"; fi
}

# listcell SERVER INFLIGHT FORMAT ENTRIES...: "median (min–max)" of the
# values of the "server|inflight|value" entries that match
listcell() {
	local m lo hi
	read -r m lo hi < <(for c in "${@:4}"; do IFS='|' read -r a b v <<<"$c"; [ "$a" = "$1" ] && [ "$b" = "$2" ] && [ -n "$v" ] && echo "$v"; done | stats) || true
	if [ -n "${m:-}" ]; then printf "$3 ($3–$3)" "$m" "$lo" "$hi"; else echo "?"; fi
}

# perf_field N: "server|rate|value" of every perfdhcp run that did not
# fail, the value its Nth after the rate (0: ACKs a second, 1: answered
# %, 2: ACK avg ms, 3: max ms, 4: generator socket drops, 5: server CPU
# µs per ACK)
perf_field() {
	local p f
	for p in "${PERF[@]}"; do
		[[ $p == *"|failed" ]] && continue
		IFS='|' read -r -a f <<<"$p"
		echo "${f[0]}|${f[1]}|${f[$1 + 2]}"
	done
}

echo
echo "DHCP DORA benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r)"
if [ "$GENERATOR" = perfdhcp ]; then
	echo "perfdhcp $(perfdhcp -v 2>&1 | sed -n 's/^VERSION: //p') (-g single), $PERIOD s at each offered rate, $CLIENTS simulated clients, $RUNS runs per server and rate (the servers taking turns), relayed (giaddr $GIADDR), PXE options 93 and 60, generator on CPUs ${GEN_CPUS:-any} (servers on any); bootforge with store_sync $BF_STORE_SYNC, boot log $BF_AUDIT"
else
	echo "$CLIENTS clients per run, $RUNS runs per server and inflight level (the servers taking turns), relayed (giaddr $GIADDR), timeout $TIMEOUT per message, no retries, MACs $MAC_ORDER, generator on CPUs ${GEN_CPUS:-any} (servers on any)"
fi
echo "kea-dhcp4 $(kea-dhcp4 -v 2>/dev/null) (kea: log severity ${KEA_SEVERITY:-WARN}; kea-info: INFO), $(dnsmasq --version | head -1 | cut -d' ' -f1-3), bootforge $(if [ -n "${BOOTFORGE_BIN:-}" ]; then echo "$BOOTFORGE_BIN ($("$BOOTFORGE_BIN" version 2>/dev/null | head -1))"; else cd "$REPO" && printf '%s' "$(git rev-parse --short HEAD 2>/dev/null)"; [ -z "$(git status --porcelain -- cmd internal 2>/dev/null)" ] || echo ' + uncommitted changes'; fi)"
echo "load average at start $LOAD_START, at end $(cut -d' ' -f1-3 /proc/loadavg)$(awk -v l="${LOAD_START%% *}" -v n="$(nproc)" 'BEGIN { if (l + 0 > n + 0) print " (busier than the core count: other work shares the CPUs, treat the figures with care)" }')"
if [ "$GENERATOR" = perfdhcp ]; then
	echo
	echo "DORAs/s: ACKs received over the $PERIOD s. Answered: ACKs over DISCOVERs sent. Generator socket drops:"
	echo "replies the kernel dropped because perfdhcp's receive buffer was full (the relay namespace's"
	echo "UdpRcvbufErrors). Server CPU: over the server's whole life, start included. Median (min–max)."
	echo
	echo "| server | offered/s | runs | DORAs/s | answered % | REQUEST→ACK avg ms | max ms | generator socket drops | server CPU µs per ACK |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	for rate in $RATES; do
		for srv in "${ORDER[@]}"; do
			n=$(perf_field 0 | grep -c "^$srv|$rate|" || true)
			printf '| %s | %s | %s of %s | %s | %s | %s | %s | %s | %s |\n' "$srv" "$rate" "$n" "$RUNS" \
				"$(listcell "$srv" "$rate" %.0f $(perf_field 0))" "$(listcell "$srv" "$rate" %.2f $(perf_field 1))" \
				"$(listcell "$srv" "$rate" %.2f $(perf_field 2))" "$(listcell "$srv" "$rate" %.1f $(perf_field 3))" \
				"$(listcell "$srv" "$rate" %.0f $(perf_field 4))" "$(listcell "$srv" "$rate" %.0f $(perf_field 5))"
		done
	done
	exit 0
fi
echo
echo "Median (min–max) of the runs; the ratios are of the medians."
echo
echo "| server | inflight | runs | leases/s | p50 ms | p99 ms | OFFER p50 / p99 ms | ACK p50 / p99 ms | timeouts | vs kea | vs kea-info |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for inflight in $INFLIGHTS; do
	for srv in "${ORDER[@]}"; do
		n=$(field "$srv" "$inflight" leases_per_sec | grep -c . || true)
		lps=$(median "$srv" "$inflight" leases_per_sec)
		printf '| %s | %s | %s of %s | %s | %s | %s | %s / %s | %s / %s | %s | %s | %s |\n' "$srv" "$inflight" "$n" "$RUNS" \
			"$(cell "$srv" "$inflight" leases_per_sec %.0f)" "$(cell "$srv" "$inflight" p50_ms %.2f)" "$(cell "$srv" "$inflight" p99_ms %.2f)" \
			"$(median "$srv" "$inflight" offer_p50_ms %.2f)" "$(median "$srv" "$inflight" offer_p99_ms %.2f)" \
			"$(median "$srv" "$inflight" ack_p50_ms %.2f)" "$(median "$srv" "$inflight" ack_p99_ms %.2f)" \
			"$(field "$srv" "$inflight" timeouts | awk '{ t += $1 } END { print t + 0 }')" \
			"$(ratio "$lps" "$(median kea "$inflight" leases_per_sec)")" "$(ratio "$lps" "$(median kea-info "$inflight" leases_per_sec)")"
	done
done
echo
echo "Every run:"
echo
echo "| server | inflight | run | leases/s | p50 ms | p99 ms | OFFER p50 / p99 ms | ACK p50 / p99 ms | timeouts | duplicates | NAKs |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for row in "${ROWS[@]}"; do
	case $row in
	"|"*) echo "$row" ;;
	*)
		IFS='|' read -r srv inflight run r <<<"$row"
		partial=
		[ "$(jget aborted "$r")" = true ] && partial=" (stopped at -max-time: $(jget completed "$r") of $CLIENTS)"
		printf '| %s | %s | %s | %.0f%s | %.2f | %.2f | %.2f / %.2f | %.2f / %.2f | %s | %s | %s |\n' "$srv" "$inflight" "$run" \
			"${LPS[$srv-$inflight-$run]}" "$partial" "$(jget p50_ms "$r")" "$(jget p99_ms "$r")" \
			"$(jget offer_p50_ms "$r")" "$(jget offer_p99_ms "$r")" "$(jget ack_p50_ms "$r")" "$(jget ack_p99_ms "$r")" \
			"$(jget timeouts "$r")" "$(jget duplicates "$r")" "$(jget naks "$r")"
		;;
	esac
done
echo
echo "p50 and p99: DISCOVER sent to ACK received. OFFER: DISCOVER sent to OFFER received; ACK: REQUEST"
echo "sent to ACK received, where a server that stores the lease before it answers waits for the store"
if [ "$BF_STORE_SYNC" = full ]; then
	echo "(bootforge with store_sync: full, an fsync; boot log $([ "$BF_AUDIT" = true ] && echo on || echo off))."
else
	echo "(bootforge with store_sync: normal, no fsync; boot log $([ "$BF_AUDIT" = true ] && echo on || echo off))."
fi
echo
echo "Checks: ACKs seen by the generator vs the server's own lease store (Kea: lease-file CSV lines;"
echo "dnsmasq: lease-file lines; bootforge: 'bound' rows in its SQLite leases table)."
echo
echo "| server | inflight | run | ACKs | distinct IPs | lease records | distinct IPs in store | mismatches | no opt82 echo | with boot file | stray | aborted | generator CPU s | server CPU s | load avg start / end |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|"
for c in "${CHECKS[@]}"; do echo "$c"; done
echo
echo "Peak resident memory of the server process (VmHWM, MiB) and its CPU time (user + system, over"
echo "its whole life) per ACK the generator saw, µs; bootforge-pg2: the first server only. Median"
echo "(min–max) of the runs:"
echo
echo "| server | inflight | peak RSS MiB | server CPU µs per ACK |"
echo "|---|---:|---:|---:|"
for inflight in $INFLIGHTS; do
	for srv in "${ORDER[@]}"; do
		echo "| $srv | $inflight | $(listcell "$srv" "$inflight" %.1f "${RSS[@]}") | $(listcell "$srv" "$inflight" %.0f "${CPU[@]}") |"
	done
done
