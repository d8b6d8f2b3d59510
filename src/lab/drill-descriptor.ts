// Reads the lab descriptor that `smartnat lab status --json` prints (issue 6, item 2) into the few
// facts a drill needs: agents with their namespaces and pids, the allowed client, the Mapping that
// serves an address. Guarantees: a descriptor missing a needed field is refused with the field's
// path; unknown fields are ignored (the lab may add more). Pure: it does not run `lab status`.

export interface DrillAgent {
  readonly name: string;
  readonly netns: string;
  /** The `smartnat agent` process; 0 or absent when not running. */
  readonly pid: number;
  readonly keepalivedPid: number;
  /** Control socket of this agent's API proxy (src/lab/api-proxy.ts), when the lab names it. */
  readonly apiProxyControl?: string;
}

export interface DrillClient {
  readonly name: string;
  readonly netns: string;
  readonly address: string;
  readonly allowed: boolean;
}

export interface DrillMapping {
  readonly namespace: string;
  readonly name: string;
  readonly addresses: readonly string[];
  readonly ports: readonly { readonly port: number; readonly protocol: 'TCP' | 'UDP' }[];
}

export interface LabDescriptor {
  readonly name: string;
  readonly dir: string;
  readonly kubeconfig: string;
  readonly apiserver: { readonly url: string; readonly pid: number };
  readonly leaseNamespace: string;
  readonly agents: readonly DrillAgent[];
  readonly clients: readonly DrillClient[];
  readonly pools: readonly { readonly name: string; readonly addresses: readonly string[] }[];
  readonly mappings: readonly DrillMapping[];
  /** The agents' lease duration when the lab reports it (ADR 0006 default otherwise). */
  readonly leaseDurationMs?: number;
}

export class DescriptorError extends Error {
  override readonly name = 'DescriptorError';
}

type Obj = Record<string, unknown>;

