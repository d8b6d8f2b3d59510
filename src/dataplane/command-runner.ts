// CommandRunner: the only way SmartNat starts a process. Argument arrays only (execa, never a
// shell); a failure becomes a CommandFailedError carrying the command, exit code, stderr and the
// stdin lines the tool complained about. A runner can be scoped to a network namespace.
import { execa } from 'execa';

export interface RunOptions {
  /** Text written to the process's standard input. */
  readonly input?: string;
  /** Kill the process after this many milliseconds (default 30 s). */
  readonly timeoutMs?: number;
  /** Exit codes that count as success (default [0]). */
  readonly okExitCodes?: readonly number[];
}

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

export interface CommandRunner {
  run(cmd: string, args: readonly string[], options?: RunOptions): Promise<RunResult>;
}

/** Lines of stdin that a tool's error names ("line 12 failed", "Error in line 3:"), with their numbers. */
export function pickFailingInputLines(stderr: string, input: string | undefined, context = 1): string[] {
  if (!input) return [];
  const lines = input.split('\n');
  const wanted = new Set<number>();
  for (const m of stderr.matchAll(/line:? (\d+)/gi)) {
    const n = Number(m[1]);
    for (let i = n - context; i <= n + context; i++) if (i >= 1 && i <= lines.length) wanted.add(i);
  }
  return [...wanted].sort((a, b) => a - b).map((i) => `${i}: ${lines[i - 1] ?? ''}`);
}

export class CommandFailedError extends Error {
  override readonly name = 'CommandFailedError';
  constructor(
    readonly command: readonly string[],
    readonly exitCode: number | undefined,
    readonly stderr: string,
    readonly inputExcerpt: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(
      `${command.join(' ')} failed (exit ${exitCode ?? 'none'}): ${stderr.trim().split('\n').slice(0, 5).join(' | ')}` +
        (inputExcerpt.length ? ` [input ${inputExcerpt.join(' | ')}]` : ''),
      options,
    );
  }
}

/** Runs commands on this host, or inside `netns` through `ip netns exec`. */
export class ExecaCommandRunner implements CommandRunner {
  constructor(private readonly netns?: string) {}

  async run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const [file, argv] = this.netns ? ['ip', ['netns', 'exec', this.netns, cmd, ...args]] : [cmd, [...args]];
    const ok = options.okExitCodes ?? [0];
    let result;
    try {
      result = await execa(file, argv, {
        input: options.input,
        timeout: options.timeoutMs ?? 30_000,
        reject: false,
        stripFinalNewline: false,
        shell: false,
      });
    } catch (err: unknown) {
      throw new CommandFailedError([file, ...argv], undefined, String(err), [], { cause: err });
    }
    const exitCode = result.exitCode ?? -1;
    if (result.failed && (result.exitCode === undefined || !ok.includes(exitCode))) {
      const stderr = String(result.stderr ?? '') || String(result.message ?? '');
      throw new CommandFailedError([file, ...argv], result.exitCode, stderr, pickFailingInputLines(stderr, options.input));
    }
    return { stdout: String(result.stdout ?? ''), stderr: String(result.stderr ?? ''), exitCode };
  }
}
