// The chart's keepalived container command as a real process: `smartnat keepalived-watchdog`
// (through tsx) watching a real HTTP /healthz. When the endpoint fails for --stale-after it writes
// 1 into track/agent.alive; when it answers again the 1 stays until the agent writes its own 0
// (the watchdog never lifts its fault itself); SIGTERM ends it with status 0. keepalived itself is not run here (--no-keepalived): starting it needs a network
// namespace of its own.
import { afterEach, describe, expect, test } from '@jest/globals';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { waitFor } from '../support/kube.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let server: Server | undefined;
let child: ResultPromise | undefined;
let dir = '';

afterEach(async () => {
  child?.kill('SIGKILL');
  await child?.catch(() => undefined);
  child = undefined;
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

describe('smartnat keepalived-watchdog (real process, real HTTP heartbeat)', () => {
  test('faults agent.alive when /healthz fails for --stale-after, leaves the fault to the agent to lift when it answers, exits 0 on SIGTERM', async () => {
    let healthy = true;
    server = createServer((_req, res) => {
      res.statusCode = healthy ? 200 : 503;
      res.end(healthy ? 'ok' : 'stuck');
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', () => resolve()));
    const port = (server.address() as AddressInfo).port;
    dir = mkdtempSync(join(tmpdir(), 'smartnat-watchdog-cli-'));
    mkdirSync(join(dir, 'track'));
    const alive = join(dir, 'track', 'agent.alive');
    writeFileSync(alive, '0\n');

    // One process (node with tsx's loader), not the tsx wrapper: killing the wrapper would leave
    // its node child running after a failed test.
    child = execa(process.execPath, [
      '--import',
      'tsx',
      join(ROOT, 'src/main.ts'),
      'keepalived-watchdog',
      `--state-dir=${dir}`,
      `--heartbeat-url=http://127.0.0.1:${port}/healthz`,
      '--stale-after=800ms',
      '--interval=100ms',
      '--no-keepalived',
    ], { reject: false, all: true, cwd: ROOT });
    let log = '';
    child.all?.on('data', (chunk: Buffer) => (log += chunk.toString()));
    await waitFor(() => log.includes('keepalived watchdog started'), { timeoutMs: 30_000, what: 'the watchdog to start' });

    // Healthy for longer than --stale-after: nothing happens.
    await new Promise((r) => setTimeout(r, 1200));
    expect(readFileSync(alive, 'utf8')).toBe('0\n');

    healthy = false;
    const failedAt = performance.now();
    await waitFor(() => readFileSync(alive, 'utf8') === '1\n', { timeoutMs: 5000, intervalMs: 20, what: `agent.alive to become 1; log:\n${log}` });
    const faultMs = performance.now() - failedAt;
    expect(faultMs).toBeGreaterThanOrEqual(600);
    // The file is written before the log line: wait for the line rather than race it.
    await waitFor(() => log.includes('"reason":"heartbeatStale"'), { timeoutMs: 5000, intervalMs: 20, what: `the stale-heartbeat log line; log:\n${log}` });

    healthy = true;
    await waitFor(() => log.includes('agent heartbeat back'), { timeoutMs: 5000, intervalMs: 20, what: `the heartbeat-back log line; log:\n${log}` });
    expect(readFileSync(alive, 'utf8')).toBe('1\n');
    expect(log).toContain('"lifted":false');

    child.kill('SIGTERM');
    const result = await child;
    expect(result.exitCode).toBe(0);
  }, 60_000);

  test('refuses to start without exactly one heartbeat source (exit 2)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'smartnat-watchdog-cli-'));
    const r = await execa(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'src/main.ts'), 'keepalived-watchdog', `--state-dir=${dir}`, '--no-keepalived'], { reject: false });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('give exactly one of --heartbeat-url and --heartbeat-file');
  }, 60_000);
});
