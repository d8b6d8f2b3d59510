// NotifyFifoReader: reads keepalived's notify FIFO (`notify_fifo` in keepalived.conf) and reports
// each VRRP state change it understands. Two ways to own the FIFO:
//   'recreate' - the agent runs keepalived (KeepalivedSupervisor): a fresh FIFO before each start.
//   'share'    - keepalived runs elsewhere on the same state dir (the chart's watchdog container):
//                an existing FIFO is used as it is (keepalived may hold it open, with lines queued
//                for us), a missing one is created. keepalived unlinks a FIFO it created itself when
//                it exits and makes a new one when restarted, so the reader checks every
//                `recheckMs` that the path still names the FIFO it holds and reopens it otherwise.
// Guarantees: opened O_RDWR, so reads never see EOF while keepalived has it closed and keepalived's
// writes (O_NONBLOCK on its side) never wait for a reader; partial lines are joined. Does not
// interpret states (the caller does) or start keepalived.
import { constants as fsConstants, fstatSync, openSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { CommandRunner } from '../dataplane/command-runner.js';
import { parseNotifyLine, type VrrpStateChange } from './notify.js';

export interface NotifyFifoReaderOptions {
  readonly path: string;
  readonly mode: 'recreate' | 'share';
  /** Runs mkfifo where keepalived runs. */
  readonly runner: CommandRunner;
  readonly log: Logger;
  readonly onChange: (change: VrrpStateChange) => void;
  /** 'share' mode: how often to check that the path is still our FIFO (default 1000 ms). */
  readonly recheckMs?: number;
}

export class NotifyFifoReader {
  private socket: Socket | undefined;
  private inode: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly o: NotifyFifoReaderOptions) {}

  get isOpen(): boolean {
    return this.socket !== undefined;
  }

  /** Opens the FIFO (idempotent); in 'share' mode also starts the recheck timer. */
  async open(): Promise<void> {
    if (this.socket) return;
    this.closed = false;
    await this.openNow();
    if (this.o.mode === 'share' && !this.timer) {
      this.timer = setInterval(() => {
        this.recheck().catch((err: unknown) => this.o.log.warn({ err }, 'keepalived notify FIFO recheck failed'));
      }, this.o.recheckMs ?? 1000);
      this.timer.unref();
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.socket?.destroy();
    this.socket = undefined;
    this.inode = undefined;
  }

  private async openNow(): Promise<void> {
    const path = this.o.path;
    const existing = await stat(path).catch(() => undefined);
    if (this.o.mode === 'recreate' || (existing !== undefined && !existing.isFIFO())) {
      await rm(path, { force: true });
      await this.o.runner.run('mkfifo', ['-m', '0600', path]);
    } else if (existing === undefined) {
      // keepalived may create it at the same moment: losing that race is fine (EEXIST), it is a FIFO either way.
      await this.o.runner.run('mkfifo', ['-m', '0600', path], { okExitCodes: [0, 1] });
    }
    // A raw descriptor owned by the socket: a FileHandle would be closed when garbage-collected,
    // leaving keepalived writing into a FIFO without a reader.
    const fd = openSync(path, fsConstants.O_RDWR | fsConstants.O_NONBLOCK);
    this.inode = fstatSync(fd).ino;
    const socket = new Socket({ fd, readable: true, writable: false });
    socket.setEncoding('utf8');
    let pending = '';
    socket.on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const change = parseNotifyLine(line);
        if (change) this.o.onChange(change);
      }
    });
    socket.on('error', (err: unknown) => this.o.log.warn({ err }, 'keepalived notify FIFO error'));
    this.socket = socket;
  }

  /** 'share' mode: the path was unlinked or replaced (keepalived restarted): read the new FIFO. */
  private async recheck(): Promise<void> {
    if (this.closed || !this.socket) return;
    const now = await stat(this.o.path).catch(() => undefined);
    if (now !== undefined && now.isFIFO() && now.ino === this.inode) return;
    if (this.closed) return;
    this.o.log.info({ path: this.o.path }, 'keepalived notify FIFO replaced; reopening');
    this.socket.destroy();
    this.socket = undefined;
    await this.openNow();
  }
}
