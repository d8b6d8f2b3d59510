// Benchmark: programming latency, Mapping created / EndpointSlice changed -> DNAT rule in the
// kernel of the address's owner, with 1, 100, 1,000 Mappings present, in a lab of its own:
//   npx tsx test/bench/programming.bench.ts [--sizes 1,100,1000] [--trials 20] [--lab bnpg]
// How the kernel is watched: `nft monitor rules` runs in the owner agent's namespace for the whole
// measurement; every trial's DNAT target (endpoint address:port) is unique, so the first
// "dnat to IP:PORT" line for it is the moment the rule exists. The clock starts just before the
// create/replace request is sent; both ends are read from this process's monotonic clock.
// Background Mappings (one TCP port each, distinct address:port pairs on the lab pools) point at
// one Service; the measured Mapping has a Service and EndpointSlice of its own, created a second
// before it (a Service without a Mapping programs nothing).
import { writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { apisOf, BENCH_NAMESPACE as NS, createMapping, GROUP, inBatches, mappingBody, serviceBody, sliceBody, VERSION, type Apis } from './lab-objects.js';
import { addressLeaseName } from '../../src/plan/lease-names.js';
import { writePlotPng } from '../support/plot.js';
import { startEnvironment } from './environment.js';
import { isMain, withLab, type LabDescriptor } from './lab-session.js';
import { computeSpread, type BenchResult, type Spread } from './summary.js';

const BACKEND = '198.51.100.21';
/** The measured Mapping's address (uplink 1 pool); background Mappings use the others. */
const PROBE_ADDRESS = '203.0.113.19';
const TRIAL_TIMEOUT_MS = 15_000;

export interface ProgrammingSize {
  mappings: number;
  createMs: Spread | null;
  sliceChangeMs: Spread | null;
  createSamples: (number | null)[];
  sliceChangeSamples: (number | null)[];
  /** Background Mappings' rules seen in the owner's kernel before the trials began. */
  backgroundRulesSeen: number;
  setupSeconds: number;
}

export interface ProgrammingFigures {
  method: string;
  /** A trial without its rule after this long is recorded as null. */
  timeoutMs?: number;
  owner: string;
  address: string;
  trials: number;
  sizes: ProgrammingSize[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Background Mapping i: an address of the lab pools other than the demo's and the probe's, a port of its own. */
export function planBackgroundMapping(i: number, addresses: readonly string[]): { name: string; address: string; port: number } {
  const address = addresses[i % addresses.length] ?? '203.0.113.11';
  return { name: `bg-${i}`, address, port: 10_000 + i };
}

/** Watches `nft monitor rules` in a namespace; resolves a wait when a line contains the text. */
class RuleWatch {
  private readonly waiters = new Map<string, (t: number) => void>();
  private buffer = '';
  private readonly proc;
  constructor(netns: string) {
    this.proc = execa('ip', ['netns', 'exec', netns, 'nft', 'monitor', 'rules'], { buffer: false, reject: false });
    this.proc.stdout?.setEncoding('utf8');
    this.proc.stdout?.on('data', (chunk: string) => {
      const now = performance.now();
      this.buffer += chunk;
      const lines = this.buffer.split('\n');
      this.buffer = lines.pop() ?? '';
      for (const line of lines) {
        for (const [text, resolve] of this.waiters) {
          if (line.includes(text)) {
            this.waiters.delete(text);
            resolve(now);
          }
        }
      }
    });
  }
  /** Register before triggering; resolves with the time the line was read, or null after timeoutMs. */
  expect(text: string, timeoutMs: number): Promise<number | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(text);
        resolve(null);
      }, timeoutMs);
      this.waiters.set(text, (t) => {
        clearTimeout(timer);
        resolve(t);
      });
    });
  }
  stop(): void {
    this.proc.kill('SIGTERM');
  }
}

