// Two agents' keepalived on one real L2 segment: the lease's decision, written as track files,
// decides who carries the address; a non-holder never does; a handoff moves it; a killed
// keepalived is restarted with the holder's state intact; a config keepalived refuses changes nothing.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ExecaCommandRunner } from '../dataplane/command-runner.js';
import { ExecaDaemonLauncher } from '../dataplane/daemon.js';
import { silentLogger } from '../log/logger.js';
import { compileKeepalivedTemplate, renderKeepalivedConfig } from './render.js';
import { KeepalivedConfigError, KeepalivedSupervisor } from './supervisor.js';
import type { VrrpStateChange } from './notify.js';

const VIP_1 = '203.0.113.10';
const AGENT_A = '203.0.113.2';
const AGENT_B = '203.0.113.3';
const run = `snka${randomBytes(2).toString('hex')}`;
const nsSeg = `${run}-seg`;
const nsA = `${run}-a`;
const nsB = `${run}-b`;
const host = new ExecaCommandRunner();
const template = compileKeepalivedTemplate(readFileSync(new URL('../../templates/keepalived.conf.hbs', import.meta.url), 'utf8'));
const dir = mkdtempSync(join(tmpdir(), 'snka-'));

interface Agent {
  name: string;
  ns: string;
  self: string;
  peer: string;
  sup: KeepalivedSupervisor;
  events: VrrpStateChange[];
}
const agents: Agent[] = [];

function makeAgent(name: string, ns: string, self: string, peer: string): Agent {
  const events: VrrpStateChange[] = [];
  const sup = new KeepalivedSupervisor({
    runner: new ExecaCommandRunner(ns),
    launcher: new ExecaDaemonLauncher(ns),
    stateDir: join(dir, name),
    log: silentLogger(),
    onStateChange: (c) => events.push(c),
    restartBackoffMs: { initial: 100, max: 400 },
  });
  const agent = { name, ns, self, peer, sup, events };
  agents.push(agent);
  return agent;
}

function config(agent: Agent, advertIntervalMs = 100): string {
  return renderKeepalivedConfig(template, {
    agent: agent.name,
    stateDir: join(dir, agent.name),
    instances: [{ address: VIP_1, interface: 'ext0', vrid: 10, sourceAddress: agent.self, peers: [agent.peer], advertIntervalMs }],
  });
}

async function hasVip(ns: string): Promise<boolean> {
  const out = await host.run('ip', ['-n', ns, '-4', '-o', 'addr', 'show', 'dev', 'ext0']);
  return out.stdout.includes(` ${VIP_1}/32 `);
}

