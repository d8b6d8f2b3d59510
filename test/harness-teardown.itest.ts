// Proves that the harness always tears down: a child jest runs a fixture test that starts a control
// plane and fails without stopping it, or one that is interrupted by SIGINT (as Ctrl-C does) or
// SIGKILL; afterwards no process it started (etcd, kube-apiserver, the guard) and no temporary
// directory is left. The child gets its own TMPDIR so "nothing left" can be checked exactly.
import { afterEach, describe, expect, jest, test } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FixtureRecord } from './support/fixtures/record.js';
import { waitFor } from './support/kube.js';
import { isRunning, processesMentioning } from './support/processes.js';
import { repoRoot } from './support/testenv-bin.js';

jest.setTimeout(300_000);

interface ChildJest {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: () => string;
  recordPath: string;
  reportPath: string;
  childTmp: string;
}

const scratch: string[] = [];
const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function runFixture(fixture: string): ChildJest {
  const root = repoRoot();
  const work = mkdtempSync(join(tmpdir(), 'smartnat-teardown-'));
  const childTmp = mkdtempSync(join(tmpdir(), 'smartnat-teardown-tmp-'));
  scratch.push(work, childTmp);
  const recordPath = join(work, 'record.json');
  const reportPath = join(work, 'report.json');
  const child = spawn(process.execPath, [
    join(root, 'node_modules', 'jest', 'bin', 'jest.js'),
    '--config', join(root, 'test', 'support', 'fixtures', 'jest.config.js'),
    '--runInBand', '--ci',
    '--cacheDirectory', join(tmpdir(), 'smartnat-fixture-jest-cache'),
    '--json', '--outputFile', reportPath,
    join(root, 'test', 'support', 'fixtures', fixture),
  ], {
    cwd: root,
    detached: true, // its own process group: SIGINT goes to the whole run, as from a terminal
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '--experimental-vm-modules', TMPDIR: childTmp, SMARTNAT_FIXTURE_RECORD: recordPath },
  });
  children.push(child);
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  return { child, exited, output: () => output, recordPath, reportPath, childTmp };
}

function readRecord(path: string): FixtureRecord {
  return JSON.parse(readFileSync(path, 'utf8')) as FixtureRecord;
}

/** What the teardown test is about: nothing the child started survives it. */
async function expectNothingLeft(run: ChildJest, record: FixtureRecord): Promise<void> {
  const pids = [record.pids.etcd, record.pids.apiServer, record.pids.guard];
  for (const pid of pids) expect(pid).toEqual(expect.any(Number));
  await waitFor(
    () => pids.every((pid) => !isRunning(pid!)) && !existsSync(record.dir) && processesMentioning(run.childTmp).length === 0,
    { what: `etcd, kube-apiserver and guard (${pids.join(', ')}) gone and ${record.dir} removed`, timeoutMs: 30_000, intervalMs: 200 },
  );
  expect(record.dir.startsWith(run.childTmp)).toBe(true);
  expect(readdirSync(run.childTmp)).toEqual([]);
}

describe('teardown after a child jest run', () => {
  test('a test that starts a control plane and fails leaves no process and no directory', async () => {
    const run = runFixture('fails.fixture.ts');
    const { code, signal } = await run.exited;
    expect({ code, signal, output: code === 1 ? '' : run.output() }).toEqual({ code: 1, signal: null, output: '' });
    const report = JSON.parse(readFileSync(run.reportPath, 'utf8')) as { numFailedTests: number; numPassedTests: number };
    expect([report.numFailedTests, report.numPassedTests]).toEqual([1, 0]);
    expect(run.output()).toContain("Expected: \"stopped by this test\"");

    await expectNothingLeft(run, readRecord(run.recordPath));
  });

  // SIGINT is Ctrl-C; SIGKILL leaves the dying process no chance to clean up: only the guard can.
  test.each(['SIGINT', 'SIGKILL'] as const)('a run killed with %s while its control plane runs leaves no process and no directory', async (sig) => {
    const run = runFixture('interrupted.fixture.ts');
    const ready = await Promise.race([
      waitFor(() => existsSync(run.recordPath), { what: 'the fixture to start its control plane', timeoutMs: 240_000, intervalMs: 200 }),
      run.exited.then(() => {
        throw new Error(`child jest exited before starting its control plane:\n${run.output()}`);
      }),
    ]);
    expect(ready).toBe(true);
    const record = readRecord(run.recordPath);
    for (const pid of [record.pids.etcd, record.pids.apiServer, record.pids.guard]) expect(isRunning(pid!)).toBe(true);

    process.kill(-run.child.pid!, sig);
    const { code, signal } = await run.exited;
    expect(signal === sig || (sig === 'SIGINT' && code === 130)).toBe(true);

    await expectNothingLeft(run, record);
  });
});
