// The dashboard against real series: a lab of its own, a real Prometheus scraping its three agents
// every second, one `smartnat drill kill`; then every panel query of
// charts/smartnat/dashboards/smartnat.json must return data, the metrics must show what the drill
// did (the victim's scrape failing, the transition counted on the new owner, a fence, ownership
// summing to the addresses in use), and `kubectl get mappings`, `smartnat status --json` and the
// agents' /metrics must name the same owners; the move is one OwnerChanged Event per transition.
// keepalived's FIFO, the API requests, rule sizes and the echo Mapping's connection, packet and byte counters agree with
// the drill. Mapping Ready follows the EndpointSlice; a real iptables-restore failure shows on its
// panel and as one DataPlaneApplyFailed Event on the agent's Lease however often it is retried. A PNG
// of the ownership series is drawn from Prometheus range data (UPDATE_DOCS_IMG=1: docs/img/).
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExecaCommandRunner } from '../../src/dataplane/command-runner.js';
import { addressesInUse } from '../../src/lab/drill-descriptor.js';
import { uniqueLabName } from '../../src/lab/topology.js';
import type { PlotInput, XySeries } from '../support/plot.js';
import { writeStackedPlotPng } from './picture.js';
import { build, host, httpGet, labDown, labUp, Prometheus, repo, sampleValue, sleep, smartnat, waitFor, type Lab } from './harness.js';

const NAME = uniqueLabName();
const DASHBOARD = join(repo, 'charts', 'smartnat', 'dashboards', 'smartnat.json');
const PICTURE = join(repo, 'docs', 'img', 'observability-failover.png');
/** What a Grafana user sees with "All" agents and a 1 s scrape: $__rate_interval is 4 scrapes. */
const VARIABLES: Readonly<Record<string, string>> = { instance: '.*', __rate_interval: '4s' };

interface PanelTarget {
  readonly panel: string;
  readonly expr: string;
}

function dashboardTargets(): PanelTarget[] {
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: { type: string; title: string; targets?: { expr?: string }[] }[] };
  return dash.panels
    .filter((p) => p.type !== 'row' && p.type !== 'text')
    .flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr ?? '' })));
}

/** Grafana's substitution of $var and ${var}; an unknown variable is left in place (the query then fails). */
function substitute(expr: string): string {
  return expr.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, a: string | undefined, b: string | undefined) => VARIABLES[a ?? b ?? ''] ?? whole);
}

interface DrillRun {
  readonly previousOwner: string;
  readonly owner: string;
  readonly moved: boolean;
  readonly injectedAt: string;
}

interface StatusJson {
  readonly addresses: readonly { address: string; owner: string | null; ready: boolean }[];
  readonly agents: readonly { name: string; owned: number }[];
}

interface MappingJson {
  readonly metadata: { namespace: string; name: string };
  readonly status?: {
    configuredAddresses?: Record<string, { owner?: string }>;
    conditions?: { type: string; status: string; reason: string }[];
  };
}

const targets = dashboardTargets();
let lab: Lab | undefined;
let prom: Prometheus | undefined;
let labStart = 0;
let run: DrillRun | undefined;
let drilledAddress = '';
let kubectl = '';
let workDir = '';

const seconds = (): number => Date.now() / 1000;
const instanceOf = (agent: string): string => lab?.agents.find((a) => a.name === agent)?.instance ?? `unknown agent ${agent}`;
const agentOf = (instance: string): string => lab?.agents.find((a) => a.instance === instance)?.name ?? instance;

async function kube(args: readonly string[]): Promise<string> {
  return (await host.run(kubectl, ['--kubeconfig', lab!.descriptor.kubeconfig, ...args], { timeoutMs: 30_000 })).stdout;
}

