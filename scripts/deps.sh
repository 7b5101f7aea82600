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
  # network namespaces
  iproute2
  # image workflow: ISOs, WIMs, OpenPGP-signed sums, Authenticode peers
  genisoimage wimtools gnupg sbsigntool coreutils
  # metrics: promtool checks the /metrics output and the example rules
  prometheus
  # the dashboard's browser (chromedp drives it headless)
  chromium
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

cd "$(dirname "$0")/.."
retry go mod download
