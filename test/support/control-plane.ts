// Owns: one etcd + kube-apiserver pair on loopback for tests: its temp dir, TLS material, admin
// token, service-account signing key, kubeconfig, logs and processes.
// Guarantees: every child runs in its own process group and logs to a file in `dir`; stop(), process
// exit/SIGINT/SIGTERM, and (through a detached guard process) the death of this process kill the
// groups and remove `dir`. Does not: run controllers, a scheduler or kubelets (no EndpointSlices,
// no namespace deletion, no garbage collection), nor build binaries (testenv-bin.ts does). TLS,
// flags, kubeconfig text and readiness checks are shared with the lab (src/lab/control-plane.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { ExecaCommandRunner } from '../../src/dataplane/command-runner.js';
import {
  apiServerArgs as sharedApiServerArgs, etcdArgs, freePorts, httpGet as get, renderKubeconfig, writeCredentials,
} from '../../src/lab/control-plane.js';
import { testenvBinDir } from './testenv-bin.js';

export { SERVICE_CLUSTER_IP_RANGE } from '../../src/lab/control-plane.js';
export const ADMIN_USER = 'smartnat-test-admin';

export interface ControlPlaneOptions {
  /** Directory with the binaries; default testenvBinDir(). */
  binDir?: string;
  /** Time allowed for each start to reach readiness (default 120 s: two busy cores). */
  startTimeoutMs?: number;
  /** Grace between SIGTERM and SIGKILL when stopping a process group (default 15 s). */
  stopTimeoutMs?: number;
  /** Where the temp dir is created (default os.tmpdir()). */
  tmpDir?: string;
  /** Appended to the kube-apiserver command line (later flags win). */
  extraApiServerArgs?: string[];
}

export interface ControlPlanePids {
  etcd: number | undefined;
  apiServer: number | undefined;
  guard: number | undefined;
}

export interface ControlPlane {
  /** Temp dir holding certs, tokens, kubeconfig, etcd data and logs; removed by stop(). */
  readonly dir: string;
  readonly kubeconfigPath: string;
  /** https://127.0.0.1:PORT */
  readonly server: string;
  /** Bearer token of the admin user (group system:masters). */
  readonly token: string;
  /** PEM of the CA that signed the serving certificate. */
  readonly caPath: string;
  readonly binDir: string;
  readonly etcdUrl: string;
  /** Process ids (= process group ids) of the live children and of the guard. */
  pids(): ControlPlanePids;
  stopApiServer(): Promise<void>;
  /** Same port, certificates and flags; waits for readiness. */
  startApiServer(): Promise<void>;
  stopEtcd(): Promise<void>;
  /** Same ports and data dir; waits for /health. */
  startEtcd(): Promise<void>;
  restartEtcd(): Promise<void>;
  /** Kills both groups, then removes dir. Idempotent. */
  stop(): Promise<void>;
}

interface Ports {
  etcdClient: number;
  etcdPeer: number;
  apiServer: number;
}

interface Settings {
  dir: string;
  binDir: string;
  ports: Ports;
  startTimeoutMs: number;
  stopTimeoutMs: number;
  extraApiServerArgs: string[];
}

const GUARD_SCRIPT = fileURLToPath(new URL('./process-guard.mjs', import.meta.url));

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const binDir = opts.binDir ?? testenvBinDir();
  const dir = mkdtempSync(join(opts.tmpDir ?? tmpdir(), 'smartnat-testenv-'));
  const [etcdClient, etcdPeer, apiServer] = (await freePorts(3)) as [number, number, number];
  const plane = new LocalControlPlane({
    dir,
    binDir,
    ports: { etcdClient, etcdPeer, apiServer },
    startTimeoutMs: opts.startTimeoutMs ?? 120_000,
    stopTimeoutMs: opts.stopTimeoutMs ?? 15_000,
    extraApiServerArgs: opts.extraApiServerArgs ?? [],
  });
  try {
    await plane.init();
  } catch (err: unknown) {
    await plane.stop();
    throw err;
  }
  return plane;
}

const live = new Set<LocalControlPlane>();
let hooksInstalled = false;

class LocalControlPlane implements ControlPlane {
  readonly dir: string;
  readonly kubeconfigPath: string;
  readonly server: string;
  readonly token: string;
  readonly caPath: string;
  readonly binDir: string;
  readonly etcdUrl: string;
  private readonly settings: Settings;
  private etcd: ChildProcess | undefined;
  private apiServer: ChildProcess | undefined;
  private guard: ChildProcess | undefined;
  private stopped = false;

  constructor(settings: Settings) {
    this.settings = settings;
    this.dir = settings.dir;
    this.binDir = settings.binDir;
    this.kubeconfigPath = join(settings.dir, 'kubeconfig');
    this.caPath = join(settings.dir, 'ca.crt');
    this.server = `https://127.0.0.1:${settings.ports.apiServer}`;
    this.etcdUrl = `http://127.0.0.1:${settings.ports.etcdClient}`;
    this.token = randomBytes(24).toString('hex');
  }

  async init(): Promise<void> {
    live.add(this);
    installExitHooks();
    this.guard = startGuard(this.dir);
    await writeCredentials(new ExecaCommandRunner(), this.dir, { users: [{ token: this.token, name: ADMIN_USER, groups: ['system:masters'] }] });
    const kubeconfig = renderKubeconfig({ server: this.server, caPem: readFileSync(this.caPath), token: this.token, user: ADMIN_USER });
    writeFileSync(this.kubeconfigPath, kubeconfig, { mode: 0o600 });
    await this.startEtcd();
    await this.startApiServer();
  }