beforeAll(async () => {
  await build();
  kubectl = join((await host.run('bash', [join(repo, 'test', 'testenv', 'build.sh')], { timeoutMs: 3_600_000 })).stdout.trim(), 'kubectl');
  workDir = await mkdtemp(join(tmpdir(), 'smartnat-obs-'));
  labStart = seconds();
  lab = await labUp(NAME);
  prom = await Prometheus.start(lab.agents.map((a) => a.instance));
  const p = prom;
  // Ten seconds of every agent's series before the fault, so the picture and "before" have samples.
  await waitFor('every agent scraped 10 times in a row', async () => {
    const r = await p.query('sum_over_time(up{job="smartnat"}[11s])');
    return r.length === lab!.agents.length && r.every((s) => s.value >= 10) ? true : undefined;
  }, 60_000);
  const report = JSON.parse(await smartnat(['drill', 'kill', '--name', NAME, '--json'], 180_000)) as { ok: boolean; address: string; runs: DrillRun[] };
  if (!report.ok || report.runs[0] === undefined) throw new Error(`drill kill failed: ${JSON.stringify(report).slice(0, 3000)}`);
  run = report.runs[0];
  drilledAddress = report.address;
  // The revived victim is scraped again and every agent reports ownership.
  await waitFor('every agent scraped again after the drill', async () => {
    const r = await p.query('up{job="smartnat"} == 1');
    return r.length === lab!.agents.length ? true : undefined;
  }, 60_000);
  await sleep(3000);
}, 900_000);

afterAll(async () => {
  try {
    await prom?.stop();
  } finally {
    try {
      await labDown(NAME);
    } finally {
      if (workDir) await rm(workDir, { recursive: true, force: true });
    }
  }
}, 300_000);

describe('the Grafana dashboard against a real Prometheus through a kill drill', () => {
  test('the dashboard has panel queries and no variable this test does not know', () => {
    expect(targets.length).toBeGreaterThanOrEqual(8);
    for (const t of targets) expect({ panel: t.panel, left: substitute(t.expr).match(/\$\w+/g) }).toEqual({ panel: t.panel, left: null });
  });

  test.each(targets.map((t) => [t.panel, t.expr] as const))('panel "%s" returns data', async (_panel, expr) => {
    const series = await prom!.queryRange(substitute(expr), labStart, seconds(), 1);
    const finite = series.flatMap((s) => s.values).filter(([, v]) => Number.isFinite(Number(v)));
    expect({ expr, series: series.length > 0, finiteSamples: finite.length > 0 }).toEqual({ expr, series: true, finiteSamples: true });
  });
});

