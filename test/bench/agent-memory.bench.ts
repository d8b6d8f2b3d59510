// Benchmark: agent memory (RSS) and CPU at N Mappings with E endpoints each (default 1,000 x 10 =
// 10,000 endpoints), 3 agents, in a lab of its own:
//   npx tsx test/bench/agent-memory.bench.ts [--mappings 1000] [--endpoints 10] [--window 60] [--lab bnmm]
// Each Mapping has one TCP port (distinct address:port pairs on the lab pools) and a Service
// (headless: the lab's ClusterIP range is a /24) and EndpointSlice of its own. Once every agent's kernel holds every Mapping's DNAT rules (or 300 s
// passed) and 30 s more, RSS is read from /proc at the start and end of a window, CPU is
// utime+stime over it; the agents' event-loop lag gauge (the largest delay since the previous
// scrape) is scraped at the start of the window, which resets it, and at its end. The agents'
// fence attempts and address-lease transitions are read before the first create and at the end:
// under load, any of them is a false failover (nothing was killed).
import { writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { writePlotPng } from '../support/plot.js';
import { startEnvironment } from './environment.js';
import { isMain, withLab, type LabDescriptor } from './lab-session.js';
import { apisOf, BENCH_NAMESPACE as NS, createMapping, inBatches, mappingBody, serviceBody, sliceBody } from './lab-objects.js';
import { CLOCK_TICKS, readCpuTicks, readRssMiB } from './proc-stats.js';
import { planBackgroundMapping } from './programming.bench.js';
import type { BenchResult } from './summary.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface AgentMemoryFigures {
  mappings: number;
  endpointsPerMapping: number;
  windowSeconds: number;
  /** Seconds from the first create until every agent held every rule (null: not within 300 s). */
  programmedAfterSeconds: number | null;
  dnatRulesSeen: Record<string, number>;
  agents: {
    name: string;
    rssStartMiB: number | null;
    rssEndMiB: number | null;
    cpuPercentOfOneCore: number | null;
    /** Largest event-loop delay within the window. */
    eventLoopLagSeconds: number | null;
    /** Largest event-loop delay from the first create to the start of the window (creation and programming). */
    loadLagSeconds?: number | null;
    /** Fence attempts and lease transitions by this agent from before the first create to the end. */
    fences?: number | null;
    leaseTransitions?: number | null;
    /** V8 heap in use, V8 heap reserved, and memory outside the V8 heap held by JS objects (Buffers), at the end of the window. */
    heapUsedMiB?: number | null;
    heapTotalMiB?: number | null;
    externalMiB?: number | null;
  }[];
}

/** Endpoint j of Mapping i, spread over 198.51.100.30-229. */
export function planEndpoint(i: number, j: number, perMapping: number): string {
  return `198.51.100.${30 + ((i * perMapping + j) % 200)}`;
}

async function countDnat(netns: string): Promise<number> {
  const r = await execa('ip', ['netns', 'exec', netns, 'iptables-save', '-t', 'nat'], { reject: false });
  return r.stdout.split('\n').filter((l) => l.includes('"bench/m-') && l.includes('-j DNAT')).length;
}

interface Scrape {
  lag: number | null;
  fences: number | null;
  transitions: number | null;
  heapUsed: number | null;
  heapTotal: number | null;
  external: number | null;
}

/** Sum of every sample of a metric family (all label sets); null when absent. */
export function sumOf(text: string, name: string): number | null {
  let sum: number | null = null;
  for (const line of text.split('\n')) {
    const m = /^(\w+)(?:\{[^}]*\})? (\S+)$/.exec(line);
    if (m?.[1] === name) sum = (sum ?? 0) + Number(m[2]);
  }
  return sum;
}

async function scrape(metricsUrl: string): Promise<Scrape> {
  try {
    const res = await fetch(metricsUrl, { signal: AbortSignal.timeout(5000) });
    const text = await res.text();
    return {
      lag: sumOf(text, 'smartnat_event_loop_lag_seconds'), fences: sumOf(text, 'smartnat_fence_attempts_total') ?? 0, transitions: sumOf(text, 'smartnat_lease_transitions_total') ?? 0,
      heapUsed: sumOf(text, 'smartnat_nodejs_heap_size_used_bytes'), heapTotal: sumOf(text, 'smartnat_nodejs_heap_size_total_bytes'), external: sumOf(text, 'smartnat_nodejs_external_memory_bytes'),
    };
  } catch (err: unknown) {
    void err;
    return { lag: null, fences: null, transitions: null, heapUsed: null, heapTotal: null, external: null };
  }
}

const toMiB = (bytes: number | null): number | null => (bytes === null ? null : Math.round(bytes / 1048576 * 10) / 10);
const delta = (end: number | null, start: number | null | undefined): number | null => (end === null || start === null || start === undefined ? null : end - start);

