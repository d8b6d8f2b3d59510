// Owns: the lab's per-agent user-space TCP proxy between an agent and the API server, and its
// control channel (HTTP over a unix socket in the lab directory). Guarantees: a state change has
// taken effect when the control call answers; 'refuse' closes the listener (new connects get RST)
// and resets open connections; 'blackhole' answers nothing (open connections go silent, new ones are
// accepted and never served); delays keep byte order per direction. Does not: shape bandwidth,
// lose single packets, or restart itself.
import { once } from 'node:events';
import { rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, request as httpRequest, type Server as HttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';

export type ProxyMode = 'pass' | 'refuse' | 'blackhole';

export interface ProxyState {
  readonly mode: ProxyMode;
  /** Added to every chunk: up = agent -> API server, down = API server -> agent. */
  readonly delayMs: { readonly up: number; readonly down: number };
}

export interface ProxyStats {
  /** Connections accepted since start. */
  readonly accepted: number;
  /** Connections being forwarded now. */
  readonly forwarding: number;
  /** Connections held without answer (blackhole). */
  readonly held: number;
  readonly bytesUp: number;
  readonly bytesDown: number;
}

export interface ProxyStatus extends ProxyState {
  readonly listen: string;
  readonly target: string;
  readonly listening: boolean;
  readonly stats: ProxyStats;
}

export interface ProxyAddress {
  readonly host: string;
  readonly port: number;
}

export interface ProxyStatePatch {
  readonly mode?: ProxyMode;
  readonly delayMs?: { readonly up?: number; readonly down?: number };
}

/** Validates a control request body; pure. */
export function parseStatePatch(value: unknown): ProxyStatePatch {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('state must be a JSON object');
  const v = value as Record<string, unknown>;
  for (const key of Object.keys(v)) if (key !== 'mode' && key !== 'delayMs') throw new Error(`unknown field ${key}`);
  const patch: { mode?: ProxyMode; delayMs?: { up?: number; down?: number } } = {};
  if (v['mode'] !== undefined) {
    if (v['mode'] !== 'pass' && v['mode'] !== 'refuse' && v['mode'] !== 'blackhole') throw new Error(`mode must be pass, refuse or blackhole, got ${JSON.stringify(v['mode'])}`);
    patch.mode = v['mode'];
  }
  if (v['delayMs'] !== undefined) {
    const d = v['delayMs'];
    if (typeof d !== 'object' || d === null) throw new Error('delayMs must be {up?, down?}');
    const delay: { up?: number; down?: number } = {};
    for (const [k, ms] of Object.entries(d as Record<string, unknown>)) {
      if (k !== 'up' && k !== 'down') throw new Error(`unknown delay direction ${k}`);
      if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 0 || ms > 600_000) throw new Error(`delayMs.${k} must be an integer 0..600000`);
      delay[k] = ms;
    }
    patch.delayMs = delay;
  }
  return patch;
}

interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
}

/** Forwards one direction, each chunk no earlier than its arrival plus the current delay, in order. */
class DelayedPipe {
  readonly #queue: { due: number; chunk: Buffer | null }[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly delay: () => number,
    private readonly count: (bytes: number) => void,
  ) {
    from.on('data', (chunk: Buffer) => this.#push(chunk));
    from.on('end', () => this.#push(null));
  }

  #push(chunk: Buffer | null): void {
    const last = this.#queue[this.#queue.length - 1]?.due ?? 0;
    this.#queue.push({ due: Math.max(performance.now() + this.delay(), last), chunk });
    this.#pump();
  }

  #pump(): void {
    if (this.#timer !== undefined) return;
    while (this.#queue.length) {
      const head = this.#queue[0]!;
      const wait = head.due - performance.now();
      if (wait > 0) {
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          this.#pump();
        }, Math.ceil(wait));
        return;
      }
      this.#queue.shift();
      if (this.to.destroyed) continue;
      if (head.chunk === null) {
        this.to.end();
        continue;
      }
      this.count(head.chunk.length);
      if (!this.to.write(head.chunk)) {
        this.from.pause();
        this.to.once('drain', () => this.from.resume());
      }
    }
  }

  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue.length = 0;
  }
}