describe('the metrics tell what the drill did', () => {
  test('the victim could not be scraped after the fault (its host died), and is scraped again after the revival', async () => {
    const injected = Date.parse(run!.injectedAt) / 1000;
    const up = await prom!.queryRange(`up{instance="${instanceOf(run!.previousOwner)}"}`, injected, seconds(), 1);
    const values = up.flatMap((s) => s.values.map(([, v]) => Number(v)));
    expect(values).toContain(0);
    expect(values[values.length - 1]).toBe(1);
  });

  test('the new owner counted the lease transition, and a survivor fenced the dead agent', async () => {
    expect(run!.moved).toBe(true);
    const injected = Date.parse(run!.injectedAt) / 1000;
    const expr = `sum(smartnat_lease_transitions_total{instance="${instanceOf(run!.owner)}"})`;
    const before = (await prom!.query(expr, injected - 1))[0]?.value ?? 0;
    const after = (await prom!.query(expr))[0]?.value ?? 0;
    expect({ owner: run!.owner, before, increased: after > before }).toEqual({ owner: run!.owner, before, increased: true });
    const fenced = await prom!.query(`sum(smartnat_fence_attempts_total{outcome="fenced", instance!="${instanceOf(run!.previousOwner)}"})`);
    expect(fenced[0]?.value ?? 0).toBeGreaterThanOrEqual(1);
  });

  test('the new owner observed the failover duration and recorded one FailoverCompleted Event for the drilled address', async () => {
    const count = await prom!.query(`sum(smartnat_failover_duration_seconds_count{instance="${instanceOf(run!.owner)}"})`);
    expect(count[0]?.value ?? 0).toBeGreaterThanOrEqual(1);
    const read = async (): Promise<{ involvedObject: { kind: string } }[]> =>
      (JSON.parse(await kube(['-n', 'smartnat-system', 'get', 'events', '--field-selector', `reason=FailoverCompleted,involvedObject.name=smartnat-agent-${run!.owner}`, '-o', 'json'])) as { items: { message: string; involvedObject: { kind: string } }[] }).items
        .filter((e) => e.message.startsWith(`${drilledAddress} taken over from ${run!.previousOwner}:`));
    const events = await waitFor('the FailoverCompleted Event', async () => ((await read()).length > 0 ? read() : undefined), 30_000).catch(async () => read());
    expect(events.map((e) => e.involvedObject.kind)).toEqual(['Lease']);
  });

  test('no agent found a duplicate of an address on the wire (the dead host had its links down)', async () => {
    const dup = await prom!.query('smartnat_duplicate_address_total');
    expect(dup.map((s) => [agentOf(s.metric['instance'] ?? ''), s.value]).sort()).toEqual(lab!.agents.map((a) => [a.name, 0]).sort());
  });

  test('owned addresses per agent sum to the addresses in use, one agent each', async () => {
    const inUse = addressesInUse(lab!.descriptor).length;
    const owned = await waitFor('ownership to settle in Prometheus', async () => {
      const r = await prom!.query('smartnat_owned_addresses');
      const total = r.reduce((n, s) => n + s.value, 0);
      return r.length === lab!.agents.length && total === inUse ? r : undefined;
    }, 30_000);
    expect(owned.every((s) => s.value >= 0 && Number.isInteger(s.value))).toBe(true);
  });

  test('keepalived, the API, the rules and the Mapping counters agree with the drill', async () => {
    // keepalived on the new owner alone reports MASTER for the drilled address (from its notify FIFO).
    const masters = await waitFor('one MASTER for the drilled address', async () => {
      const r = await prom!.query(`smartnat_keepalived_state{address="${drilledAddress}", state="MASTER"} == 1`);
      return r.length === 1 ? r : undefined;
    }, 30_000).catch(async () => prom!.query(`smartnat_keepalived_state{address="${drilledAddress}", state="MASTER"} == 1`));
    expect(masters.map((s) => agentOf(s.metric['instance'] ?? ''))).toEqual([run!.owner]);
    // Every agent renews its lease through the instrumented store (PATCHes) and has rules in place.
    const patches = await prom!.query('sum by (instance) (smartnat_api_request_duration_seconds_count{resource="leases", verb="patch"})');
    expect(patches.filter((s) => s.value > 0).map((s) => agentOf(s.metric['instance'] ?? '')).sort()).toEqual(lab!.agents.map((a) => a.name).sort());
    const nat = await prom!.query('smartnat_dataplane_rules{table="nat"} > 0');
    expect(nat.map((s) => agentOf(s.metric['instance'] ?? '')).sort()).toEqual(lab!.agents.map((a) => a.name).sort());
    // The new owner measured the failover it took (a finite, positive duration).
    const failover = await prom!.query(`smartnat_failover_duration_seconds_count{instance="${instanceOf(run!.owner)}"}`);
    expect(failover[0]?.value ?? 0).toBeGreaterThanOrEqual(1);
    const mean = await prom!.query(`smartnat_failover_duration_seconds_sum{instance="${instanceOf(run!.owner)}"} / smartnat_failover_duration_seconds_count{instance="${instanceOf(run!.owner)}"}`);
    expect(Number.isFinite(mean[0]?.value) && (mean[0]?.value ?? 0) > 0).toBe(true);
    // The drill's probes went through the echo Mapping: its owners counted new connections.
    const echo = await prom!.query('sum(smartnat_mapping_connections_total{namespace="demo", mapping="echo"})');
    expect(echo[0]?.value ?? 0).toBeGreaterThan(0);
    // ... and their packets and bytes (ADR 0011): at least one packet per connection, 20+ bytes each; none denied.
    const echoPackets = (await prom!.query('sum(smartnat_mapping_packets_total{namespace="demo", mapping="echo", verdict="allowed"})'))[0]?.value ?? 0;
    const echoBytes = (await prom!.query('sum(smartnat_mapping_bytes_total{namespace="demo", mapping="echo", verdict="allowed"})'))[0]?.value ?? 0;
    expect(echoPackets).toBeGreaterThanOrEqual(echo[0]?.value ?? 0);
    expect(echoBytes).toBeGreaterThanOrEqual(echoPackets * 20);
    expect((await prom!.query('sum(smartnat_mapping_packets_total{namespace="demo", mapping="echo", verdict="denied"})'))[0]?.value).toBe(0);
  }, 60_000);

  test('/healthz, /readyz and /metrics answer 200 on every agent after the drill', async () => {
    const answers = await Promise.all(lab!.agents.flatMap((a) => ['/healthz', '/readyz', '/metrics'].map(async (path) => `${a.name}${path} ${(await httpGet(`${a.base}${path}`)).status}`)));
    expect(answers).toEqual(lab!.agents.flatMap((a) => ['/healthz', '/readyz', '/metrics'].map((path) => `${a.name}${path} 200`)));
  });
});