function obj(v: unknown, path: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DescriptorError(`lab descriptor: ${path} must be an object`);
  return v as Obj;
}
function str(o: Obj, key: string, path: string): string {
  const v = o[key];
  if (typeof v !== 'string' || v === '') throw new DescriptorError(`lab descriptor: ${path}.${key} must be a non-empty string`);
  return v;
}
function num(o: Obj, key: string, path: string, fallback?: number): number {
  const v = o[key] ?? fallback;
  if (v === null && fallback !== undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new DescriptorError(`lab descriptor: ${path}.${key} must be a number`);
  return v;
}
function arr(o: Obj, key: string, path: string): unknown[] {
  const v = o[key];
  if (!Array.isArray(v)) throw new DescriptorError(`lab descriptor: ${path}.${key} must be an array`);
  return v;
}
function optStr(o: Obj, key: string): string | undefined {
  const v = o[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function parseAgent(v: unknown, i: number): DrillAgent {
  const path = `agents[${i}]`;
  const a = obj(v, path);
  // The proxy's control socket, under whichever of the likely spellings the lab uses.
  const proxy = typeof a['apiProxy'] === 'object' && a['apiProxy'] !== null ? (a['apiProxy'] as Obj) : undefined;
  const control = optStr(a, 'apiProxyControl') ?? optStr(a, 'proxyControl') ?? (proxy ? optStr(proxy, 'control') : undefined);
  return {
    name: str(a, 'name', path),
    netns: str(a, 'netns', path),
    pid: num(a, 'pid', path, 0),
    keepalivedPid: num(a, 'keepalivedPid', path, 0),
    ...(control !== undefined ? { apiProxyControl: control } : {}),
  };
}

/** Validates `lab status --json` output (already JSON-parsed). */
export function parseLabDescriptor(value: unknown): LabDescriptor {
  const d = obj(value, '$');
  const api = obj(d['apiserver'], '$.apiserver');
  const clients = arr(d, 'clients', '$').map((v, i): DrillClient => {
    const c = obj(v, `clients[${i}]`);
    if (typeof c['allowed'] !== 'boolean') throw new DescriptorError(`lab descriptor: clients[${i}].allowed must be a boolean`);
    return { name: str(c, 'name', `clients[${i}]`), netns: str(c, 'netns', `clients[${i}]`), address: str(c, 'address', `clients[${i}]`), allowed: c['allowed'] };
  });
  const pools = arr(d, 'pools', '$').map((v, i) => {
    const p = obj(v, `pools[${i}]`);
    return { name: str(p, 'name', `pools[${i}]`), addresses: arr(p, 'addresses', `pools[${i}]`).map(String) };
  });
  const mappings = arr(d, 'mappings', '$').map((v, i): DrillMapping => {
    const path = `mappings[${i}]`;
    const m = obj(v, path);
    return {
      namespace: str(m, 'namespace', path),
      name: str(m, 'name', path),
      addresses: arr(m, 'addresses', path).map(String),
      ports: arr(m, 'ports', path).map((pv, j) => {
        const p = obj(pv, `${path}.ports[${j}]`);
        const protocol = String(p['protocol'] ?? 'TCP').toUpperCase();
        if (protocol !== 'TCP' && protocol !== 'UDP') throw new DescriptorError(`lab descriptor: ${path}.ports[${j}].protocol must be TCP or UDP`);
        return { port: num(p, 'port', `${path}.ports[${j}]`), protocol };
      }),
    };
  });
  const timings = typeof d['leaseSettings'] === 'object' && d['leaseSettings'] !== null ? (d['leaseSettings'] as Obj) : undefined;
  const leaseDurationMs = typeof timings?.['leaseDurationMs'] === 'number' ? timings['leaseDurationMs'] : undefined;
  return {
    name: str(d, 'name', '$'),
    dir: str(d, 'dir', '$'),
    kubeconfig: str(d, 'kubeconfig', '$'),
    apiserver: { url: str(api, 'url', '$.apiserver'), pid: num(api, 'pid', '$.apiserver', 0) },
    leaseNamespace: str(d, 'leaseNamespace', '$'),
    agents: arr(d, 'agents', '$').map(parseAgent),
    clients,
    pools,
    mappings,
    ...(leaseDurationMs !== undefined ? { leaseDurationMs } : {}),
  };
}

export interface DrillTarget {
  readonly address: string;
  readonly tcpPort: number;
  /** Absent when no Mapping serves UDP on the address (the drill then probes TCP only). */
  readonly udpPort?: number;
  readonly client: DrillClient;
  /** The client outside allowedSources, when the lab has one. */
  readonly deniedClient?: DrillClient;
}

/** What a drill probes: the given address (or the first mapped one), a TCP and a UDP port, the allowed client. */
export function chooseTarget(d: LabDescriptor, address?: string): DrillTarget {
  const mapping = address === undefined ? d.mappings.find((m) => m.addresses.length > 0) : d.mappings.find((m) => m.addresses.includes(address));
  if (!mapping) throw new DescriptorError(address === undefined ? 'the lab has no Mapping with an address' : `no Mapping of lab ${d.name} serves ${address}`);
  const target = address ?? mapping.addresses[0]!;
  const served = d.mappings.filter((m) => m.addresses.includes(target)).flatMap((m) => m.ports);
  const tcp = served.find((p) => p.protocol === 'TCP');
  const udp = served.find((p) => p.protocol === 'UDP');
  if (!tcp) throw new DescriptorError(`no Mapping serves TCP on ${target}`);
  const client = d.clients.find((c) => c.allowed);
  if (!client) throw new DescriptorError(`lab ${d.name} has no client inside allowedSources`);
  const denied = d.clients.find((c) => !c.allowed);
  return { address: target, tcpPort: tcp.port, ...(udp ? { udpPort: udp.port } : {}), client, ...(denied ? { deniedClient: denied } : {}) };
}

/** Every address some Mapping of the lab uses, in order, without repeats. */
export function addressesInUse(d: LabDescriptor): string[] {
  return [...new Set(d.mappings.flatMap((m) => m.addresses))];
}
