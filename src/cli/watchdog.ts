// `smartnat keepalived-watchdog`: the main process of the chart's keepalived container, which runs
// outside the agent's PID namespace (DESIGN 3.3, ADR 0007). It runs keepalived on the config the
// agent renders into the shared state dir (`keepalived -t` first, SIGHUP when the text changes)
// and faults every VRRP instance — `1` into track/agent.alive — when the agent's heartbeat (its
// /healthz, or a file's mtime) has been failing for --stale-after. Only the agent lifts the fault:
// it writes 0 after it has written every per-address track file of its current decision. Does not
// decide ownership and never writes a per-address track file.
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Command } from 'commander';
import type { Logger } from 'pino';
import type { CommandRunner } from '../dataplane/command-runner.js';
import { ExecaCommandRunner } from '../dataplane/command-runner.js';
import type { Daemon, DaemonLauncher } from '../dataplane/daemon.js';
import { ExecaDaemonLauncher } from '../dataplane/daemon.js';
import { agentTrackFilePath } from '../keepalived/render.js';
import { createLogger } from '../log/logger.js';
import { parseDuration } from './agent.js';
import { UsageError } from './errors.js';
import type { CliIo } from './index.js';

// ---- pure: the heartbeat decision -------------------------------------------------------------

export interface HeartbeatState {
  /** Monotonic ms of the last good heartbeat (or of the start: the agent gets one window to come up). */
  readonly lastOkAt: number;
  readonly faulted: boolean;
}

export type HeartbeatAction = 'none' | 'fault' | 'recover';

/** One observation: `ok` = the heartbeat answered healthy at `now` (monotonic ms). */
export function decideHeartbeat(state: HeartbeatState, ok: boolean, now: number, staleAfterMs: number): { state: HeartbeatState; action: HeartbeatAction } {
  if (ok) return { state: { lastOkAt: now, faulted: false }, action: state.faulted ? 'recover' : 'none' };
  if (!state.faulted && now - state.lastOkAt >= staleAfterMs) return { state: { ...state, faulted: true }, action: 'fault' };
  return { state, action: 'none' };
}

/** The agent's duration syntax ("250ms", "2s", a bare number of ms); a bad one is a usage error. */
export function parseDurationMs(text: string, flag: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new UsageError(`${flag}: expected a duration like 500ms or 2s, got ${JSON.stringify(text)}`);
  return ms;
}

// ---- ports ---------------------------------------------------------------------------------------

/** Tells whether the agent is alive right now. */
export type HeartbeatProbe = () => Promise<boolean>;

/** Healthy = an HTTP 2xx from `url` within `timeoutMs`. */
export function httpHeartbeat(url: string, timeoutMs: number): HeartbeatProbe {
  return async () => {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
      await res.body?.cancel();
      return res.ok;
    } catch {
      return false;
    }
  };
}

/** Healthy = `path` was modified less than `staleAfterMs` ago (wall clock: same host as the writer). */
export function fileHeartbeat(path: string, staleAfterMs: number, wallNow: () => number = Date.now): HeartbeatProbe {
  return async () => {
    try {
      return wallNow() - (await stat(path)).mtimeMs < staleAfterMs;
    } catch {
      return false;
    }
  };
}

// ---- the fault on track/agent.alive ------------------------------------------------------------------

export const FAULT_TEXT = '1\n';

/**
 * The watchdog's fault. It is never undone by the watchdog: the per-address track files still hold
 * the decision of the agent that went stale, and a restarted agent has not decided anything yet.
 * Putting the old 0 back when its heartbeat returned made the lab's restarted agent master (for
 * ~0.5 s) of an address a peer had taken over meanwhile: the dead agent's "holder" track files came
 * back to life, and the peer no longer advertised to it (a fenced agent is no unicast peer). The
 * agent writes 0 itself, after its track files, on every keepalived pass.
 */
export class AliveFileFault {
  private faulted = false;

  constructor(readonly path: string) {}

  get active(): boolean {
    return this.faulted;
  }

  /** Writes `1`: every instance to FAULT. */
  async fault(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    await writeFile(this.path, FAULT_TEXT);
    this.faulted = true;
  }

