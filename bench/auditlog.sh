#!/usr/bin/env bash
# Boot-log overhead: a TFTP storm of CLIENTS atftp clients, each fetching a
# 1 MiB file at once, against bootforge with the boot log on and off, in
# ROUNDS alternating rounds. Prints wall time per round, the median ratio,
# and checks that with the log on every transfer became an event (0 lost).
#
#   sudo bench/auditlog.sh            # CLIENTS=200 ROUNDS=3
#
# Traffic goes to 127.0.0.1 only.
set -euo pipefail
CLIENTS=${CLIENTS:-200}
ROUNDS=${ROUNDS:-3}
cd "$(dirname "$0")/.."
command -v atftp >/dev/null || { echo "atftp missing (apt-get install atftp)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/bootforge-auditlog-XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
go build -o "$WORK/bootforge" ./cmd/bootforge
mkdir -p "$WORK/root"
head -c 1048576 /dev/urandom >"$WORK/root/loader.bin"
free_port() { python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

storm() { # $1: on|off → prints seconds; events checked by the caller
	local log=$1 data="$WORK/data-$1-$2" port
	port=$(free_port)
	mkdir -p "$data"
	cat >"$WORK/cfg.yaml" <<CFG
audit: {enabled: $([ "$log" = on ] && echo true || echo false)}
tftp: {max_per_client: $((CLIENTS + 10))}
log: {level: warn}
CFG
	"$WORK/bootforge" serve --config "$WORK/cfg.yaml" --root "$WORK/root" --data-dir "$data" \
		--tftp-addr "127.0.0.1:$port" --http-addr 127.0.0.1:0 --https-addr 127.0.0.1:0 --api-addr 127.0.0.1:0 \
		>"$WORK/server-$log-$2.log" 2>&1 &
	PID=$!
	sleep 0.7
	local start end fails=0
	start=$(date +%s.%N)
	for i in $(seq "$CLIENTS"); do
		atftp --option "blksize 1468" -g -r loader.bin -l /dev/null 127.0.0.1 "$port" >/dev/null 2>&1 &
	done
	for job in $(jobs -p); do [ "$job" = "$PID" ] || wait "$job" || fails=$((fails + 1)); done
	end=$(date +%s.%N)
	kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
	echo "$(echo "$end - $start" | bc) $fails"
}

echo "boot-log overhead: $CLIENTS clients x 1 MiB over TFTP, $ROUNDS rounds, $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
declare -a on off
for r in $(seq "$ROUNDS"); do
	read -r t f < <(storm off "$r"); off+=("$t"); echo "round $r log off: ${t}s, $f failed"
	read -r t f < <(storm on "$r"); on+=("$t"); echo "round $r log on:  ${t}s, $f failed"
	events=$(BOOTFORGE_DATA_DIR="$WORK/data-on-$r" BOOTFORGE_ROOT="$WORK/root" "$WORK/bootforge" log --json --limit 100000 | grep -c '"protocol":"tftp"' || true)
	echo "round $r: $events tftp events stored for $CLIENTS transfers ($((CLIENTS - events)) lost)"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mon=$(median "${on[@]}"); moff=$(median "${off[@]}")
echo "median: log off ${moff}s, log on ${mon}s, on/off = $(echo "scale=3; $mon / $moff" | bc)"
