// The drill's hands on a running lab: read its descriptor and the address lease, signal recorded
// pids, take an agent's links down and back (its routes saved and put back), cut its API path,
// start again what the drill stopped (lab.ts reviveLab). Guarantees: only pids the lab recorded are
// signalled, and only after checking they still live in that agent's namespace; every command is
// an argument array through the CommandRunner. Does not decide anything (drill-plan.ts does).
import { readFile, stat } from 'node:fs/promises';
import type { CommandRunner } from '../dataplane/command-runner.js';
import { KubeLeaseStore } from '../cluster/lease-store.js';
import { loadKubeConfig } from '../cluster/kubeconfig.js';
import { addressLeaseName } from '../plan/lease-names.js';
import { drainAgent } from '../cli/drain.js';
import { controlProxy, type ProxyMode } from './api-proxy.js';
import { describeLab, reviveLab } from './lab.js';
import { parseLabDescriptor, type DrillAgent, type LabDescriptor } from './drill-descriptor.js';

export interface LeaseHolder {
  readonly holder: string;
  readonly transitions: number;
  /** acquireTime written by the new holder (wall clock, epoch ms). */
  readonly acquiredAt?: number;
}

export class LabHands {
  readonly #stores = new Map<string, KubeLeaseStore>();

  constructor(
    readonly host: CommandRunner,
    readonly lab: { readonly name: string; readonly root?: string; readonly log?: (line: string) => void },
  ) {}

  /** The descriptor `smartnat lab status --json` prints, checked field by field. */
  async descriptor(): Promise<LabDescriptor> {
    const d = await describeLab({ name: this.lab.name, ...(this.lab.root ? { root: this.lab.root } : {}) });
    if (!d) throw new Error(`no lab ${this.lab.name} (run \`smartnat lab up --name ${this.lab.name}\`)`);
    return parseLabDescriptor(JSON.parse(JSON.stringify(d)) as unknown);
  }

  /** Starts again whatever the drill stopped: the API server, dead agents (lab.ts reviveLab). */
  async revive(): Promise<void> {
    await reviveLab({ name: this.lab.name, runner: this.host, ...(this.lab.root ? { root: this.lab.root } : {}), ...(this.lab.log ? { log: this.lab.log } : {}) });
  }

