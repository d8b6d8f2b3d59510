// Reads where a benchmark runs (machine, kernel, Node, commit, load average) for its result file.
// Guarantees: never throws for a missing git or /proc field (writes "unknown"). Does not measure.
import { cpus, hostname, loadavg, release } from 'node:os';
import { ExecaCommandRunner } from '../../src/dataplane/command-runner.js';
import type { BenchEnvironment } from './summary.js';

export async function readCommit(): Promise<string> {
  try {
    const r = await new ExecaCommandRunner().run('git', ['rev-parse', '--short', 'HEAD'], { timeoutMs: 5000 });
    return r.stdout.trim();
  } catch (err: unknown) {
    void err;
    return 'unknown';
  }
}

/** Call at the start; call `finish` at the end to record the closing load average. */
export async function startEnvironment(): Promise<{ finish: () => BenchEnvironment }> {
  const start = loadavg();
  const commit = await readCommit();
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    finish: () => ({
      date,
      host: hostname(),
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      kernel: release(),
      node: process.versions.node,
      commit,
      loadAverageStart: start,
      loadAverageEnd: loadavg(),
    }),
  };
}
