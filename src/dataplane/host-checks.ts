// Checks and settings of the host the data plane depends on: which iptables backend holds the
// host's rules (legacy or nft, as kube-proxy's iptables-wrapper decides), the sysctls of ADR 0003
// (written, then the effective rp_filter read back), and whether each endpoint is routed through
// an internal interface (pods must be reachable from the instance: reason EndpointsUnreachable).
// Each returns findings with reasons; none of them changes rules.
import type { CommandRunner } from './command-runner.js';
import type { DesiredDataPlane } from '../plan/desired.js';
import type { IptablesTools } from './readback.js';
import { renderSysctl } from './render-sysctl.js';

export type IptablesBackend = 'nft' | 'legacy';

async function ruleCount(runner: CommandRunner, save: string): Promise<number> {
  try {
    const { stdout } = await runner.run(save, []);
    return stdout.split('\n').filter((l) => l.startsWith('-A ')).length;
  } catch {
    return -1;
  }
}

/** The backend with more rules in it wins (ties and an empty host: nft, Debian's default). */
export async function detectIptablesBackend(runner: CommandRunner): Promise<{ backend: IptablesBackend; tools: IptablesTools }> {
  const legacy = await ruleCount(runner, 'iptables-legacy-save');
  const nft = await ruleCount(runner, 'iptables-nft-save');
  const backend: IptablesBackend = legacy > nft ? 'legacy' : 'nft';
  return { backend, tools: { restore: `iptables-${backend}-restore`, save: `iptables-${backend}-save`, lockWaitSeconds: 5 } };
}

export type SysctlProblem = 'notWritable' | 'rpFilterStrict';

export interface SysctlFinding {
  readonly key: string;
  readonly problem: SysctlProblem;
  readonly message: string;
}

async function readSysctl(runner: CommandRunner, key: string): Promise<string | undefined> {
  try {
    return (await runner.run('sysctl', ['-n', key])).stdout.trim();
  } catch {
    return undefined;
  }
}

/**
 * Writes the rendered sysctls (`sysctl -e -p -`; a read-only /proc/sys is reported, not fatal) and
 * checks that the effective rp_filter of every uplink is not strict. The kernel uses the larger of
 * conf.all and the interface's value, so all=1 (a RHEL-style default) is fine once the uplink is 2;
 * only an effective 1 drops replies that arrive on a second uplink.
 */
export async function ensureSysctls(runner: CommandRunner, desired: DesiredDataPlane): Promise<SysctlFinding[]> {
  const findings: SysctlFinding[] = [];
  try {
    await runner.run('sysctl', ['-e', '-p', '-'], { input: renderSysctl(desired) });
  } catch (err: unknown) {
    findings.push({ key: '*', problem: 'notWritable', message: err instanceof Error ? err.message : String(err) });
  }
  const all = Number(await readSysctl(runner, 'net.ipv4.conf.all.rp_filter')) || 0;
  for (const u of desired.uplinks) {
    const key = `net.ipv4.conf.${u.name.replaceAll('.', '/')}.rp_filter`;
    const own = Number(await readSysctl(runner, key)) || 0;
    const effective = Math.max(all, own);
    if (effective === 1) {
      findings.push({ key, problem: 'rpFilterStrict', message: `${u.name}: effective rp_filter is 1 (strict: max of conf.all=${all} and ${u.name}=${own}); packets of a second uplink are dropped; set ${key}=2` });
    }
  }
  return findings;
}

export type EndpointRoute = 'internal' | 'viaExternal' | 'noRoute';

export interface EndpointFinding {
  readonly endpoint: string;
  readonly route: EndpointRoute;
  readonly device?: string;
}

/** `ip route get` for every endpoint: it must leave through an internal interface. */
export async function checkEndpointRoutes(runner: CommandRunner, desired: DesiredDataPlane, internal: readonly string[]): Promise<EndpointFinding[]> {
  const ips = [...new Set(desired.addresses.flatMap((a) => a.ports.flatMap((p) => p.endpoints.map((e) => e.ip))))].sort();
  const findings: EndpointFinding[] = [];
  for (const ip of ips) {
    let device: string | undefined;
    try {
      const parsed: unknown = JSON.parse((await runner.run('ip', ['-j', 'route', 'get', ip])).stdout);
      const first: unknown = Array.isArray(parsed) ? parsed[0] : undefined;
      const dev = typeof first === 'object' && first !== null ? (first as Record<string, unknown>)['dev'] : undefined;
      device = typeof dev === 'string' ? dev : undefined;
    } catch {
      device = undefined;
    }
    const route: EndpointRoute = device === undefined ? 'noRoute' : internal.includes(device) ? 'internal' : 'viaExternal';
    findings.push(device === undefined ? { endpoint: ip, route } : { endpoint: ip, route, device });
  }
  return findings;
}
