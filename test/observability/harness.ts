// Owns: what the observability lab tests share: a lab of their own through the built CLI, a real
// Prometheus (Debian's package) scraping the lab's agents every second, and small readers for the
// agents' own endpoints. Guarantees: every process it starts is stopped by its pid and every temp
// dir removed by the matching stop/down call; nothing here asserts. Does not: bring a lab down by
// itself (the tests do, in afterAll).
import { execa, type ResultPromise } from 'execa';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExecaCommandRunner } from '../../src/dataplane/command-runner.js';
import { findRepoRoot } from '../../src/lab/lab.js';
import { parseLabDescriptor, type LabDescriptor } from '../../src/lab/drill-descriptor.js';

export const repo = findRepoRoot();
export const mainJs = join(repo, 'dist', 'main.js');
export const host = new ExecaCommandRunner();
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The built CLI, as a user runs it. */
export async function smartnat(args: readonly string[], timeoutMs = 300_000): Promise<string> {
  return (await host.run(process.execPath, [mainJs, ...args], { timeoutMs })).stdout;
}

export interface LabAgentEndpoints {
  readonly name: string;
  readonly pid: number;
  /** e.g. http://198.19.255.2:9100/metrics */
  readonly metrics: string;
  /** host:port, the `instance` label Prometheus gives the agent's series. */
  readonly instance: string;
  readonly base: string;
}

export interface Lab {
  readonly descriptor: LabDescriptor;
  readonly agents: readonly LabAgentEndpoints[];
}

function agentEndpoints(raw: unknown): LabAgentEndpoints[] {
  const agents = (raw as { agents?: unknown }).agents;
  if (!Array.isArray(agents)) throw new Error('lab status --json: agents is not a list');
  return agents.map((a: unknown, i) => {
    const o = a as { name?: unknown; pid?: unknown; metrics?: unknown };
    if (typeof o.name !== 'string' || typeof o.metrics !== 'string') throw new Error(`lab status --json: agents[${i}] lacks name or metrics`);
    const url = new URL(o.metrics);
    return { name: o.name, pid: typeof o.pid === 'number' ? o.pid : 0, metrics: o.metrics, instance: url.host, base: `${url.protocol}//${url.host}` };
  });
}

export async function readLab(name: string): Promise<Lab> {
  const raw = JSON.parse(await smartnat(['lab', 'status', '--name', name, '--json'])) as unknown;
  return { descriptor: parseLabDescriptor(raw), agents: agentEndpoints(raw) };
}

export async function labUp(name: string): Promise<Lab> {
  await smartnat(['lab', 'up', '--name', name], 600_000);
  return readLab(name);
}

export async function labDown(name: string): Promise<void> {
  await smartnat(['lab', 'down', '--name', name], 180_000);
}

/** `npm run build` as lab.lab.ts does (tsc emits even when a colleague's file has a type error). */
export async function build(): Promise<void> {
  await host.run('npm', ['run', 'build'], { timeoutMs: 300_000, okExitCodes: [0, 1, 2] });
}

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

/** GET with a deadline; a timeout or a refused connection comes back as status 0 with the error. */
export async function httpGet(url: string, timeoutMs = 2000): Promise<HttpAnswer> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, body: await res.text() };
  } catch (err: unknown) {
    return { status: 0, body: err instanceof Error ? `${err.name}: ${err.message}` : String(err) };
  }
}

/** Value of an unlabelled (or first-matching) sample in Prometheus text exposition. */
export function sampleValue(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1).trim().split(' ')[0]);
  }
  return undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface PromSample {
  readonly metric: Record<string, string>;
  readonly values: readonly (readonly [number, string])[];
}

export class Prometheus {
  private constructor(
    readonly url: string,
    private readonly dir: string,
    private readonly child: ResultPromise,
  ) {}

  /** Starts Prometheus in the host namespace on loopback, scraping `targets` (host:port) every second. */
  static async start(targets: readonly string[]): Promise<Prometheus> {
    const dir = await mkdtemp(join(tmpdir(), 'smartnat-prom-'));
    const config = [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 900ms',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      '  - job_name: smartnat',
      '    metrics_path: /metrics',
      '    static_configs:',
      `      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]`,
      '',
    ].join('\n');
    await writeFile(join(dir, 'prometheus.yml'), config);
    const port = await freePort();
    const child = execa('prometheus', [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=1d',
    ], { reject: false, stdout: 'ignore', stderr: 'pipe', shell: false });
    const prom = new Prometheus(`http://127.0.0.1:${port}`, dir, child);
    const deadline = Date.now() + 30_000;
    for (;;) {
      if ((await httpGet(`${prom.url}/-/ready`, 1000)).status === 200) return prom;
      if (child.exitCode !== null || Date.now() > deadline) {
        await prom.stop();
        throw new Error(`prometheus did not become ready (exit ${String(child.exitCode)}): ${String((await child).stderr).slice(-2000)}`);
      }
      await sleep(200);
    }
  }

  /** SIGTERM to the pid this started (SIGKILL after 10 s), then its data directory removed. */
  async stop(): Promise<void> {
    const pid = this.child.pid;
    if (pid !== undefined && this.child.exitCode === null) {
      this.child.kill('SIGTERM');
      const killer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await this.child.catch(() => undefined);
      clearTimeout(killer);
    }
    await rm(this.dir, { recursive: true, force: true });
  }

  private async api(path: string, params: Record<string, string>): Promise<unknown> {
    const res = await fetch(`${this.url}${path}`, { method: 'POST', body: new URLSearchParams(params), signal: AbortSignal.timeout(10_000) });
    const body = (await res.json()) as { status?: string; data?: unknown; error?: string };
    if (body.status !== 'success') throw new Error(`prometheus ${path} ${JSON.stringify(params)}: ${body.error ?? res.status}`);
    return body.data;
  }

  /** Instant vector at `time` (seconds; default now): metric labels and value. */
  async query(expr: string, time?: number): Promise<{ metric: Record<string, string>; value: number }[]> {
    const data = (await this.api('/api/v1/query', { query: expr, ...(time !== undefined ? { time: String(time) } : {}) })) as { result: { metric: Record<string, string>; value: [number, string] }[] };
    return data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  }

  async queryRange(expr: string, start: number, end: number, stepSeconds = 1): Promise<PromSample[]> {
    const data = (await this.api('/api/v1/query_range', { query: expr, start: String(start), end: String(end), step: String(stepSeconds) })) as { resultType: string; result: PromSample[] };
    return data.result;
  }
}

/** Polls `f` until it returns a value other than undefined, or throws with the last detail. */
export async function waitFor<T>(what: string, f: () => Promise<T | undefined>, timeoutMs: number, everyMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (err: unknown) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last !== undefined ? `: ${String(last)}` : ''}`);
    await sleep(everyMs);
  }
}
