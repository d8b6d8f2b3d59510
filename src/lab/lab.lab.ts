// The lab end to end, through the built CLI as a user runs it: `lab up` under its own name, the
// descriptor against docs/lab-status.schema.json, traffic through the floating addresses (allowed
// client answered, the other not until the Mapping allows it), a second `up` that changes nothing,
// then `lab down` and proof that nothing carrying the name is left: namespace, link, pid, directory.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { get as httpsGet } from 'node:https';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findRepoRoot, type LabDescriptor } from './lab.js';
import { uniqueLabName } from './topology.js';
import { PROBE_FILE } from './scripts.js';
import { isRunning as pidAlive } from '../../test/support/processes.js';

const run = promisify(execFile);
const repo = findRepoRoot();
const mainJs = join(repo, 'dist', 'main.js');
const name = uniqueLabName();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function cli(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [mainJs, 'lab', ...args, '--name', name], { timeout: 600_000, maxBuffer: 16 << 20 });
}

/** The JSON-schema subset the descriptor schema uses (type, required, additionalProperties, items, const, enum, pattern). */
function schemaErrors(schema: Record<string, unknown>, value: unknown, path = '$'): string[] {
  const types = ([] as string[]).concat((schema['type'] as string | string[] | undefined) ?? []);
  const typeOf = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v);
  const t = typeOf(value);
  if (types.length && !types.includes(t) && !(t === 'integer' && types.includes('number'))) return [`${path}: ${t}, want ${types.join('|')}`];
  const errors: string[] = [];
  if ('const' in schema && value !== schema['const']) errors.push(`${path}: ${JSON.stringify(value)} != const ${JSON.stringify(schema['const'])}`);
  if (Array.isArray(schema['enum']) && !schema['enum'].includes(value)) errors.push(`${path}: ${JSON.stringify(value)} not in enum`);
  if (typeof schema['pattern'] === 'string' && typeof value === 'string' && !new RegExp(schema['pattern']).test(value)) errors.push(`${path}: ${value} !~ ${schema['pattern']}`);
  if (t === 'object') {
    const obj = value as Record<string, unknown>;
    const props = (schema['properties'] ?? {}) as Record<string, Record<string, unknown>>;
    for (const k of (schema['required'] as string[] | undefined) ?? []) if (!(k in obj)) errors.push(`${path}.${k}: missing`);
    for (const [k, v] of Object.entries(obj)) {
      if (props[k]) errors.push(...schemaErrors(props[k], v, `${path}.${k}`));
      else if (schema['additionalProperties'] === false) errors.push(`${path}.${k}: not in the schema`);
    }
  }
  if (t === 'array' && schema['items']) (value as unknown[]).forEach((v, i) => errors.push(...schemaErrors(schema['items'] as Record<string, unknown>, v, `${path}[${i}]`)));
  return errors;
}

interface Outcome {
  result: string;
  reply?: { name: string; peer: string };
}

async function probeFrom(d: LabDescriptor, client: string, proto: 'tcp' | 'udp', host: string, port: number): Promise<Outcome> {
  const c = d.clients.find((x) => x.name === client)!;
  const { stdout } = await run('ip', ['netns', 'exec', c.netns, process.execPath, join(d.dir, PROBE_FILE), '--proto', proto, '--host', host, '--port', String(port), '--timeout', '700', '--source', c.address], { timeout: 30_000 });
  return JSON.parse(stdout.trim().split('\n')[0]!) as Outcome;
}

/** Tries until ok or the deadline; the last outcome. */
async function probeUntilOk(d: LabDescriptor, client: string, proto: 'tcp' | 'udp', host: string, port: number, ms: number): Promise<Outcome> {
  const deadline = performance.now() + ms;
  for (;;) {
    const o = await probeFrom(d, client, proto, host, port);
    if (o.result === 'ok' || performance.now() > deadline) return o;
    await sleep(250);
  }
}

let descriptor: LabDescriptor | undefined;
let kubectl = '';

beforeAll(async () => {
  await run('npm', ['run', 'build'], { cwd: repo, timeout: 300_000 }).catch(() => undefined); // tsc emits despite others' type errors
  expect(existsSync(mainJs)).toBe(true);
  kubectl = join((await run('bash', [join(repo, 'test', 'testenv', 'build.sh')], { timeout: 3_600_000 })).stdout.trim(), 'kubectl');
}, 3_700_000);

afterAll(async () => {
  await cli('down').catch(() => undefined);
}, 120_000);

