// Benchmark: unplanned failover (`drill kill`) and planned handoff (`drill drain`), N runs each in a
// lab of the benchmark's own, through the built CLI exactly as a user runs it:
//   npx tsx test/bench/failover.bench.ts --kind kill|drain [--repeat 20] [--lab bnfo]
// Writes test/bench/results/failover-KIND.json (figures + the drill's whole JSON report) and a CDF
// plot under docs/bench/. Measures only; the verdict against the targets is printed in BENCHMARKS.md.
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { DrillReport } from '../../src/lab/drill.js';
import { DEFAULT_LEASE_SETTINGS } from '../../src/plan/lease-settings.js';
import { writePlotPng } from '../support/plot.js';
import { startEnvironment } from './environment.js';
import { isMain, runCli, withLab } from './lab-session.js';
import { computeSpread, type BenchResult, type Spread } from './summary.js';

export interface FailoverFigures {
  kind: 'kill' | 'drain';
  runs: number;
  passed: number;
  leaseSettings: { leaseDurationMs: number; renewDeadlineMs: number; retryPeriodMs: number; vrrpAdvertMs: number };
  probe: DrillReport['probe'];
  gapMs: Spread | null;
  recoveryMs: Spread | null;
  leaseTransitionMs: Spread | null;
  refused: number;
  failed: number;
  moved: number;
  gapsMs: number[];
  leaseTransitionsMs: number[];
  problems: string[];
  drill: DrillReport;
}

/** Figures of a drill report (pure). */
export function computeFailoverFigures(kind: 'kill' | 'drain', drill: DrillReport): Omit<FailoverFigures, 'drill'> {
  const gaps = drill.runs.map((r) => r.gapMs);
  const transitions = drill.runs.flatMap((r) => (r.leaseTransitionMs === null ? [] : [r.leaseTransitionMs]));
  const recoveries = drill.runs.flatMap((r) => (r.recoveryMs === null ? [] : [r.recoveryMs]));
  return {
    kind,
    runs: drill.runs.length,
    passed: drill.runs.filter((r) => r.ok).length,
    leaseSettings: {
      leaseDurationMs: drill.leaseDurationMs,
      renewDeadlineMs: DEFAULT_LEASE_SETTINGS.renewDeadlineMs,
      retryPeriodMs: DEFAULT_LEASE_SETTINGS.retryPeriodMs,
      vrrpAdvertMs: 100,
    },
    probe: drill.probe,
    gapMs: computeSpread(gaps),
    recoveryMs: computeSpread(recoveries),
    leaseTransitionMs: computeSpread(transitions),
    refused: drill.runs.reduce((s, r) => s + r.refused, 0),
    failed: drill.runs.reduce((s, r) => s + r.failed, 0),
    moved: drill.runs.filter((r) => r.moved).length,
    gapsMs: gaps,
    leaseTransitionsMs: transitions,
    problems: drill.runs.flatMap((r) => r.problems.map((p) => `run ${r.run}: ${p}`)),
  };
}

/** Writes the CDF plot of gaps and lease transitions; returns its path. */
export async function writeFailoverPlot(figures: Omit<FailoverFigures, 'drill'>): Promise<string> {
  const kind = figures.kind;
  const plot = `docs/bench/failover-${kind}.png`;
  await writePlotPng(plot, {
    kind: 'cdf',
    title: `${kind === 'kill' ? 'Unplanned failover (drill kill)' : 'Planned handoff (drill drain)'}: ${figures.runs} runs`,
    xLabel: 'milliseconds from the fault',
    yLabel: 'fraction of runs',
    rules: kind === 'kill' ? [{ x: 2000, label: 'p50 target' }, { x: 3000, label: 'p99 target' }] : [{ x: 300, label: 'p50 target' }],
    series: [
      { name: 'traffic gap', samples: figures.gapsMs },
      { name: 'lease transition', samples: figures.leaseTransitionsMs },
    ],
  });
  return plot;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { kind: { type: 'string', default: 'kill' }, repeat: { type: 'string', default: '20' }, lab: { type: 'string', default: 'bnfo' } } });
  const kind = values.kind === 'drain' ? 'drain' : 'kill';
  const repeat = Number(values.repeat);
  const env = await startEnvironment();
  const drill = await withLab(values.lab, async (lab) => {
    process.stderr.write(`bench: drill ${kind} --repeat ${repeat} on lab ${lab.name}\n`);
    // Exit 1 means some run missed its kind's expectation: still a measurement, kept and reported.
    const r = await runCli(['drill', kind, '--name', lab.name, '--repeat', String(repeat), '--json'], { timeoutMs: 3_600_000, okExitCodes: [0, 1] });
    return JSON.parse(r.stdout) as DrillReport;
  });
  const figures: FailoverFigures = { ...computeFailoverFigures(kind, drill), drill };
  const plot = await writeFailoverPlot(figures);
  const result: BenchResult<FailoverFigures> = {
    schemaVersion: 1,
    bench: `failover-${kind}`,
    command: `npm run bench -- failover-${kind}`,
    env: env.finish(),
    figures,
    plots: [plot],
  };
  await writeFile(`test/bench/results/failover-${kind}.json`, `${JSON.stringify(result, null, 2)}\n`);
  process.stderr.write(`bench: gap ${JSON.stringify(figures.gapMs)} refused ${figures.refused}\n`);
}

if (isMain(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
