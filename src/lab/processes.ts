// Long-running lab processes (echo servers, tcpdump, later keepalived) started inside a namespace
// through the CommandRunner with start-stop-daemon, tracked by pid + kernel start time so that a
// stop never signals a recycled pid. Does not restart anything; stopping is by pid only.
import { readFile, readdir } from 'node:fs/promises';
import type { CommandRunner } from '../dataplane/command-runner.js';

export interface BackgroundProcess {
  readonly label: string;
  readonly netns: string;
  readonly pid: number;
  /** Field 22 of /proc/PID/stat when started: identifies this process among pid reuses. */
  readonly startTime: string;
  readonly pidFile: string;
  /** stdout and stderr of the process. */
  readonly logFile: string;
}

export interface StartOptions {
  readonly label: string;
  /** Absolute path of the program (start-stop-daemon matches it). */
  readonly cmd: string;
  readonly args: readonly string[];
  readonly pidFile: string;
  readonly logFile: string;
  /** Resolve only once this file exists (the program writes it when ready). */
  readonly readyFile?: string;
  /** Resolve only once the log contains this text (e.g. tcpdump's "listening on"). */
  readonly readyLogText?: string;
  readonly readyTimeoutMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err: unknown) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The kernel start time of `pid`, or undefined when no such process exists. */
export async function readStartTime(pid: number): Promise<string | undefined> {
  const stat = await readText(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return rest[19];
}

/** Live (not zombie) children of `pid`, from /proc: pid and command name. */
export async function childProcesses(pid: number): Promise<{ pid: number; comm: string }[]> {
  const children: { pid: number; comm: string }[] = [];
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readText(`/proc/${entry}/stat`).catch(() => undefined);
    if (stat === undefined) continue;
    const open = stat.indexOf('(');
    const close = stat.lastIndexOf(')');
    if (open < 0 || close < 0) continue;
    const fields = stat.slice(close + 2).split(' ');
    if (Number(fields[1]) === pid && fields[0] !== 'Z') children.push({ pid: Number(entry), comm: stat.slice(open + 1, close) });
  }
  return children;
}

/** True while the process that was started is still running (not a zombie, not a reused pid). */
export async function isRunning(p: Pick<BackgroundProcess, 'pid' | 'startTime'>): Promise<boolean> {
  const stat = await readText(`/proc/${p.pid}/stat`);
  if (stat === undefined) return false;
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return rest[0] !== 'Z' && rest[19] === p.startTime;
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * Starts `cmd args` detached inside the namespace the runner is scoped to. Resolves with the
 * process once its pid file exists and its readiness condition holds; on a readiness timeout the
 * process is stopped and the error carries the tail of its log.
 */
export async function startBackground(netnsRunner: CommandRunner, netns: string, o: StartOptions): Promise<BackgroundProcess> {
  await netnsRunner.run('start-stop-daemon', [
    '--start', '--background', '--make-pidfile', '--pidfile', o.pidFile, '--output', o.logFile,
    '--exec', o.cmd, '--', ...o.args,
  ]);
  const timeoutMs = o.readyTimeoutMs ?? 10_000;
  let pid = 0;
  await waitFor(`pid file ${o.pidFile}`, timeoutMs, async () => {
    const text = await readText(o.pidFile);
    pid = Number(text?.trim());
    return Number.isInteger(pid) && pid > 0;
  });
  const startTime = await readStartTime(pid);
  if (startTime === undefined) {
    const log = (await readText(o.logFile)) ?? '';
    throw new Error(`${o.label} (pid ${pid}) exited at once: ${log.slice(-2000)}`);
  }
  const proc: BackgroundProcess = { label: o.label, netns, pid, startTime, pidFile: o.pidFile, logFile: o.logFile };
  try {
    await waitFor(`${o.label} to become ready`, timeoutMs, async () => {
      if (!(await isRunning(proc))) throw new Error(`${o.label} (pid ${pid}) exited: ${((await readText(o.logFile)) ?? '').slice(-2000)}`);
      if (o.readyFile !== undefined && (await readText(o.readyFile)) === undefined) return false;
      if (o.readyLogText !== undefined && !((await readText(o.logFile)) ?? '').includes(o.readyLogText)) return false;
      return true;
    });
  } catch (err: unknown) {
    await stopBackground(proc);
    throw err;
  }
  return proc;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. Idempotent. */
export async function stopBackground(p: BackgroundProcess, graceMs = 2000): Promise<void> {
  if (!(await isRunning(p))) return;
  signal(p.pid, 'SIGTERM');
  const deadline = performance.now() + graceMs;
  while (performance.now() < deadline) {
    if (!(await isRunning(p))) return;
    await sleep(20);
  }
  signal(p.pid, 'SIGKILL');
  await waitFor(`pid ${p.pid} to exit after SIGKILL`, 5000, async () => !(await isRunning(p)));
}

/** Signals a pid, ignoring "no such process". */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err: unknown) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** Waits for a background process to exit on its own (e.g. tcpdump -c 1). */
export async function waitForExit(p: BackgroundProcess, timeoutMs: number): Promise<void> {
  await waitFor(`${p.label} (pid ${p.pid}) to exit`, timeoutMs, async () => !(await isRunning(p)));
}
