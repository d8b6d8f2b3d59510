// Knobs the lab turns on a running topology: link MTU, link down/up, sysctls inside a namespace,
// and the namespace's ip rules (so a test can remove and restore one). Each call is one command in
// the node's namespace through the CommandRunner; nothing is remembered or restored automatically.
import type { Topology } from './topology.js';

export async function setMtu(topo: Topology, node: string, ifname: string, mtu: number): Promise<void> {
  if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65535) throw new RangeError(`bad mtu ${mtu}`);
  await topo.host.run('ip', ['-n', topo.ns(node), 'link', 'set', 'dev', ifname, 'mtu', String(mtu)]);
}

/**
 * Sets a link administratively down or up. The kernel drops a node's routes through a link that
 * goes down; on 'up' the node's routes from the spec are put back (`ip route replace`, those whose
 * gateway is not reachable yet are left out).
 */
export async function setLinkState(topo: Topology, node: string, ifname: string, state: 'up' | 'down'): Promise<void> {
  const ns = topo.ns(node);
  await topo.host.run('ip', ['-n', ns, 'link', 'set', 'dev', ifname, state]);
  if (state === 'down') return;
  const spec = topo.spec.nodes.find((n) => n.name === node);
  for (const r of spec?.routes ?? []) {
    const args = ['-n', ns, 'route', 'replace', r.to, ...(r.via ? ['via', r.via] : []), ...(r.dev ? ['dev', r.dev] : [])];
    if (r.table !== undefined) args.push('table', String(r.table));
    await topo.host.run('ip', args, { okExitCodes: [0, 2] });
  }
}

/** Writes sysctls inside the node's namespace (net.* keys are per namespace). */
export async function setSysctls(topo: Topology, node: string, values: Readonly<Record<string, string>>): Promise<void> {
  const pairs = Object.entries(values).map(([k, v]) => {
    if (!/^[a-z0-9_.]+$/i.test(k) || !/^[\w .-]*$/.test(v)) throw new Error(`bad sysctl ${k}=${v}`);
    return `${k}=${v}`;
  });
  if (pairs.length) await topo.runner(node).run('sysctl', ['-q', '-w', ...pairs]);
}

export async function readSysctl(topo: Topology, node: string, key: string): Promise<string> {
  const { stdout } = await topo.runner(node).run('sysctl', ['-n', key]);
  return stdout.trim();
}

/** `ip rule show` of the node, one rule per line. */
export async function listIpRules(topo: Topology, node: string): Promise<string[]> {
  const { stdout } = await topo.host.run('ip', ['-n', topo.ns(node), 'rule', 'show']);
  return stdout.split('\n').filter((l) => l.trim() !== '');
}

/** Link details of one interface (ip -j link show), e.g. {mtu, operstate}. */
export async function linkInfo(topo: Topology, node: string, ifname: string): Promise<{ mtu: number; operstate: string; flags: string[] }> {
  const { stdout } = await topo.host.run('ip', ['-n', topo.ns(node), '-j', 'link', 'show', 'dev', ifname]);
  const [info] = JSON.parse(stdout) as { mtu: number; operstate: string; flags: string[] }[];
  if (!info) throw new Error(`no link ${ifname} in ${topo.ns(node)}`);
  return { mtu: info.mtu, operstate: info.operstate, flags: info.flags };
}

/** Adds an address (CIDR, e.g. a floating "203.0.113.10/32") to a node's interface, as keepalived would. */
export async function addAddress(topo: Topology, node: string, ifname: string, cidr: string): Promise<void> {
  await topo.host.run('ip', ['-n', topo.ns(node), 'addr', 'add', cidr, 'dev', ifname]);
}

export async function deleteAddress(topo: Topology, node: string, ifname: string, cidr: string): Promise<void> {
  await topo.host.run('ip', ['-n', topo.ns(node), 'addr', 'del', cidr, 'dev', ifname]);
}
