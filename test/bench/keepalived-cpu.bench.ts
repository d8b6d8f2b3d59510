// Benchmark: keepalived's CPU with 255 VRRP instances (the most one interface carries) at a given
// advert interval, two agents on one L2 segment: agent A holds every address (MASTER), agent B is
// a non-holder (FAULT, as ADR 0007 makes every non-holder). Reports CPU % of one core per agent,
// from /proc/<pid>/stat of every process in its namespace, over a measurement window.
//   npx tsx test/bench/keepalived-cpu.bench.ts [--instances 255] [--advert-ms 100] [--seconds 20]
// Root; creates and removes its own namespaces (snkc-*). VIPs from 198.19.10.0/24 (benchmark range).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { ExecaCommandRunner } from '../../src/dataplane/command-runner.js';
import { ExecaDaemonLauncher } from '../../src/dataplane/daemon.js';
import { silentLogger } from '../../src/log/logger.js';
import { compileKeepalivedTemplate, renderKeepalivedConfig } from '../../src/keepalived/render.js';
import { KeepalivedSupervisor } from '../../src/keepalived/supervisor.js';

const { values } = parseArgs({ options: { instances: { type: 'string', default: '255' }, 'advert-ms': { type: 'string', default: '100' }, seconds: { type: 'string', default: '20' } } });
const instances = Number(values.instances);
const advertMs = Number(values['advert-ms']);
const seconds = Number(values.seconds);
const run = `snkc${randomBytes(2).toString('hex')}`;
const host = new ExecaCommandRunner();
const dir = mkdtempSync(join(tmpdir(), 'snkc-'));
const template = compileKeepalivedTemplate(readFileSync(new URL('../../templates/keepalived.conf.hbs', import.meta.url), 'utf8'));
const CLK_TCK = 100;

const agents = [
  { name: 'agent-a', ns: `${run}-a`, self: '203.0.113.2', peer: '203.0.113.3', holds: true },
  { name: 'agent-b', ns: `${run}-b`, self: '203.0.113.3', peer: '203.0.113.2', holds: false },
];
const vips = Array.from({ length: instances }, (_, i) => `198.19.10.${i + 1}`);
const sups: KeepalivedSupervisor[] = [];

async function cpuTicks(ns: string): Promise<number> {
  const pids = (await host.run('ip', ['netns', 'pids', ns])).stdout.split('\n').filter((p) => p !== '');
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
    } catch {
      // the process ended between the listing and the read
    }
  }
  return ticks;
}

async function main(): Promise<void> {
  const seg = `${run}-seg`;
  try {
    await host.run('ip', ['netns', 'add', seg]);
    await host.run('ip', ['-n', seg, 'link', 'add', 'br0', 'type', 'bridge']);
    await host.run('ip', ['-n', seg, 'link', 'set', 'br0', 'up']);
    for (const [i, a] of agents.entries()) {
      await host.run('ip', ['netns', 'add', a.ns]);
      await host.run('ip', ['-n', seg, 'link', 'add', `p${i}`, 'type', 'veth', 'peer', 'name', 'ext0', 'netns', a.ns]);
      await host.run('ip', ['-n', seg, 'link', 'set', `p${i}`, 'master', 'br0', 'up']);
      await host.run('ip', ['-n', a.ns, 'link', 'set', 'ext0', 'up']);
      await host.run('ip', ['-n', a.ns, 'addr', 'add', `${a.self}/24`, 'dev', 'ext0']);
      const sup = new KeepalivedSupervisor({ runner: new ExecaCommandRunner(a.ns), launcher: new ExecaDaemonLauncher(a.ns), stateDir: join(dir, a.name), log: silentLogger() });
      sups.push(sup);
      await sup.writeAgentAlive(true);
      for (const vip of vips) await sup.writeTrack(vip, a.holds ? { eligible: true, role: 'holder' } : { eligible: false, role: 'standby' });
      const text = renderKeepalivedConfig(template, {
        agent: a.name,
        stateDir: join(dir, a.name),
        instances: vips.map((address, n) => ({ address, interface: 'ext0', vrid: n + 1, sourceAddress: a.self, peers: [a.peer], advertIntervalMs: advertMs })),
      });
      await sup.applyConfig(text, vips);
    }
    // Let every instance settle (A: MASTER for all), then measure.
    const settle = Date.now() + 30_000;
    for (;;) {
      const out = (await host.run('ip', ['-n', agents[0]!.ns, '-4', '-o', 'addr', 'show', 'dev', 'ext0'])).stdout;
      const held = vips.filter((v) => out.includes(` ${v}/32 `)).length;
      if (held === instances) break;
      if (Date.now() > settle) throw new Error(`only ${held}/${instances} addresses on agent-a after 30 s`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const before = await Promise.all(agents.map((a) => cpuTicks(a.ns)));
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const after = await Promise.all(agents.map((a) => cpuTicks(a.ns)));
    const elapsed = (performance.now() - t0) / 1000;
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    const result = {
      instances,
      advertMs,
      seconds: Number(elapsed.toFixed(1)),
      loadavg: load,
      cpuPercentOfOneCore: Object.fromEntries(agents.map((a, i) => [`${a.name} (${a.holds ? 'MASTER x' + instances : 'FAULT x' + instances})`, Number(((100 * (after[i]! - before[i]!)) / CLK_TCK / elapsed).toFixed(1))])),
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    for (const s of sups) await s.stop().catch(() => undefined);
    for (const ns of [...agents.map((a) => a.ns), seg]) await host.run('ip', ['netns', 'del', ns], { okExitCodes: [0, 1] });
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