interface Story {
  readonly mappingOwners: Record<string, string | null>;
  readonly ownerColumn: string;
  readonly statusOwners: Record<string, string | null>;
  readonly statusOwned: Record<string, number>;
  readonly metricsOwned: Record<string, number>;
  readonly leaseOwned: Record<string, number>;
}

async function readStory(): Promise<Story> {
  const mapping = (JSON.parse(await kube(['get', 'mappings', '-A', '-o', 'json'])) as { items: MappingJson[] }).items.find((m) => m.metadata.name === 'echo')!;
  const configured = mapping.status?.configuredAddresses ?? {};
  const mappingOwners = Object.fromEntries(Object.entries(configured).map(([a, c]) => [a, c.owner ?? null]));
  const table = (await kube(['get', 'mappings', '-A'])).trim().split('\n');
  const header = (table[0] ?? '').split(/\s{2,}/);
  const row = table.slice(1).map((l) => l.split(/\s{2,}/)).find((cells) => cells[1] === 'echo') ?? [];
  const ownerColumn = row[header.indexOf('OWNER')] ?? '';
  const status = JSON.parse(await smartnat(['status', '--kubeconfig', lab!.descriptor.kubeconfig, '--json'])) as StatusJson;
  const statusOwners = Object.fromEntries(status.addresses.filter((a) => a.address in configured).map((a) => [a.address, a.owner]));
  const statusOwned = Object.fromEntries(status.agents.map((a) => [a.name, a.owned]));
  const metricsOwned = Object.fromEntries(await Promise.all(lab!.agents.map(async (a) => [a.name, sampleValue((await httpGet(a.metrics)).body, 'smartnat_owned_addresses') ?? -1] as const)));
  const leaseOwned = Object.fromEntries(lab!.agents.map((a) => [a.name, Object.values(statusOwners).filter((o) => o === a.name).length]));
  return { mappingOwners, ownerColumn, statusOwners, statusOwned, metricsOwned, leaseOwned };
}

const consistent = (s: Story): boolean =>
  JSON.stringify(s.mappingOwners) === JSON.stringify(s.statusOwners) &&
  JSON.stringify(s.metricsOwned) === JSON.stringify(s.leaseOwned) &&
  JSON.stringify(s.statusOwned) === JSON.stringify(s.leaseOwned) &&
  s.ownerColumn === (s.mappingOwners[Object.keys(s.mappingOwners).sort()[0] ?? ''] ?? '');