async function measure(lab: LabDescriptor, mappings: number, perMapping: number, windowSeconds: number): Promise<AgentMemoryFigures> {
  const apis = apisOf(lab.kubeconfig);
  await apis.core.createNamespace({ body: { metadata: { name: NS } } });
  const demo = new Set(lab.mappings.flatMap((m) => m.addresses));
  const pool = lab.pools.flatMap((p) => p.addresses).filter((a) => !demo.has(a));
  const before = await Promise.all(lab.agents.map(async (a) => scrape(a.metrics)));
  const t0 = performance.now();
  const plan = Array.from({ length: mappings }, (_, i) => ({ i, ...planBackgroundMapping(i, pool) }));
  await inBatches(plan, 8, async (m) => {
    const name = `m-${m.i}`;
    await apis.core.createNamespacedService({ namespace: NS, body: serviceBody(name, 8080, { headless: true }) });
    await apis.discovery.createNamespacedEndpointSlice({ namespace: NS, body: sliceBody(name, name, Array.from({ length: perMapping }, (_, j) => planEndpoint(m.i, j, perMapping)), 8080) });
    await createMapping(apis, mappingBody(name, m.address, m.port, name));
  });
  process.stderr.write(`bench: ${mappings} Mappings, ${mappings * perMapping} endpoints created in ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
  const want = mappings * perMapping;
  const seen: Record<string, number> = {};
  let programmedAfterSeconds: number | null = null;
  const deadline = t0 + 300_000;
  while (performance.now() < deadline) {
    for (const a of lab.agents) seen[a.name] = await countDnat(a.netns);
    if (lab.agents.every((a) => (seen[a.name] ?? 0) >= want)) {
      programmedAfterSeconds = Math.round((performance.now() - t0) / 100) / 10;
      break;
    }
    await sleep(2000);
  }
  process.stderr.write(`bench: DNAT rules ${JSON.stringify(seen)} (want ${want} each); settling 30 s\n`);
  await sleep(30_000);
  const start = await Promise.all(lab.agents.map(async (a) => ({ rss: await readRssMiB(a.pid), cpu: await readCpuTicks(a.pid), scrape: await scrape(a.metrics) })));
  const w0 = performance.now();
  await sleep(windowSeconds * 1000);
  const elapsed = (performance.now() - w0) / 1000;
  const agents = await Promise.all(
    lab.agents.map(async (a, k) => {
      const cpu = await readCpuTicks(a.pid);
      const cpuBefore = start[k]?.cpu ?? null;
      const end = await scrape(a.metrics);
      return {
        name: a.name,
        rssStartMiB: start[k]?.rss ?? null,
        rssEndMiB: await readRssMiB(a.pid),
        cpuPercentOfOneCore: cpu === null || cpuBefore === null ? null : Math.round(((cpu - cpuBefore) / CLOCK_TICKS / elapsed) * 1000) / 10,
        eventLoopLagSeconds: end.lag,
        loadLagSeconds: start[k]?.scrape.lag ?? null,
        fences: delta(end.fences, before[k]?.fences),
        leaseTransitions: delta(end.transitions, before[k]?.transitions),
        heapUsedMiB: toMiB(end.heapUsed),
        heapTotalMiB: toMiB(end.heapTotal),
        externalMiB: toMiB(end.external),
      };
    }),
  );
  process.stderr.write(`bench: ${JSON.stringify(agents)}\n`);
  return { mappings, endpointsPerMapping: perMapping, windowSeconds, programmedAfterSeconds, dnatRulesSeen: seen, agents };
}

/** Bar-like plot of each agent's RSS at the end of the window; returns its path. */
export async function writeAgentMemoryPlot(f: AgentMemoryFigures): Promise<string> {
  const plot = 'docs/bench/agent-memory.png';
  await writePlotPng(plot, {
    kind: 'xy',
    title: `Agent RSS at ${f.mappings} Mappings / ${f.mappings * f.endpointsPerMapping} endpoints`,
    xLabel: 'agent (1 = a1, ...)',
    yLabel: 'MiB',
    series: [
      { name: 'RSS at the start of the window', points: f.agents.map((a, i) => ({ x: i + 1, y: a.rssStartMiB ?? 0 })) },
      { name: 'RSS at the end of the window', points: f.agents.map((a, i) => ({ x: i + 1, y: a.rssEndMiB ?? 0 })) },
    ],
  });
  return plot;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { mappings: { type: 'string', default: '1000' }, endpoints: { type: 'string', default: '10' }, window: { type: 'string', default: '60' }, lab: { type: 'string', default: 'bnmm' } } });
  const env = await startEnvironment();
  const figures = await withLab(values.lab, (lab) => measure(lab, Number(values.mappings), Number(values.endpoints), Number(values.window)));
  const plot = await writeAgentMemoryPlot(figures);
  const result: BenchResult<AgentMemoryFigures> = { schemaVersion: 1, bench: 'agent-memory', command: 'npm run bench -- agent-memory', env: env.finish(), figures, plots: [plot] };
  await writeFile('test/bench/results/agent-memory.json', `${JSON.stringify(result, null, 2)}\n`);
}

if (isMain(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