  /** The heartbeat is back: forget the fault; true when the agent has already lifted it (the file is no longer 1). */
  async release(): Promise<boolean> {
    this.faulted = false;
    const text = await readFile(this.path, 'utf8').catch(() => undefined);
    return text !== undefined && text !== FAULT_TEXT;
  }
}

// ---- keepalived on the agent's rendered config ----------------------------------------------------

export interface KeepalivedRunnerOptions {
  readonly stateDir: string;
  readonly runner: CommandRunner;
  readonly launcher: DaemonLauncher;
  readonly log: Logger;
  readonly binary: string;
  /** Called when keepalived exits without being asked to. */
  readonly onUnexpectedExit: (exit: { code: number | undefined; signal: string | undefined }) => void;
}

export type ConfigOutcome = 'waiting' | 'unchanged' | 'refused' | 'started' | 'reloaded';

export class KeepalivedFollower {
  private daemon: Daemon | undefined;
  private text: string | undefined;
  private stopping = false;
  private exited: Promise<void> = Promise.resolve();

  constructor(private readonly o: KeepalivedRunnerOptions) {}

  get configPath(): string {
    return `${this.o.stateDir}/keepalived.conf`;
  }

  /** Reads the config; starts keepalived or reloads it when the text changed and passes `keepalived -t`. */
  async follow(): Promise<ConfigOutcome> {
    const text = await readFile(this.configPath, 'utf8').catch(() => undefined);
    if (text === undefined) return 'waiting';
    if (text === this.text) return 'unchanged';
    const check = await this.o.runner.run(this.o.binary, ['-t', '-f', this.configPath], { okExitCodes: [0, 1, 2, 3, 4, 5, 6, 7, 8] });
    if (check.exitCode !== 0) {
      this.o.log.error({ component: 'watchdog', stderr: check.stderr.slice(0, 2000), exitCode: check.exitCode }, 'keepalived -t refused the config; keeping the running one');
      this.text = text;
      return 'refused';
    }
    this.text = text;
    if (this.daemon !== undefined) {
      this.daemon.signal('SIGHUP');
      return 'reloaded';
    }
    this.start();
    return 'started';
  }

  private start(): void {
    const dir = this.o.stateDir;
    const args = ['--vrrp', '--dont-fork', '--log-console', '--no-syslog', '-f', this.configPath, '-p', `${dir}/keepalived.pid`, '-r', `${dir}/vrrp.pid`];
    let done: () => void = () => undefined;
    this.exited = new Promise<void>((resolve) => {
      done = resolve;
    });
    this.daemon = this.o.launcher.launch(this.o.binary, args, {
      dieWithParent: 'TERM',
      onOutput: (line) => this.o.log.info({ component: 'keepalived' }, line),
      onExit: (exit) => {
        this.daemon = undefined;
        done();
        if (!this.stopping) this.o.onUnexpectedExit(exit);
      },
    });
    this.o.log.info({ component: 'watchdog', pid: this.daemon.pid }, 'keepalived started');
  }

  /** SIGTERM (keepalived removes its addresses) and wait for the exit. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.daemon?.signal('SIGTERM');
    await this.exited;
  }
}

// ---- the loop --------------------------------------------------------------------------------------

export interface WatchdogOptions {
  readonly probe: HeartbeatProbe;
  readonly alive: AliveFileFault;
  readonly keepalived?: KeepalivedFollower;
  readonly staleAfterMs: number;
  readonly intervalMs: number;
  readonly log: Logger;
  readonly now?: () => number;
}

/** Runs until `signal` aborts; one probe (and one config check) per interval, never overlapping. */
export async function runWatchdog(o: WatchdogOptions, signal: AbortSignal): Promise<void> {
  const now = o.now ?? (() => performance.now());
  let state: HeartbeatState = { lastOkAt: now(), faulted: false };
  while (!signal.aborted) {
    const ok = await o.probe();
    const d = decideHeartbeat(state, ok, now(), o.staleAfterMs);
    state = d.state;
    if (d.action === 'fault') {
      await o.alive.fault();
      o.log.warn({ component: 'watchdog', reason: 'heartbeatStale', staleAfterMs: o.staleAfterMs }, 'agent heartbeat stale: every VRRP instance faulted');
    } else if (d.action === 'recover') {
      const lifted = await o.alive.release();
      o.log.info({ component: 'watchdog', lifted }, lifted ? 'agent heartbeat back: the agent has lifted the fault' : 'agent heartbeat back: the fault stays until the agent writes its track files and lifts it');
    }
    if (o.keepalived !== undefined) {
      const outcome = await o.keepalived.follow();
      if (outcome === 'started' || outcome === 'reloaded') o.log.info({ component: 'watchdog', outcome }, 'keepalived config applied');
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, o.intervalMs);
      signal.addEventListener('abort', () => {
        clearTimeout(t);
        resolve();
      }, { once: true });
    });
  }
}

