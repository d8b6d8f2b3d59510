#!/bin/bash
# Spike for ADR 0013: can a new owner TEE packets of connections it never saw to the old owner?
set -u
# Usage (root; namespaces spkPID-*, documentation ranges only, removed on exit): bash docs/adr/0013-spike.sh
# Prints "plain: {...}" (an established connection moved to the new owner: reset) and "tee: {...}"
# (the same with the two rules of ADR 0013 on the new owner: the connection carries on).
D=$(mktemp -d)
P=spk$$
NS="sw c a1 a3 b"
# Stops only what runs inside our own namespaces (the echo server), then removes them.
cleanup() { for n in $NS; do ip netns pids $P-$n 2>/dev/null | xargs -r kill -KILL; ip netns del $P-$n 2>/dev/null; done; rm -rf "$D"; }
trap cleanup EXIT
for n in $NS; do ip netns add $P-$n; ip -n $P-$n link set lo up; done
X="ip netns exec"
$X $P-sw ip link add brx type bridge; $X $P-sw ip link set brx up
$X $P-sw ip link add bri type bridge; $X $P-sw ip link set bri up
link() { # node ifname bridge addr
  ip link add $P-$1-$2 type veth peer name v-$1-$2 netns $P-sw
  ip link set $P-$1-$2 netns $P-$1
  $X $P-$1 ip link set $P-$1-$2 name $2
  $X $P-$1 ip addr add $4 dev $2; $X $P-$1 ip link set $2 up
  $X $P-sw ip link set v-$1-$2 master $3; $X $P-sw ip link set v-$1-$2 up
}
link c ext brx 203.0.113.100/24
link a1 ext brx 203.0.113.1/24; link a1 int bri 198.51.100.1/24
link a3 ext brx 203.0.113.3/24; link a3 int bri 198.51.100.3/24
link b int bri 198.51.100.20/24
VIP=203.0.113.10
for a in a1 a3; do
  $X $P-$a sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.ext.rp_filter=2
  $X $P-$a iptables -t nat -A PREROUTING -d $VIP -p tcp --dport 8080 -j DNAT --to-destination 198.51.100.20:8080
  $X $P-$a iptables -t nat -A POSTROUTING -o int -j MASQUERADE
done
$X $P-a1 ip addr add $VIP/32 dev ext
$X $P-b ncat -l -k -p 8080 -e /bin/cat >/dev/null 2>&1 &
sleep 0.5
cat > $D/client.mjs <<'JS'
import net from 'node:net';
const s = net.connect({ host: '203.0.113.10', port: 8080 });
let got = '';
s.on('data', (d) => { got += d; });
s.on('error', (e) => { console.log(JSON.stringify({ error: e.code, got })); process.exit(0); });
s.on('connect', () => { s.write('one\n'); setTimeout(() => s.write('two\n'), 3000); setTimeout(() => { console.log(JSON.stringify({ got })); process.exit(0); }, 4500); });
JS
run() { # mode
  $X $P-c node $D/client.mjs > $D/out-$1.json & CPID=$!
  sleep 1
  # The handoff: the address moves from a1 to a3; the client's neighbour entry follows (as after a GARP).
  $X $P-a1 ip addr del $VIP/32 dev ext
  $X $P-a3 ip addr add $VIP/32 dev ext
  if [ "$1" = tee ]; then
    $X $P-a3 iptables -t mangle -A PREROUTING -d $VIP -p tcp ! --syn -m conntrack --ctstate NEW,INVALID -j TEE --gateway 203.0.113.1
    $X $P-a3 iptables -t mangle -A PREROUTING -d $VIP -p tcp ! --syn -m conntrack --ctstate NEW,INVALID -j DROP
  fi
  A3MAC=$($X $P-a3 cat /sys/class/net/ext/address)
  $X $P-c ip neigh replace $VIP lladdr $A3MAC dev ext nud reachable
  wait $CPID
  echo "$1: $(cat $D/out-$1.json)"
  # reset for the next run
  $X $P-a3 iptables -t mangle -F PREROUTING
  $X $P-a3 ip addr del $VIP/32 dev ext; $X $P-a1 ip addr add $VIP/32 dev ext
  $X $P-c ip neigh flush dev ext
  for a in a1 a3; do $X $P-$a conntrack -F 2>/dev/null; done
}
run plain
run tee
