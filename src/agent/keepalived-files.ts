// The keepalived port for `--no-keepalived`: keepalived runs elsewhere (the chart's watchdog
// container) and reads what this agent writes into the shared state dir: keepalived.conf and the
// track files. Guarantees: the same track-file writes (and their safety order) as the supervisor;
// keepalived.conf is replaced atomically and only when its text changes. Does not start, check or
// signal keepalived (the watchdog runs `keepalived -t` and reloads). With `onStateChange` it reads
// keepalived's notify FIFO in the shared state dir ('share' mode of NotifyFifoReader: it uses the
// FIFO keepalived made, or makes it before keepalived first reads the config, and follows a
// keepalived restart that replaces it).
import { mkdir, rename, writeFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { CommandRunner } from '../dataplane/command-runner.js';
import type { VrrpStateChange } from '../keepalived/notify.js';
import { NotifyFifoReader } from '../keepalived/notify-fifo.js';
import { notifyFifoPath } from '../keepalived/render.js';
import { KeepalivedSupervisor, type ApplyOutcome, type TrackState } from '../keepalived/supervisor.js';
import type { KeepalivedPort } from './ports.js';

export class KeepalivedFiles implements KeepalivedPort {
  private readonly files: KeepalivedSupervisor;
  private text: string | undefined;
  private readonly fifo: NotifyFifoReader | undefined;

  constructor(
    private readonly stateDir: string,
    runner: CommandRunner,
    log: Logger,
    options: { readonly onStateChange?: (change: VrrpStateChange) => void; readonly recheckMs?: number } = {},
  ) {
    const onChange = options.onStateChange;
    if (onChange) {
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
    await this.files.writeAgentAlive(false);
  }
}