interface WatchdogFlags {
  readonly stateDir: string;
  readonly heartbeatUrl?: string;
  readonly heartbeatFile?: string;
  readonly staleAfter: string;
  readonly interval: string;
  readonly keepalived: boolean;
  readonly keepalivedBinary: string;
  readonly logLevel: string;
}

export function register(program: Command, io: CliIo): void {
  program
    .command('keepalived-watchdog')
    .description("run keepalived on the agent's rendered config and fault its instances when the agent's heartbeat goes stale")
    .requiredOption('--state-dir <dir>', "the agent's state dir (keepalived.conf, track/)")
    .option('--heartbeat-url <url>', "healthy while this answers 2xx (the agent's /healthz)")
    .option('--heartbeat-file <path>', 'healthy while this file was modified within --stale-after')
    .option('--stale-after <duration>', 'fault after the heartbeat has failed this long', '2000ms')
    .option('--interval <duration>', 'probe period', '250ms')
    .option('--no-keepalived', 'only watch the heartbeat; keepalived is run by something else')
    .option('--keepalived-binary <path>', 'keepalived executable', 'keepalived')
    .option('--log-level <level>', 'trace|debug|info|warn|error', 'info')
    .action(async (flags: WatchdogFlags) => {
      if ((flags.heartbeatUrl === undefined) === (flags.heartbeatFile === undefined)) {
        throw new UsageError('keepalived-watchdog: give exactly one of --heartbeat-url and --heartbeat-file');
      }
      const staleAfterMs = parseDurationMs(flags.staleAfter, '--stale-after');
      const intervalMs = parseDurationMs(flags.interval, '--interval');
      if (intervalMs <= 0 || intervalMs >= staleAfterMs) throw new UsageError('keepalived-watchdog: --interval must be positive and shorter than --stale-after');
      const log = createLogger({ level: flags.logLevel, destination: io.stderr });
      const probe = flags.heartbeatUrl !== undefined ? httpHeartbeat(flags.heartbeatUrl, Math.min(intervalMs * 2, staleAfterMs)) : fileHeartbeat(flags.heartbeatFile ?? '', staleAfterMs);
      const abort = new AbortController();
      let failure: Error | undefined;
      const keepalived = flags.keepalived
        ? new KeepalivedFollower({
            stateDir: flags.stateDir,
            runner: new ExecaCommandRunner(),
            launcher: new ExecaDaemonLauncher(),
            log,
            binary: flags.keepalivedBinary,
            onUnexpectedExit: (exit) => {
              // The container restarts us (kubelet backoff); a fresh start re-reads the config.
              failure = new Error(`keepalived exited unexpectedly (code ${String(exit.code)}, signal ${String(exit.signal)})`);
              abort.abort();
            },
          })
        : undefined;
      const onSignal = (): void => abort.abort();
      // `on`, not `once`: execa's exit hook re-raises a signal when it finds itself the only
      // listener left, which a fired `once` listener would make it.
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      log.info({ component: 'watchdog', staleAfterMs, intervalMs, keepalived: flags.keepalived }, 'keepalived watchdog started');
      try {
        await runWatchdog({ probe, alive: new AliveFileFault(agentTrackFilePath(flags.stateDir)), ...(keepalived ? { keepalived } : {}), staleAfterMs, intervalMs, log }, abort.signal);
      } finally {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
        await keepalived?.stop();
      }
      if (failure !== undefined) throw failure;
    });
}
