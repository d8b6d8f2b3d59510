// keepalived.conf rendering: a pure view model decides every value, a logic-free Handlebars
// template prints it. Guarantees: deterministic text for the same input (instances sorted by
// address), every printed value re-printed from typed data (IPv4, interface name, paths checked);
// it does not decide ownership (the lease does) and writes no file.
import Handlebars from 'handlebars';
import ipaddr from 'ipaddr.js';

/** Priority arithmetic (docs/adr/0007): base + the number in the instance's priority track file. */
export const BASE_PRIORITY = 100;
export const PRIORITY_BOOST = {
  /** The lease holder, confirmed by the API. Effective 250. */
  holder: 150,
  /** A holder that cannot renew (API unreachable): loses to a confirmed holder. Effective 200. */
  degraded: 100,
  /** An old owner during the grace period of a planned handoff. Effective 150. */
  releasing: 50,
  /** Not the holder. Its eligibility file also puts the instance in FAULT, so it never becomes master. */
  standby: 0,
} as const;
export type PriorityRole = keyof typeof PRIORITY_BOOST;

export interface KeepalivedInstanceInput {
  readonly address: string;
  readonly interface: string;
  readonly vrid: number;
  /** This agent's own address on that interface (unicast source). */
  readonly sourceAddress: string;
  /** The other eligible agents' addresses on that interface. Never empty: see renderKeepalivedConfig. */
  readonly peers: readonly string[];
  readonly advertIntervalMs: number;
  /**
   * The address's egress gateway (ADR 0009): an internal address carried by the same instance, so
   * it is on the wire exactly where the external address is. Absent when the pool has no egress.
   */
  readonly companion?: { readonly address: string; readonly interface: string };
}

export interface KeepalivedInput {
  readonly agent: string;
  /** Absolute directory for track files and the notify FIFO. */
  readonly stateDir: string;
  readonly instances: readonly KeepalivedInstanceInput[];
}

