#!/usr/bin/env bash
# Installs everything the test suite needs on Debian: the real peers the
# end-to-end tests drive, and the Go modules. Safe to rerun.
# Registry name resolution sometimes fails for a few seconds here, so every
# network step is retried.
set -euo pipefail

PACKAGES=(
  # TFTP peers
  atftp tftp-hpa busybox-static curl
  # HTTP peers
  openssl
  # boot firmware and loaders for QEMU tests
  qemu-system-x86 ipxe-qemu ipxe ovmf pxelinux syslinux-common syslinux-efi
  grub-efi-amd64-bin grub-pc-bin cpio xorriso isolinux
  # Secure Boot chain: shim and GRUB signed for it, and Authenticode tools
  shim-signed grub-efi-amd64-signed osslsigncode
  # DHCP peers
  isc-dhcp-client udhcpc isc-dhcp-relay nmap dnsmasq
  # the IPv6 lab's router advertisements
  radvd
  # network namespaces, and a packet filter inside one (a lost final TFTP ACK)
  iproute2 nftables
  # image workflow: ISOs, WIMs, OpenPGP-signed sums, Authenticode peers
  genisoimage wimtools gnupg sbsigntool coreutils
  # metrics: promtool checks the /metrics output and the example rules
  prometheus
  # the dashboard's browser (chromedp drives it headless)
  chromium
  # the PostgreSQL store (store.url: postgres://...)
  postgresql
)

retry() {
  local n
  for n in 1 2 3 4 5 6; do
    if "$@"; then return 0; fi
    echo "retry $n/6 failed: $*" >&2
    sleep $((n * 3))
  done
  return 1
}

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  retry apt-get update -q
  retry apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# PostgreSQL for the store tests: Debian's cluster, listening on its socket
# and 127.0.0.1 only, with a role for root (peer auth on the socket) that
# may create the per-test databases. The tests read BOOTFORGE_TEST_POSTGRES
# or default to postgres:///bootforge_test?host=/var/run/postgresql.
if [[ $(id -u) -eq 0 ]]; then
  pgver=$(ls /usr/lib/postgresql | sort -n | tail -1)
  pg_lsclusters -h | grep -q "^$pgver main" || pg_createcluster "$pgver" main
  # conf.d, not pg_conftool: it writes the address unquoted, which the server rejects.
  echo "listen_addresses = '127.0.0.1'" >"/etc/postgresql/$pgver/main/conf.d/bootforge.conf"
  pg_ctlcluster "$pgver" main status >/dev/null 2>&1 || pg_ctlcluster "$pgver" main start
  for n in $(seq 1 30); do
    pg_isready -q -h /var/run/postgresql && break
    sleep 1
  done
  su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname = 'root'\"" | grep -q 1 ||
    su postgres -c "psql -qc 'CREATE ROLE root LOGIN CREATEDB'"
  # The store tests drop their databases WITH (FORCE), which must end an
  # autovacuum worker that happens to be in one: a backend of no role,
  # which only a member of pg_signal_backend may end (without it the drop
  # fails now and then: "must be a member of the role whose process is
  # being terminated or member of pg_signal_backend").
  su postgres -c "psql -qc 'GRANT pg_signal_backend TO root'"
  su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname = 'bootforge_test'\"" | grep -q 1 ||
    su postgres -c "psql -qc 'CREATE DATABASE bootforge_test OWNER root'"
fi

cd "$(dirname "$0")/.."
retry go mod download
