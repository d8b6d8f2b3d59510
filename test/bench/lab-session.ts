// A lab of a benchmark's own: `lab up --name NAME` before, `lab down --name NAME` after, also when
// the benchmark throws or is interrupted. Guarantees: only the built CLI (dist/main.js) is run,
// with argument arrays; the lab is brought down exactly once. Does not build dist/ (run
// `npm run build` first; the runner does).
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ExecaCommandRunner, type RunResult } from '../../src/dataplane/command-runner.js';

export const CLI = ['dist/main.js'] as const;
const host = new ExecaCommandRunner();

export interface LabDescriptor {
  name: string;
  dir: string;
  kubeconfig: string;
  apiserver: { url: string; pid: number | null };
  leaseNamespace: string;
  agents: { name: string; netns: string; pid: number | null; keepalivedPid: number | null; metrics: string }[];
  pools: { name: string; addresses: string[] }[];
  mappings: { namespace: string; name: string; addresses: string[] }[];
}

export async function runCli(args: readonly string[], options: { timeoutMs?: number; okExitCodes?: readonly number[] } = {}): Promise<RunResult> {
  return host.run('node', [...CLI, ...args], { timeoutMs: options.timeoutMs ?? 600_000, ...(options.okExitCodes ? { okExitCodes: options.okExitCodes } : {}) });
}

/** Brings the lab up, runs fn with its descriptor, brings it down whatever happened. */
export async function withLab<T>(name: string, fn: (lab: LabDescriptor) => Promise<T>): Promise<T> {
  let down = false;
  const bringDown = async (): Promise<void> => {
    if (down) return;
    down = true;
    process.stderr.write(`bench: lab down --name ${name}\n`);
    await runCli(['lab', 'down', '--name', name], { timeoutMs: 120_000, okExitCodes: [0, 1] });
  };
  const onSignal = (): void => {
    void bringDown().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    process.stderr.write(`bench: lab up --name ${name}\n`);
    const up = await runCli(['lab', 'up', '--name', name, '--json'], { timeoutMs: 300_000 });
    return await fn(JSON.parse(up.stdout) as LabDescriptor);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await bringDown();
  }
}

/** True when the module at `url` is the script node was started with (not imported by a test). */
export function isMain(url: string): boolean {
  const script = process.argv[1];
  return script !== undefined && pathToFileURL(resolve(script)).href === url;
}
