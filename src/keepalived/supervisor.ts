// KeepalivedSupervisor: owns one keepalived process per agent. It writes the track files (the
// lease's decision) before keepalived reads them, checks every config with `keepalived -t`
// before use, starts keepalived tied to the agent's life (setpriv --pdeathsig), reloads with
// SIGHUP only when the config text changed, restarts it with backoff when it dies, and reports
// VRRP state changes read from the notify FIFO. It does not decide ownership.
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { CommandRunner } from '../dataplane/command-runner.js';
import type { Daemon, DaemonLauncher } from '../dataplane/daemon.js';
import type { VrrpStateChange } from './notify.js';
import { NotifyFifoReader } from './notify-fifo.js';
import { agentTrackFilePath, notifyFifoPath, PRIORITY_BOOST, trackFilePaths, type PriorityRole } from './render.js';

export class KeepalivedConfigError extends Error {
  override readonly name = 'KeepalivedConfigError';
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message);
  }
}

/** What this agent tells keepalived about one address. */
export interface TrackState {
  /** True only for the lease holder (or a planned successor): false puts the instance in FAULT. */
  readonly eligible: boolean;
  readonly role: PriorityRole;
}

export interface KeepalivedSupervisorOptions {
  /** Runs `keepalived -t` and `mkfifo` where keepalived will run (the agent's namespace). */
  readonly runner: CommandRunner;
  readonly launcher: DaemonLauncher;
  readonly stateDir: string;
  readonly log: Logger;
  readonly onStateChange?: (change: VrrpStateChange) => void;
  readonly onRestart?: (exit: { code: number | undefined; signal: string | undefined }) => void;
  readonly keepalivedBinary?: string;
  readonly restartBackoffMs?: { readonly initial: number; readonly max: number };
}

export type ApplyOutcome = 'unchanged' | 'started' | 'reloaded';

export class KeepalivedSupervisor {
  private daemon: Daemon | undefined;
  private configText: string | undefined;
  private stopping = false;
  private backoffMs: number;
  private restartTimer: NodeJS.Timeout | undefined;
  private fifo: NotifyFifoReader | undefined;
  private readonly track = new Map<string, TrackState>();
  private readonly states = new Map<string, VrrpStateChange>();
  private restartCount = 0;

  constructor(private readonly opts: KeepalivedSupervisorOptions) {
    this.backoffMs = opts.restartBackoffMs?.initial ?? 200;
  }

  get configPath(): string {
    return `${this.opts.stateDir}/keepalived.conf`;
  }

  get pid(): number | undefined {
    return this.daemon?.pid;
  }

  get restarts(): number {
    return this.restartCount;
  }

  /** The last VRRP state keepalived reported per address. */
  vrrpStates(): ReadonlyMap<string, VrrpStateChange> {
    return this.states;
  }

  /** Writes the shared liveness file: false faults every instance at once. */
  async writeAgentAlive(alive: boolean): Promise<void> {
    await this.ensureDirs();
    await writeFile(agentTrackFilePath(this.opts.stateDir), alive ? '0\n' : '1\n');
  }

  /** Records and writes one address's track files; keepalived picks them up without a reload. */
  async writeTrack(address: string, state: TrackState): Promise<void> {
    await this.ensureDirs();
    const prev = this.track.get(address);
    this.track.set(address, state);
    if (prev && prev.eligible === state.eligible && prev.role === state.role) return;
    const paths = trackFilePaths(this.opts.stateDir, address);
    // Order matters for safety: losing eligibility first, gaining priority first.
    const eligibility = async (): Promise<void> => writeFile(paths.eligibility, state.eligible ? '0\n' : '1\n');
    const priority = async (): Promise<void> => writeFile(paths.priority, `${PRIORITY_BOOST[state.role]}\n`);
    if (state.eligible) {
      await priority();
      await eligibility();
    } else {
      await eligibility();
      await priority();
    }
  }

