// smartnat_keepalived_state{address,state} from real keepalived's notify FIFO, in both ways the
// agent runs: keepalived supervised by the agent (KeepalivedSupervisor), and the chart's way
// (--no-keepalived: the watchdog's KeepalivedFollower runs keepalived on the shared state dir, the
// agent's KeepalivedFiles reads the FIFO keepalived made, follows it when a restarted keepalived
// replaces it, and a restarted agent starts from the saved states plus the lines queued meanwhile). One namespace per mode (prefix `ob`), a dummy uplink, documentation addresses.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { KeepalivedFiles } from '../../src/agent/keepalived-files.js';
import { KeepalivedStateMetric, withKeepalivedStateMetric } from '../../src/agent/keepalived-state.js';
import { createAgentMetrics, type AgentMetrics } from '../../src/agent/metrics.js';
import type { KeepalivedPort } from '../../src/agent/ports.js';
import { KeepalivedFollower } from '../../src/cli/watchdog.js';
import { ExecaCommandRunner } from '../../src/dataplane/command-runner.js';
import { ExecaDaemonLauncher } from '../../src/dataplane/daemon.js';
import { compileKeepalivedTemplate, notifyFifoPath, renderKeepalivedConfig } from '../../src/keepalived/render.js';
import { KeepalivedSupervisor } from '../../src/keepalived/supervisor.js';
import { silentLogger } from '../../src/log/logger.js';

const VIP_1 = '203.0.113.10';
const SELF = '203.0.113.2';
const PEER = '203.0.113.3'; // nobody: this keepalived is alone on its segment
const run = `ob${randomBytes(2).toString('hex')}`;
const host = new ExecaCommandRunner();
const template = compileKeepalivedTemplate(readFileSync(new URL('../../templates/keepalived.conf.hbs', import.meta.url), 'utf8'));
const dir = mkdtempSync(join(tmpdir(), 'ob-ka-'));
const namespaces: string[] = [];
const stops: Array<() => Promise<void>> = [];

let registry: Registry;
let metrics: AgentMetrics;

async function makeNamespace(name: string): Promise<string> {
  const ns = `${run}-${name}`;
  await host.run('ip', ['netns', 'add', ns]);
  namespaces.push(ns);
  await host.run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  // No dummy driver here: a veth pair with both ends in the namespace.
  await host.run('ip', ['-n', ns, 'link', 'add', 'ext0', 'type', 'veth', 'peer', 'name', 'seg0']);
  await host.run('ip', ['-n', ns, 'link', 'set', 'seg0', 'up']);
  await host.run('ip', ['-n', ns, 'addr', 'add', `${SELF}/24`, 'dev', 'ext0']);
  await host.run('ip', ['-n', ns, 'link', 'set', 'ext0', 'up']);
  return ns;
}

function config(stateDir: string): string {
  return renderKeepalivedConfig(template, {
    agent: 'ob-agent',
    stateDir,
    instances: [{ address: VIP_1, interface: 'ext0', vrid: 10, sourceAddress: SELF, peers: [PEER], advertIntervalMs: 100 }],
  });
}

/** The gauge's value per state for VIP_1, e.g. { MASTER: 1, BACKUP: 0, ... }. */
async function states(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const line of (await registry.metrics()).split('\n')) {
    const m = /^smartnat_keepalived_state\{address="([^"]+)",state="([A-Z]+)"\} (\d+)$/.exec(line);
    if (m && m[1] === VIP_1) out[m[2] ?? ''] = Number(m[3]);
  }
  return out;
}

