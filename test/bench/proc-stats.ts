// Reads a process's memory and CPU from /proc for the benchmarks. Guarantees: a process that is
// gone reads as null, never throws. Does not sample over time (callers take two readings).
import { readFile } from 'node:fs/promises';

/** Clock ticks per second of /proc/PID/stat's utime and stime (100 on Linux). */
export const CLOCK_TICKS = 100;

/** VmRSS in MiB (one decimal), or null when the process is gone. */
export async function readRssMiB(pid: number | null): Promise<number | null> {
  if (pid === null) return null;
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
    return Number.isFinite(kb) ? Math.round((kb / 1024) * 10) / 10 : null;
  } catch (err: unknown) {
    void err;
    return null;
  }
}

/** utime + stime in clock ticks, or null when the process is gone. */
export async function readCpuTicks(pid: number | null): Promise<number | null> {
  if (pid === null) return null;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the command: state is field 3, utime field 14, stime field 15 (1-based in proc(5)).
    return Number(fields[11]) + Number(fields[12]);
  } catch (err: unknown) {
    void err;
    return null;
  }
}
