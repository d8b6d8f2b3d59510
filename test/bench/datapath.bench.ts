// Data-path benchmark (issue 9 item 6), in network namespaces of its own (root; veth pairs only,
// nothing routed out of the machine):
//   npx tsx test/bench/datapath.bench.ts [--trials 5] [--seconds 5] [--mappings 1000] [--concurrency 16]
// Three namespaces sndp-<id>-c (client 198.18.0.10, router 203.0.113.1), sndp-<id>-a (an agent
// host as createAgentNamespace builds it, programmed by the real DataPlaneApplier) and
// sndp-<id>-b (backend 198.51.100.20, iperf3 server and a TCP sink). Measures, interleaved trial by
// trial so machine load drifts alike over every case:
//   (a) iperf3 TCP throughput client -> floating address 203.0.113.250 -> DNAT (+ masquerade) ->
//       backend, against client -> backend address routed by the agent namespace with none of our
//       rules installed; medians and their ratio;
//   (b) new connections per second (connect, then RST: no TIME_WAIT) from a fixed-duration connect
//       storm in the client namespace through the floating address, with 1 Mapping installed and
//       with N (default 1,000; the measured Mapping's address is the last jump of SMARTNAT-SERVICES,
//       the worst place), plus the routed path without rules as a reference.
// Writes test/bench/results/datapath.json. Tears down its namespaces and the processes it started
// (by pid) also on failure or SIGINT/SIGTERM. Also runs as `--role storm|sink` inside a namespace
// (the benchmark starts itself that way; not meant to be run by hand).
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { execa, type ResultPromise } from 'execa';
import { createAgentNamespace, deleteAgentNamespace } from '../../src/agent/testing/agent-netns.js';
import { DataPlaneApplier } from '../../src/dataplane/apply.js';
import { cleanupDataPlane } from '../../src/dataplane/cleanup.js';
import { ExecaCommandRunner } from '../../src/dataplane/command-runner.js';
import { ensureSysctls } from '../../src/dataplane/host-checks.js';
import { computeRuleSet } from '../../src/dataplane/render-iptables.js';
import { mapping, ok, pool, service, slice, snapshot } from '../../src/dataplane/testing/fixtures.js';
import { formatIpv4, parseIpv4 } from '../../src/model/net.js';
import { DEFAULT_SETTINGS } from '../../src/model/settings.js';
import type { DesiredDataPlane } from '../../src/plan/desired.js';
import { planDataPlane } from '../../src/plan/plan-dataplane.js';
import { startEnvironment } from './environment.js';
import { isMain } from './lab-session.js';
import type { BenchResult } from './summary.js';

const CLIENT = '198.18.0.10';
const ROUTER = '203.0.113.1';
const AGENT_EXT = '203.0.113.2';
const BACKEND = '198.51.100.20';
/** Last in numeric order among the floating addresses, so its jump is the last of SMARTNAT-SERVICES. */
const VIP = '203.0.113.250';
const IPERF_PORT = 5201;
const SINK_PORT = 7000;
/** Background Mappings per background address (203.0.113.10 upwards). */
const PER_ADDRESS = 5;

export interface DatapathTrial {
  /** 1-minute load average when the trial started. */
  load1: number;
  value: number;
}

export interface DatapathFigures {
  trials: number;
  seconds: number;
  concurrency: number;
  iptables: string;
  /** Mappings installed in the large case, addresses they use, rules in our chains, and the measured address's jump position. */
  large: { mappings: number; addresses: number; rules: number; servicesJumpPosition: number; servicesChainLength: number };
  /**
   * iperf3 receiver throughput, Gbit/s per trial: routed with none of our rules (no netfilter hook
   * in the agent namespace at all), routed with the one Mapping's rules installed (our mangle chain
   * and conntrack see every packet, nothing translated), and through the NAT.
   */
  throughputGbps: { routed: DatapathTrial[]; routedWithRules: DatapathTrial[]; nat: DatapathTrial[] };
  /** Connections opened (and reset) per second per trial; errors = failed or timed-out connects over all trials. */
  connectsPerSecond: { routed: DatapathTrial[]; oneMapping: DatapathTrial[]; largeMappings: DatapathTrial[] };
  connectErrors: { routed: number; oneMapping: number; largeMappings: number };
}

function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

export interface DatapathSummary {
  routedGbps: number | null;
  routedWithRulesGbps: number | null;
  natGbps: number | null;
  throughputRatio: number | null;
  routedCps: number | null;
  oneMappingCps: number | null;
  largeCps: number | null;
  connectRatio: number | null;
  /** NAT with 1 Mapping against routed without rules (not a target; the cost of NAT per connection). */
  natConnectRatio: number | null;
}

