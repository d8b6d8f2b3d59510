// Keeps the benchmarks' own code executing under `npm test` without running a benchmark: the
// summarising, rendering and planning functions on a fixture (three runs of a real `drill kill`
// report) and on small hand-made inputs, plus one plot written to a temp dir.
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DrillReport } from '../../src/lab/drill.js';
import { planEndpoint } from './agent-memory.bench.js';
import { planBenchAddresses } from './api-writes.bench.js';
import { datapathWorld, summariseDatapath, type DatapathFigures } from './datapath.bench.js';
import { computeFailoverFigures } from './failover.bench.js';
import { planBackgroundMapping } from './programming.bench.js';
import { computeRates, parseCounter } from './prom-text.js';
import { computeRuleSet } from '../../src/dataplane/render-iptables.js';
import { renderAgentMemorySection, renderApiWritesSection, renderDatapathSection, renderFailoverSection, renderProgrammingSection, renderSoakSection, replaceSection } from './report.js';
import { slope } from './soak.bench.js';
import { sumOf } from './agent-memory.bench.js';
import { computePercentile, computeSpread, type BenchEnvironment } from './summary.js';
import { BENCHES } from './run-config.js';
import { writePlotPng } from '../support/plot.js';

const ENV: BenchEnvironment = { date: '2026-11-26T15:00:00Z', host: 'vm', cpus: 2, cpuModel: 'Xeon', kernel: '6.18', node: '20.20.2', commit: 'abc1234', loadAverageStart: [1, 2, 3], loadAverageEnd: [4, 5, 6] };
const drill = JSON.parse(readFileSync(new URL('./fixtures/drill-kill-3-runs.json', import.meta.url), 'utf8')) as DrillReport;

