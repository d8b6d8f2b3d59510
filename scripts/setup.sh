#!/usr/bin/env bash
# One way to prepare a machine for SmartNat's lab and tests, used by scripts/quickstart.sh,
# `npm test` (test/run-all.sh) and .ci/run: the Debian packages of packaging/debian-packages-test.txt
# (and the runtime list) that are missing (apt-get update first), then `npm ci` when node_modules is
# missing or older than package-lock.json. Idempotent and quiet when nothing is missing. Root for
# apt-get. Options: --force-apt (always apt-get update + install, as CI does from a clean machine).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

force_apt=0
[ "${1:-}" = --force-apt ] && force_apt=1
say() { printf 'setup: %s\n' "$*" >&2; }

command -v node >/dev/null || { say "Node.js >= 20.19 is required"; exit 1; }
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
  || { say "Node.js >= 20.19 is required, found $(node --version)"; exit 1; }

mapfile -t packages < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' packaging/debian-packages-test.txt \
  packaging/debian-packages-runtime.txt | grep -v '^$' | sort -u)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "$force_apt" = 1 ] || [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { say "missing Debian packages (${missing[*]}): run as root so they can be installed"; exit 1; }
  say "apt-get update"
  DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  say "apt-get install ${packages[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}" >&2
fi
if ! command -v go >/dev/null && [ -z "${KUBEBUILDER_ASSETS:-}" ]; then
  say "note: Go is not installed; the first run builds kube-apiserver and etcd from Go modules and needs it"
  say "      (or set KUBEBUILDER_ASSETS to a directory with kube-apiserver and etcd)"
fi
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  npm ci --no-audit --no-fund >&2
fi
