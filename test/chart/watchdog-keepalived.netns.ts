// The chart's keepalived container for real: `smartnat keepalived-watchdog` inside a network
// namespace runs the real keepalived on a config rendered by the agent's own renderer into a state
// dir, the way `smartnat agent --no-keepalived` leaves it. The holder's address goes on the wire;
// a stale agent heartbeat faults the instance (the address leaves); a fresh heartbeat alone does not
// bring it back, the agent's next write of its track files and alive file does; a new
// config (one more address) is reloaded; SIGTERM stops keepalived, which removes its addresses.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { agentTrackFilePath, compileKeepalivedTemplate, renderKeepalivedConfig, trackFilePaths } from '../../src/keepalived/render.js';
import { waitFor } from '../support/kube.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NETNS = `snwd-${process.pid}`;
const SELF = '203.0.113.2';
const VIP_1 = '203.0.113.10';
const VIP_2 = '203.0.113.11';
let dir = '';

const template = compileKeepalivedTemplate(readFileSync(join(ROOT, 'templates/keepalived.conf.hbs'), 'utf8'));

/** What the agent writes for addresses it holds: track files first, then keepalived.conf. */
function writeAgentFiles(addresses: readonly string[]): void {
  mkdirSync(join(dir, 'track'), { recursive: true });
  writeFileSync(agentTrackFilePath(dir), '0\n');
  addresses.forEach((address) => {
    const paths = trackFilePaths(dir, address);
    writeFileSync(paths.priority, '150\n');
    writeFileSync(paths.eligibility, '0\n');
  });
  const text = renderKeepalivedConfig(template, {
    agent: 'nat-1',
    stateDir: dir,
    instances: addresses.map((address, i) => ({ address, interface: 'ext0', vrid: 10 + i, sourceAddress: SELF, peers: [SELF], advertIntervalMs: 100 })),
  });
  writeFileSync(join(dir, 'keepalived.conf.new'), text);
  // rename(2), as the agent does: the watchdog never reads half a file.
  renameSync(join(dir, 'keepalived.conf.new'), join(dir, 'keepalived.conf'));
}

async function addressesOnExt0(): Promise<string[]> {
  const out = (await execa('ip', ['-n', NETNS, '-4', '-o', 'addr', 'show', 'dev', 'ext0'])).stdout;
  return [...out.matchAll(/inet (\S+)\//g)].map((m) => m[1]!).sort();
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'snwd-'));
  await execa('ip', ['netns', 'add', NETNS]);
  for (const cmd of ['link set lo up', 'link add ext0 type veth peer name ext0p', `addr add ${SELF}/24 dev ext0`, 'link set ext0p up', 'link set ext0 up']) {
    await execa('ip', ['-n', NETNS, ...cmd.split(' ')]);
  }
}, 60_000);

afterAll(async () => {
  await execa('ip', ['netns', 'del', NETNS], { reject: false });
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

describe('keepalived-watchdog with the real keepalived', () => {
  test('holder address on the wire, faulted on a stale heartbeat, back once the agent lifts the fault, reloaded on a new config, removed on SIGTERM', async () => {
    const heartbeat = join(dir, 'heartbeat');
    writeFileSync(heartbeat, '');
    let beating = true;
    const beat = setInterval(() => {
      if (beating) utimesSync(heartbeat, new Date(), new Date());
    }, 100);
    writeAgentFiles([VIP_1]);
    const child: ResultPromise = execa(
      'ip',
      ['netns', 'exec', NETNS, process.execPath, '--import', 'tsx', 'src/main.ts', 'keepalived-watchdog', `--state-dir=${dir}`, `--heartbeat-file=${heartbeat}`, '--stale-after=800ms', '--interval=100ms'],
      { cwd: ROOT, reject: false, all: true },
    );
    let log = '';
    child.all?.on('data', (chunk: Buffer) => (log += chunk.toString()));
    try {
      await waitFor(async () => (await addressesOnExt0()).includes(VIP_1), { timeoutMs: 30_000, what: `${VIP_1} on ext0; log:\n${log}` });
      expect(log).toContain('keepalived started');

      beating = false;
      await waitFor(async () => !(await addressesOnExt0()).includes(VIP_1), { timeoutMs: 10_000, what: `${VIP_1} to leave after the heartbeat stopped; log:\n${log}` });
      expect(readFileSync(agentTrackFilePath(dir), 'utf8')).toBe('1\n');

      beating = true;
      await waitFor(() => log.includes('agent heartbeat back'), { timeoutMs: 10_000, what: `the heartbeat-back log line; log:\n${log}` });
      // The watchdog does not lift its own fault: the agent decides first, then lifts it.
      expect(readFileSync(agentTrackFilePath(dir), 'utf8')).toBe('1\n');
      expect(await addressesOnExt0()).not.toContain(VIP_1);
      writeAgentFiles([VIP_1]);
      await waitFor(async () => (await addressesOnExt0()).includes(VIP_1), { timeoutMs: 10_000, what: `${VIP_1} back after the agent lifted the fault; log:\n${log}` });

      writeAgentFiles([VIP_1, VIP_2]);
      await waitFor(async () => (await addressesOnExt0()).includes(VIP_2), { timeoutMs: 10_000, what: `${VIP_2} after the reload; log:\n${log}` });
      expect(log).toContain('"outcome":"reloaded"');
    } finally {
      clearInterval(beat);
      child.kill('SIGTERM');
    }
    const result = await child;
    if (result.exitCode !== 0) throw new Error(`watchdog ended with code ${String(result.exitCode)} signal ${String(result.signal)}; log tail:\n${log.slice(-1500)}`);
    expect(await addressesOnExt0()).toEqual([SELF]);
  }, 90_000);
});
