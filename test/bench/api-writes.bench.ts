// Benchmark: steady-state API writes per second with 3 agents and 10 vs 200 floating addresses in
// use, from the API server's own counter (apiserver_request_total by verb and resource, /metrics
// scraped with the lab's admin kubeconfig twice, a window apart), and the agents' RSS from /proc:
//   npx tsx test/bench/api-writes.bench.ts [--sizes 10,200] [--window 60] [--lab bnaw]
// Each address in use is one Mapping with one TCP port. The count includes every client of the API
// server (agents, this benchmark's two scrapes, which are GETs); writes are POST/PUT/PATCH/DELETE.
import { writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { parseArgs } from 'node:util';
import type { KubeConfig } from '@kubernetes/client-node';
import { apisOf, BENCH_NAMESPACE as NS, createMapping, GROUP, inBatches, mappingBody, serviceBody, sliceBody, VERSION } from './lab-objects.js';
import { writePlotPng } from '../support/plot.js';
import { startEnvironment } from './environment.js';
import { isMain, withLab, type LabDescriptor } from './lab-session.js';
import { readRssMiB } from './proc-stats.js';
import { computeRates, parseCounter, WRITE_VERBS } from './prom-text.js';
import type { BenchResult } from './summary.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface ApiWritesSize {
  addresses: number;
  windowSeconds: number;
  writesPerSecond: number;
  /** "VERB resource" -> per second, writes only. */
  writesByVerbResource: Record<string, number>;
  readsPerSecond: number;
  agentRssMiB: Record<string, number>;
  keepalivedRssMiB: Record<string, number>;
}

export interface ApiWritesFigures {
  agents: number;
  sizes: ApiWritesSize[];
}

async function scrape(kc: KubeConfig, server: string): Promise<string> {
  const url = new URL('/metrics', server);
  const opts: import('node:https').RequestOptions = { method: 'GET', hostname: url.hostname, port: url.port, path: url.pathname };
  await kc.applyToHTTPSOptions(opts);
  return new Promise((resolve, reject) => {
    const req = request(opts, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`GET /metrics: HTTP ${res.statusCode ?? '?'}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The floating addresses this benchmark may use beyond the lab's own pools (two pools of 100). */
export function planBenchAddresses(count: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < 100 && out.length < count; i++) out.push(`203.0.113.${100 + i}`, `192.0.2.${100 + i}`);
  return out.slice(0, count);
}

async function measure(lab: LabDescriptor, sizes: readonly number[], windowSeconds: number): Promise<ApiWritesFigures> {
  const apis = apisOf(lab.kubeconfig);
  const { kc, core, custom, coordination } = apis;
  await core.createNamespace({ body: { metadata: { name: NS } } });
  await core.createNamespacedService({ namespace: NS, body: serviceBody('bg', 8080) });
  await apis.discovery.createNamespacedEndpointSlice({ namespace: NS, body: sliceBody('bg', 'bg', ['198.51.100.21'], 8080) });
  for (const [name, range, iface] of [['bench1', '203.0.113.100-203.0.113.199', 'ext0'], ['bench2', '192.0.2.100-192.0.2.199', 'ext1']] as const) {
    await custom.createClusterCustomObject({ group: GROUP, version: VERSION, plural: 'addresspools', body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'AddressPool', metadata: { name }, spec: { addresses: [range], interface: iface } } });
  }
  const demoAddresses = new Set(lab.mappings.flatMap((m) => m.addresses));
  const out: ApiWritesSize[] = [];
  let created = 0;
  for (const size of sizes) {
    const want = Math.max(0, size - demoAddresses.size);
    const more = planBenchAddresses(want).slice(created);
    await inBatches(more.map((address, j) => ({ address, name: `m-${created + j}` })), 8, (m) => createMapping(apis, mappingBody(m.name, m.address, 8080, 'bg')));
    created += more.length;
    // Settle: every address lease has a holder, then 30 s more so start-up writes (acquisitions,
    // status) are over before the window opens.
    const deadline = Date.now() + 180_000;
    let held = 0;
    while (Date.now() < deadline) {
      const leases = await coordination.listNamespacedLease({ namespace: lab.leaseNamespace, labelSelector: 'smartnat.aureacentral.com/role=address' });
      held = leases.items.filter((l) => (l.spec?.holderIdentity ?? '') !== '').length;
      if (held >= size) break;
      await sleep(1000);
    }
    process.stderr.write(`bench: ${held} address leases held (want ${size}); settling 30 s\n`);
    await sleep(30_000);
    const a = await scrape(kc, lab.apiserver.url);
    await sleep(windowSeconds * 1000);
    const b = await scrape(kc, lab.apiserver.url);
    const rates = computeRates(parseCounter(a, 'apiserver_request_total', ['verb', 'resource']), parseCounter(b, 'apiserver_request_total', ['verb', 'resource']), windowSeconds);
    const writes: Record<string, number> = {};
    let writeSum = 0;
    let readSum = 0;
    for (const [key, v] of rates) {
      if (WRITE_VERBS.has(key.split(' ')[0] ?? '')) {
        writes[key] = Math.round(v * 1000) / 1000;
        writeSum += v;
      } else readSum += v;
    }
    const agentRss: Record<string, number> = {};
    const kaRss: Record<string, number> = {};
    for (const agent of lab.agents) {
      agentRss[agent.name] = (await readRssMiB(agent.pid)) ?? NaN;
      kaRss[agent.name] = (await readRssMiB(agent.keepalivedPid)) ?? NaN;
    }
    process.stderr.write(`bench: ${held} addresses: ${writeSum.toFixed(2)} writes/s ${JSON.stringify(writes)}; RSS ${JSON.stringify(agentRss)}\n`);
    out.push({ addresses: held, windowSeconds, writesPerSecond: Math.round(writeSum * 1000) / 1000, writesByVerbResource: writes, readsPerSecond: Math.round(readSum * 1000) / 1000, agentRssMiB: agentRss, keepalivedRssMiB: kaRss });
  }
  return { agents: lab.agents.length, sizes: out };
}

/** Writes the writes-per-second plot; returns its path. */
export async function writeApiWritesPlot(figures: ApiWritesFigures): Promise<string> {
  const plot = 'docs/bench/api-writes.png';
  await writePlotPng(plot, {
    kind: 'xy',
    title: `Steady-state API writes, ${figures.agents} agents`,
    xLabel: 'floating addresses in use',
    yLabel: 'writes per second (API server counter)',
    series: [{ name: 'writes/s', points: figures.sizes.map((s) => ({ x: s.addresses, y: s.writesPerSecond })) }],
  });
  return plot;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { sizes: { type: 'string', default: '10,200' }, window: { type: 'string', default: '60' }, lab: { type: 'string', default: 'bnaw' } } });
  const sizes = values.sizes.split(',').map(Number).filter((n) => n > 0).sort((a, b) => a - b);
  const env = await startEnvironment();
  const figures = await withLab(values.lab, (lab) => measure(lab, sizes, Number(values.window)));
  const plot = await writeApiWritesPlot(figures);
  const result: BenchResult<ApiWritesFigures> = { schemaVersion: 1, bench: 'api-writes', command: 'npm run bench -- api-writes', env: env.finish(), figures, plots: [plot] };
  await writeFile('test/bench/results/api-writes.json', `${JSON.stringify(result, null, 2)}\n`);
}

if (isMain(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
