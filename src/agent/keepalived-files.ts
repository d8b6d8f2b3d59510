// The keepalived port for `--no-keepalived`: keepalived runs elsewhere (the chart's watchdog
// container) and reads what this agent writes into the shared state dir: keepalived.conf and the
// track files. Guarantees: the same track-file writes (and their safety order) as the supervisor;
// keepalived.conf is replaced atomically and only when its text changes. Does not start, check or
// signal keepalived (the watchdog runs `keepalived -t` and reloads). With `onStateChange` it reads
// keepalived's notify FIFO in the shared state dir ('share' mode of NotifyFifoReader: it uses the
// FIFO keepalived made, or makes it before keepalived first reads the config, and follows a
// keepalived restart that replaces it). keepalived reports a state only when it changes, so the
// last state per address is also kept in `vrrp-states.json` there: a restarted agent (keepalived kept
// running in its own container) starts from it, and the lines queued in the FIFO since then follow.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { CommandRunner } from '../dataplane/command-runner.js';
import { parseNotifyLine, type VrrpStateChange } from '../keepalived/notify.js';
import { NotifyFifoReader } from '../keepalived/notify-fifo.js';
import { notifyFifoPath } from '../keepalived/render.js';
import { KeepalivedSupervisor, type ApplyOutcome, type TrackState } from '../keepalived/supervisor.js';
import type { KeepalivedPort } from './ports.js';

export class KeepalivedFiles implements KeepalivedPort {
  private readonly files: KeepalivedSupervisor;
  private text: string | undefined;
  private readonly fifo: NotifyFifoReader | undefined;
  private readonly onStateChange: ((change: VrrpStateChange) => void) | undefined;
  private readonly states = new Map<string, VrrpStateChange>();
  private saving: Promise<void> = Promise.resolve();
  private restored = false;

  constructor(
    private readonly stateDir: string,
    runner: CommandRunner,
    log: Logger,
    options: { readonly onStateChange?: (change: VrrpStateChange) => void; readonly recheckMs?: number } = {},
  ) {
    this.onStateChange = options.onStateChange;
    if (this.onStateChange) {
      const onChange = (change: VrrpStateChange): void => this.changed(change, log);
      this.fifo = new NotifyFifoReader({ path: notifyFifoPath(stateDir), mode: 'share', runner, log, onChange, ...(options.recheckMs === undefined ? {} : { recheckMs: options.recheckMs }) });
    }
    const launcher = {
      launch: (): never => {
        throw new Error('keepalived runs outside the agent (--no-keepalived)');
      },
    };
    this.files = new KeepalivedSupervisor({ runner, launcher, stateDir, log });
  }

  async writeAgentAlive(alive: boolean): Promise<void> {
    await this.files.writeAgentAlive(alive);
  }

  async writeTrack(address: string, state: TrackState): Promise<void> {
    await this.files.writeTrack(address, state);
  }

  /** The agent writes every instance's track files before it calls this (src/agent/agent.ts). */
  async applyConfig(text: string): Promise<ApplyOutcome> {
    if (text === this.text) return 'unchanged';
    await mkdir(this.stateDir, { recursive: true, mode: 0o700 });
    await this.restoreStates();
    await this.fifo?.open();
    const path = `${this.stateDir}/keepalived.conf`;
    await writeFile(`${path}.new`, text);
    await rename(`${path}.new`, path);
    const first = this.text === undefined;
    this.text = text;
    return first ? 'started' : 'reloaded';
  }

  async stop(): Promise<void> {
    this.fifo?.close();
    await this.saving;
    await this.files.writeAgentAlive(false);
  }

  private get statesPath(): string {
    return `${this.stateDir}/vrrp-states.json`;
  }

  private changed(change: VrrpStateChange, log: Logger): void {
    this.states.set(change.address, change);
    this.onStateChange?.(change);
    const text = `${JSON.stringify([...this.states.values()].map((c) => `INSTANCE "${c.instance}" ${c.state} ${c.priority}`))}\n`;
    this.saving = this.saving.then(async () => {
      await writeFile(`${this.statesPath}.new`, text);
      await rename(`${this.statesPath}.new`, this.statesPath);
    }).catch((err: unknown) => log.warn({ err }, 'saving the VRRP states failed'));
  }

  /** Once, before the FIFO is opened: the states the previous agent saw (notify lines, parsed again). */
  private async restoreStates(): Promise<void> {
    if (this.restored || !this.onStateChange) return;
    this.restored = true;
    const text = await readFile(this.statesPath, 'utf8').catch(() => undefined);
    if (text === undefined) return;
    let lines: unknown;
    try {
      lines = JSON.parse(text);
    } catch {
      return;
    }
    if (!Array.isArray(lines)) return;
    for (const line of lines) {
      const change = typeof line === 'string' ? parseNotifyLine(line) : undefined;
      if (change && !this.states.has(change.address)) {
        this.states.set(change.address, change);
        this.onStateChange(change);
      }
    }
  }
}
