// The agent's HTTP endpoints: /healthz (liveness: the local sync loop ran recently; never asks the
// API server, so an API outage cannot get agents killed), /readyz (informers synced and the agent
// lease joined), /metrics (the registry passed in). Guarantees: binds only the address it is
// given (default 127.0.0.1:9655); answers in plain text. Does not compute health itself.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface HealthSource {
  live(): { ok: boolean; detail: string };
  ready(): { ok: boolean; detail: string };
}

export const DEFAULT_METRICS_ADDRESS = '127.0.0.1:9655';

/** "host:port" or ":port" (all interfaces, only when asked) -> parts. */
export function parseListenAddress(text: string): { host: string; port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:]*):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port > 65535) return undefined;
  const host = m[1] === '' ? '0.0.0.0' : (m[1] ?? '').replace(/^\[|\]$/g, '');
  return { host, port };
}

export class HealthServer {
  private server: Server | undefined;

  constructor(
    private readonly source: HealthSource,
    private readonly registry: Registry,
  ) {}

  async listen(host: string, port: number): Promise<AddressInfo> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const answer = (r: { ok: boolean; detail: string }): void => {
        res.writeHead(r.ok ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`${r.ok ? 'ok' : 'not ok'}: ${r.detail}\n`);
      };
      if (path === '/healthz' || path === '/livez') return answer(this.source.live());
      if (path === '/readyz') return answer(this.source.ready());
      if (path === '/metrics') {
        this.registry.metrics().then(
          (text) => {
            res.writeHead(200, { 'content-type': this.registry.contentType });
            res.end(text);
          },
          (err: unknown) => {
            res.writeHead(500, { 'content-type': 'text/plain' });
            res.end(String(err));
          },
        );
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