  #store(d: LabDescriptor): KubeLeaseStore {
    let s = this.#stores.get(d.kubeconfig);
    if (!s) {
      s = new KubeLeaseStore(loadKubeConfig(d.kubeconfig, {}), d.leaseNamespace);
      this.#stores.set(d.kubeconfig, s);
    }
    return s;
  }

  async addressHolder(d: LabDescriptor, address: string): Promise<LeaseHolder | undefined> {
    const lease = await this.#store(d).get(addressLeaseName(address));
    if (!lease) return undefined;
    return {
      holder: lease.holder,
      transitions: lease.leaseTransitions,
      ...(lease.acquireTime ? { acquiredAt: lease.acquireTime.getTime() } : {}),
    };
  }

  async setDrain(d: LabDescriptor, agent: string, on: boolean): Promise<void> {
    await drainAgent(this.#store(d), agent, on);
  }

  /** Agents whose interfaces carry `address` (as /32 or any prefix), from `ip -n NS -j addr`. */
  async agentsCarrying(d: LabDescriptor, address: string): Promise<string[]> {
    const found: string[] = [];
    for (const a of d.agents) {
      const { stdout } = await this.host.run('ip', ['-n', a.netns, '-4', '-j', 'addr', 'show']);
      const links = JSON.parse(stdout) as { ifname: string; addr_info?: { local?: string }[] }[];
      if (links.some((l) => (l.addr_info ?? []).some((i) => i.local === address))) found.push(a.name);
    }
    return found;
  }

  /** The interface of the agent that carries `address` now (the owner's uplink of it). */
  async deviceOf(agent: DrillAgent, address: string): Promise<string | undefined> {
    const { stdout } = await this.host.run('ip', ['-n', agent.netns, '-4', '-j', 'addr', 'show']);
    const links = JSON.parse(stdout) as { ifname: string; addr_info?: { local?: string }[] }[];
    return links.find((l) => (l.addr_info ?? []).some((i) => i.local === address))?.ifname;
  }

  /** Interfaces of the agent's namespace other than lo. */
  async links(agent: DrillAgent): Promise<string[]> {
    const { stdout } = await this.host.run('ip', ['-n', agent.netns, '-j', 'link', 'show']);
    return (JSON.parse(stdout) as { ifname: string }[]).map((l) => l.ifname).filter((n) => n !== 'lo');
  }

  /** Routes the kernel will drop with the links: every non-kernel route outside the local table. */
  async saveRoutes(agent: DrillAgent): Promise<SavedRoute[]> {
    const { stdout } = await this.host.run('ip', ['-n', agent.netns, '-4', '-j', 'route', 'show', 'table', 'all']);
    return (JSON.parse(stdout) as SavedRoute[]).filter((r) => r.protocol !== 'kernel' && r.table !== 'local' && r.type !== 'local' && r.type !== 'broadcast');
  }

  /** One `ip -batch` so every link goes down (or up) in one process, a few ms apart at most. */
  async setLinks(agent: DrillAgent, ifnames: readonly string[], state: 'up' | 'down'): Promise<void> {
    if (!ifnames.length) return;
    const input = ifnames.map((n) => `link set dev ${checkIfname(n)} ${state}\n`).join('');
    await this.host.run('ip', ['-n', agent.netns, '-force', '-batch', '-'], { input });
  }

  async restoreRoutes(agent: DrillAgent, routes: readonly SavedRoute[]): Promise<void> {
    const lines = routes.map(routeReplaceLine).filter((l): l is string => l !== undefined);
    if (lines.length) await this.host.run('ip', ['-n', agent.netns, '-force', '-batch', '-'], { input: lines.join('\n') + '\n', okExitCodes: [0, 1] });
  }

  /**
   * Removes `addresses`, and every /32 (keepalived's floating addresses, egress gateways among
   * them: ADR 0009), from every interface of the agent (a rebooted host has none).
   */
  async removeAddresses(agent: DrillAgent, addresses: readonly string[]): Promise<void> {
    const { stdout } = await this.host.run('ip', ['-n', agent.netns, '-4', '-j', 'addr', 'show']);
    const links = JSON.parse(stdout) as { ifname: string; addr_info?: { local?: string; prefixlen?: number }[] }[];
    const lines: string[] = [];
    for (const l of links) {
      for (const i of l.addr_info ?? []) {
        if (i.local !== undefined && (addresses.includes(i.local) || i.prefixlen === 32)) lines.push(`addr del ${i.local}/${i.prefixlen ?? 32} dev ${checkIfname(l.ifname)}`);
      }
    }
    if (lines.length) await this.host.run('ip', ['-n', agent.netns, '-force', '-batch', '-'], { input: lines.join('\n') + '\n', okExitCodes: [0, 1] });
  }

  async setApiPath(agent: DrillAgent, mode: ProxyMode): Promise<void> {
    if (!agent.apiProxyControl) throw new Error(`the lab names no API proxy control socket for ${agent.name}`);
    await controlProxy(agent.apiProxyControl, { mode, delayMs: { up: 0, down: 0 } });
  }
}

export interface SavedRoute {
  readonly dst: string;
  readonly gateway?: string;
  readonly dev?: string;
  readonly table?: string;
  readonly protocol?: string;
  readonly scope?: string;
  readonly metric?: number;
  readonly prefsrc?: string;
  readonly type?: string;
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
function checkIfname(n: string): string {
  if (!IFNAME.test(n)) throw new Error(`unexpected interface name ${JSON.stringify(n)}`);
  return n;
}

const TOKEN = /^[A-Za-z0-9_./:-]+$/;
/** `route replace ...` for ip -batch, from `ip -j route` output; undefined for anything odd. */
export function routeReplaceLine(r: SavedRoute): string | undefined {
  const parts = ['route', 'replace', r.dst];
  if (r.gateway) parts.push('via', r.gateway);
  if (r.dev) parts.push('dev', r.dev);
  if (r.table && r.table !== 'main') parts.push('table', r.table);
  if (r.protocol) parts.push('proto', r.protocol);
  if (r.scope && r.scope !== 'global') parts.push('scope', r.scope);
  if (r.metric !== undefined) parts.push('metric', String(r.metric));
  if (r.prefsrc) parts.push('src', r.prefsrc);
  return parts.every((p) => TOKEN.test(p)) ? parts.join(' ') : undefined;
}

/**
 * True when `pid` is alive, lives in the network namespace `netns` and its command line contains
 * `word`: a recorded pid is only signalled while it is still that process.
 */
export async function isLabProcess(pid: number, netns: string, word: string): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 1) return false;
  try {
    const [nsOfPid, nsOfLab, cmdline, status] = await Promise.all([
      stat(`/proc/${pid}/ns/net`),
      stat(`/run/netns/${netns}`),
      readFile(`/proc/${pid}/cmdline`, 'utf8'),
      readFile(`/proc/${pid}/status`, 'utf8'),
    ]);
    if (/^State:\s+Z/m.test(status)) return false;
    return nsOfPid.ino === nsOfLab.ino && nsOfPid.dev === nsOfLab.dev && cmdline.split('\0').some((arg) => arg.includes(word));
  } catch {
    return false;
  }
}
