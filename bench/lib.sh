# Helpers shared by bench/http.sh, floor.sh, tftp.sh and image.sh; sourced, not run.
#
#   BENCH=http; source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# sets REPO (the checkout), STAMP (UTC time, for names), REV (what was
# measured: the work tree as it is, uncommitted changes included) and
# RESULTS_DIR (bench/results/$BENCH-$STAMP unless the caller set it), and
# defines log, die, loadavg, in_use, free_port, use_bootforge, median,
# cell and start_nginx.

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
  REV="$(bin_rev "$BF") (BOOTFORGE_BIN=$BF; work tree $REV)"
}

# bin_rev BIN: the commit a bootforge binary was built from, if it was
# built with VCS stamping, else "unknown".
bin_rev() {
  local r
  r=$(go version -m "$1" 2>/dev/null | awk '$2 ~ /^vcs\.revision=/ { r = substr($2, 14, 12) } $2 == "vcs.modified=true" { d = "-dirty" } END { if (r != "") print r d }' || true)
  echo "${r:-unknown}"
}

# median [-pN] VALUES...: the median, with N decimals (default 1)
median() {
  local prec=1
  if [[ ${1:-} == -p* ]]; then prec=${1#-p}; shift; fi
  (($#)) || { echo ""; return; }
  printf '%s\n' "$@" | sort -g | awk -v f="%.${prec}f" '{ a[NR] = $1 } END {
    if (NR % 2) printf f, a[(NR + 1) / 2]; else printf f, (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# cell [-pN] VALUES...: "median (min–max)", or "" without values
cell() {
  local prec=1
  if [[ ${1:-} == -p* ]]; then prec=${1#-p}; shift; fi
  (($#)) || { echo ""; return; }
  printf '%s\n' "$@" | sort -g | awk -v p="$prec" '{ a[NR] = $1 } END {
    f = "%." p "f"
    m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
    printf f " (" f "–" f ")", m, a[1], a[NR] }'
}

# start_nginx DIR ROOT PORT [SPORT CERT KEY]: starts nginx serving ROOT on
# 127.0.0.1:PORT, and over TLS on SPORT with CERT and KEY if given, its
# config, pid and temporary files under DIR/nginx and its logs in DIR/logs;
# sets NGINX_PID (the master's). It runs in its fastest honest setting:
# a worker per core, sendfile with tcp_nopush, the access log on in
# combined format, written in 64 KiB blocks at the latest after 1 s.
# keepalive_requests: nginx closes a keep-alive connection after 1000
# requests by default, Go's servers never; raised so that both keep wrk's
# connections. Over TLS it picks the suite Go's server picks (AES-128-GCM),
# not the client's first choice.
start_nginx() {
  local dir=$1 root=$2 port=$3 sport=${4:-} cert=${5:-} key=${6:-} tls=""
  mkdir -p "$dir/nginx/tmp" "$dir/logs"
  if [[ -n $sport ]]; then
    tls="
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_session_cache shared:SSL:10m;
  ssl_prefer_server_ciphers on;
  ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;
  server {
    listen 127.0.0.1:$sport ssl;
    ssl_certificate $cert;
    ssl_certificate_key $key;
    root $root;
  }"
  fi
  cat >"$dir/nginx/nginx.conf" <<EOF2
daemon off;
master_process on;
worker_processes auto;
pid $dir/nginx/nginx.pid;
error_log $dir/logs/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log $dir/logs/nginx-access.log combined buffer=64k flush=1s;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  default_type application/octet-stream;
  client_body_temp_path $dir/nginx/tmp/body;
  proxy_temp_path $dir/nginx/tmp/proxy;
  fastcgi_temp_path $dir/nginx/tmp/fastcgi;
  uwsgi_temp_path $dir/nginx/tmp/uwsgi;
  scgi_temp_path $dir/nginx/tmp/scgi;
  server {
    listen 127.0.0.1:$port;
    root $root;
  }$tls
}
EOF2
  nginx -t -q -p "$dir/nginx" -e "$dir/logs/nginx-error.log" -c "$dir/nginx/nginx.conf" || die "nginx config rejected"
  nginx -p "$dir/nginx" -e "$dir/logs/nginx-error.log" -c "$dir/nginx/nginx.conf" >"$dir/logs/nginx.out" 2>&1 &
  NGINX_PID=$!
}
