// Benchmark (issue 9 item 8): a soak in a lab of its own. For M minutes (default 10) every agent's
// API connection is slowed by its API proxy (default 250 ms each way = 500 ms round trip, the first
// reading of ADR 0006's budget) while one Mapping's endpoints churn every second and a TCP probe
// runs against the lab's demo Mapping:
//   npx tsx test/bench/soak.bench.ts [--minutes 10] [--delay-up 250] [--delay-down 250] [--lab bnsk]
// Judged on: no false failover (fence attempts and address-lease transitions by the agents, and the
// address-lease holders, unchanged from start to end), no stray rules (every agent's DNAT rules
// for the churned Mapping are exactly its last endpoint set), memory flat (agent RSS sampled every
// 30 s after a one-minute warm-up: first, last, max and the least-squares slope), and the probe's
// failures and longest gap.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { controlProxy } from '../../src/lab/api-proxy.js';
import { chooseTarget, parseLabDescriptor } from '../../src/lab/drill-descriptor.js';
import { StreamProbe } from '../../src/lab/drill-probe.js';
import { countResults, longestGapMs } from '../../src/lab/probe.js';
import { writeLabScripts } from '../../src/lab/scripts.js';
import { LABEL_ROLE } from '../../src/plan/lease-names.js';
import { writePlotPng } from '../support/plot.js';
import { sumOf } from './agent-memory.bench.js';
import { startEnvironment } from './environment.js';
import { apisOf, BENCH_NAMESPACE as NS, createMapping, mappingBody, serviceBody, sliceBody, type Apis } from './lab-objects.js';
import { isMain, withLab, type LabDescriptor } from './lab-session.js';
import { readRssMiB } from './proc-stats.js';
import type { BenchResult } from './summary.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const CHURN = 'churn';
const CHURN_PORT = 18080;
/** The two endpoint sets the churned Mapping alternates between (no backend behind them: only rules are judged). */
const CHURN_SETS = [['198.51.100.240', '198.51.100.241'], ['198.51.100.242']] as const;

export interface SoakAgent {
  name: string;
  rssMiB: { atSeconds: number; mib: number }[];
  /** V8 heap in use (smartnat_nodejs_heap_size_used_bytes) at the same moments, MiB. */
  heapUsedMiB?: { atSeconds: number; mib: number }[];
  heapSlopeMiBPerMin?: number | null;
  rssFirstMiB: number | null;
  rssLastMiB: number | null;
  rssMaxMiB: number | null;
  /** Least-squares slope of RSS over the soak after the warm-up, MiB per minute. */
  rssSlopeMiBPerMin: number | null;
  fences: number | null;
  leaseTransitions: number | null;
  /** DNAT rules of the churned Mapping at the end, and whether they are exactly the last endpoint set. */
  churnRules: string[];
  churnRulesExact: boolean;
}

export interface SoakFigures {
  minutes: number;
  delayMs: { up: number; down: number };
  churnWrites: number;
  holdersChanged: string[];
  probe: { target: string; tries: number; results: Record<string, number>; longestGapMs: number };
  agents: SoakAgent[];
}

/** Least-squares slope of y over x (per unit of x); null below two points. */
export function slope(points: readonly { x: number; y: number }[]): number | null {
  if (points.length < 2) return null;
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const sxx = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  if (sxx === 0) return null;
  return points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0) / sxx;
}

async function scrapeCounts(url: string): Promise<{ fences: number | null; transitions: number | null }> {
  try {
    const text = await (await fetch(url, { signal: AbortSignal.timeout(10_000) })).text();
    return { fences: sumOf(text, 'smartnat_fence_attempts_total') ?? 0, transitions: sumOf(text, 'smartnat_lease_transitions_total') ?? 0 };
  } catch {
    return { fences: null, transitions: null };
  }
}

async function heapUsedMiB(url: string): Promise<number | null> {
  try {
    const text = await (await fetch(url, { signal: AbortSignal.timeout(10_000) })).text();
    const v = sumOf(text, 'smartnat_nodejs_heap_size_used_bytes');
    return v === null ? null : Math.round((v / 1048576) * 10) / 10;
  } catch {
    return null;
  }
}

async function addressHolders(apis: Apis, namespace: string): Promise<Map<string, string>> {
  const list = await apis.coordination.listNamespacedLease({ namespace, labelSelector: `${LABEL_ROLE}=address` });
  return new Map(list.items.map((l) => [l.metadata?.name ?? '', l.spec?.holderIdentity ?? '']));
}