async function until(what: string, ok: () => Promise<boolean> | boolean, ms = 5000): Promise<number> {
  const start = performance.now();
  for (;;) {
    if (await ok()) return performance.now() - start;
    if (performance.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function holders(): Promise<string[]> {
  const result: string[] = [];
  for (const a of agents) if (await hasVip(a.ns)) result.push(a.name);
  return result;
}

beforeAll(async () => {
  await host.run('ip', ['netns', 'add', nsSeg]);
  await host.run('ip', ['-n', nsSeg, 'link', 'add', 'br0', 'type', 'bridge']);
  await host.run('ip', ['-n', nsSeg, 'link', 'set', 'br0', 'up']);
  for (const [ns, addr, port] of [[nsA, AGENT_A, 'pa'], [nsB, AGENT_B, 'pb']] as const) {
    await host.run('ip', ['netns', 'add', ns]);
    await host.run('ip', ['-n', nsSeg, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'ext0', 'netns', ns]);
    await host.run('ip', ['-n', nsSeg, 'link', 'set', port, 'master', 'br0', 'up']);
    await host.run('ip', ['-n', ns, 'link', 'set', 'ext0', 'up']);
    await host.run('ip', ['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'ext0']);
  }
  makeAgent('agent-a', nsA, AGENT_A, AGENT_B);
  makeAgent('agent-b', nsB, AGENT_B, AGENT_A);
});

afterAll(async () => {
  for (const a of agents) await a.sup.stop().catch(() => undefined);
  for (const ns of [nsA, nsB, nsSeg]) await host.run('ip', ['netns', 'del', ns], { okExitCodes: [0, 1] });
  rmSync(dir, { recursive: true, force: true });
});

describe('keepalived follows the track files the lease decides', () => {
  const [a, b] = [() => agents[0]!, () => agents[1]!];

  it('starts both, and nobody carries an address nobody holds — not even one left on the interface by a killed keepalived', async () => {
    // What a SIGKILLed keepalived leaves behind: the /32 still on the interface.
    await host.run('ip', ['-n', nsA, 'addr', 'add', `${VIP_1}/32`, 'dev', 'ext0']);
    expect(await holders()).toEqual(['agent-a']);
    for (const agent of agents) {
      await agent.sup.writeAgentAlive(true);
      expect(await agent.sup.applyConfig(config(agent), [VIP_1])).toBe('started');
    }
    await until('both instances to report FAULT', () => agents.every((g) => g.events.some((e) => e.state === 'FAULT')));
    await new Promise((r) => setTimeout(r, 600)); // several advert intervals
    expect(await holders()).toEqual([]);
  });

  it('puts the address on the holder only, and the FIFO reports MASTER with the holder priority', async () => {
    await a().sup.writeTrack(VIP_1, { eligible: true, role: 'holder' });
    await until('VIP on agent-a', () => hasVip(nsA));
    await until('MASTER 250 on the FIFO', () => a().events.some((e) => e.state === 'MASTER' && e.priority === 250));
    await new Promise((r) => setTimeout(r, 500));
    expect(await holders()).toEqual(['agent-a']);
  });

  it('moves the address on a planned handoff (successor eligible + holder, old owner releasing)', async () => {
    await b().sup.writeTrack(VIP_1, { eligible: true, role: 'holder' });
    await a().sup.writeTrack(VIP_1, { eligible: true, role: 'releasing' });
    const ms = await until('VIP on agent-b', async () => (await holders()).join() === 'agent-b');
    expect(ms).toBeLessThan(5000);
    await a().sup.writeTrack(VIP_1, { eligible: false, role: 'standby' });
    await new Promise((r) => setTimeout(r, 500));
    expect(await holders()).toEqual(['agent-b']);
  });

  it('answers "unchanged" for the same config and keeps the process', async () => {
    const pid = b().sup.pid;
    expect(await b().sup.applyConfig(config(b()), [VIP_1])).toBe('unchanged');
    expect(b().sup.pid).toBe(pid);
  });

  it('refuses a config keepalived -t rejects and keeps the running one', async () => {
    const pid = b().sup.pid;
    const broken = config(b()).replace('virtual_router_id 10', 'virtual_router_id 300');
    await expect(b().sup.applyConfig(broken, [VIP_1])).rejects.toBeInstanceOf(KeepalivedConfigError);
    expect(b().sup.pid).toBe(pid);
    expect(readFileSync(b().sup.configPath, 'utf8')).toContain('virtual_router_id 10');
    expect(await holders()).toEqual(['agent-b']);
  });

  it('reloads on a changed config without losing the address', async () => {
    expect(await b().sup.applyConfig(config(b(), 200), [VIP_1])).toBe('reloaded');
    await new Promise((r) => setTimeout(r, 800));
    expect(await holders()).toEqual(['agent-b']);
  });

  it('restarts a killed keepalived, which takes the address back from the intact track files', async () => {
    const pid = b().sup.pid!;
    const vrrpPid = Number(readFileSync(join(dir, 'agent-b', 'vrrp.pid'), 'utf8'));
    process.kill(vrrpPid, 'SIGKILL');
    process.kill(pid, 'SIGKILL');
    await until('a new keepalived pid', () => b().sup.pid !== undefined && b().sup.pid !== pid);
    expect(b().sup.restarts).toBeGreaterThanOrEqual(1);
    await until('VIP back on agent-b alone', async () => (await holders()).join() === 'agent-b', 8000);
  });

  it('faults every instance when the agent-alive file says the agent is gone', async () => {
    await b().sup.writeAgentAlive(false);
    await until('VIP gone from agent-b', async () => !(await hasVip(nsB)));
    expect(await holders()).toEqual([]);
  });
});