describe(`lab ${name}`, () => {
  test('up prints a descriptor that matches the schema and status repeats it', async () => {
    const { stdout } = await cli('up', '--json');
    descriptor = JSON.parse(stdout) as LabDescriptor;
    const schema = JSON.parse(readFileSync(join(repo, 'docs', 'lab-status.schema.json'), 'utf8')) as Record<string, unknown>;
    expect(schemaErrors(schema, descriptor)).toEqual([]);
    expect(descriptor.name).toBe(name);
    expect(descriptor.agents.map((a) => a.name)).toEqual(['a1', 'a2', 'a3']);
    expect(descriptor.clients.map((c) => [c.name, c.allowed])).toEqual([['c1', true], ['c2', false]]);
    for (const a of descriptor.agents) {
      expect(a.pid).not.toBeNull();
      expect(pidAlive(a.pid!)).toBe(true);
      expect(a.netns.startsWith(`${name}-`)).toBe(true);
    }
    expect(pidAlive(descriptor.apiserver.pid!)).toBe(true);
    const status = JSON.parse((await cli('status', '--json')).stdout) as LabDescriptor;
    // keepalived may start (or restart) between the two reads; everything else must be identical
    const strip = (d: LabDescriptor): unknown => ({ ...d, agents: d.agents.map((a) => ({ ...a, keepalivedPid: 0 })) });
    expect(strip(status)).toEqual(strip(descriptor));
  }, 600_000);

  test('the echo answers through both floating addresses from the allowed client, never from the other', async () => {
    const d = descriptor!;
    const m = d.mappings[0]!;
    const [viaUplink1, viaUplink2] = m.addresses as [string, string];
    const tcp = await probeUntilOk(d, 'c1', 'tcp', viaUplink1, m.ports[0]!.port, 30_000);
    expect(tcp).toMatchObject({ result: 'ok', reply: { name: d.backends[0]!.name } });
    expect(await probeUntilOk(d, 'c1', 'udp', viaUplink1, m.ports[0]!.port, 10_000)).toMatchObject({ result: 'ok' });
    // c2 sits behind the other router: its packets reach the uplink-2 address and are dropped.
    for (let i = 0; i < 3; i++) expect((await probeFrom(d, 'c2', 'tcp', viaUplink2, m.ports[0]!.port)).result).toBe('timeout');
    // Positive control: the same path answers once the Mapping allows c2, so the drop was the allow-list.
    await run(kubectl, ['--kubeconfig', d.kubeconfig, '-n', m.namespace, 'patch', 'mapping', m.name, '--type', 'merge', '-p', JSON.stringify({ spec: { allowedSources: ['198.18.1.0/24', '198.18.2.0/24'] } })]);
    expect(await probeUntilOk(d, 'c2', 'tcp', viaUplink2, m.ports[0]!.port, 15_000)).toMatchObject({ result: 'ok', reply: { name: d.backends[0]!.name } });
    await run(kubectl, ['--kubeconfig', d.kubeconfig, '-n', m.namespace, 'patch', 'mapping', m.name, '--type', 'merge', '-p', JSON.stringify({ spec: { allowedSources: ['198.18.1.0/24'] } })]);
  }, 180_000);

  test('agent metrics are reachable from the host on the management link', async () => {
    const res = await fetch(descriptor!.agents[0]!.metrics);
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/^smartnat_/m);
  }, 30_000);

  test("an agent's API path through its proxy: delay, refuse and blackhole are measurable, pass restores", async () => {
    const d = descriptor!;
    const server = /server: (https:\/\/[\d.]+:\d+)/.exec(readFileSync(join(d.dir, 'agents', 'a1', 'kubeconfig'), 'utf8'))![1]!;
    const ca = readFileSync(join(d.dir, 'ca.crt'));
    const readyz = (): Promise<{ outcome: string; ms: number }> => new Promise((resolve) => {
      const t0 = performance.now();
      const req = httpsGet(`${server}/readyz`, { ca, agent: false, timeout: 1500 }, (res) => {
        res.resume();
        res.on('end', () => resolve({ outcome: `http ${res.statusCode}`, ms: performance.now() - t0 }));
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
      req.on('error', (err: NodeJS.ErrnoException) => resolve({ outcome: err.code ?? err.message, ms: performance.now() - t0 }));
    });
    const base = await readyz();
    expect(base.outcome).toBe('http 200');
    expect(base.ms).toBeLessThan(400);
    await cli('api', 'a1', '--delay', '150');
    // a TLS 1.3 handshake and one request: at least two round trips of 2 x 150 ms through the proxy
    const slow = await readyz();
    expect(slow.outcome).toBe('http 200');
    expect(slow.ms).toBeGreaterThanOrEqual(600);
    await cli('api', 'a1', 'refuse', '--delay', '0');
    expect((await readyz()).outcome).toBe('ECONNREFUSED');
    await cli('api', 'a1', 'blackhole');
    expect(await readyz()).toMatchObject({ outcome: 'TIMEOUT' });
    const back = JSON.parse((await cli('api', 'a1', 'pass', '--json')).stdout) as { mode: string; listening: boolean };
    expect(back).toMatchObject({ mode: 'pass', listening: true });
    expect((await readyz()).outcome).toBe('http 200');
  }, 60_000);

  test('a second up changes nothing', async () => {
    const { stdout, stderr } = await cli('up', '--json');
    expect(stderr).toMatch(/already up/);
    const again = JSON.parse(stdout) as LabDescriptor;
    expect(again.agents.map((a) => a.pid)).toEqual(descriptor!.agents.map((a) => a.pid));
    expect(again.apiserver.pid).toBe(descriptor!.apiserver.pid);
  }, 120_000);

  test('up restarts a killed agent in place and keeps the rest', async () => {
    const before = descriptor!;
    const victim = before.agents[1]!;
    process.kill(victim.pid!, 'SIGKILL');
    const deadline = performance.now() + 5000;
    while (pidAlive(victim.pid!) && performance.now() < deadline) await sleep(20);
    const { stdout, stderr } = await cli('up', '--json');
    expect(stderr).toMatch(new RegExp(`repaired \\(the agent is not running: ${victim.name}\\)`));
    const after = JSON.parse(stdout) as LabDescriptor;
    const again = after.agents.find((a) => a.name === victim.name)!;
    expect(again.pid).not.toBeNull();
    expect(again.pid).not.toBe(victim.pid);
    expect(pidAlive(again.pid!)).toBe(true);
    expect(after.apiserver.pid).toBe(before.apiserver.pid);
    expect(after.agents.filter((a) => a.name !== victim.name).map((a) => a.pid)).toEqual(before.agents.filter((a) => a.name !== victim.name).map((a) => a.pid));
    descriptor = after;
    // and the lab still serves
    const m = after.mappings[0]!;
    expect(await probeUntilOk(after, 'c1', 'tcp', m.addresses[0]!, m.ports[0]!.port, 30_000)).toMatchObject({ result: 'ok' });
  }, 180_000);

  test('up rebuilds a lab whose control plane died, and nothing of the old one survives', async () => {
    const before = descriptor!;
    const record = JSON.parse(readFileSync(join(before.dir, 'lab.json'), 'utf8')) as { controlPlane: { etcd: { pid: number } } };
    const oldPids = [record.controlPlane.etcd.pid, before.apiserver.pid!, ...before.agents.map((a) => a.pid!)];
    process.kill(record.controlPlane.etcd.pid, 'SIGKILL');
    const { stdout, stderr } = await cli('up', '--json');
    expect(stderr).toMatch(/rebuilt \(etcd \(pid \d+\) is not running\)/);
    const after = JSON.parse(stdout) as LabDescriptor;
    expect(oldPids.filter(pidAlive)).toEqual([]);
    expect(after.agents.every((a) => a.pid !== null && pidAlive(a.pid))).toBe(true);
    descriptor = after;
    const m = after.mappings[0]!;
    expect(await probeUntilOk(after, 'c1', 'tcp', m.addresses[0]!, m.ports[0]!.port, 30_000)).toMatchObject({ result: 'ok' });
  }, 300_000);

  test('down leaves no namespace, link, process or directory behind', async () => {
    const d = descriptor!;
    const pids = [d.apiserver.pid!, ...d.agents.flatMap((a) => [a.pid!, ...(a.keepalivedPid ? [a.keepalivedPid] : [])])];
    const report = JSON.parse((await cli('down', '--json')).stdout) as { leftoverNamespaces: string[]; leftoverProcesses: number[]; leftoverLinks: string[]; dirRemoved: boolean };
    expect(report).toMatchObject({ leftoverNamespaces: [], leftoverProcesses: [], leftoverLinks: [], dirRemoved: true });
    expect((await run('ip', ['netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith(`${name}-`))).toEqual([]);
    const links = JSON.parse((await run('ip', ['-j', 'link', 'show'])).stdout) as { ifname: string }[];
    expect(links.map((l) => l.ifname).filter((n) => n.startsWith(name))).toEqual([]);
    expect(pids.filter(pidAlive)).toEqual([]);
    expect(existsSync(d.dir)).toBe(false);
    // nothing mentions the lab's directory any more (proxies, etcd, echo servers all gone)
    const mentioning = readdirSync('/proc').filter((e) => /^\d+$/.test(e)).filter((e) => {
      try {
        return readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(d.dir) && pidAlive(Number(e));
      } catch {
        return false;
      }
    });
    expect(mentioning).toEqual([]);
  }, 120_000);
});