describe('status tells the truth after the drill', () => {
  test('kubectl get mappings, smartnat status --json and every /metrics name the same owners', async () => {
    let last: Story | undefined;
    // Each source is written at its own moment (status by the leader, metrics by each agent): they
    // must converge, and stay together, within a few status passes.
    await waitFor('the three stories to agree', async () => {
      last = await readStory();
      return consistent(last) ? true : undefined;
    }, 30_000, 1000).catch(() => undefined);
    const s = last ?? (await readStory());
    expect(Object.keys(s.mappingOwners).sort()).toEqual([...addressesInUse(lab!.descriptor)].sort());
    expect(Object.values(s.mappingOwners).every((o) => o !== null && lab!.agents.some((a) => a.name === o))).toBe(true);
    expect(s.statusOwners).toEqual(s.mappingOwners);
    expect(s.statusOwned).toEqual(s.leaseOwned);
    expect(s.metricsOwned).toEqual(s.leaseOwned);
    // The OWNER printer column is `.status.owners`, the leader's sorted list of the holders (a
    // column over the configuredAddresses map showed an arbitrary entry: Go map order).
    expect(s.ownerColumn).toBe([...new Set(Object.values(s.mappingOwners))].sort().join(','));
  }, 60_000);

  test('the Mapping records the move as OwnerChanged Events, each transition once, ending with the new owner', async () => {
    const injectedMs = Date.parse(run!.injectedAt);
    const address = drilledAddress;
    const events = (JSON.parse(await kube(['-n', 'demo', 'get', 'events', '-o', 'json'])) as { items: { involvedObject: { name: string; kind: string }; reason: string; message: string; count?: number; firstTimestamp?: string; lastTimestamp?: string }[] }).items
      .filter((e) => e.involvedObject.kind === 'Mapping' && e.involvedObject.name === 'echo' && e.reason === 'OwnerChanged' && e.message.startsWith(`${address} `))
      .filter((e) => Date.parse(e.lastTimestamp ?? e.firstTimestamp ?? '') >= injectedMs - 1000)
      .sort((a, b) => Date.parse(a.firstTimestamp ?? '') - Date.parse(b.firstTimestamp ?? ''));
    const messages = events.map((e) => `${e.message} x${e.count ?? 1}`);
    expect(messages.length).toBeGreaterThan(0);
    expect(new Set(messages).size).toBe(messages.length);
    expect(messages.every((m) => m.endsWith(' x1'))).toBe(true);
    expect(messages[messages.length - 1]).toMatch(new RegExp(`(moved from ${run!.previousOwner} to ${run!.owner}|is now owned by ${run!.owner}) x1$`));
  }, 60_000);

  test('Mapping Ready turns False (NoReadyEndpoints) when the EndpointSlice loses its endpoints, and True when they return', async () => {
    const slice = JSON.parse(await kube(['-n', 'demo', 'get', 'endpointslice', 'echo-lab', '-o', 'json'])) as { endpoints: unknown[] };
    expect(slice.endpoints.length).toBeGreaterThan(0);
    const ready = async (): Promise<{ column: string; condition: string; reason: string }> => {
      const m = JSON.parse(await kube(['-n', 'demo', 'get', 'mapping', 'echo', '-o', 'json'])) as MappingJson;
      const c = m.status?.conditions?.find((x) => x.type === 'Ready');
      const table = (await kube(['-n', 'demo', 'get', 'mapping', 'echo'])).trim().split('\n');
      const header = (table[0] ?? '').split(/\s{2,}/);
      const column = (table[1] ?? '').split(/\s{2,}/)[header.indexOf('READY')] ?? '';
      return { column, condition: c?.status ?? '', reason: c?.reason ?? '' };
    };
    expect(await ready()).toEqual({ column: 'True', condition: 'True', reason: 'Ready' });
    const emptied = JSON.stringify([{ op: 'replace', path: '/endpoints', value: [] }]);
    const restored = JSON.stringify([{ op: 'replace', path: '/endpoints', value: slice.endpoints }]);
    try {
      await kube(['-n', 'demo', 'patch', 'endpointslice', 'echo-lab', '--type=json', '-p', emptied]);
      const down = await waitFor('Ready=False', async () => {
        const r = await ready();
        return r.condition === 'False' ? r : undefined;
      }, 20_000);
      expect(down).toEqual({ column: 'False', condition: 'False', reason: 'NoReadyEndpoints' });
      const status = JSON.parse(await smartnat(['status', '--kubeconfig', lab!.descriptor.kubeconfig, '--json'])) as StatusJson;
      expect(status.addresses.filter((a) => addressesInUse(lab!.descriptor).includes(a.address)).map((a) => a.ready)).toEqual(addressesInUse(lab!.descriptor).map(() => false));
    } finally {
      await kube(['-n', 'demo', 'patch', 'endpointslice', 'echo-lab', '--type=json', '-p', restored]);
    }
    const up = await waitFor('Ready=True again', async () => {
      const r = await ready();
      return r.condition === 'True' ? r : undefined;
    }, 20_000);
    expect(up).toEqual({ column: 'True', condition: 'True', reason: 'Ready' });
  }, 90_000);
});