export class ApiProxy {
  #state: ProxyState = { mode: 'pass', delayMs: { up: 0, down: 0 } };
  readonly #pairs = new Map<Pair, DelayedPipe[]>();
  readonly #held = new Set<Socket>();
  #server: Server | undefined;
  #accepted = 0;
  #bytesUp = 0;
  #bytesDown = 0;

  constructor(readonly listen: ProxyAddress, readonly target: ProxyAddress) {}

  /** Starts in the given state (pass when absent); resolves once listening (unless refusing). */
  async start(initial: ProxyStatePatch = {}): Promise<void> {
    await this.setState(initial);
  }

  status(): ProxyStatus {
    return {
      ...this.#state,
      listen: `${this.listen.host}:${this.listen.port}`,
      target: `${this.target.host}:${this.target.port}`,
      listening: this.#server !== undefined,
      stats: {
        accepted: this.#accepted,
        forwarding: this.#pairs.size,
        held: this.#held.size,
        bytesUp: this.#bytesUp,
        bytesDown: this.#bytesDown,
      },
    };
  }

  /** Applies a change; resolves when it is in force (listener opened or closed, connections dropped). */
  async setState(patch: ProxyStatePatch): Promise<ProxyStatus> {
    const mode = patch.mode ?? this.#state.mode;
    this.#state = {
      mode,
      delayMs: { up: patch.delayMs?.up ?? this.#state.delayMs.up, down: patch.delayMs?.down ?? this.#state.delayMs.down },
    };
    if (mode === 'refuse') {
      // Connections first: a server's close callback waits for every connection to end.
      for (const pair of [...this.#pairs.keys()]) this.#drop(pair, 'reset');
      for (const s of this.#held) s.resetAndDestroy();
      this.#held.clear();
      await this.#closeListener();
    } else if (mode === 'blackhole') {
      await this.#openListener();
      for (const pair of [...this.#pairs.keys()]) this.#drop(pair, 'hold');
    } else {
      await this.#openListener();
      // Held connections carried bytes that went nowhere: they cannot resume, so they are reset.
      for (const s of this.#held) s.resetAndDestroy();
      this.#held.clear();
    }
    return this.status();
  }

  async close(): Promise<void> {
    for (const pair of [...this.#pairs.keys()]) this.#drop(pair, 'reset');
    for (const s of this.#held) s.destroy();
    this.#held.clear();
    await this.#closeListener();
  }

  async #openListener(): Promise<void> {
    if (this.#server) return;
    const server = createServer({ noDelay: true, allowHalfOpen: true }, (socket) => this.#accept(socket));
    server.listen({ host: this.listen.host, port: this.listen.port });
    await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err))]);
    this.#server = server;
  }

  async #closeListener(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    this.#accepted += 1;
    client.on('error', () => undefined);
    if (this.#state.mode !== 'pass') {
      this.#hold(client);
      return;
    }
    const upstream = connect({ host: this.target.host, port: this.target.port, noDelay: true, allowHalfOpen: true });
    upstream.on('error', () => undefined);
    const pair: Pair = { client, upstream };
    const pipes = [
      new DelayedPipe(client, upstream, () => this.#state.delayMs.up, (n) => (this.#bytesUp += n)),
      new DelayedPipe(upstream, client, () => this.#state.delayMs.down, (n) => (this.#bytesDown += n)),
    ];
    this.#pairs.set(pair, pipes);
    const finish = (): void => {
      if (client.destroyed && upstream.destroyed) this.#pairs.delete(pair);
    };
    // A reset on one side becomes a reset on the other; FINs travel through the pipes in order.
    client.on('close', (hadError) => {
      if (hadError && !upstream.destroyed) upstream.resetAndDestroy();
      finish();
    });
    upstream.on('close', (hadError) => {
      if (hadError && !client.destroyed) client.resetAndDestroy();
      finish();
    });
  }

  /** A held socket reads and discards everything and never answers: the far end sees silence. */
  #hold(client: Socket): void {
    client.removeAllListeners('data');
    client.removeAllListeners('end');
    client.on('data', () => undefined);
    client.on('error', () => undefined);
    client.on('close', () => this.#held.delete(client));
    client.resume();
    this.#held.add(client);
  }

  #drop(pair: Pair, how: 'reset' | 'hold'): void {
    for (const pipe of this.#pairs.get(pair) ?? []) pipe.stop();
    this.#pairs.delete(pair);
    pair.upstream.removeAllListeners('close');
    pair.upstream.destroy();
    if (how === 'reset') {
      pair.client.removeAllListeners('close');
      pair.client.resetAndDestroy();
    } else {
      pair.client.removeAllListeners('close');
      this.#hold(pair.client);
    }
  }
}

/** Serves GET /state and PUT /state (a ProxyStatePatch as JSON) on a unix socket. */
export async function serveProxyControl(proxy: ApiProxy, socketPath: string): Promise<HttpServer> {
  await rm(socketPath, { force: true });
  const server = createHttpServer((req, res) => {
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(`${JSON.stringify(body)}\n`);
    };
    if (req.url !== '/state') return reply(404, { error: 'only /state' });
    if (req.method === 'GET') return reply(200, proxy.status());
    if (req.method !== 'PUT') return reply(405, { error: 'GET or PUT' });
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
      if (body.length > 10_000) req.destroy();
    });
    req.on('end', () => {
      let patch: ProxyStatePatch;
      try {
        patch = parseStatePatch(JSON.parse(body) as unknown);
      } catch (err: unknown) {
        return reply(400, { error: err instanceof Error ? err.message : String(err) });
      }
      proxy.setState(patch).then(
        (status) => reply(200, status),
        (err: unknown) => reply(500, { error: err instanceof Error ? err.message : String(err) }),
      );
    });
  });
  server.listen(socketPath);
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err))]);
  return server;
}

