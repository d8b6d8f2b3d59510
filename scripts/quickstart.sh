#!/usr/bin/env bash
# SmartNat in one command, from a fresh clone, as root on Debian/Ubuntu with Node >= 20.19:
# installs the Debian packages the lab needs, npm ci, npm run build, `smartnat lab up` (three agents,
# a real kube-apiserver + etcd, network namespaces), sends traffic through a floating address from
# the allowed client, shows the other client being refused, and runs one kill drill when available.
# Tear down: node dist/main.js lab down   (docs/lab.md). Options: --name NAME, --no-drill.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

name=smartnat
drill=1
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name="$2"; shift 2 ;;
    --no-drill) drill=0; shift ;;
    *) echo "usage: $0 [--name NAME] [--no-drill]" >&2; exit 2 ;;
  esac
done

say() { printf '\n== %s\n' "$*"; }
started=$SECONDS

[ "$(id -u)" = 0 ] || { echo "quickstart: the lab needs root (network namespaces, iptables): sudo $0" >&2; exit 1; }
say "setup: Debian packages and node modules (scripts/setup.sh)"
bash scripts/setup.sh
say "npm run build"
npm run build

say "smartnat lab up --name $name (the first run builds the Kubernetes binaries: minutes)"
node dist/main.js lab up --name "$name"

status="$(node dist/main.js lab status --name "$name" --json)"
read -r allowed_ns allowed_name other_ns other_name address2 address port dir < <(node -e '
  const d = JSON.parse(process.argv[1]);
  const ok = d.clients.find((c) => c.allowed), no = d.clients.find((c) => !c.allowed), m = d.mappings[0];
  console.log(ok.netns, ok.name, no.netns, no.name, m.addresses[1] ?? m.addresses[0], m.addresses[0], m.ports[0].port, d.dir);
' "$status")

say "traffic: $allowed_name -> $address:$port (TCP, through the floating address)"
answer=""
for _ in $(seq 1 60); do
  line="$(ip netns exec "$allowed_ns" node "$dir/probe.mjs" --proto tcp --host "$address" --port "$port" --timeout 500 --request "hello from $allowed_name")"
  if printf '%s' "$line" | grep -q '"result":"ok"'; then answer="$line"; break; fi
  sleep 0.5
done
if [ -z "$answer" ]; then
  echo "no answer through $address:$port; see the agents' logs under $dir/agents/*/agent.log" >&2
  exit 1
fi
echo "$answer"

say "traffic: $other_name -> $address2:$port (not in the Mapping's allowedSources: expect a timeout)"
ip netns exec "$other_ns" node "$dir/probe.mjs" --proto tcp --host "$address2" --port "$port" --timeout 700

if [ "$drill" = 1 ] && node dist/main.js drill --help >/dev/null 2>&1; then
  say "drill: kill the owner of $address (every process of the instance and its links at once)"
  node dist/main.js drill kill --name "$name" || echo "the drill failed (the lab stays up for a look)" >&2
fi

say "done in $((SECONDS - started)) s. Next:"
node dist/main.js lab status --name "$name"
echo
echo "  kubectl --kubeconfig $dir/kubeconfig get mappings,addresspools,leases -A"
echo "  node dist/main.js lab down$([ "$name" = smartnat ] || echo " --name $name")     # removes everything the lab made"