describe('a data-plane apply failure reaches the dashboard', () => {
  test('a foreign rule holding a chain the agent must delete makes iptables-restore fail: the apply-failures panel shows tool="iptables" on that agent, and the agent recovers once the rule goes', async () => {
    const agent = lab!.descriptor.agents[1]!;
    const inNs = new ExecaCommandRunner(agent.netns);
    const inUse = addressesInUse(lab!.descriptor);
    const spare = lab!.descriptor.pools[0]!.addresses.find((a) => !inUse.includes(a))!;
    const mapping = { apiVersion: 'smartnat.aureacentral.com/v1alpha1', kind: 'Mapping', metadata: { name: 'obs-extra', namespace: 'demo' }, spec: { addresses: [spare], allowedSources: ['198.18.1.0/24'], serviceName: 'echo', ports: [{ port: 8080, protocol: 'tcp' }] } };
    const panel = targets.find((t) => t.panel === 'Data-plane apply failures');
    expect(panel).toBeDefined();
    const natRules = async (): Promise<string> => (await inNs.run('iptables-save', ['-t', 'nat'])).stdout;
    const FOREIGN = 'OBS-FOREIGN';
    const startedAt = Date.now();
    await host.run(kubectl, ['--kubeconfig', lab!.descriptor.kubeconfig, 'apply', '-f', '-'], { input: JSON.stringify(mapping), timeoutMs: 30_000 });
    try {
      const chain = await waitFor('the Mapping programmed on the agent', async () => /-m comment --comment "demo\/obs-extra [^"]*" -j (SMARTNAT-S-\w+)/.exec(await natRules())?.[1], 20_000);
      await inNs.run('iptables', ['-w', '5', '-t', 'nat', '-N', FOREIGN]);
      await inNs.run('iptables', ['-w', '5', '-t', 'nat', '-A', FOREIGN, '-j', chain]);
      await kube(['-n', 'demo', 'delete', 'mapping', 'obs-extra']);
      const failing = await waitFor('the panel to show the failure', async () => {
        const r = await prom!.query(`max_over_time((${substitute(panel!.expr)})[20s:1s])`);
        return r.find((x) => x.metric['instance'] === instanceOf(agent.name) && x.metric['tool'] === 'iptables' && x.value > 0);
      }, 30_000);
      expect(failing.metric['tool']).toBe('iptables');
      // Retries keep failing (two or more counted), yet the agent's Lease carries one Event for the streak.
      const series = 'smartnat_dataplane_apply_failures_total{tool="iptables"}';
      await waitFor('a second failed attempt', async () => ((sampleValue((await httpGet(`${lab!.agents.find((a) => a.name === agent.name)!.metrics}`)).body, series) ?? 0) >= 2 ? true : undefined), 30_000);
      const events = (JSON.parse(await kube(['-n', 'smartnat-system', 'get', 'events', '--field-selector', `reason=DataPlaneApplyFailed,involvedObject.name=smartnat-agent-${agent.name}`, '-o', 'json'])) as { items: { message: string; lastTimestamp?: string; involvedObject: { kind: string; uid?: string } }[] }).items
        .filter((e) => Date.parse(e.lastTimestamp ?? '') >= startedAt - 1000);
      expect(events.map((e) => [e.involvedObject.kind, e.message.includes('iptables-restore')])).toEqual([['Lease', true]]);
    } finally {
      await inNs.run('iptables', ['-w', '5', '-t', 'nat', '-F', FOREIGN], { okExitCodes: [0, 1] });
      await inNs.run('iptables', ['-w', '5', '-t', 'nat', '-X', FOREIGN], { okExitCodes: [0, 1] });
      await kube(['-n', 'demo', 'delete', 'mapping', 'obs-extra', '--ignore-not-found']);
    }
    // The retry after the foreign rule is gone deletes the Mapping's chains.
    await waitFor('the Mapping\'s chains gone from the agent', async () => (/demo\/obs-extra/.test(await natRules()) ? undefined : true), 20_000);
  }, 120_000);
});