async function until(what: string, ok: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const start = performance.now();
  for (;;) {
    if (await ok()) return;
    if (performance.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}; gauge: ${JSON.stringify(await states())}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const current = async (state: string): Promise<boolean> => {
  const s = await states();
  return s[state] === 1 && Object.entries(s).filter(([, v]) => v === 1).length === 1;
};

beforeAll(() => {
  registry = new Registry();
  metrics = createAgentMetrics(registry);
});

afterAll(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
  for (const ns of namespaces) await host.run('ip', ['netns', 'del', ns], { okExitCodes: [0, 1] });
  rmSync(dir, { recursive: true, force: true });
  metrics.close();
});

describe('smartnat_keepalived_state from the notify FIFO of a real keepalived', () => {
  it('agent-supervised keepalived: MASTER once eligible, FAULT when not, and the series go with the address', async () => {
    registry.resetMetrics();
    const ns = await makeNamespace('sup');
    const stateDir = join(dir, 'sup');
    const metric = new KeepalivedStateMetric(metrics.keepalivedState);
    const supervisor = new KeepalivedSupervisor({
      runner: new ExecaCommandRunner(ns),
      launcher: new ExecaDaemonLauncher(ns),
      stateDir,
      log: silentLogger(),
      onStateChange: (c) => metric.observe(c),
    });
    stops.push(async () => supervisor.stop());
    const port: KeepalivedPort = withKeepalivedStateMetric(supervisor, metric);
    await port.writeAgentAlive(true);
    await port.writeTrack(VIP_1, { eligible: true, role: 'holder' });
    expect(await port.applyConfig(config(stateDir), [VIP_1])).toBe('started');
    await until('MASTER', async () => current('MASTER'));
    await port.writeTrack(VIP_1, { eligible: false, role: 'standby' });
    await until('FAULT', async () => current('FAULT'));
    expect(await states()).toEqual({ MASTER: 0, BACKUP: 0, FAULT: 1, STOP: 0 });
    // The address leaves the config: its series go (keepalived itself keeps running).
    metric.retain([]);
    expect(await states()).toEqual({});
  });

  it('chart mode: the agent reads the FIFO keepalived made in the shared state dir, follows a restarted keepalived to its new FIFO, and a restarted agent starts from the saved states and the queued lines', async () => {
    registry.resetMetrics();
    const ns = await makeNamespace('chart');
    const stateDir = join(dir, 'chart');
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const text = config(stateDir);
    const metric = new KeepalivedStateMetric(metrics.keepalivedState);
    const files = new KeepalivedFiles(stateDir, new ExecaCommandRunner(ns), silentLogger(), { onStateChange: (c) => metric.observe(c), recheckMs: 100 });
    stops.push(async () => files.stop());
    const port = withKeepalivedStateMetric(files, metric);
    await port.writeAgentAlive(true);
    await port.writeTrack(VIP_1, { eligible: true, role: 'holder' });

    // keepalived starts first, on a config already in the state dir, and makes the FIFO itself.
    writeFileSync(join(stateDir, 'keepalived.conf'), text);
    const follower = (): KeepalivedFollower =>
      new KeepalivedFollower({ stateDir, runner: new ExecaCommandRunner(ns), launcher: new ExecaDaemonLauncher(ns), log: silentLogger(), binary: 'keepalived', onUnexpectedExit: () => undefined });
    const first = follower();
    stops.push(async () => first.stop());
    expect(await first.follow()).toBe('started');
    await until('keepalived to create its FIFO', () => existsSync(notifyFifoPath(stateDir)));
    await until('keepalived to become MASTER', async () => (await host.run('ip', ['-n', ns, '-o', 'addr', 'show', 'dev', 'ext0'])).stdout.includes(` ${VIP_1}/32 `));
    expect(await states()).toEqual({});

    // The agent comes up later: the lines queued in keepalived's FIFO are read.
    expect(await port.applyConfig(text, [VIP_1])).toBe('started');
    await until('MASTER', async () => current('MASTER'));

    // keepalived restarts (SIGTERM: it unlinks the FIFO it made; the new one makes or takes one).
    await first.stop();
    const second = follower();
    stops.push(async () => second.stop());
    expect(await second.follow()).toBe('started');
    await until('MASTER again', async () => (await host.run('ip', ['-n', ns, '-o', 'addr', 'show', 'dev', 'ext0'])).stdout.includes(` ${VIP_1}/32 `));
    await port.writeTrack(VIP_1, { eligible: false, role: 'standby' });
    await until('FAULT reported by the restarted keepalived', async () => current('FAULT'));

    // The agent restarts while keepalived keeps running: nothing changes meanwhile, so keepalived
    // writes nothing; the new agent starts from the states the old one saved.
    await files.stop();
    registry.resetMetrics();
    const agent = (): KeepalivedFiles => {
      const restarted = new KeepalivedFiles(stateDir, new ExecaCommandRunner(ns), silentLogger(), { onStateChange: (c) => metric.observe(c), recheckMs: 100 });
      stops.push(async () => restarted.stop());
      return restarted;
    };
    const restarted = agent();
    expect(await states()).toEqual({});
    await restarted.applyConfig(text);
    expect(await states()).toEqual({ MASTER: 0, BACKUP: 0, FAULT: 1, STOP: 0 });

    // A change while no agent reads waits in the FIFO for the next one.
    await restarted.stop();
    // (A stopped agent faulted every instance through track/agent.alive: lift that too, as the files would be on its return.)
    const trackFiles = new KeepalivedFiles(stateDir, new ExecaCommandRunner(ns), silentLogger());
    await trackFiles.writeAgentAlive(true);
    await trackFiles.writeTrack(VIP_1, { eligible: true, role: 'holder' });
    await until('keepalived MASTER with no agent reading', async () => (await host.run('ip', ['-n', ns, '-o', 'addr', 'show', 'dev', 'ext0'])).stdout.includes(` ${VIP_1}/32 `));
    registry.resetMetrics();
    await agent().applyConfig(text);
    await until('MASTER from the queued line', async () => current('MASTER'));
  });
});
