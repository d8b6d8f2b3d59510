// Reads the output of `strace -f -e trace=execve` into one record per exec attempt (pid, program
// path, argv, result) and picks out the ones that started a shell. Pure: the lab tests run strace
// and hand the text in. Guarantees: an attempt split by strace into "<unfinished ...>" and
// "<... execve resumed>" lines counts once, with the result of the resumed line; a failed attempt
// (ENOENT while searching PATH) is kept, so a shell that was merely looked for still shows.

export interface ExecRecord {
  readonly pid: number;
  /** The program path handed to execve. */
  readonly path: string;
  /** argv as strace printed it (strings unescaped only for \" and \\). */
  readonly argv: readonly string[];
  /** 0 when the exec succeeded; -1 (with errno) when it failed; undefined when strace never saw the end. */
  readonly result?: number;
  readonly errno?: string;
}

/** Program names of shells: any of these executed (or looked for) by an agent is a finding. */
export const SHELLS: ReadonlySet<string> = new Set([
  'sh', 'bash', 'dash', 'ash', 'zsh', 'ksh', 'ksh93', 'mksh', 'pdksh', 'rbash', 'yash', 'posh', 'csh', 'tcsh', 'fish', 'busybox',
]);

const LINE = /^(?:\[pid\s+)?(\d+)\]?\s+(.*)$/;
const CALL = /^execve\("((?:[^"\\]|\\.)*)",\s*\[((?:[^\]"]|"(?:[^"\\]|\\.)*")*)\]/;
const RESULT = /=\s*(-?\d+)(?:\s+([A-Z][A-Z0-9]+))?/;

function unquote(s: string): string {
  return s.replace(/\\(["\\])/g, '$1');
}

function parseArgv(text: string): string[] {
  return [...text.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => unquote(m[1] ?? ''));
}

/** One record per execve in `strace -f -e trace=execve` output (with or without -o's pid prefix). */
export function parseExecTrace(text: string): ExecRecord[] {
  const records: ExecRecord[] = [];
  const pending = new Map<number, number>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const m = LINE.exec(line);
    if (!m) continue;
    const pid = Number(m[1]);
    const rest = m[2] ?? '';
    const call = CALL.exec(rest);
    if (call) {
      const unfinished = rest.includes('<unfinished ...>');
      const r = unfinished ? null : RESULT.exec(rest.slice(call[0].length));
      const record: ExecRecord = {
        pid,
        path: unquote(call[1] ?? ''),
        argv: parseArgv(call[2] ?? ''),
        ...(r ? { result: Number(r[1]) } : {}),
        ...(r?.[2] ? { errno: r[2] } : {}),
      };
      if (unfinished) pending.set(pid, records.length);
      records.push(record);
      continue;
    }
    if (rest.startsWith('<... execve resumed>')) {
      const at = pending.get(pid);
      const r = RESULT.exec(rest);
      if (at !== undefined && r) {
        records[at] = { ...records[at]!, result: Number(r[1]), ...(r[2] ? { errno: r[2] } : {}) };
        pending.delete(pid);
      }
    }
  }
  return records;
}

function base(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Records whose program, or whose argv[0], is a shell (successful or not). */
export function shellExecs(records: readonly ExecRecord[]): ExecRecord[] {
  return records.filter((r) => SHELLS.has(base(r.path)) || (r.argv[0] !== undefined && SHELLS.has(base(r.argv[0]))));
}

/** Programs that were really executed (result 0), by base name, with how often. */
export function executedPrograms(records: readonly ExecRecord[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of records) if (r.result === 0) counts[base(r.path)] = (counts[base(r.path)] ?? 0) + 1;
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));
}