  pids(): ControlPlanePids {
    return { etcd: livePid(this.etcd), apiServer: livePid(this.apiServer), guard: livePid(this.guard) };
  }

  async startEtcd(): Promise<void> {
    if (livePid(this.etcd) !== undefined) throw new Error('etcd is already running');
    this.etcd = this.launch('etcd', etcdArgs(this.settings.dir, this.settings.ports));
    await this.waitUntil('etcd /health', this.etcd, 'etcd.log', async () => {
      const res = await get(`${this.etcdUrl}/health`);
      return res.status === 200 && (JSON.parse(res.body) as { health?: unknown }).health === 'true';
    });
  }

  async stopEtcd(): Promise<void> {
    await this.halt(this.etcd);
    this.etcd = undefined;
  }

  async restartEtcd(): Promise<void> {
    await this.stopEtcd();
    await this.startEtcd();
  }

  async startApiServer(): Promise<void> {
    if (livePid(this.apiServer) !== undefined) throw new Error('kube-apiserver is already running');
    this.apiServer = this.launch('kube-apiserver', sharedApiServerArgs(this.settings.dir, this.settings.ports, this.settings.extraApiServerArgs));
    const ca = readFileSync(this.caPath);
    await this.waitUntil('kube-apiserver /readyz', this.apiServer, 'kube-apiserver.log', async () => {
      const res = await get(`${this.server}/readyz`, { ca, token: this.token });
      return res.status === 200;
    });
    await this.waitUntil('namespace default', this.apiServer, 'kube-apiserver.log', async () => {
      const res = await get(`${this.server}/api/v1/namespaces/default`, { ca, token: this.token });
      return res.status === 200;
    });
  }

  async stopApiServer(): Promise<void> {
    await this.halt(this.apiServer);
    this.apiServer = undefined;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.stopApiServer();
    await this.stopEtcd();
    rmSync(this.dir, { recursive: true, force: true });
    const guard = this.guard;
    if (guard?.stdin && livePid(guard) !== undefined) {
      const exited = once(guard, 'exit');
      guard.ref(); // unref'd so it never holds a test process open; here we do wait for it
      guard.stdin.end('done\n');
      await exited;
    }
    live.delete(this);
  }

  /** Synchronous last resort for process exit: SIGKILL the groups, remove the dir. */
  killNow(): void {
    for (const child of [this.apiServer, this.etcd]) {
      const pid = livePid(child);
      if (pid !== undefined) signalGroup(pid, 'SIGKILL');
    }
    rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }

  private launch(name: string, args: string[]): ChildProcess {
    const log = openSync(join(this.dir, `${name}.log`), 'a');
    let child: ChildProcess;
    try {
      // detached: a new session and process group, so a terminal's Ctrl-C reaches only us, and we
      // can signal the whole group (kube-apiserver and etcd start no helpers, but be thorough).
      child = spawn(join(this.binDir, name), args, { detached: true, stdio: ['ignore', log, log] });
    } finally {
      closeSync(log);
    }
    child.on('error', () => {
      // reported by waitUntil through the log and exit state
    });
    child.unref();
    if (child.pid !== undefined) this.guard?.stdin?.write(`group ${child.pid}\n`);
    return child;
  }

  private async halt(child: ChildProcess | undefined): Promise<void> {
    const pid = livePid(child);
    if (child === undefined || pid === undefined) return;
    const exited = once(child, 'exit');
    signalGroup(pid, 'SIGTERM');
    const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), this.settings.stopTimeoutMs);
    await exited;
    clearTimeout(timer);
    signalGroup(pid, 'SIGKILL'); // anything left in the group
    this.guard?.stdin?.write(`ungroup ${pid}\n`);
  }

  private async waitUntil(what: string, child: ChildProcess, log: string, ready: () => Promise<boolean>): Promise<void> {
    const deadline = performance.now() + this.settings.startTimeoutMs;
    for (;;) {
      let lastError = 'not ready yet';
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
        throw this.startFailure(`${what}: process exited (code ${child.exitCode}, signal ${child.signalCode})`, log);
      }
      try {
        if (await ready()) return;
      } catch (err: unknown) {
        lastError = err instanceof Error ? err.message : String(err);
      }
      if (performance.now() > deadline) {
        throw this.startFailure(`${what}: not ready after ${this.settings.startTimeoutMs} ms (${lastError})`, log);
      }
      await sleep(100);
    }
  }

  private startFailure(message: string, log: string): Error {
    const tail = tailOf(join(this.dir, log), 40);
    return new Error(`${message}\n--- last lines of ${log} ---\n${tail}`);
  }
}

function startGuard(dir: string): ChildProcess {
  const guard = spawn(process.execPath, [GUARD_SCRIPT, dir], {
    detached: true,
    stdio: ['pipe', 'ignore', 'ignore'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  guard.on('error', () => {
    // a missing guard weakens crash cleanup only; stop() and the exit hooks still work
  });
  guard.stdin?.on('error', () => {
    // EPIPE after the guard exited
  });
  guard.unref();
  (guard.stdin as Socket | null)?.unref();
  return guard;
}

/**
 * In jest's sandbox `process` is a copy whose listeners never fire, so these hooks act only where
 * the real process object is used (globalSetup, scripts); the guard covers test files.
 */
function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const killAll = (): void => {
    for (const plane of [...live]) plane.killNow();
  };
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = (): void => {
      killAll();
      process.removeListener(signal, onSignal);
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

function livePid(child: ChildProcess | undefined): number | undefined {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return undefined;
  return child.pid;
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // the group is gone already
  }
}

function tailOf(file: string, lines: number): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').split('\n').slice(-lines - 1).join('\n');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
