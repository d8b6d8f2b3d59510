// Owns: what integration tests share to reach the layer's control plane: its KubeConfig, the real
// kubectl and helm with that kubeconfig, a fresh namespace per test, and a wait-until helper.
// Guarantees: everything aims at SMARTNAT_TEST_KUBECONFIG (set by global-setup.ts) unless a
// kubeconfig is passed; failures carry the command, exit code and stderr. Does not: start or stop
// control planes (control-plane.ts) or delete namespaces (nothing here finalizes them).
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { execa } from 'execa';
import { testenvBinDir } from './testenv-bin.js';

export function testKubeconfigPath(): string {
  const path = process.env.SMARTNAT_TEST_KUBECONFIG;
  if (path === undefined || path === '') {
    throw new Error('SMARTNAT_TEST_KUBECONFIG is not set: run integration tests through jest --selectProjects integration (its globalSetup starts the control plane)');
  }
  return path;
}

export function loadTestKubeConfig(path: string = testKubeconfigPath()): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

export interface ToolOptions {
  /** Written to the tool's stdin. */
  input?: string;
  /** Default: SMARTNAT_TEST_KUBECONFIG. */
  kubeconfig?: string;
  /** Default 60 s. */
  timeoutMs?: number;
  /** Resolve with the exit code instead of throwing on a non-zero exit. */
  allowFailure?: boolean;
}

export interface ToolResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Runs the real kubectl from the test binaries with the test kubeconfig. */
export async function kubectl(args: string[], opts: ToolOptions = {}): Promise<ToolResult> {
  const kubeconfig = opts.kubeconfig ?? testKubeconfigPath();
  return runTool('kubectl', [`--kubeconfig=${kubeconfig}`, ...args], {}, opts);
}

/**
 * Runs the real helm with the test kubeconfig; its cache, config and data live beside the
 * kubeconfig (inside the control plane's temp dir), never in the user's home.
 */
export async function helm(args: string[], opts: ToolOptions = {}): Promise<ToolResult> {
  const kubeconfig = opts.kubeconfig ?? testKubeconfigPath();
  const home = join(dirname(kubeconfig), 'helm');
  const env = {
    KUBECONFIG: kubeconfig,
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_DATA_HOME: join(home, 'data'),
  };
  for (const dir of [env.HELM_CACHE_HOME, env.HELM_CONFIG_HOME, env.HELM_DATA_HOME]) mkdirSync(dir, { recursive: true });
  return runTool('helm', args, env, opts);
}

async function runTool(name: 'kubectl' | 'helm', args: string[], env: Record<string, string>, opts: ToolOptions): Promise<ToolResult> {
  const bin = join(testenvBinDir(), name);
  const result = await execa(bin, args, {
    ...(opts.input === undefined ? {} : { input: opts.input }),
    env,
    timeout: opts.timeoutMs ?? 60_000,
    reject: false,
    stripFinalNewline: false,
  });
  const exitCode = result.exitCode ?? -1;
  if (exitCode !== 0 && opts.allowFailure !== true) {
    throw new Error(`${name} ${args.join(' ')} exited ${exitCode}${result.timedOut ? ' (timed out)' : ''}\nstderr:\n${result.stderr}\nstdout:\n${result.stdout}`);
  }
  return { stdout: String(result.stdout), stderr: String(result.stderr), exitCode };
}

/**
 * Creates a namespace named `<prefix><random>` (generateName) and returns its name. Namespaces are
 * never deleted: without kube-controller-manager deletion would stay Terminating forever anyway.
 */
export async function createTestNamespace(prefix = 'test-', kc: KubeConfig = loadTestKubeConfig()): Promise<string> {
  const generateName = prefix.endsWith('-') ? prefix : `${prefix}-`;
  const core = kc.makeApiClient(CoreV1Api);
  const ns = await core.createNamespace({
    body: { metadata: { generateName, labels: { 'smartnat.aureacentral.com/test': 'true' } } },
  });
  const name = ns.metadata?.name;
  if (name === undefined) throw new Error(`namespace created from generateName ${generateName} came back without a name`);
  return name;
}

export interface WaitOptions {
  /** Default 30 s. */
  timeoutMs?: number;
  /** Default 100 ms. */
  intervalMs?: number;
  /** Named in the timeout error. */
  what?: string;
}

/**
 * Polls `probe` until it returns something other than undefined/false and returns that value.
 * A throwing probe counts as "not yet"; its last error is reported when time runs out.
 */
export async function waitFor<T>(probe: () => Promise<T | undefined | false> | T | undefined | false, opts: WaitOptions = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const deadline = performance.now() + timeoutMs;
  let last: unknown = undefined;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err: unknown) {
      last = err;
    }
    if (performance.now() >= deadline) {
      const reason = last instanceof Error ? `: last error: ${last.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what ?? 'a condition'}${reason}`, { cause: last });
    }
    await new Promise((resolve) => setTimeout(resolve, opts.intervalMs ?? 100));
  }
}
