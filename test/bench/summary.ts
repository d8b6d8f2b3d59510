// Pure arithmetic and text for benchmark results: nearest-rank percentiles over samples, and the
// shared shape every benchmark writes under test/bench/results/. Guarantees: no I/O, no clock;
// the same samples give the same summary. Does not decide whether a target is met beyond the
// plain comparison it is given (the text says "met" / "missed" with the measured number).

/** Nearest-rank percentile (p in 0..100) of samples; null for no samples. */
export function computePercentile(samples: readonly number[], p: number): number | null {
  const sorted = samples.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] ?? null;
}

export interface Spread {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** min/p50/p90/p99/max of samples (nearest rank); null when there are none. */
export function computeSpread(samples: readonly number[]): Spread | null {
  const finite = samples.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return null;
  const at = (p: number): number => computePercentile(finite, p) ?? 0;
  return { n: finite.length, min: Math.min(...finite), p50: at(50), p90: at(90), p99: at(99), max: Math.max(...finite) };
}

/** Where and when a result was measured (written next to every figure). */
export interface BenchEnvironment {
  date: string;
  host: string;
  cpus: number;
  cpuModel: string;
  kernel: string;
  node: string;
  commit: string;
  loadAverageStart: readonly number[];
  loadAverageEnd: readonly number[];
}

/** The envelope of every file in test/bench/results/. */
export interface BenchResult<F = unknown> {
  schemaVersion: 1;
  bench: string;
  /** The command that reproduces this result, from the repository root. */
  command: string;
  env: BenchEnvironment;
  /** What the benchmark measured, in its own shape (each benchmark renders its own section). */
  figures: F;
  /** Plots written for this result, paths relative to the repository root. */
  plots: readonly string[];
}

export function formatMs(v: number | null | undefined, digits = 0): string {
  return v === null || v === undefined ? '—' : `${v.toFixed(digits)} ms`;
}

/** "met (1802 ms <= 2000 ms)" / "missed (2340 ms > 2000 ms)"; "not measured" without a value. */
export function renderTargetVerdict(measured: number | null, limit: number, strict = false): string {
  if (measured === null) return 'not measured';
  const ok = strict ? measured < limit : measured <= limit;
  const sign = ok ? (strict ? '<' : '<=') : strict ? '>=' : '>';
  return `${ok ? 'met' : '**missed**'} (${measured.toFixed(0)} ms ${sign} ${limit} ms)`;
}

export function renderEnvironmentLine(env: BenchEnvironment): string {
  const load = (l: readonly number[]): string => l.map((v) => v.toFixed(2)).join(' / ');
  return (
    `Measured ${env.date} on ${env.host} (${env.cpus} vCPU, ${env.cpuModel}; kernel ${env.kernel}; Node ${env.node}), ` +
    `commit ${env.commit}; load average (1/5/15 min) ${load(env.loadAverageStart)} at the start, ${load(env.loadAverageEnd)} at the end.`
  );
}