/** Reads (no patch) or changes (patch) a running proxy's state through its control socket. */
export function controlProxy(socketPath: string, patch?: ProxyStatePatch, timeoutMs = 5_000): Promise<ProxyStatus> {
  return new Promise((resolve, reject) => {
    const body = patch === undefined ? undefined : JSON.stringify(patch);
    const req = httpRequest(
      { socketPath, path: '/state', method: body === undefined ? 'GET' : 'PUT', timeout: timeoutMs, headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          try {
            const parsed = JSON.parse(text) as ProxyStatus & { error?: string };
            if (res.statusCode !== 200) reject(new Error(`proxy control ${socketPath}: ${parsed.error ?? res.statusCode}`));
            else resolve(parsed);
          } catch (err: unknown) {
            reject(new Error(`proxy control ${socketPath}: bad answer ${JSON.stringify(text)}`, { cause: err }));
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`proxy control ${socketPath} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

export function parseHostPort(text: string): ProxyAddress {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(text);
  const port = Number(m?.[2]);
  if (!m || port < 1 || port > 65535) throw new Error(`expected IPV4:PORT, got ${JSON.stringify(text)}`);
  return { host: m[1]!, port };
}

/** Runs a proxy until SIGTERM/SIGINT: the body of the hidden `smartnat lab proxy` subcommand. */
export async function runApiProxy(o: { listen: ProxyAddress; target: ProxyAddress; control: string; ready?: string; initial?: ProxyStatePatch }): Promise<void> {
  const proxy = new ApiProxy(o.listen, o.target);
  await proxy.start(o.initial);
  const control = await serveProxyControl(proxy, o.control);
  if (o.ready !== undefined) await writeFile(o.ready, `${process.pid}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  control.close();
  await proxy.close();
  await rm(o.control, { force: true });
}
