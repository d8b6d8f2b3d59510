// Data-plane sync benchmark (issue 3 item 7), in a network namespace of its own (root needed):
//   npx tsx test/bench/dataplane-sync.bench.ts [--mappings 1000] [--naive 200] [--trials 5]
// Measures, side by side in one run: a full sync of N Mappings x 2 ports (one ipset restore + one
// iptables-restore + one ip -batch) against the same rules and set entries pushed one `iptables`
// / `ipset` command at a time (the original's way) for a subset; one changed Mapping among N
// (partial sync); a no-change full resync (read-back); and the agent-side ownership flip (ipset
// change + conntrack delete). Prints a JSON summary (with the commit and the 1/5/15-min load average
// at the start and the end); BENCHMARKS.md records the figures.
import { randomBytes } from 'node:crypto';
import { cpus, hostname, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { DEFAULT_SETTINGS } from '../../src/model/settings.js';
import { planDataPlane } from '../../src/plan/plan-dataplane.js';
import type { DesiredDataPlane } from '../../src/plan/desired.js';
import { DataPlaneApplier } from '../../src/dataplane/apply.js';
import { cleanupDataPlane } from '../../src/dataplane/cleanup.js';
import { ExecaCommandRunner } from '../../src/dataplane/command-runner.js';
import { computeRuleSet } from '../../src/dataplane/render-iptables.js';
import { computeSets } from '../../src/dataplane/render-ipset.js';
import { tokenize } from '../../src/dataplane/render-dump.js';
import { formatIpv4, parseIpv4 } from '../../src/model/net.js';
import { mapping, ok, pool, service, slice, snapshot } from '../../src/dataplane/testing/fixtures.js';
import { readCommit } from './environment.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const MAPPINGS = arg('mappings', 1000);
const NAIVE = arg('naive', 200);
const TRIALS = arg('trials', 5);
const PER_ADDRESS = 10;
const POD_BASE = parseIpv4('198.51.100.0') ?? 0;
const host = new ExecaCommandRunner();
const ns = `sn3-bench-${randomBytes(3).toString('hex')}`;
const inNs = new ExecaCommandRunner(ns);

/** n Mappings, 10 per address, 2 TCP ports each, each with its own Service of 2 ready endpoints. */
function world(n: number, variant = 0): DesiredDataPlane {
  const base = parseIpv4('203.0.113.10') ?? 0;
  const mappings = [];
  const services = [];
  const slices = [];
  for (let i = 0; i < n; i++) {
    const address = formatIpv4(base + Math.floor(i / PER_ADDRESS) % 200);
    const port = 10000 + 2 * (i % PER_ADDRESS) + 1000 * Math.floor(i / (PER_ADDRESS * 200));
    const name = `m${i}`;
    mappings.push(ok(mapping({ name, addresses: [address], ports: [{ port, servicePort: 80 }, { port: port + 1, servicePort: 81 }], allowedSources: ['198.18.0.0/16'] })));
    services.push(service(name, [{ name: 'a', port: 80 }, { name: 'b', port: 81 }]));
    const pod = (k: number): string => formatIpv4(POD_BASE + ((i * 2 + k + (i === 0 ? variant : 0)) % 250) + 1);
    slices.push(slice({ name: `${name}-1`, service: name, ports: [{ name: 'a', port: 8080 }, { name: 'b', port: 8081 }], endpoints: [pod(0), pod(1)] }));
  }
  const snap = snapshot({ mappings, services, endpointSlices: slices, pools: [pool('edge', ['203.0.113.10-203.0.113.250'])] });
  return planDataPlane(snap, DEFAULT_SETTINGS).desired;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function clean(): Promise<void> {
  await cleanupDataPlane({ runner: inNs, settings: DEFAULT_SETTINGS });
}

/** The original's way: every chain, rule, set and entry as its own command. Returns the command count. */
async function naiveSync(desired: DesiredDataPlane): Promise<number> {
  let count = 0;
  const run = async (cmd: string, args: string[]): Promise<void> => {
    count++;
    await inNs.run(cmd, args);
  };
  for (const [name, content] of computeSets(desired)) {
    await run('ipset', ['create', name, content.type, 'family', 'inet', 'maxelem', '65536']);
    for (const e of content.entries) await run('ipset', ['add', name, e]);
  }
  const rules = computeRuleSet(desired);
  for (const table of ['mangle', 'nat', 'filter'] as const) {
    for (const chain of rules[table].keys()) await run('iptables', ['-w', '5', '-t', table, '-N', chain]);
    for (const [chain, specs] of rules[table]) for (const spec of specs) await run('iptables', ['-w', '5', '-t', table, '-A', chain, ...tokenize(spec)]);
  }
  return count;
}

async function setup(): Promise<void> {
  await host.run('ip', ['netns', 'add', ns]);
  for (const [dev, addr] of [['ext0', '203.0.113.2/24'], ['int0', '198.51.100.2/24']] as const) {
    await host.run('ip', ['-n', ns, 'link', 'add', dev, 'type', 'veth', 'peer', 'name', `${dev}p`]);
    await host.run('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    await host.run('ip', ['-n', ns, 'link', 'set', `${dev}p`, 'up']);
    await host.run('ip', ['-n', ns, 'addr', 'add', addr, 'dev', dev]);
  }
}

async function fullSyncs(desired: DesiredDataPlane): Promise<number[]> {
  const times: number[] = [];
  for (let t = 0; t < TRIALS; t++) {
    await clean();
    times.push(await timed(() => new DataPlaneApplier({ runner: inNs }).sync(desired)));
  }
  return times;
}

async function main(): Promise<void> {
  const loadStart = loadavg();
  const commit = await readCommit();
  await setup();
  try {
    const big = world(MAPPINGS);
    const small = world(NAIVE);
    const rulesBig = Object.values(computeRuleSet(big)).reduce((n, t) => n + [...t.values()].reduce((m, r) => m + r.length, 0), 0);
    const fullBig = await fullSyncs(big);
    const fullSmall = await fullSyncs(small);
    await clean();
    let naiveCommands = 0;
    const naiveSmall = await timed(async () => { naiveCommands = await naiveSync(small); });
    await clean();

    const applier = new DataPlaneApplier({ runner: inNs });
    await applier.sync(big);
    const changed: number[] = [];
    let rewritten = 0;
    const phases: Record<string, number[]> = {};
    for (let t = 0; t < 20; t++) {
      const next = world(MAPPINGS, (t % 2) + 1);
      changed.push(await timed(async () => {
        const report = await applier.sync(next);
        rewritten = report.rewrittenChains.length;
        for (const [k, v] of Object.entries(report.durationsMs)) (phases[k] ??= []).push(v);
      }));
    }
    const resync: number[] = [];
    for (let t = 0; t < TRIALS; t++) resync.push(await timed(() => applier.sync(applier.current() ?? big, { full: true })));
    const flip: number[] = [];
    const all = new Set(big.addresses.map((a) => a.address));
    const one = big.addresses[0]?.address ?? '';
    for (let t = 0; t < 20; t++) {
      const owned = new Set(all);
      if (t % 2 === 0) owned.delete(one);
      flip.push(await timed(() => applier.setOwned(owned)));
    }
    const result = {
      machine: `${hostname()} ${cpus().length}x ${cpus()[0]?.model ?? '?'}`,
      date: new Date().toISOString(),
      commit,
      loadAverage: { start: loadStart.map((v) => Math.round(v * 100) / 100), end: loadavg().map((v) => Math.round(v * 100) / 100) },
      mappings: MAPPINGS,
      rulesAtMappings: rulesBig,
      fullSyncMs: { median: median(fullBig), trials: fullBig.map(Math.round) },
      subset: {
        mappings: NAIVE,
        restoreMs: median(fullSmall),
        naiveMs: Math.round(naiveSmall),
        naiveCommands,
        ratio: Math.round((naiveSmall / median(fullSmall)) * 10) / 10,
      },
      naiveAtMappingsLinearExtrapolationMs: Math.round((naiveSmall * MAPPINGS) / NAIVE),
      oneChangedMappingMs: {
        median: median(changed),
        p90: [...changed].sort((a, b) => a - b)[17],
        rewrittenChains: rewritten,
        phaseMedians: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, Math.round(median(v) * 10) / 10])),
      },
      noChangeFullResyncMs: median(resync),
      ownershipFlipMs: { median: median(flip), max: Math.max(...flip) },
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await host.run('ip', ['netns', 'del', ns], { okExitCodes: [0, 1] });
  }
}

await main();