/** DNAT targets of the churned Mapping in one agent's kernel. */
async function churnRules(netns: string): Promise<string[]> {
  const r = await execa('ip', ['netns', 'exec', netns, 'iptables-save', '-t', 'nat'], { reject: false });
  return r.stdout
    .split('\n')
    .filter((l) => l.includes(`"${NS}/${CHURN}`) && l.includes('-j DNAT'))
    .map((l) => /--to-destination (\S+)/.exec(l)?.[1] ?? '?')
    .sort();
}

async function measure(labJson: LabDescriptor, minutes: number, delay: { up: number; down: number }): Promise<SoakFigures> {
  const lab = parseLabDescriptor(labJson);
  const apis = apisOf(lab.kubeconfig);
  const target = chooseTarget(lab);
  const pool = lab.pools.flatMap((p) => p.addresses).find((a) => !lab.mappings.some((m) => m.addresses.includes(a)));
  if (pool === undefined) throw new Error('no free pool address for the churned Mapping');
  await apis.core.createNamespace({ body: { metadata: { name: NS } } });
  await apis.core.createNamespacedService({ namespace: NS, body: serviceBody(CHURN, 8080, { headless: true }) });
  await apis.discovery.createNamespacedEndpointSlice({ namespace: NS, body: sliceBody(CHURN, CHURN, CHURN_SETS[0], 8080) });
  await createMapping(apis, mappingBody(CHURN, pool, CHURN_PORT, CHURN));
  await sleep(15_000); // the leader grants the claim, the owner programs it
  const pids = new Map(lab.agents.map((a) => [a.name, a.pid] as const));
  const metricsUrl = new Map((labJson.agents ?? []).map((a) => [a.name, a.metrics] as const));
  const startCounts = new Map<string, { fences: number | null; transitions: number | null }>();
  for (const a of lab.agents) startCounts.set(a.name, await scrapeCounts(metricsUrl.get(a.name) ?? ''));
  const holdersBefore = await addressHolders(apis, lab.leaseNamespace);

  const controls = lab.agents.flatMap((a) => (a.apiProxyControl ? [a.apiProxyControl] : []));
  if (controls.length !== lab.agents.length) throw new Error('the lab does not name every agent\'s API proxy control socket');
  for (const c of controls) await controlProxy(c, { delayMs: delay });
  process.stderr.write(`bench: soak: ${minutes} min, API delay ${delay.up}+${delay.down} ms, churn every 1 s on ${pool}:${CHURN_PORT}, probe ${target.address}:${target.tcpPort}\n`);

  const scriptDir = await mkdtemp(join(tmpdir(), 'smartnat-soak-'));
  const scripts = await writeLabScripts(scriptDir);
  const durationMs = minutes * 60_000;
  const probe = new StreamProbe({ netns: target.client.netns, script: scripts.probe, proto: 'tcp', host: target.address, port: target.tcpPort, source: target.client.address, intervalMs: 100, timeoutMs: 1000, maxDurationMs: durationMs + 30_000 });
  const rss = new Map<string, { atSeconds: number; mib: number }[]>(lab.agents.map((a) => [a.name, []]));
  const heap = new Map<string, { atSeconds: number; mib: number }[]>(lab.agents.map((a) => [a.name, []]));
  const t0 = performance.now();
  let churnWrites = 0;
  let lastSet: readonly string[] = CHURN_SETS[0];
  let nextSample = 60_000;
  try {
    while (performance.now() - t0 < durationMs) {
      const tick = performance.now();
      lastSet = CHURN_SETS[(churnWrites + 1) % 2]!;
      try {
        await apis.discovery.replaceNamespacedEndpointSlice({ name: CHURN, namespace: NS, body: sliceBody(CHURN, CHURN, lastSet, 8080) });
        churnWrites++;
      } catch (err: unknown) {
        process.stderr.write(`bench: soak: slice write failed: ${err instanceof Error ? err.message : String(err)}\n`);
        lastSet = CHURN_SETS[churnWrites % 2]!;
      }
      const elapsed = performance.now() - t0;
      if (elapsed >= nextSample) {
        nextSample += 30_000;
        for (const a of lab.agents) {
          const mib = await readRssMiB(pids.get(a.name) ?? 0);
          if (mib !== null) rss.get(a.name)?.push({ atSeconds: Math.round(elapsed / 1000), mib });
          const used = await heapUsedMiB(metricsUrl.get(a.name) ?? '');
          if (used !== null) heap.get(a.name)?.push({ atSeconds: Math.round(elapsed / 1000), mib: used });
        }
        process.stderr.write(`bench: soak: ${Math.round(elapsed / 1000)} s, ${churnWrites} slice writes, probe ${JSON.stringify(countResults(probe.outcomes))}\n`);
      }
      await sleep(Math.max(0, 1000 - (performance.now() - tick)));
    }
  } finally {
    await probe.stop();
    for (const c of controls) await controlProxy(c, { delayMs: { up: 0, down: 0 } }).catch(() => undefined);
    await rm(scriptDir, { recursive: true, force: true });
  }
  await sleep(10_000); // the last slice write reaches every kernel
  const holdersAfter = await addressHolders(apis, lab.leaseNamespace);
  const holdersChanged = [...new Set([...holdersBefore.keys(), ...holdersAfter.keys()])].filter((k) => holdersBefore.get(k) !== holdersAfter.get(k)).sort();
  const want = lastSet.map((ip) => `${ip}:8080`).sort();
  const agents: SoakAgent[] = [];
  for (const a of lab.agents) {
    const samples = rss.get(a.name) ?? [];
    const end = await scrapeCounts(metricsUrl.get(a.name) ?? '');
    const start = startCounts.get(a.name);
    const rules = await churnRules(a.netns);
    const perMinute = slope(samples.map((s) => ({ x: s.atSeconds / 60, y: s.mib })));
    const heapSamples = heap.get(a.name) ?? [];
    const heapPerMinute = slope(heapSamples.map((s) => ({ x: s.atSeconds / 60, y: s.mib })));
    agents.push({
      name: a.name,
      rssMiB: samples,
      rssFirstMiB: samples[0]?.mib ?? null,
      rssLastMiB: samples[samples.length - 1]?.mib ?? null,
      rssMaxMiB: samples.length ? Math.max(...samples.map((s) => s.mib)) : null,
      rssSlopeMiBPerMin: perMinute === null ? null : Math.round(perMinute * 100) / 100,
      heapUsedMiB: heapSamples,
      heapSlopeMiBPerMin: heapPerMinute === null ? null : Math.round(heapPerMinute * 100) / 100,
      fences: end.fences === null || start?.fences == null ? null : end.fences - start.fences,
      leaseTransitions: end.transitions === null || start?.transitions == null ? null : end.transitions - start.transitions,
      churnRules: rules,
      churnRulesExact: rules.length === want.length && rules.every((r, i) => r === want[i]),
    });
  }
  const outcomes = probe.sorted();
  return {
    minutes,
    delayMs: delay,
    churnWrites,
    holdersChanged,
    probe: { target: `${target.address}:${target.tcpPort}`, tries: outcomes.length, results: countResults(outcomes) as Record<string, number>, longestGapMs: Math.round(longestGapMs(outcomes)) },
    agents,
  };
}

