// Renders the sysctls the recipe needs as `sysctl -p -` input (ADR 0003): forwarding on, loose
// rp_filter on every uplink, conntrack sizing and TCP timeouts when configured. Pure. It does not
// set conf.all.rp_filter (the kernel takes the larger value; apply.ts checks it is 0 or 2).
import type { DesiredDataPlane } from '../plan/desired.js';

export interface Sysctl {
  readonly key: string;
  readonly value: number;
}

/** An interface name with '.' (a VLAN) must be written with '/' separators. */
function interfaceKey(name: string, leaf: string): string {
  return name.includes('.') ? `net/ipv4/conf/${name}/${leaf}` : `net.ipv4.conf.${name}.${leaf}`;
}

export function computeSysctls(desired: DesiredDataPlane): Sysctl[] {
  const s = desired.settings;
  const out: Sysctl[] = [{ key: 'net.ipv4.ip_forward', value: 1 }];
  for (const u of desired.uplinks) out.push({ key: interfaceKey(u.name, 'rp_filter'), value: 2 });
  if (s.conntrackMax !== undefined) out.push({ key: 'net.netfilter.nf_conntrack_max', value: s.conntrackMax });
  if (s.tcpTimeoutEstablishedSeconds !== undefined) out.push({ key: 'net.netfilter.nf_conntrack_tcp_timeout_established', value: s.tcpTimeoutEstablishedSeconds });
  if (s.tcpTimeoutCloseWaitSeconds !== undefined) out.push({ key: 'net.netfilter.nf_conntrack_tcp_timeout_close_wait', value: s.tcpTimeoutCloseWaitSeconds });
  return out;
}

export function renderSysctl(desired: DesiredDataPlane): string {
  return computeSysctls(desired).map((s) => `${s.key} = ${s.value}\n`).join('');
}
