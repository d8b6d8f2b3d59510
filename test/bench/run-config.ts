// The benchmarks `npm run bench` knows: how to run each (script + arguments, from the repository
// root, with tsx), which result file it writes and how that file becomes a BENCHMARKS.md section
// and its plots. Benchmarks without a result file keep their hand-written sections.
import { writeAgentMemoryPlot, type AgentMemoryFigures } from './agent-memory.bench.js';
import { writeApiWritesPlot, type ApiWritesFigures } from './api-writes.bench.js';
import { writeFailoverPlot, type FailoverFigures } from './failover.bench.js';
import { writeProgrammingPlot, type ProgrammingFigures } from './programming.bench.js';
import type { DatapathFigures } from './datapath.bench.js';
import { renderAgentMemorySection, renderApiWritesSection, renderDatapathSection, renderFailoverSection, renderProgrammingSection, renderSoakSection } from './report.js';
import { writeSoakPlot, type SoakFigures } from './soak.bench.js';
import type { BenchResult } from './summary.js';

export interface Bench {
  /** Script and its arguments, run with tsx from the repository root. */
  argv: string[];
  /** Result file it writes (rendered into BENCHMARKS.md), or undefined: stdout kept as NAME.out.json. */
  result?: string;
  render?: (r: BenchResult) => string;
  /** Draws the result's plots again from its data (after a change to the plot code). */
  plot?: (r: BenchResult) => Promise<unknown>;
}

export const BENCHES: Record<string, Bench> = {
  'failover-kill': { argv: ['test/bench/failover.bench.ts', '--kind', 'kill', '--repeat', '20'], result: 'failover-kill.json', render: (r) => renderFailoverSection(r as BenchResult<FailoverFigures>), plot: (r) => writeFailoverPlot((r as BenchResult<FailoverFigures>).figures) },
  'failover-drain': { argv: ['test/bench/failover.bench.ts', '--kind', 'drain', '--repeat', '20'], result: 'failover-drain.json', render: (r) => renderFailoverSection(r as BenchResult<FailoverFigures>), plot: (r) => writeFailoverPlot((r as BenchResult<FailoverFigures>).figures) },
  programming: { argv: ['test/bench/programming.bench.ts'], result: 'programming.json', render: (r) => renderProgrammingSection(r as BenchResult<ProgrammingFigures>), plot: (r) => writeProgrammingPlot((r as BenchResult<ProgrammingFigures>).figures) },
  'api-writes': { argv: ['test/bench/api-writes.bench.ts'], result: 'api-writes.json', render: (r) => renderApiWritesSection(r as BenchResult<ApiWritesFigures>), plot: (r) => writeApiWritesPlot((r as BenchResult<ApiWritesFigures>).figures) },
  'agent-memory': { argv: ['test/bench/agent-memory.bench.ts'], result: 'agent-memory.json', render: (r) => renderAgentMemorySection(r as BenchResult<AgentMemoryFigures>), plot: (r) => writeAgentMemoryPlot((r as BenchResult<AgentMemoryFigures>).figures) },
  soak: { argv: ['test/bench/soak.bench.ts'], result: 'soak.json', render: (r) => renderSoakSection(r as BenchResult<SoakFigures>), plot: (r) => writeSoakPlot((r as BenchResult<SoakFigures>).figures) },
  datapath: { argv: ['test/bench/datapath.bench.ts', '--trials', '5', '--seconds', '5', '--mappings', '1000', '--concurrency', '16'], result: 'datapath.json', render: (r) => renderDatapathSection(r as BenchResult<DatapathFigures>) },
  // Item 4 at three sizes; the per-command side measured at full size for 100 and 1,000, at 200 for 5,000 (it would take ~10+ min there).
  'dataplane-sync-100': { argv: ['test/bench/dataplane-sync.bench.ts', '--mappings', '100', '--naive', '100', '--trials', '5'] },
  'dataplane-sync': { argv: ['test/bench/dataplane-sync.bench.ts', '--mappings', '1000', '--naive', '1000', '--trials', '5'] },
  'dataplane-sync-5000': { argv: ['test/bench/dataplane-sync.bench.ts', '--mappings', '5000', '--naive', '200', '--trials', '3'] },
  'ownership-flip': { argv: ['test/bench/ownership-flip.bench.ts', '--trials', '31'] },
  'keepalived-cpu': { argv: ['test/bench/keepalived-cpu.bench.ts', '--instances', '255', '--advert-ms', '100', '--seconds', '20'] },
};