export class KeepalivedRenderError extends Error {
  override readonly name = 'KeepalivedRenderError';
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
const SAFE_PATH = /^\/[A-Za-z0-9._/-]{0,200}$/;
const AGENT = /^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/;

function ipv4(value: string, what: string): string {
  if (!ipaddr.IPv4.isValidFourPartDecimal(value)) throw new KeepalivedRenderError(`${what}: not an IPv4 address: ${JSON.stringify(value)}`);
  return ipaddr.IPv4.parse(value).toString();
}

function ipv4Number(address: string): number {
  return ipaddr.IPv4.parse(address).octets.reduce((n, o) => n * 256 + o, 0);
}

/** keepalived instance name of an address: SN_a_b_c_d (STYLE.md). */
export function instanceName(address: string): string {
  return `SN_${ipv4(address, 'address').replaceAll('.', '_')}`;
}

/** advert_int in seconds as keepalived reads it (VRRPv3 honours centiseconds). */
export function renderAdvertInterval(ms: number): string {
  if (!Number.isInteger(ms) || ms < 10 || ms > 40_950 || ms % 10 !== 0) {
    throw new KeepalivedRenderError(`advert interval must be 10..40950 ms in steps of 10, got ${ms}`);
  }
  return (ms / 1000).toFixed(2).replace(/0$/, '').replace(/\.0$/, '');
}

export function trackFilePaths(stateDir: string, address: string): { eligibility: string; priority: string } {
  const name = instanceName(address);
  return { eligibility: `${stateDir}/track/${name}.eligible`, priority: `${stateDir}/track/${name}.priority` };
}

export function agentTrackFilePath(stateDir: string): string {
  return `${stateDir}/track/agent.alive`;
}

export function notifyFifoPath(stateDir: string): string {
  return `${stateDir}/keepalived.fifo`;
}

interface InstanceView {
  readonly name: string;
  readonly interface: string;
  readonly vrid: number;
  readonly basePriority: number;
  readonly advertInt: string;
  readonly sourceAddress: string;
  readonly peers: readonly string[];
  readonly address: string;
  /** Zero or one companion address (a list, so the logic-free template only iterates). */
  readonly companions: readonly { readonly address: string; readonly interface: string }[];
  readonly eligibility: { readonly name: string; readonly path: string };
  readonly priority: { readonly name: string; readonly path: string };
}

export interface KeepalivedView {
  readonly agent: string;
  readonly routerId: string;
  readonly notifyFifo: string;
  readonly garpMasterDelay: number;
  readonly garpMasterRepeat: number;
  readonly agentTrack: { readonly name: string; readonly path: string };
  readonly instances: readonly InstanceView[];
}

function companionView(owner: string, c: { address: string; interface: string }, seen: Set<string>): { address: string; interface: string } {
  const address = ipv4(c.address, `${owner} companion`);
  if (!IFNAME.test(c.interface)) throw new KeepalivedRenderError(`${owner}: bad companion interface name ${JSON.stringify(c.interface)}`);
  if (seen.has(address)) throw new KeepalivedRenderError(`${owner}: companion ${address} listed twice`);
  seen.add(address);
  return { address, interface: c.interface };
}

/** Pure: validates the input and decides every value the template prints. */
export function computeKeepalivedView(input: KeepalivedInput): KeepalivedView {
  if (!AGENT.test(input.agent)) throw new KeepalivedRenderError(`agent name is not a DNS label/subdomain: ${JSON.stringify(input.agent)}`);
  if (!SAFE_PATH.test(input.stateDir)) throw new KeepalivedRenderError(`state dir must be an absolute plain path: ${JSON.stringify(input.stateDir)}`);
  const seenAddress = new Set<string>();
  const seenVrid = new Map<string, string>();
  const instances = input.instances.map((i): InstanceView => {
    const address = ipv4(i.address, 'address');
    if (seenAddress.has(address)) throw new KeepalivedRenderError(`address ${address} listed twice`);
    seenAddress.add(address);
    if (!IFNAME.test(i.interface)) throw new KeepalivedRenderError(`${address}: bad interface name ${JSON.stringify(i.interface)}`);
    if (!Number.isInteger(i.vrid) || i.vrid < 1 || i.vrid > 255) throw new KeepalivedRenderError(`${address}: VRID must be 1..255, got ${i.vrid}`);
    const vridKey = `${i.interface}/${i.vrid}`;
    const clash = seenVrid.get(vridKey);
    if (clash) throw new KeepalivedRenderError(`${address}: VRID ${i.vrid} on ${i.interface} already used by ${clash}`);
    seenVrid.set(vridKey, address);
    const sourceAddress = ipv4(i.sourceAddress, `${address} source address`);
    const peers = [...new Set(i.peers.map((p) => ipv4(p, `${address} peer`)))]
      .filter((p) => p !== sourceAddress)
      .sort((a, b) => ipv4Number(a) - ipv4Number(b));
    const companions = i.companion === undefined ? [] : [companionView(address, i.companion, seenAddress)];
    const name = instanceName(address);
    const paths = trackFilePaths(input.stateDir, address);
    return {
      name,
      interface: i.interface,
      vrid: i.vrid,
      basePriority: BASE_PRIORITY,
      advertInt: renderAdvertInterval(i.advertIntervalMs),
      sourceAddress,
      // keepalived falls back to multicast when no unicast peer is listed; VRRP must stay unicast
      // (DESIGN.md 3.3), so a lone agent names itself as its only peer: its adverts go nowhere else.
      peers: peers.length > 0 ? peers : [sourceAddress],
      address,
      companions,
      eligibility: { name: `${name}_elig`, path: paths.eligibility },
      priority: { name: `${name}_prio`, path: paths.priority },
    };
  });
  instances.sort((a, b) => ipv4Number(a.address) - ipv4Number(b.address));
  return {
    agent: input.agent,
    routerId: `smartnat-${input.agent}`.slice(0, 63),
    notifyFifo: notifyFifoPath(input.stateDir),
    garpMasterDelay: 1,
    garpMasterRepeat: 3,
    agentTrack: { name: 'SN_agent_alive', path: agentTrackFilePath(input.stateDir) },
    instances,
  };
}

export type TemplateSource = string;

/** Compiles the template once in a Handlebars environment of its own (strict, no escaping). */
export function compileKeepalivedTemplate(source: TemplateSource): (view: KeepalivedView) => string {
  const env = Handlebars.create();
  return env.compile<KeepalivedView>(source, { strict: true, noEscape: true, knownHelpersOnly: true });
}

export function renderKeepalivedConfig(template: (view: KeepalivedView) => string, input: KeepalivedInput): string {
  return template(computeKeepalivedView(input));
}