export async function writeSoakPlot(f: SoakFigures): Promise<string> {
  const plot = 'docs/bench/soak-rss.png';
  await writePlotPng(plot, {
    kind: 'xy',
    title: `Agent RSS during a ${f.minutes}-minute soak (API +${f.delayMs.up + f.delayMs.down} ms, endpoint churn 1/s)`,
    xLabel: 'seconds into the soak',
    yLabel: 'MiB',
    series: f.agents.map((a) => ({ name: a.name, points: a.rssMiB.map((s) => ({ x: s.atSeconds, y: s.mib })) })),
  });
  return plot;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { minutes: { type: 'string', default: '10' }, 'delay-up': { type: 'string', default: '250' }, 'delay-down': { type: 'string', default: '250' }, lab: { type: 'string', default: 'bnsk' } } });
  const env = await startEnvironment();
  const delay = { up: Number(values['delay-up']), down: Number(values['delay-down']) };
  const figures = await withLab(values.lab, (lab) => measure(lab, Number(values.minutes), delay));
  const plot = await writeSoakPlot(figures);
  const result: BenchResult<SoakFigures> = { schemaVersion: 1, bench: 'soak', command: 'npm run bench -- soak', env: env.finish(), figures, plots: [plot] };
  await writeFile('test/bench/results/soak.json', `${JSON.stringify(result, null, 2)}\n`);
}

if (isMain(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
