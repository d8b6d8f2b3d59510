// The API proxy on loopback against a real TCP echo target: pass, delay per direction, refuse and
// blackhole, driven through the same unix-socket control channel the lab CLI uses.
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket, type AddressInfo } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiProxy, controlProxy, parseStatePatch, serveProxyControl } from './api-proxy.js';
import { freePorts } from './control-plane.js';

type Outcome = { kind: 'reply'; ms: number; text: string } | { kind: 'error'; code: string; ms: number } | { kind: 'silent'; ms: number; connected: boolean };

let target: Server;
let proxy: ApiProxy;
let control: HttpServer;
let dir: string;
let sock: string;
let port: number;

/** Connects, sends one line, waits for one line back (or an error, or silence until waitMs). */
function roundTrip(o: { socket?: Socket; line?: string; waitMs?: number } = {}): Promise<Outcome> {
  const started = performance.now();
  const ms = (): number => performance.now() - started;
  return new Promise((resolve) => {
    const s = o.socket ?? connect({ host: '127.0.0.1', port });
    let connected = o.socket !== undefined;
    let text = '';
    const timer = setTimeout(() => {
      cleanup();
      resolve({ kind: 'silent', ms: ms(), connected });
    }, o.waitMs ?? 1000);
    const onData = (d: Buffer): void => {
      text += d.toString();
      if (text.includes('\n')) {
        cleanup();
        resolve({ kind: 'reply', ms: ms(), text: text.trim() });
      }
    };
    const onError = (err: NodeJS.ErrnoException): void => {
      cleanup();
      resolve({ kind: 'error', code: err.code ?? 'unknown', ms: ms() });
    };
    const onClose = (): void => {
      cleanup();
      resolve({ kind: 'error', code: 'closed', ms: ms() });
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('error', onError);
      s.off('close', onClose);
      if (o.socket === undefined) s.destroy();
    };
    s.on('data', onData);
    s.on('error', onError);
    s.on('close', onClose);
    s.on('connect', () => (connected = true));
    s.write(`${o.line ?? 'ping'}\n`);
  });
}

function openSocket(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

beforeEach(async () => {
  target = createServer((s) => {
    s.on('error', () => undefined);
    s.on('data', (d) => s.write(`echo ${d.toString().trim()}\n`));
  });
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', () => r()));
  [port] = (await freePorts(1)) as [number];
  proxy = new ApiProxy({ host: '127.0.0.1', port }, { host: '127.0.0.1', port: (target.address() as AddressInfo).port });
  await proxy.start();
  dir = await mkdtemp(join(tmpdir(), 'smartnat-proxy-'));
  sock = join(dir, 'control.sock');
  control = await serveProxyControl(proxy, sock);
});

afterEach(async () => {
  control.close();
  await proxy.close();
  await new Promise<void>((r) => target.close(() => r()));
  await rm(dir, { recursive: true, force: true });
});

describe('api proxy', () => {
  test('pass forwards bytes both ways and counts them', async () => {
    const out = await roundTrip({ line: 'hello' });
    expect(out).toMatchObject({ kind: 'reply', text: 'echo hello' });
    const status = await controlProxy(sock);
    expect(status).toMatchObject({ mode: 'pass', listening: true, delayMs: { up: 0, down: 0 } });
    expect(status.stats.accepted).toBe(1);
    expect(status.stats.bytesUp).toBe('hello\n'.length);
    expect(status.stats.bytesDown).toBe('echo hello\n'.length);
  });

  test('delay per direction adds up to the round trip, measurably', async () => {
    const base = await roundTrip();
    expect(base.kind).toBe('reply');
    expect(base.ms).toBeLessThan(150);
    await controlProxy(sock, { delayMs: { up: 150 } });
    const up = await roundTrip();
    await controlProxy(sock, { delayMs: { up: 0, down: 250 } });
    const down = await roundTrip();
    await controlProxy(sock, { delayMs: { up: 200, down: 200 } });
    const both = await roundTrip();
    expect(up.kind).toBe('reply');
    expect(up.ms).toBeGreaterThanOrEqual(150);
    expect(up.ms).toBeLessThan(150 + 200);
    expect(down.ms).toBeGreaterThanOrEqual(250);
    expect(down.ms).toBeLessThan(250 + 200);
    expect(both.ms).toBeGreaterThanOrEqual(400);
    expect(both.ms).toBeLessThan(400 + 200);
  });

  test('delay keeps byte order when the delay shrinks between chunks', async () => {
    await controlProxy(sock, { delayMs: { up: 300 } });
    const s = await openSocket();
    let got = '';
    s.on('data', (d) => (got += d.toString()));
    s.write('a\n');
    await controlProxy(sock, { delayMs: { up: 0 } });
    s.write('b\n');
    await new Promise((r) => setTimeout(r, 500));
    s.destroy();
    expect(got).toBe('echo a\necho b\n');
  });

  test('refuse resets open connections and refuses new ones; pass restores', async () => {
    const open = await openSocket();
    expect(await roundTrip({ socket: open })).toMatchObject({ kind: 'reply' });
    const closed = new Promise<string>((r) => {
      open.on('error', (e: NodeJS.ErrnoException) => r(e.code ?? 'error'));
      open.on('close', () => r('closed'));
    });
    const status = await controlProxy(sock, { mode: 'refuse' });
    expect(status.listening).toBe(false);
    expect(await closed).toBe('ECONNRESET');
    const fresh = await roundTrip();
    expect(fresh).toMatchObject({ kind: 'error', code: 'ECONNREFUSED' });
    await controlProxy(sock, { mode: 'pass' });
    expect(await roundTrip()).toMatchObject({ kind: 'reply', text: 'echo ping' });
  });

  test('blackhole silences open connections and never answers new ones; pass restores', async () => {
    const open = await openSocket();
    expect(await roundTrip({ socket: open })).toMatchObject({ kind: 'reply' });
    await controlProxy(sock, { mode: 'blackhole' });
    const silentOld = await roundTrip({ socket: open, waitMs: 400 });
    expect(silentOld.kind).toBe('silent');
    const silentNew = await roundTrip({ waitMs: 400 });
    expect(silentNew).toMatchObject({ kind: 'silent', connected: true });
    expect((await controlProxy(sock)).stats.held).toBe(2);
    await controlProxy(sock, { mode: 'pass' });
    expect(await roundTrip()).toMatchObject({ kind: 'reply', text: 'echo ping' });
    open.destroy();
  });

  test('a target that refuses makes the proxy reset the client (as a stopped API server would)', async () => {
    await new Promise<void>((r) => target.close(() => r()));
    expect(await roundTrip()).toMatchObject({ kind: 'error', code: 'ECONNRESET' });
  });

  test('bad control requests are refused with a reason', async () => {
    await expect(controlProxy(sock, { mode: 'cut' as never })).rejects.toThrow(/mode must be pass, refuse or blackhole/);
    expect(() => parseStatePatch({ delayMs: { up: -1 } })).toThrow(/0\.\.600000/);
    expect(() => parseStatePatch({ mood: 'x' })).toThrow(/unknown field mood/);
    expect((await controlProxy(sock)).mode).toBe('pass');
  });
});