  /**
   * Checks `text` with `keepalived -t`, then starts keepalived or reloads it (SIGHUP) if the text
   * changed. Track files of `addresses` not yet written are written first as ineligible.
   * A config that fails the check leaves the running keepalived and its config untouched.
   */
  async applyConfig(text: string, addresses: readonly string[]): Promise<ApplyOutcome> {
    await this.ensureDirs();
    for (const address of addresses) {
      if (!this.track.has(address)) await this.writeTrack(address, { eligible: false, role: 'standby' });
    }
    if (text === this.configText && this.daemon) return 'unchanged';
    const candidate = `${this.configPath}.new`;
    await writeFile(candidate, text);
    const check = await this.opts.runner.run(this.binary, ['-t', '-f', candidate], { okExitCodes: [0, 1, 2, 3, 4, 5, 6, 7, 8] });
    if (check.exitCode !== 0) {
      await rm(candidate, { force: true });
      throw new KeepalivedConfigError(`keepalived -t refused the rendered config (exit ${check.exitCode})`, check.stderr);
    }
    await rename(candidate, this.configPath);
    this.configText = text;
    if (this.daemon) {
      this.daemon.signal('SIGHUP');
      return 'reloaded';
    }
    await this.launch();
    return 'started';
  }

  /** Stops keepalived (SIGTERM: it removes its addresses) and the FIFO reader. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const daemon = this.daemon;
    if (daemon) {
      const gone = new Promise<void>((resolve) => {
        this.exitWaiters.push(resolve);
      });
      daemon.signal('SIGTERM');
      await gone;
    }
    this.fifo?.close();
    this.fifo = undefined;
  }

  private exitWaiters: Array<() => void> = [];

  private get binary(): string {
    return this.opts.keepalivedBinary ?? 'keepalived';
  }

  private async ensureDirs(): Promise<void> {
    await mkdir(`${this.opts.stateDir}/track`, { recursive: true, mode: 0o700 });
  }

  private async openFifo(): Promise<void> {
    this.fifo ??= new NotifyFifoReader({ path: notifyFifoPath(this.opts.stateDir), mode: 'recreate', runner: this.opts.runner, log: this.opts.log, onChange: (c) => this.onNotify(c) });
    await this.fifo.open();
  }

  private onNotify(change: VrrpStateChange): void {
    this.states.set(change.address, change);
    this.opts.log.info({ address: change.address, state: change.state, priority: change.priority }, 'vrrp state');
    this.opts.onStateChange?.(change);
  }

  private async launch(): Promise<void> {
    await this.openFifo();
    const dir = this.opts.stateDir;
    const args = ['--vrrp', '--dont-fork', '--log-console', '--no-syslog', '-f', this.configPath, '-p', `${dir}/keepalived.pid`, '-r', `${dir}/vrrp.pid`];
    const started = performance.now();
    this.daemon = this.opts.launcher.launch(this.binary, args, {
      dieWithParent: 'TERM',
      onOutput: (line) => this.opts.log.debug({ component: 'keepalived' }, line),
      onExit: (exit) => this.onExit(exit, performance.now() - started),
    });
    this.opts.log.info({ pid: this.daemon.pid }, 'keepalived started');
  }

  private onExit(exit: { code: number | undefined; signal: string | undefined }, ranMs: number): void {
    this.daemon = undefined;
    const waiters = this.exitWaiters;
    this.exitWaiters = [];
    for (const w of waiters) w();
    if (this.stopping) return;
    this.restartCount++;
    this.opts.onRestart?.(exit);
    if (ranMs > 30_000) this.backoffMs = this.opts.restartBackoffMs?.initial ?? 200;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.opts.restartBackoffMs?.max ?? 5_000);
    this.opts.log.warn({ ...exit, delayMs: delay }, 'keepalived exited; restarting');
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping || this.daemon) return;
      this.launch().catch((err: unknown) => this.opts.log.error({ err }, 'keepalived restart failed'));
    }, delay);
  }

  /** Reads back a track file (tests and status). */
  async readTrackFile(path: string): Promise<string> {
    return (await readFile(path, 'utf8')).trim();
  }
}
