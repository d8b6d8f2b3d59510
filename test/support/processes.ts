// Owns: looking at live processes through /proc, for tests that prove nothing was left behind.
// Guarantees: zombies (exited, not yet reaped by their new parent) count as gone. Does not: signal
// or wait for anything.
import { readFileSync, readdirSync } from 'node:fs';

/** True while `pid` exists and has not exited (state Z or X count as exited). */
export function isRunning(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  // Format: "pid (comm) S ...": the state follows the last ')' (comm may contain anything).
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

export interface ProcessInfo {
  pid: number;
  cmdline: string;
}

/** Running processes whose command line contains `text` (e.g. a temp dir given as a flag). */
export function processesMentioning(text: string): ProcessInfo[] {
  const found: ProcessInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    } catch {
      continue; // exited while we looked
    }
    if (cmdline.includes(text) && pid !== process.pid && isRunning(pid)) found.push({ pid, cmdline });
  }
  return found;
}