async function countBackgroundRules(netns: string): Promise<number> {
  const r = await execa('ip', ['netns', 'exec', netns, 'iptables-save', '-t', 'nat'], { reject: false });
  return r.stdout.split('\n').filter((l) => l.includes('"bench/bg-') && l.includes('-j DNAT')).length;
}

/** Waits until the owner's kernel holds every background rule (or 120 s passed); returns the count seen. */
async function waitForBackground(netns: string, want: number): Promise<number> {
  const deadline = performance.now() + 120_000;
  let seen = 0;
  while (performance.now() < deadline) {
    seen = await countBackgroundRules(netns);
    if (seen >= want) return seen;
    await sleep(500);
  }
  return seen;
}

async function ownerOf(apis: Apis, namespace: string, address: string): Promise<string> {
  const deadline = performance.now() + 60_000;
  while (performance.now() < deadline) {
    try {
      const lease = await apis.coordination.readNamespacedLease({ name: addressLeaseName(address), namespace });
      const holder = lease.spec?.holderIdentity;
      if (holder) return holder;
    } catch (err: unknown) {
      void err; // not created yet
    }
    await sleep(250);
  }
  throw new Error(`no holder for ${address} within 60 s`);
}

async function runTrials(apis: Apis, watch: RuleWatch, trials: number, size: number): Promise<{ create: (number | null)[]; change: (number | null)[] }> {
  const create: (number | null)[] = [];
  const change: (number | null)[] = [];
  for (let k = 0; k < trials; k++) {
    const name = `probe-${size}-${k}`;
    const port = 30_000 + (k % 1000);
    const ipA = `198.51.100.${100 + (k % 70)}`;
    const ipB = `198.51.100.${180 + (k % 70)}`;
    const listenPort = 40_000 + k;
    await apis.core.createNamespacedService({ namespace: NS, body: serviceBody(name, port) });
    await apis.discovery.createNamespacedEndpointSlice({ namespace: NS, body: sliceBody(name, name, [ipA], port) });
    await sleep(1000);
    // Mapping created -> rule.
    const created = watch.expect(`dnat to ${ipA}:${port}`, TRIAL_TIMEOUT_MS);
    const t0 = performance.now();
    await createMapping(apis, mappingBody(name, PROBE_ADDRESS, listenPort, name));
    const t1 = await created;
    create.push(t1 === null ? null : t1 - t0);
    await sleep(500);
    // EndpointSlice changed -> rule with the new endpoint.
    const changed = watch.expect(`dnat to ${ipB}:${port}`, TRIAL_TIMEOUT_MS);
    const t2 = performance.now();
    await apis.discovery.replaceNamespacedEndpointSlice({ name, namespace: NS, body: sliceBody(name, name, [ipB], port) });
    const t3 = await changed;
    change.push(t3 === null ? null : t3 - t2);
    await apis.custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS, plural: 'mappings', name });
    await apis.discovery.deleteNamespacedEndpointSlice({ name, namespace: NS });
    await apis.core.deleteNamespacedService({ name, namespace: NS });
    process.stderr.write(`bench: ${size} Mappings, trial ${k + 1}: create ${create.at(-1)?.toFixed(0) ?? 'timeout'} ms, slice ${change.at(-1)?.toFixed(0) ?? 'timeout'} ms\n`);
    await sleep(500);
  }
  return { create, change };
}