/** Medians of every case and the two ratios the issue sets targets for (null where a side is missing). */
export function summariseDatapath(f: DatapathFigures): DatapathSummary {
  const m = (xs: readonly DatapathTrial[]): number | null => median(xs.map((t) => t.value));
  const ratio = (a: number | null, b: number | null): number | null => (a === null || b === null || b === 0 ? null : a / b);
  const routedGbps = m(f.throughputGbps.routed);
  const natGbps = m(f.throughputGbps.nat);
  const routedWithRulesGbps = m(f.throughputGbps.routedWithRules);
  const routedCps = m(f.connectsPerSecond.routed);
  const oneMappingCps = m(f.connectsPerSecond.oneMapping);
  const largeCps = m(f.connectsPerSecond.largeMappings);
  return { routedGbps, routedWithRulesGbps, natGbps, throughputRatio: ratio(natGbps, routedGbps), routedCps, oneMappingCps, largeCps, connectRatio: ratio(largeCps, oneMappingCps), natConnectRatio: ratio(oneMappingCps, routedCps) };
}

/**
 * The measured Mapping (VIP: iperf3 port and sink port, to the backend) and, for large > 1,
 * large - 1 background Mappings of one TCP port each, PER_ADDRESS per address from 203.0.113.10,
 * each with its own Service and one (absent) endpoint. Every Mapping allows 198.18.0.0/16.
 */
export function datapathWorld(large: number): DesiredDataPlane {
  const allowedSources = ['198.18.0.0/16'];
  const mappings = [ok(mapping({ name: 'measured', addresses: [VIP], ports: [{ port: IPERF_PORT }, { port: SINK_PORT }], allowedSources }))];
  const services = [service('measured', [{ name: 'iperf', port: IPERF_PORT }, { name: 'sink', port: SINK_PORT }])];
  const slices = [slice({ name: 'measured-1', service: 'measured', ports: [{ name: 'iperf', port: IPERF_PORT }, { name: 'sink', port: SINK_PORT }], endpoints: [BACKEND] })];
  const base = parseIpv4('203.0.113.10') ?? 0;
  const pod = parseIpv4('198.51.100.100') ?? 0;
  for (let i = 0; i < large - 1; i++) {
    const name = `bg${i}`;
    mappings.push(ok(mapping({ name, addresses: [formatIpv4(base + Math.floor(i / PER_ADDRESS))], ports: [{ port: 10000 + (i % PER_ADDRESS), servicePort: 80 }], allowedSources })));
    services.push(service(name, [{ name: 'http', port: 80 }]));
    slices.push(slice({ name: `${name}-1`, service: name, ports: [{ name: 'http', port: 8080 }], endpoints: [formatIpv4(pod + (i % 100))] }));
  }
  const snap = snapshot({ mappings, services, endpointSlices: slices, pools: [pool('edge', ['203.0.113.10-203.0.113.250'])] });
  return planDataPlane(snap, DEFAULT_SETTINGS).desired;
}

/**
 * Role `storm`: concurrent connect-then-reset loops for a 1 s warm-up (not counted: JIT, first
 * ARP) and then `seconds`; prints {connections, errors, seconds} of the counted part.
 */
async function storm(host: string, port: number, local: string, seconds: number, concurrency: number): Promise<void> {
  let connections = 0;
  let errors = 0;
  let counting = false;
  const one = (): Promise<boolean> =>
    new Promise((resolve) => {
      let settled = false;
      const settle = (v: boolean): void => {
        if (settled) return;
        settled = true;
        resolve(v);
      };
      const s = connect({ host, port, localAddress: local });
      s.on('connect', () => {
        s.resetAndDestroy();
        settle(true);
      });
      s.on('error', () => {
        s.destroy();
        settle(false);
      });
      s.setTimeout(2000, () => {
        s.destroy();
        settle(false);
      });
    });
  let t0 = performance.now();
  const end = t0 + 1000 + seconds * 1000;
  setTimeout(() => {
    counting = true;
    t0 = performance.now();
  }, 1000);
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const done = await one();
        if (!counting) continue;
        if (done) connections++;
        else errors++;
      }
    }),
  );
  process.stdout.write(`${JSON.stringify({ connections, errors, seconds: (performance.now() - t0) / 1000 })}\n`);
}

