// VRRPv3 has no authentication (docs/security.md): a host on the external segment that is not one
// of our unicast peers sends adverts for a floating address's VRID at priority 255, unicast to
// the holder. With the config SmartNat renders (vrrp_check_unicast_src) the holder keeps the
// address; the same config without that line loses it to the rogue, which shows the test can fail
// and that the rogue's adverts do reach the holder. Real keepalived in namespaces of its own on a
// real L2 segment; only documentation addresses; everything removed in afterAll.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExecaCommandRunner } from '../dataplane/command-runner.js';
import { ExecaDaemonLauncher, type Daemon } from '../dataplane/daemon.js';
import { silentLogger } from '../log/logger.js';
import { compileKeepalivedTemplate, renderKeepalivedConfig } from './render.js';
import { KeepalivedSupervisor } from './supervisor.js';

const VIP_1 = '203.0.113.10';
const HOLDER = '203.0.113.2';
const PEER = '203.0.113.3';
const ROGUE = '203.0.113.66';
const VRID = 10;
const ADVERT_MS = 100;
const run = `snvx${randomBytes(2).toString('hex')}`;
const ns = { seg: `${run}-seg`, holder: `${run}-h`, peer: `${run}-p`, rogue: `${run}-r` };
const host = new ExecaCommandRunner();
const template = compileKeepalivedTemplate(readFileSync(new URL('../../templates/keepalived.conf.hbs', import.meta.url), 'utf8'));
const dir = mkdtempSync(join(tmpdir(), 'snvx-'));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function holderConfig(): string {
  return renderKeepalivedConfig(template, {
    agent: 'agent-h',
    stateDir: join(dir, 'holder'),
    instances: [{ address: VIP_1, interface: 'ext0', vrid: VRID, sourceAddress: HOLDER, peers: [PEER], advertIntervalMs: ADVERT_MS }],
  });
}

/** The rogue: a plain keepalived that claims the VRID at the highest priority, unicast to the holder. */
function rogueConfig(): string {
  return [
    'global_defs {', '    router_id rogue', '    vrrp_version 3', '}',
    'vrrp_instance ROGUE {', '    state MASTER', '    interface ext0', `    virtual_router_id ${VRID}`, '    priority 255',
    `    advert_int ${ADVERT_MS / 1000}`, `    unicast_src_ip ${ROGUE}`, '    unicast_peer {', `        ${HOLDER}`, '    }',
    '    virtual_ipaddress {', `        ${VIP_1}/32 dev ext0`, '    }', '}', '',
  ].join('\n');
}

async function hasVip(netns: string): Promise<boolean> {
  const out = await host.run('ip', ['-n', netns, '-4', '-o', 'addr', 'show', 'dev', 'ext0']);
  return out.stdout.includes(` ${VIP_1}/32 `);
}

async function until(what: string, ok: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await ok())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** Samples the holder every 20 ms for `ms`: how many samples found the address missing. */
async function missingSamples(ms: number): Promise<{ samples: number; missing: number }> {
  const end = performance.now() + ms;
  let samples = 0;
  let missing = 0;
  while (performance.now() < end) {
    samples += 1;
    if (!(await hasVip(ns.holder))) missing += 1;
    await sleep(20);
  }
  return { samples, missing };
}

let holder: KeepalivedSupervisor;
let rogue: { daemon: Daemon; exited: Promise<void> } | undefined;
let rogueRuns = 0;

async function startRogue(): Promise<void> {
  rogueRuns += 1;
  const file = join(dir, `rogue-${rogueRuns}.conf`);
  writeFileSync(file, rogueConfig());
  let exited: () => void = () => undefined;
  const done = new Promise<void>((r) => (exited = r));
  const args = ['--vrrp', '--dont-fork', '--log-console', '--no-syslog', '-f', file, '-p', join(dir, `rogue-${rogueRuns}.pid`), '-r', join(dir, `rogue-${rogueRuns}-vrrp.pid`)];
  rogue = { daemon: new ExecaDaemonLauncher(ns.rogue).launch('keepalived', args, { dieWithParent: 'KILL', onExit: () => exited() }), exited: done };
  await until('the rogue to carry the address itself (it believes it is master)', () => hasVip(ns.rogue));
}