async function measure(lab: LabDescriptor, sizes: readonly number[], trials: number): Promise<ProgrammingFigures> {
  const apis = apisOf(lab.kubeconfig);
  await apis.core.createNamespace({ body: { metadata: { name: NS } } });
  await apis.core.createNamespacedService({ namespace: NS, body: serviceBody('bg', 8080) });
  await apis.discovery.createNamespacedEndpointSlice({ namespace: NS, body: sliceBody('bg', 'bg', [BACKEND], 8080) });
  const demo = new Set(lab.mappings.flatMap((m) => m.addresses));
  const pool = lab.pools.flatMap((p) => p.addresses).filter((a) => !demo.has(a) && a !== PROBE_ADDRESS);
  // One warm-up Mapping on the probe address makes its lease exist and names the owner.
  await createMapping(apis, mappingBody('anchor', PROBE_ADDRESS, 9999, 'bg'));
  const owner = await ownerOf(apis, lab.leaseNamespace, PROBE_ADDRESS);
  const netns = lab.agents.find((a) => a.name === owner)?.netns;
  if (!netns) throw new Error(`owner ${owner} is not a lab agent`);
  const watch = new RuleWatch(netns);
  const out: ProgrammingSize[] = [];
  let background = 0;
  try {
    await sleep(1000);
    for (const size of sizes) {
      const t0 = performance.now();
      // Present = background + the anchor + the measured Mapping.
      const want = Math.max(0, size - 2);
      const more = Array.from({ length: Math.max(0, want - background) }, (_, j) => planBackgroundMapping(background + j, pool));
      await inBatches(more, 8, (m) => createMapping(apis, mappingBody(m.name, m.address, m.port, 'bg')));
      background += more.length;
      const seen = await waitForBackground(netns, background);
      await sleep(3000);
      const setupSeconds = (performance.now() - t0) / 1000;
      process.stderr.write(`bench: ${background + 2} Mappings present (background rules seen ${seen}), set up in ${setupSeconds.toFixed(0)} s\n`);
      const r = await runTrials(apis, watch, trials, size);
      const finite = (xs: (number | null)[]): number[] => xs.flatMap((x) => (x === null ? [] : [x]));
      out.push({ mappings: Math.max(size, background + 2), createMs: computeSpread(finite(r.create)), sliceChangeMs: computeSpread(finite(r.change)), createSamples: r.create, sliceChangeSamples: r.change, backgroundRulesSeen: seen, setupSeconds });
    }
  } finally {
    watch.stop();
  }
  return { timeoutMs: TRIAL_TIMEOUT_MS, method: 'nft monitor rules in the owner agent\'s namespace; first "dnat to IP:PORT" line of the trial\'s unique endpoint', owner, address: PROBE_ADDRESS, trials, sizes: out };
}

/** Writes the CDF plot of every size's samples; returns its path. */
export async function writeProgrammingPlot(figures: ProgrammingFigures): Promise<string> {
  const finite = (xs: (number | null)[]): number[] => xs.flatMap((x) => (x === null ? [] : [x]));
  const plot = 'docs/bench/programming-latency.png';
  await writePlotPng(plot, {
    kind: 'cdf',
    title: `Change -> DNAT rule in the owner's kernel (${figures.trials} trials per size)`,
    xLabel: 'milliseconds from the API request',
    yLabel: 'fraction of trials (timed-out trials never arrive)',
    rules: [{ x: 200, label: 'p50 target' }, { x: 1000, label: 'p99 target' }],
    series: figures.sizes.flatMap((s) => [
      { name: `Mapping created, ${s.mappings} present`, samples: finite(s.createSamples), total: s.createSamples.length },
      { name: `EndpointSlice changed, ${s.mappings} present`, samples: finite(s.sliceChangeSamples), total: s.sliceChangeSamples.length },
    ]),
  });
  return plot;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { sizes: { type: 'string', default: '1,100,1000' }, trials: { type: 'string', default: '20' }, lab: { type: 'string', default: 'bnpg' } } });
  const sizes = values.sizes.split(',').map(Number).filter((n) => n > 0).sort((a, b) => a - b);
  const trials = Number(values.trials);
  const env = await startEnvironment();
  const figures = await withLab(values.lab, (lab) => measure(lab, sizes, trials));
  const plot = await writeProgrammingPlot(figures);
  const result: BenchResult<ProgrammingFigures> = { schemaVersion: 1, bench: 'programming', command: 'npm run bench -- programming', env: env.finish(), figures, plots: [plot] };
  await writeFile('test/bench/results/programming.json', `${JSON.stringify(result, null, 2)}\n`);
}

if (isMain(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
