// A probe that runs while a drill injects its fault: the lab's probe program (scripts.ts) started
// through the DaemonLauncher inside the client's namespace, in overlapping mode at a fixed rate,
// its outcomes read line by line as they finish so the drill can stop once traffic is back.
// Guarantees: outcomes arrive in finishing order (sort by t before judging); stop() resolves once
// the program has exited. Does not classify or judge anything (drill-plan.ts does).
import { ExecaDaemonLauncher, type Daemon } from '../dataplane/daemon.js';
import type { ProbeOutcome } from './probe.js';

export interface StreamProbeOptions {
  readonly netns: string;
  /** Path of the lab's probe.mjs. */
  readonly script: string;
  readonly proto: 'tcp' | 'udp';
  readonly host: string;
  readonly port: number;
  readonly source: string;
  /** A fixed source port: every try reuses one flow (one conntrack entry) instead of a new one. */
  readonly sourcePort?: number;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Upper bound on the run; stop() usually ends it earlier. */
  readonly maxDurationMs: number;
}

export class StreamProbe {
  readonly outcomes: ProbeOutcome[] = [];
  readonly #daemon: Daemon;
  readonly #exited: Promise<void>;
  readonly #stderr: string[] = [];

  constructor(o: StreamProbeOptions) {
    let resolveExit: () => void = () => undefined;
    this.#exited = new Promise((r) => (resolveExit = r));
    const args = [
      o.script,
      '--proto', o.proto,
      '--host', o.host,
      '--port', String(o.port),
      '--source', o.source,
      ...(o.sourcePort !== undefined ? ['--source-port', String(o.sourcePort)] : []),
      '--timeout', String(o.timeoutMs),
      '--interval', String(o.intervalMs),
      '--duration', String(o.maxDurationMs),
      '--overlap',
    ];
    this.#daemon = new ExecaDaemonLauncher(o.netns).launch(process.execPath, args, {
      dieWithParent: 'KILL',
      onOutput: (line) => {
        if (!line.startsWith('{')) {
          if (line.trim()) this.#stderr.push(line);
          return;
        }
        try {
          this.outcomes.push(JSON.parse(line) as ProbeOutcome);
        } catch {
          this.#stderr.push(line);
        }
      },
      onExit: () => resolveExit(),
    });
  }

  /** Anything the probe printed that is not an outcome (errors, usage). */
  get messages(): readonly string[] {
    return this.#stderr;
  }

  /** Outcomes that finished so far, sorted by start time. */
  sorted(): ProbeOutcome[] {
    return [...this.outcomes].sort((a, b) => a.t - b.t);
  }

  async stop(): Promise<void> {
    this.#daemon.signal('SIGTERM');
    const killed = setTimeout(() => this.#daemon.signal('SIGKILL'), 2000);
    await this.#exited;
    clearTimeout(killed);
  }

  get exited(): Promise<void> {
    return this.#exited;
  }
}