async function stopRogue(): Promise<void> {
  if (!rogue) return;
  rogue.daemon.signal('SIGTERM');
  await rogue.exited;
  rogue = undefined;
}

beforeAll(async () => {
  await host.run('ip', ['netns', 'add', ns.seg]);
  await host.run('ip', ['-n', ns.seg, 'link', 'add', 'br0', 'type', 'bridge']);
  await host.run('ip', ['-n', ns.seg, 'link', 'set', 'br0', 'up']);
  for (const [netns, addr, port] of [[ns.holder, HOLDER, 'ph'], [ns.peer, PEER, 'pp'], [ns.rogue, ROGUE, 'pr']] as const) {
    await host.run('ip', ['netns', 'add', netns]);
    await host.run('ip', ['-n', ns.seg, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'ext0', 'netns', netns]);
    await host.run('ip', ['-n', ns.seg, 'link', 'set', port, 'master', 'br0', 'up']);
    await host.run('ip', ['-n', netns, 'link', 'set', 'ext0', 'up']);
    await host.run('ip', ['-n', netns, 'addr', 'add', `${addr}/24`, 'dev', 'ext0']);
  }
  holder = new KeepalivedSupervisor({
    runner: new ExecaCommandRunner(ns.holder),
    launcher: new ExecaDaemonLauncher(ns.holder),
    stateDir: join(dir, 'holder'),
    log: silentLogger(),
    onStateChange: () => undefined,
    restartBackoffMs: { initial: 100, max: 400 },
  });
  await holder.writeAgentAlive(true);
  await holder.writeTrack(VIP_1, { eligible: true, role: 'holder' });
});

afterAll(async () => {
  rogue?.daemon.signal('SIGKILL');
  await holder?.stop().catch(() => undefined);
  for (const netns of [ns.holder, ns.peer, ns.rogue, ns.seg]) await host.run('ip', ['netns', 'del', netns], { okExitCodes: [0, 1] });
  rmSync(dir, { recursive: true, force: true });
});

describe('a rogue VRRP speaker on the external segment (VRRPv3 has no authentication)', () => {
  it('the rendered config drops adverts from anyone but the unicast peers', () => {
    expect(holderConfig()).toMatch(/^\s*vrrp_check_unicast_src$/m);
  });

  it('control: without vrrp_check_unicast_src, the rogue\'s priority-255 adverts take the address off the holder', async () => {
    const unchecked = holderConfig().replace(/^\s*vrrp_check_unicast_src\n/m, '');
    expect(unchecked).not.toContain('vrrp_check_unicast_src');
    expect(await holder.applyConfig(unchecked, [VIP_1])).toBe('started');
    await until('the holder to carry the address', () => hasVip(ns.holder));
    await startRogue();
    try {
      await until('the holder to lose the address to the rogue', async () => !(await hasVip(ns.holder)));
    } finally {
      await stopRogue();
    }
    await until('the holder to take the address back once the rogue is quiet', () => hasVip(ns.holder));
  }, 60_000);

  it('with the config SmartNat renders, the holder keeps the address for 30 advert intervals while the rogue advertises', async () => {
    expect(await holder.applyConfig(holderConfig(), [VIP_1])).toBe('reloaded');
    await until('the holder to carry the address', () => hasVip(ns.holder));
    await startRogue();
    let seen: { samples: number; missing: number };
    try {
      seen = await missingSamples(30 * ADVERT_MS);
    } finally {
      await stopRogue();
    }
    expect(seen.samples).toBeGreaterThan(10);
    expect(seen.missing).toBe(0);
  }, 60_000);
});