/** Role `sink`: accepts TCP connections and drops them (the client resets them); prints "listening". */
function sink(host: string, port: number): void {
  const server = createServer((s) => {
    s.on('error', () => s.destroy());
    s.on('end', () => s.destroy());
  });
  server.listen({ host, port, backlog: 4096 }, () => process.stdout.write('listening\n'));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function measure(opts: { trials: number; seconds: number; large: number; concurrency: number }): Promise<DatapathFigures> {
  const id = randomBytes(2).toString('hex');
  const [C, A, B] = [`sndp-${id}-c`, `sndp-${id}-a`, `sndp-${id}-b`];
  const host = new ExecaCommandRunner();
  const inA = new ExecaCommandRunner(A);
  const inC = new ExecaCommandRunner(C);
  const inB = new ExecaCommandRunner(B);
  const started: ResultPromise[] = [];
  let cleaned = false;
  const teardown = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    for (const p of started) {
      if (p.pid !== undefined && p.exitCode === null) {
        try {
          process.kill(p.pid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
    }
    await Promise.allSettled(started.map((p) => Promise.race([p, sleep(3000)])));
    for (const p of started) {
      if (p.pid !== undefined && p.exitCode === null) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    for (const ns of [C, A, B]) await deleteAgentNamespace(ns);
    const left = (await host.run('ip', ['netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith(`sndp-${id}-`));
    if (left.length) process.stderr.write(`bench: namespaces left behind: ${left.join(', ')}\n`);
  };
  const onSignal = (): void => {
    void teardown().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    process.stderr.write(`bench: namespaces ${C} ${A} ${B}\n`);
    await createAgentNamespace(A);
    for (const ns of [C, B]) {
      await host.run('ip', ['netns', 'add', ns]);
      await host.run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    await host.run('ip', ['-n', A, 'link', 'set', 'ext0-peer', 'netns', C]);
    await host.run('ip', ['-n', A, 'link', 'set', 'int0-peer', 'netns', B]);
    for (const cmd of [`addr add ${ROUTER}/24 dev ext0-peer`, `addr add ${CLIENT}/32 dev ext0-peer`, 'link set ext0-peer up', `route add 198.51.100.0/24 via ${AGENT_EXT} dev ext0-peer`]) await host.run('ip', ['-n', C, ...cmd.split(' ')]);
    for (const cmd of [`addr add ${BACKEND}/24 dev int0-peer`, 'link set int0-peer up', 'route add default via 198.51.100.2 dev int0-peer']) await host.run('ip', ['-n', B, ...cmd.split(' ')]);
    await host.run('ip', ['-n', A, 'addr', 'add', `${VIP}/32`, 'dev', 'ext0']);
    await inA.run('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);

    const one = datapathWorld(1);
    const large = datapathWorld(opts.large);
    await ensureSysctls(inA, one);
    const rules = Object.values(computeRuleSet(large)).reduce((n, t) => n + [...t.values()].reduce((m, r) => m + r.length, 0), 0);
    const servicesChain = computeRuleSet(large).nat.get('SMARTNAT-SERVICES') ?? [];
    const position = servicesChain.findIndex((r) => r.startsWith(`-d ${VIP}/32`)) + 1;
    const iptables = (await inA.run('iptables', ['-V'])).stdout.trim();

    type State = 'none' | 'one' | 'large';
    let state: State | undefined;
    const setState = async (want: State): Promise<void> => {
      if (state === want) return;
      await cleanupDataPlane({ runner: inA, settings: DEFAULT_SETTINGS });
      if (want !== 'none') {
        const report = await new DataPlaneApplier({ runner: inA }).sync(want === 'one' ? one : large);
        if (report.failedMappings.length) throw new Error(`sync left out ${report.failedMappings.length} Mappings`);
      }
      state = want;
    };
    const flush = (): Promise<unknown> => inA.run('conntrack', ['-F'], { okExitCodes: [0, 1] });

    const launch = (ns: string, argv: string[], stdout: 'pipe' | 'ignore'): ResultPromise => {
      const p = execa('ip', ['netns', 'exec', ns, ...argv], { reject: false, buffer: false, stdout, stderr: 'inherit' });
      started.push(p);
      return p;
    };
    launch(B, ['iperf3', '-s', '-p', String(IPERF_PORT), '-B', BACKEND], 'ignore');
    const sinkProc = launch(B, [process.execPath, '--import', 'tsx', 'test/bench/datapath.bench.ts', '--role', 'sink', '--host', BACKEND, '--port', String(SINK_PORT)], 'pipe');
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('sink did not start in 30 s')), 30_000);
      sinkProc.stdout?.on('data', (d: Buffer) => {
        if (d.toString().includes('listening')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    for (let i = 0; i < 50 && !(await inB.run('ss', ['-Hltn', `sport = :${IPERF_PORT}`])).stdout.trim(); i++) await sleep(100);

    const iperf = async (target: string): Promise<DatapathTrial> => {
      const load1 = loadavg()[0] ?? 0;
      const r = await inC.run('iperf3', ['-c', target, '-p', String(IPERF_PORT), '-B', CLIENT, '-t', String(opts.seconds), '-O', '1', '-J'], { timeoutMs: (opts.seconds + 30) * 1000 });
      const j = JSON.parse(r.stdout) as { end?: { sum_received?: { bits_per_second?: number } } };
      const bps = j.end?.sum_received?.bits_per_second;
      if (bps === undefined) throw new Error(`iperf3 gave no result: ${r.stdout.slice(0, 400)}`);
      return { load1, value: Math.round(bps / 1e7) / 100 };
    };
    const connects = async (target: string): Promise<{ trial: DatapathTrial; errors: number }> => {
      const load1 = loadavg()[0] ?? 0;
      const r = await inC.run(process.execPath, ['--import', 'tsx', 'test/bench/datapath.bench.ts', '--role', 'storm', '--host', target, '--port', String(SINK_PORT), '--local', CLIENT, '--seconds', String(opts.seconds), '--concurrency', String(opts.concurrency)], { timeoutMs: (opts.seconds + 60) * 1000 });
      const j = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as { connections: number; errors: number; seconds: number };
      return { trial: { load1, value: Math.round(j.connections / j.seconds) }, errors: j.errors };
    };

    const f: DatapathFigures = {
      trials: opts.trials, seconds: opts.seconds, concurrency: opts.concurrency, iptables,
      large: { mappings: opts.large, addresses: large.addresses.length, rules, servicesJumpPosition: position, servicesChainLength: servicesChain.length },
      throughputGbps: { routed: [], routedWithRules: [], nat: [] },
      connectsPerSecond: { routed: [], oneMapping: [], largeMappings: [] },
      connectErrors: { routed: 0, oneMapping: 0, largeMappings: 0 },
    };
    // (a) throughput: routed without rules, routed with the one Mapping's rules, NAT; rotating order.
    const paths = ['routed', 'routedWithRules', 'nat'] as const;
    for (let t = 0; t < opts.trials; t++) {
      for (let k = 0; k < paths.length; k++) {
        const kind = paths[(t + k) % paths.length] ?? 'routed';
        await setState(kind === 'routed' ? 'none' : 'one');
        await flush();
        const trial = await iperf(kind === 'nat' ? VIP : BACKEND);
        f.throughputGbps[kind].push(trial);
        process.stderr.write(`bench: throughput ${kind} trial ${t + 1}: ${trial.value} Gbit/s (load ${trial.load1.toFixed(2)})\n`);
      }
    }
    // (b) connection rate: the three cases in a rotating order each round.
    const cases = ['routed', 'oneMapping', 'largeMappings'] as const;
    for (let t = 0; t < opts.trials; t++) {
      for (let k = 0; k < cases.length; k++) {
        const kind = cases[(t + k) % cases.length] ?? 'routed';
        await setState(kind === 'routed' ? 'none' : kind === 'oneMapping' ? 'one' : 'large');
        await flush();
        const { trial, errors } = await connects(kind === 'routed' ? BACKEND : VIP);
        f.connectsPerSecond[kind].push(trial);
        f.connectErrors[kind] += errors;
        process.stderr.write(`bench: connects ${kind} trial ${t + 1}: ${trial.value}/s, ${errors} errors (load ${trial.load1.toFixed(2)})\n`);
      }
    }
    return f;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await teardown();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      role: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' }, local: { type: 'string' },
      trials: { type: 'string', default: '5' }, seconds: { type: 'string', default: '5' }, mappings: { type: 'string', default: '1000' }, concurrency: { type: 'string', default: '16' },
    },
  });
  if (values.role === 'sink') return sink(values.host ?? BACKEND, Number(values.port));
  if (values.role === 'storm') return storm(values.host ?? VIP, Number(values.port), values.local ?? CLIENT, Number(values.seconds), Number(values.concurrency));
  const env = await startEnvironment();
  const figures = await measure({ trials: Number(values.trials), seconds: Number(values.seconds), large: Number(values.mappings), concurrency: Number(values.concurrency) });
  const command = `npx tsx test/bench/datapath.bench.ts --trials ${values.trials} --seconds ${values.seconds} --mappings ${values.mappings} --concurrency ${values.concurrency}`;
  const result: BenchResult<DatapathFigures> = { schemaVersion: 1, bench: 'datapath', command, env: env.finish(), figures, plots: [] };
  process.stderr.write(`bench: ${JSON.stringify(summariseDatapath(figures))}\n`);
  await writeFile('test/bench/results/datapath.json', `${JSON.stringify(result, null, 2)}\n`);
}

if (isMain(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
