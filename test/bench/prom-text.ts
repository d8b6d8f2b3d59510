// Pure reading of Prometheus text exposition for the benchmarks: one counter's samples keyed by
// chosen labels, and per-second rates between two scrapes. Guarantees: no I/O; unknown lines are
// skipped. Does not handle histograms or escaped quotes inside label values (the API server's
// request counters have none).

export type CounterSamples = Map<string, number>;

function parseLabels(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) out.set(m[1] ?? '', m[2] ?? '');
  return out;
}

/** Sums the samples of `metric` by the values of `by` (joined with " "). */
export function parseCounter(text: string, metric: string, by: readonly string[]): CounterSamples {
  const out: CounterSamples = new Map();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`) && !line.startsWith(`${metric} `)) continue;
    const close = line.lastIndexOf('}');
    const labels = close > 0 ? parseLabels(line.slice(metric.length + 1, close)) : new Map<string, string>();
    const value = Number(line.slice(close > 0 ? close + 1 : metric.length).trim().split(' ')[0]);
    if (!Number.isFinite(value)) continue;
    const key = by.map((l) => labels.get(l) ?? '').join(' ');
    out.set(key, (out.get(key) ?? 0) + value);
  }
  return out;
}

/** Per-second increase of every key between two scrapes `seconds` apart (keys only in `after` start at 0). */
export function computeRates(before: CounterSamples, after: CounterSamples, seconds: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, v] of after) {
    const d = v - (before.get(key) ?? 0);
    if (d > 0) out.set(key, d / seconds);
  }
  return new Map([...out].sort((a, b) => b[1] - a[1]));
}

export const WRITE_VERBS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE', 'APPLY', 'DELETECOLLECTION']);