describe('a picture from the real series', () => {
  test('owned addresses per agent around the kill, drawn from Prometheus range data', async () => {
    const injected = Date.parse(run!.injectedAt) / 1000;
    const [from, to] = [injected - 8, Math.min(seconds(), injected + 30)];
    const rel = (t: number): number => Math.round((t - injected) * 10) / 10;
    const perAgent = await prom!.queryRange('sum by (instance) (smartnat_owned_addresses)', from, to, 1);
    const total = await prom!.queryRange('sum(smartnat_owned_addresses)', from, to, 1);
    // A failed scrape leaves a hole; each run of samples becomes its own line, so no line is drawn
    // across time where Prometheus has no sample.
    const runsOf = (values: readonly (readonly [number, string])[]): { x: number; y: number }[][] => {
      const runs: { x: number; y: number }[][] = [];
      let prev = -Infinity;
      for (const [t, v] of values) {
        if (t - prev > 1.5) runs.push([]);
        runs[runs.length - 1]!.push({ x: rel(t), y: Number(v) });
        prev = t;
      }
      return runs;
    };
    const rule = [{ x: 0, label: `kill ${run!.previousOwner}` }];
    const row = (title: string, series: XySeries[]): PlotInput => ({ kind: 'xy', title, series, xLabel: 'seconds from the fault', yLabel: 'addresses', rules: rule, width: 640, height: 70 });
    const agentRows = perAgent
      .map((s) => {
        const agent = agentOf(s.metric['instance'] ?? '');
        const victim = agent === run!.previousOwner;
        const series = runsOf(s.values).map((points, i) => ({ name: victim ? (i === 0 ? `${agent} before the kill` : `${agent} restarted`) : agent, points }));
        return { agent, holes: series.length - 1, input: row(`${agent}${victim ? ' (killed at t = 0, started again by the drill)' : agent === run!.owner ? ' (new owner)' : ''}`, series) };
      })
      .sort((a, b) => a.agent.localeCompare(b.agent));
    expect(agentRows.map((r) => r.agent)).toEqual(lab!.agents.map((a) => a.name).sort());
    // The victim's scrapes failed while its host was dead: its series has a hole, the others none.
    expect(agentRows.map((r) => [r.agent, r.holes > 0])).toEqual(agentRows.map((r) => [r.agent, r.agent === run!.previousOwner]));
    const totalRow = row('all agents: sum(smartnat_owned_addresses)', runsOf(total[0]?.values ?? []).map((points) => ({ name: 'sum', points })));
    const out = join(workDir, 'observability-failover.png');
    await writeStackedPlotPng(out, `Owned addresses per agent in a lab kill drill (Prometheus, 1 s scrape): ${run!.previousOwner} -> ${run!.owner}`, [totalRow, ...agentRows.map((r) => r.input)]);
    const png = await readFile(out);
    expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    expect((await stat(out)).size).toBeGreaterThan(5000);
    if (process.env['UPDATE_DOCS_IMG'] === '1') {
      await mkdir(join(repo, 'docs', 'img'), { recursive: true });
      await copyFile(out, PICTURE);
    }
  }, 60_000);
});
