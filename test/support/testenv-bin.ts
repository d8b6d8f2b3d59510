// Owns: finding the directory that holds the test environment's kube-apiserver, etcd, kubectl and helm.
// Guarantees: build.sh runs at most once per process (the answer is cached); SMARTNAT_TESTENV_BIN wins
// when set; the directory returned holds all four executables. Does not: build anything itself.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';

export const TESTENV_BINARIES = ['kube-apiserver', 'etcd', 'kubectl', 'helm'] as const;
export type TestenvBinary = (typeof TESTENV_BINARIES)[number];

/** The repository root: the nearest directory at or above `from` holding test/testenv/build.sh. */
export function repoRoot(from: string = process.cwd()): string {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'test', 'testenv', 'build.sh'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no test/testenv/build.sh at or above ${from}`);
  }
}

/** Returns `dir` if it holds every test binary as an executable file, else throws saying which is missing. */
export function checkBinDir(dir: string): string {
  if (!isAbsolute(dir)) throw new Error(`test binary directory must be absolute, got ${JSON.stringify(dir)}`);
  for (const name of TESTENV_BINARIES) {
    try {
      accessSync(join(dir, name), constants.X_OK);
    } catch (err: unknown) {
      throw new Error(`test binary directory ${dir} has no executable ${name}`, { cause: err });
    }
  }
  return dir;
}

let cached: string | undefined;

/**
 * The binary directory: SMARTNAT_TESTENV_BIN if set, else the one line `bash test/testenv/build.sh`
 * prints (a cold build takes many minutes; its progress goes to our stderr).
 */
export function testenvBinDir(): string {
  const fromEnv = process.env['SMARTNAT_TESTENV_BIN'];
  if (fromEnv) return checkBinDir(fromEnv);
  cached ??= runBuild();
  return cached;
}

function runBuild(): string {
  const script = join(repoRoot(), 'test', 'testenv', 'build.sh');
  let out: string;
  try {
    out = execFileSync('bash', [script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  } catch (err: unknown) {
    throw new Error(`${script} failed`, { cause: err });
  }
  const lines = out.split('\n').filter((line) => line.trim() !== '');
  if (lines.length !== 1) throw new Error(`${script} must print one directory, printed ${JSON.stringify(out)}`);
  return checkBinDir(lines[0]!.trim());
}
