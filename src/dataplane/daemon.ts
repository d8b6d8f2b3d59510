// DaemonLauncher: starts long-running helper processes (keepalived) the way CommandRunner starts
// short ones: argument arrays through execa, never a shell, optionally inside a network namespace,
// optionally tied to our life with `setpriv --pdeathsig` so the child dies when the agent dies.
// It does not restart anything: supervision is the caller's job.
import { execa } from 'execa';

export interface DaemonOptions {
  /** Send this signal to the daemon when the agent process dies (setpriv --pdeathsig). */
  readonly dieWithParent?: 'TERM' | 'KILL';
  /** Called once with the exit code or signal when the daemon ends. */
  readonly onExit: (exit: { code: number | undefined; signal: string | undefined }) => void;
  /** Receives each line the daemon prints on stdout or stderr. */
  readonly onOutput?: (line: string) => void;
}

export interface Daemon {
  readonly pid: number | undefined;
  signal(sig: NodeJS.Signals): void;
}

export interface DaemonLauncher {
  launch(cmd: string, args: readonly string[], options: DaemonOptions): Daemon;
}

export class ExecaDaemonLauncher implements DaemonLauncher {
  constructor(private readonly netns?: string) {}

  launch(cmd: string, args: readonly string[], options: DaemonOptions): Daemon {
    // One exec chain (ip netns exec -> setpriv -> cmd), so the daemon's parent stays this process
    // and the parent-death signal fires when we die (field-notes: 36 ms to drop the VIP).
    let argv: string[] = [cmd, ...args];
    if (options.dieWithParent) argv = ['setpriv', `--pdeathsig=${options.dieWithParent}`, '--', ...argv];
    if (this.netns) argv = ['ip', 'netns', 'exec', this.netns, ...argv];
    const [file, ...rest] = argv as [string, ...string[]];
    const child = execa(file, rest, { reject: false, shell: false, stdin: 'ignore', buffer: false, all: true });
    if (options.onOutput && child.all) {
      let pending = '';
      child.all.setEncoding('utf8');
      child.all.on('data', (chunk: string) => {
        pending += chunk;
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) options.onOutput?.(line);
      });
    }
    child.then(
      (r) => options.onExit({ code: r.exitCode, signal: r.signal }),
      (err: unknown) => options.onExit({ code: undefined, signal: String(err) }),
    );
    return {
      pid: child.pid,
      signal: (sig) => {
        child.kill(sig);
      },
    };
  }
}
