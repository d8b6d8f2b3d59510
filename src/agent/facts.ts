// What an agent knows about itself and publishes for its peers: interface facts (name, role,
// addresses, MAC) encoded in its agent lease, and discovery of those facts with `ip -j addr` /
// `ip -j route` through the CommandRunner. Guarantees: the annotation round-trips; a peer's
// malformed annotation yields no facts rather than an error. Does not choose labels (cli/agent.ts).
import type { CommandRunner } from '../dataplane/command-runner.js';
import { canonicalIpv4, parseInterfaceAddress } from '../model/net.js';
import type { AgentFacts, AgentInterface, InterfaceRole } from '../model/snapshot.js';
import { ANNOTATION_PREFIX } from '../plan/lease-names.js';
import type { LinkSample } from '../plan/agent-health.js';

/** Agent-lease annotation carrying the interface facts peers need (JSON list). */
export const ANNOTATION_INTERFACES = `${ANNOTATION_PREFIX}/interfaces`;

export interface PublishedInterface {
  readonly name: string;
  readonly role: InterfaceRole;
  /** "a.b.c.d/len" */
  readonly addresses: readonly string[];
  readonly mac?: string;
}

export interface LocalFacts {
  readonly facts: AgentFacts;
  /** MAC per interface name, when known. */
  readonly macs: Readonly<Record<string, string>>;
}

export function encodeInterfaces(local: LocalFacts): string {
  const list: PublishedInterface[] = [...local.facts.interfaces]
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .map((i) => {
      const mac = local.macs[i.name];
      const base = { name: i.name, role: i.role, addresses: i.addresses.map((a) => a.text) };
      return mac === undefined ? base : { ...base, mac };
    });
  return JSON.stringify(list);
}

export function decodeInterfaces(text: string | undefined): PublishedInterface[] {
  if (text === undefined) return [];
  try {
    const raw: unknown = JSON.parse(text);
    if (!Array.isArray(raw)) return [];
    return raw.flatMap((x: unknown): PublishedInterface[] => {
      if (typeof x !== 'object' || x === null) return [];
      const o = x as Record<string, unknown>;
      const addresses = Array.isArray(o['addresses']) ? o['addresses'].filter((a): a is string => typeof a === 'string' && parseInterfaceAddress(a) !== undefined) : [];
      if (typeof o['name'] !== 'string' || (o['role'] !== 'external' && o['role'] !== 'internal')) return [];
      const base = { name: o['name'], role: o['role'] as InterfaceRole, addresses };
      return typeof o['mac'] === 'string' ? [{ ...base, mac: o['mac'] }] : [base];
    });
  } catch {
    return [];
  }
}

interface IpAddrInfo {
  family?: string;
  local?: string;
  prefixlen?: number;
  scope?: string;
}
interface IpLink {
  ifname?: string;
  address?: string;
  addr_info?: IpAddrInfo[];
}
interface IpRoute {
  dst?: string;
  gateway?: string;
  dev?: string;
}

/**
 * Interface facts from `ip -j addr` and `ip -j route`. `roles` names the interfaces to use; when
 * empty, the interface of the default route is external and every other interface with a global
 * IPv4 address internal.
 */
export async function discoverInterfaces(runner: CommandRunner, roles: Readonly<Record<string, InterfaceRole>>): Promise<{ interfaces: AgentInterface[]; macs: Record<string, string> }> {
  const links = JSON.parse((await runner.run('ip', ['-j', 'addr', 'show'])).stdout) as IpLink[];
  const routes = JSON.parse((await runner.run('ip', ['-j', '-4', 'route', 'show', 'default'])).stdout) as IpRoute[];
  const gateways = new Map<string, string>();
  for (const r of routes) {
    const gw = r.gateway !== undefined ? canonicalIpv4(r.gateway) : undefined;
    if (r.dev !== undefined && gw !== undefined && !gateways.has(r.dev)) gateways.set(r.dev, gw);
  }
  const wanted = Object.keys(roles).length > 0;
  const interfaces: AgentInterface[] = [];
  const macs: Record<string, string> = {};
  for (const link of links) {
    const name = link.ifname;
    if (name === undefined || name === 'lo') continue;
    const addresses = (link.addr_info ?? [])
      .filter((a) => a.family === 'inet' && a.scope === 'global' && a.local !== undefined && a.prefixlen !== undefined)
      .flatMap((a) => {
        const p = parseInterfaceAddress(`${a.local}/${a.prefixlen}`);
        // Floating /32s keepalived added are not the interface's own addresses.
        return p && p.subnet.prefix < 32 ? [p] : [];
      });
    const role: InterfaceRole | undefined = wanted ? roles[name] : addresses.length === 0 ? undefined : gateways.has(name) ? 'external' : 'internal';
    if (role === undefined) continue;
    const gateway = role === 'external' ? gateways.get(name) : undefined;
    interfaces.push(gateway === undefined ? { name, role, addresses } : { name, role, addresses, gateway });
    if (link.address !== undefined) macs[name] = link.address;
  }
  const missing = Object.keys(roles).filter((n) => !interfaces.some((i) => i.name === n));
  if (missing.length > 0) throw new Error(`interfaces not found on this host: ${missing.join(', ')}`);
  return { interfaces: interfaces.sort((a, b) => (a.name < b.name ? -1 : 1)), macs };
}

/** Reads the state of the agent's own interfaces (`ip -j link show`) for the health decision. */
export async function probeLinks(runner: CommandRunner, interfaces: readonly AgentInterface[]): Promise<LinkSample[]> {
  const links = JSON.parse((await runner.run('ip', ['-j', 'link', 'show'])).stdout) as { ifname?: string; flags?: string[] }[];
  const byName = new Map(links.map((l) => [l.ifname ?? '', l.flags ?? []]));
  return interfaces.map((i) => {
    const flags = byName.get(i.name) ?? [];
    return { name: i.name, role: i.role, up: flags.includes('UP') && flags.includes('LOWER_UP') };
  });
}