describe('benchmark code (smoke)', () => {
  it('takes nearest-rank percentiles', () => {
    expect(computePercentile([5, 1, 3, 2, 4], 50)).toBe(3);
    expect(computePercentile([5, 1, 3, 2, 4], 99)).toBe(5);
    expect(computePercentile([], 50)).toBeNull();
    expect(computeSpread([10, 20, 30, 40])).toEqual({ n: 4, min: 10, p50: 20, p90: 40, p99: 40, max: 40 });
  });

  it('summarises a drill report and renders its section with the verdicts', () => {
    const f = computeFailoverFigures('kill', drill);
    expect(f.runs).toBe(3);
    expect(f.gapsMs).toEqual(drill.runs.map((r) => r.gapMs));
    expect(f.leaseSettings.leaseDurationMs).toBe(1500);
    const text = renderFailoverSection({ schemaVersion: 1, bench: 'failover-kill', command: 'npm run bench -- failover-kill', env: ENV, figures: { ...f, drill }, plots: ['docs/bench/failover-kill.png'] });
    expect(text).toContain('npm run bench -- failover-kill');
    expect(text).toContain('load average (1/5/15 min) 1.00 / 2.00 / 3.00');
    expect(text).toMatch(/p50 <= 2 s (met|\*\*missed\*\*) \(\d+ ms/);
  });

  it('replaces only its own section of BENCHMARKS.md', () => {
    const doc = '# Benchmarks\n\nhand-written\n';
    const once = replaceSection(doc, 'x', 'first');
    expect(once).toBe('# Benchmarks\n\nhand-written\n\n<!-- bench:begin x -->\nfirst\n<!-- bench:end x -->\n');
    const twice = replaceSection(`${once}\ntail\n`, 'x', 'second');
    expect(twice).toBe('# Benchmarks\n\nhand-written\n\n<!-- bench:begin x -->\nsecond\n<!-- bench:end x -->\n\ntail\n');
  });

  it('reads request counters and computes write rates between two scrapes', () => {
    const a = 'apiserver_request_total{code="200",resource="leases",verb="PUT"} 100\napiserver_request_total{code="409",resource="leases",verb="PUT"} 2\n# HELP x\n';
    const b = 'apiserver_request_total{code="200",resource="leases",verb="PUT"} 220\napiserver_request_total{code="409",resource="leases",verb="PUT"} 2\napiserver_request_total{code="201",resource="events",verb="POST"} 6\n';
    const rates = computeRates(parseCounter(a, 'apiserver_request_total', ['verb', 'resource']), parseCounter(b, 'apiserver_request_total', ['verb', 'resource']), 60);
    expect([...rates]).toEqual([['PUT leases', 2], ['POST events', 0.1]]);
  });

  it('plans distinct address:port pairs and distinct addresses', () => {
    const pool = ['203.0.113.11', '192.0.2.11'];
    const keys = Array.from({ length: 1000 }, (_, i) => planBackgroundMapping(i, pool)).map((m) => `${m.address}:${m.port}`);
    expect(new Set(keys).size).toBe(1000);
    const addrs = planBenchAddresses(200);
    expect(new Set(addrs).size).toBe(200);
  });

  it('renders the other sections and a plot from small results', async () => {
    const programming = renderProgrammingSection({
      schemaVersion: 1, bench: 'programming', command: 'npm run bench -- programming', env: ENV, plots: [],
      figures: { method: 'nft monitor', owner: 'a1', address: '203.0.113.19', trials: 2, sizes: [{ mappings: 1, createMs: computeSpread([50, 70]), sliceChangeMs: computeSpread([30]), createSamples: [50, 70], sliceChangeSamples: [30, null], backgroundRulesSeen: 0, setupSeconds: 1 }] },
    });
    expect(programming).toContain('(1 timed out at 15 s, counted as 15 s)');
    const writes = renderApiWritesSection({
      schemaVersion: 1, bench: 'api-writes', command: 'npm run bench -- api-writes', env: ENV, plots: [],
      figures: { agents: 3, sizes: [{ addresses: 10, windowSeconds: 60, writesPerSecond: 12, writesByVerbResource: { 'PUT leases': 12 }, readsPerSecond: 1, agentRssMiB: { a1: 80 }, keepalivedRssMiB: { a1: 5 } }] },
    });
    expect(writes).toContain('| ... PUT leases | 12.00 |');
    const memory = renderAgentMemorySection({
      schemaVersion: 1, bench: 'agent-memory', command: 'npm run bench -- agent-memory', env: ENV, plots: [],
      figures: { mappings: 1000, endpointsPerMapping: 10, windowSeconds: 60, programmedAfterSeconds: null, dnatRulesSeen: { a1: 9000 }, agents: [{ name: 'a1', rssStartMiB: 200, rssEndMiB: 210, cpuPercentOfOneCore: 12.5, eventLoopLagSeconds: 0.02 }] },
    });
    expect(memory).toContain('Target < 150 MB RSS: **missed** (largest at the end of the window 210 MiB = 220 MB)');
    expect(planEndpoint(0, 0, 10)).toBe('198.51.100.30');
    expect(planEndpoint(19, 9, 10)).toBe('198.51.100.229');
    expect(Object.keys(BENCHES)).toEqual(expect.arrayContaining(['failover-kill', 'failover-drain', 'programming', 'api-writes']));
    const dir = await mkdtemp(join(tmpdir(), 'sn-bench-'));
    try {
      const f = computeFailoverFigures('kill', drill);
      expect(await writePlotPng(join(dir, 'kill.png'), { kind: 'cdf', title: 't', xLabel: 'ms', yLabel: 'fraction', series: [{ name: 'gap', samples: f.gapsMs }] })).toBeGreaterThan(1000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('sums metric families, fits the soak\'s memory slope and renders its verdicts', () => {
    expect(sumOf('smartnat_fence_attempts_total{outcome="fenced"} 2\nsmartnat_fence_attempts_total{outcome="holderAlive"} 1\n# HELP x\n', 'smartnat_fence_attempts_total')).toBe(3);
    expect(sumOf('other 1\n', 'smartnat_fence_attempts_total')).toBeNull();
    expect(slope([{ x: 0, y: 100 }, { x: 1, y: 102 }, { x: 2, y: 104 }])).toBeCloseTo(2);
    expect(slope([{ x: 1, y: 5 }])).toBeNull();
    const agent = { name: 'a1', rssMiB: [{ atSeconds: 60, mib: 200 }, { atSeconds: 90, mib: 201 }], rssFirstMiB: 200, rssLastMiB: 201, rssMaxMiB: 201, rssSlopeMiBPerMin: 2, fences: 0, leaseTransitions: 0, churnRules: ['198.51.100.242:8080'], churnRulesExact: true };
    const text = renderSoakSection({
      schemaVersion: 1, bench: 'soak', command: 'npm run bench -- soak', env: ENV, plots: [],
      figures: { minutes: 1, delayMs: { up: 250, down: 250 }, churnWrites: 59, holdersChanged: [], probe: { target: '203.0.113.10:80', tries: 600, results: { ok: 599, timeout: 1 }, longestGapMs: 1000 }, agents: [agent, { ...agent, name: 'a2', fences: 1, churnRulesExact: false }] },
    });
    expect(text).toContain('no false failover **missed** (1 fence attempts, 0 holder changes)');
    expect(text).toContain('no stray rules **missed** (a2)');
    expect(text).toContain('memory flat (|slope| < 1 MiB/min on every agent) **missed**');
    expect(Object.keys(BENCHES)).toContain('soak');
  });

  it('plans the data-path worlds (measured address last in SMARTNAT-SERVICES) and renders the ratios with their verdicts', () => {
    const one = datapathWorld(1);
    expect(one.addresses.map((a) => a.address)).toEqual(['203.0.113.250']);
    const big = datapathWorld(21);
    expect(big.addresses).toHaveLength(5);
    expect(computeRuleSet(big).nat.get('SMARTNAT-SERVICES')?.at(-1)).toMatch(/^-d 203\.0\.113\.250\/32 /);
    const t = (...values: number[]): { load1: number; value: number }[] => values.map((value) => ({ load1: 3, value }));
    const figures: DatapathFigures = {
      trials: 3, seconds: 5, concurrency: 16, iptables: 'iptables v1.8.9 (nf_tables)',
      large: { mappings: 1000, addresses: 201, rules: 4000, servicesJumpPosition: 202, servicesChainLength: 202 },
      throughputGbps: { routed: t(10, 12, 11), routedWithRules: t(9, 9, 9), nat: t(10, 10, 10) },
      connectsPerSecond: { routed: t(3000, 3100, 2900), oneMapping: t(2000, 2100, 2200), largeMappings: t(1700, 1800, 1900) },
      connectErrors: { routed: 0, oneMapping: 0, largeMappings: 2 },
    };
    const s = summariseDatapath(figures);
    expect(s.throughputRatio).toBeCloseTo(10 / 11);
    expect(s.connectRatio).toBeCloseTo(1800 / 2100);
    const text = renderDatapathSection({ schemaVersion: 1, bench: 'datapath', command: 'npx tsx test/bench/datapath.bench.ts', env: ENV, figures, plots: [] });
    expect(text).toContain('target >= 0.95 **missed** (0.909 < 0.95)');
    expect(text).toContain('target >= 0.9 **missed** (0.857 < 0.9)');
    expect(text).toContain('rule 202 of');
    expect(Object.keys(BENCHES)).toContain('datapath');
  });
});
