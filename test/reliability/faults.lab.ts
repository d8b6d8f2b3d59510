// The fault matrix rows that the drills do not cover (issue 10), in one lab of their own (name
// `rl` + 6 characters), with real agents, keepalived, iptables and traffic from the allowed client:
//   1. no shell: every agent process under `strace -f -e trace=execve` through traffic, a Mapping
//      edit and two drills (keepalived, drain);
//   2. iptables-restore and ipset restore failing transiently in the owner's mount namespace;
//   3. the lab's etcd restarted (down for 3 lease durations);
//   4. endpoints churning every second (20 s here; minutes-long runs belong to the benchmarks);
//   5. the owner's conntrack table full (filled to nf_conntrack_max in its namespace only: the
//      limit is global and read-only inside a namespace, the count is per namespace).
// Each test measures and logs its numbers (gap, failed and refused tries, convergence) and checks
// that no rule, set, ip rule, route or address is left where it should not be. Expectations derive
// from the lab's lease duration. The lab goes down in afterAll whatever happened.
// Needs root and a built dist/ (`npm run build`).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import { ExecaCommandRunner } from '../../src/dataplane/command-runner.js';
import { runDrills, type DrillReport } from '../../src/lab/drill.js';
import { executedPrograms, parseExecTrace, shellExecs } from '../../src/lab/exec-trace.js';
import {
  addBackend, agentLogSince, agentLogSize, agentTreePids, conntrackNumbers, conntrackStats, current, describeTraffic, diffStates, downLab, drainConntrack,
  editMappingPorts, failToolsFor, fillConntrack, firstAnswer, holders, kernelStates, metricsUrl, metricSum, ownerOf, ownershipProblems,
  reliabilityLabName, removeBackend, restartLabEtcd, round, setEndpoints, sleep, traceExecs, Traffic, transitions, upLab, waitSettled, wallNow, watchHolder,
  type ExtraBackend, type KernelDump, type RlLab, type TrafficReport,
} from './harness.js';

const NAME = reliabilityLabName();
const log = (line: string): void => {
  process.stderr.write(`[${NAME}] ${line}\n`);
};
let lab: RlLab;
/** One line per fault for the README table (printed in afterAll). */
const results: string[] = [];
const STABLE = { address: '198.51.100.21', name: 'b1' } as const;

beforeAll(async () => {
  lab = await upLab(NAME, log);
}, 600_000);

afterAll(async () => {
  const report = await downLab(NAME, log);
  if (results.length) log(`reliability results (lease duration ${lab?.leaseDurationMs ?? '?'} ms):\n  ${results.join('\n  ')}`);
  expect({ namespaces: report.leftoverNamespaces, processes: report.leftoverProcesses, links: report.leftoverLinks }).toEqual({ namespaces: [], processes: [], links: [] });
}, 180_000);

/** Polls until the agents' kernel state equals `want` (or the deadline); returns the last diff and when it became equal. */
async function convergeTo(want: Record<string, KernelDump>, withinMs: number): Promise<{ diff: string[]; at: number | undefined }> {
  const deadline = wallNow() + withinMs;
  for (;;) {
    const diff = diffStates(want, await kernelStates(await current(lab)));
    if (!diff.length) return { diff, at: wallNow() };
    if (wallNow() > deadline) return { diff, at: undefined };
    await sleep(100);
  }
}

describe(`reliability faults in lab ${NAME}`, () => {
  it('no shell is ever executed: strace -f -e trace=execve on every agent process through traffic, a Mapping edit and the keepalived and drain drills', async () => {
    const d = await current(lab);
    const pids = await agentTreePids(d);
    const session = await traceExecs(pids, join(d.dir, 'reliability'));
    let text: string;
    let traffic: TrafficReport | undefined;
    const drills: DrillReport[] = [];
    let editAnsweredMs: number | undefined;
    try {
      const t = Traffic.start(lab);
      try {
        await t.steady();
        const editAt = wallNow();
        await editMappingPorts(lab, (ports) => [...ports, { port: 8082, protocol: 'tcp', servicePort: 8080 }]);
        const answered = await firstAnswer(lab, { port: 8082, proto: 'tcp', withinMs: 30_000 });
        editAnsweredMs = answered === undefined ? undefined : round(answered - editAt);
        await editMappingPorts(lab, (ports) => ports.filter((p) => p.port !== 8082));
      } finally {
        traffic = await t.stop();
      }
      for (const kind of ['keepalived', 'drain'] as const) drills.push(await runDrills({ kind, labName: lab.name, repeat: 1, log }));
    } finally {
      text = await session.stop();
    }
    const records = parseExecTrace(text);
    const programs = executedPrograms(records);
    const summary = drills.map((r) => `${r.kind}: gap ${r.runs[0]?.gapMs} ms, refused ${r.runs[0]?.refused}, failed ${r.runs[0]?.failed}, ${r.runs[0]?.previousOwner} -> ${r.runs[0]?.owner}`);
    results.push(`no shell (strace on ${pids.length} processes): ${records.length} exec attempts, executed ${JSON.stringify(programs)}; traffic ${describeTraffic(traffic)}; new port answered after ${editAnsweredMs ?? '-'} ms; ${summary.join('; ')}`);
    log(results[results.length - 1]!);

    expect(shellExecs(records)).toEqual([]);
    // The trace saw the agents at work: the data plane, keepalived restarted by its supervisor (the
    // keepalived drill), the Mapping edit applied.
    expect(Object.keys(programs)).toEqual(expect.arrayContaining(['iptables-restore', 'ipset', 'ip', 'keepalived', 'setpriv']));
    expect(editAnsweredMs).toBeDefined();
    expect({ refused: traffic.refused, failed: traffic.failed }).toEqual({ refused: 0, failed: 0 });
    // Under strace every syscall of the agents and keepalived is many times slower, so the drills'
    // probe timing is not what it measures here (drills.lab.ts checks it without strace): a lost
    // probe is reported above, every other problem a drill finds still fails this test.
    expect(drills.map((r) => (r.runs[0]?.problems ?? ['no run']).filter((p) => !/lost probes/.test(p)))).toEqual([[], []]);
    await waitSettled(lab);
    expect(await ownershipProblems(lab)).toEqual([]);
  }, 300_000);

  it('iptables-restore and ipset restore failing twice each on the owner: the previous rules stay in force, the agent retries with backoff, counts and logs each failure, then converges', async () => {
    await waitSettled(lab);
    const owner = await ownerOf(lab);
    const url = await metricsUrl(lab, owner.name);
    const before = await kernelStates(await current(lab));
    const failuresBefore = { ipset: await metricSum(url, 'smartnat_dataplane_apply_failures_total', { tool: 'ipset' }), iptables: await metricSum(url, 'smartnat_dataplane_apply_failures_total', { tool: 'iptables' }) };
    const logFrom = await agentLogSize(lab, owner.name);
    const traffic = Traffic.start(lab);
    let report: TrafficReport | undefined;
    const tools = await failToolsFor(owner.pid, { iptablesRestore: 2, ipsetRestore: 2 });
    let changedAt = 0;
    let answeredAt: number | undefined;
    let calls: Awaited<ReturnType<typeof tools.calls>>;
    try {
      await traffic.steady();
      changedAt = wallNow();
      await editMappingPorts(lab, (ports) => [...ports, { port: 8081, protocol: 'tcp', servicePort: 8080 }]);
      answeredAt = await firstAnswer(lab, { port: 8081, proto: 'tcp', withinMs: 60_000 });
      calls = await tools.calls();
    } finally {
      report = await traffic.stop();
      await tools.remove();
      await editMappingPorts(lab, (ports) => ports.filter((p) => p.port !== 8081));
    }
    const back = await convergeTo(before, 30_000);
    const failuresAfter = { ipset: await metricSum(url, 'smartnat_dataplane_apply_failures_total', { tool: 'ipset' }), iptables: await metricSum(url, 'smartnat_dataplane_apply_failures_total', { tool: 'iptables' }) };
    const logged = (await agentLogSince(lab, owner.name, logFrom)).filter((l) => l['msg'] === 'data-plane apply failed; keeping the previous rules');
    const injected = calls.filter((c) => c.result === 'injected');
    const lastInjected = Math.max(...injected.map((c) => c.t));
    const firstRealRestore = calls.find((c) => c.tool === 'iptables-restore' && c.result === 0 && c.t > lastInjected);
    const sequence = calls.filter((c) => c.tool === 'iptables-restore' || c.args[0] === 'restore').map((c) => `${c.tool}:${c.result}@+${round(c.t - changedAt)}ms`);
    results.push(`tool failures on ${owner.name} (overlay on ${tools.overlaidOn}): ${sequence.join(' ')}; new port answered ${answeredAt === undefined ? 'never' : `${round(answeredAt - changedAt)} ms`} after the edit; failures counted ${JSON.stringify({ ipset: failuresAfter.ipset - failuresBefore.ipset, iptables: failuresAfter.iptables - failuresBefore.iptables })}, logged ${logged.length}; traffic on the old port ${describeTraffic(report)}; kernel state as before the edit ${back.at === undefined ? `not within 30 s: ${back.diff.slice(0, 20).join(' | ')}` : 'yes'}`);
    log(results[results.length - 1]!);

    expect(injected.map((c) => c.tool).sort()).toEqual(['ipset', 'ipset', 'iptables-restore', 'iptables-restore']);
    // Retried until a real restore went through, and only then did the new port answer.
    expect(firstRealRestore).toBeDefined();
    expect(answeredAt).toBeDefined();
    // answeredAt is when the answering try *started* (it may wait up to its 200 ms timeout for the
    // SYN-ACK), and the wrapper notes the restore after the tool exits: the try can start before
    // that note while the rule it needed was loaded by that restore. Earlier failures would show
    // seconds before it (the retries' backoff), so the try's timeout is the tolerance.
    expect(answeredAt!).toBeGreaterThanOrEqual(firstRealRestore!.t - 200);
    // Reported: counted by tool, and logged with the tool's own error as evidence.
    expect({ ipset: failuresAfter.ipset - failuresBefore.ipset >= 2, iptables: failuresAfter.iptables - failuresBefore.iptables >= 2 }).toEqual({ ipset: true, iptables: true });
    expect(logged.length).toBeGreaterThanOrEqual(4);
    expect(JSON.stringify(logged)).toContain('injected failure');
    // The previous rules stayed in force: the existing port never missed a beat.
    expect({ refused: report.refused, failed: report.failed }).toEqual({ refused: 0, failed: 0 });
    // With the port removed again, every agent's kernel state is what it was.
    expect(back.diff).toEqual([]);
  }, 300_000);

  it('etcd restarted (down for 3 lease durations after it exited): nothing moves, traffic keeps flowing, nothing changes in any kernel', async () => {
    await waitSettled(lab);
    const d = await current(lab);
    const before = { holders: await holders(lab), transitions: await transitions(lab), kernel: await kernelStates(d), pids: d.agents.map((a) => a.pid) };
    const traffic = Traffic.start(lab);
    let report: TrafficReport | undefined;
    let restart: Awaited<ReturnType<typeof restartLabEtcd>> | undefined;
    try {
      await traffic.steady();
      restart = await restartLabEtcd(lab, 3 * lab.leaseDurationMs);
      // Two lease durations with the control plane back: any late takeover would show here.
      await sleep(2 * lab.leaseDurationMs);
    } finally {
      report = await traffic.stop();
    }
    const after = { holders: await holders(lab), transitions: await transitions(lab), kernel: await kernelStates(await current(lab)), pids: (await current(lab)).agents.map((a) => a.pid) };
    results.push(`etcd restart: etcd ${restart.oldPid} -> ${restart.newPid}, SIGTERM to exit ${round(restart.goneAt - restart.stopAt)} ms, then down ${round(restart.startAt - restart.goneAt)} ms, healthy ${round(restart.healthyAt - restart.startAt)} ms after start, API ready ${round(restart.apiReadyAt - restart.healthyAt)} ms later; holders ${JSON.stringify(before.holders)} -> ${JSON.stringify(after.holders)}; traffic ${describeTraffic(report)}`);
    log(results[results.length - 1]!);

    expect(after.holders).toEqual(before.holders);
    expect(after.transitions).toEqual(before.transitions);
    expect(after.pids).toEqual(before.pids);
    expect(report.refused).toBe(0);
    expect(report.gapMs).toBeLessThan(lab.leaseDurationMs);
    expect(diffStates(before.kernel, after.kernel)).toEqual([]);
  }, 300_000);

  it('endpoints churning every second for 20 s (stable b1, real b2/b3 in and out, one not ready): no try fails, then no stray rule, set or conntrack entry', async () => {
    await waitSettled(lab);
    const before = await kernelStates(await current(lab));
    const owner = await ownerOf(lab);
    const extra: ExtraBackend[] = [];
    const CHURN_MS = 20_000;
    const STEP_MS = 1000;
    let report: TrafficReport | undefined;
    let steps = 0;
    let lastChangeAt: number;
    let back: Awaited<ReturnType<typeof convergeTo>>;
    const writeMs: number[] = [];
    try {
      extra.push(await addBackend(lab, { name: 'x2', address: '198.51.100.22', port: 8080, index: 2 }));
      extra.push(await addBackend(lab, { name: 'x3', address: '198.51.100.23', port: 8080, index: 3 }));
      const [x2, x3] = extra.map((b) => ({ address: b.address, name: b.name }));
      const cycle = [[STABLE], [STABLE, x2!], [STABLE, x2!, x3!], [STABLE, x3!], [STABLE, { ...x2!, ready: false }, x3!]];
      const traffic = Traffic.start(lab);
      try {
        await traffic.steady();
        const start = wallNow();
        while (wallNow() - start < CHURN_MS) {
          const t = wallNow();
          await setEndpoints(lab, cycle[steps % cycle.length]!);
          writeMs.push(wallNow() - t);
          steps += 1;
          await sleep(Math.max(0, start + steps * STEP_MS - wallNow()));
        }
        await setEndpoints(lab, [STABLE]);
        lastChangeAt = wallNow();
        back = await convergeTo(before, 30_000);
        await sleep(1000);
      } finally {
        report = await traffic.stop();
      }
    } finally {
      await setEndpoints(lab, [STABLE]);
      for (const b of extra) await removeBackend(b);
    }
    const conntrack = new ExecaCommandRunner(owner.netns);
    const stray: string[] = [];
    for (const b of extra) {
      const { stdout } = await conntrack.run('conntrack', ['-L', '-p', 'udp', '--reply-src', b.address], { okExitCodes: [0, 1] });
      stray.push(...stdout.split('\n').filter((l) => l.trim() !== ''));
    }
    results.push(`endpoint churn: ${steps} EndpointSlice writes in ${CHURN_MS} ms (write p50 ${round(writeMs.sort((a, b) => a - b)[Math.floor(writeMs.length / 2)] ?? 0)} ms); answered by ${JSON.stringify(report.answeredBy)}; traffic ${describeTraffic(report)}; kernel back to the pre-churn state ${back.at === undefined ? 'never' : `${round(back.at - lastChangeAt)} ms`} after the last write; UDP conntrack entries left toward removed endpoints: ${stray.length}`);
    log(results[results.length - 1]!);

    expect(steps).toBeGreaterThanOrEqual(CHURN_MS / STEP_MS - 1);
    // The churn reached the kernel: every backend answered some tries.
    expect(Object.keys(report.answeredBy).sort()).toEqual(['b1', 'x2', 'x3']);
    expect({ refused: report.refused, failed: report.failed }).toEqual({ refused: 0, failed: 0 });
    expect(back.diff).toEqual([]);
    expect(stray).toEqual([]);
  }, 300_000);

  it('the owner\'s conntrack table full for 3 lease durations: new entries are refused, an existing flow keeps working, the agent neither crashes nor drops a rule, and traffic flows again', async () => {
    for (let attempt = 1; ; attempt++) {
      await waitSettled(lab);
      const d = await current(lab);
      const owner = await ownerOf(lab);
      const before = { holders: await holders(lab), kernel: await kernelStates(d) };
      const flow = Traffic.start(lab, { udpFlowSourcePort: 40_001 });
      const fresh = Traffic.start(lab);
      let flowReport: TrafficReport | undefined;
      let freshReport: TrafficReport | undefined;
      let fill: { loaded: number; ms: number } | undefined;
      let during: { count: number; max: number } | undefined;
      let rulesDuring: string[];
      let fillFrom: number;
      let fullAt: number;
      let drainFrom: number;
      let drainedAt = 0;
      let healthDuring: number;
      let seen: { t: number; holder: string }[];
      let statsBefore: Record<string, number>;
      let statsFull: Record<string, number>;
      const watch = watchHolder(lab, lab.target.address);
      try {
        await flow.steady();
        await fresh.steady();
        statsBefore = await conntrackStats(owner.netns);
        fillFrom = wallNow();
        fill = await fillConntrack(owner.netns, join(d.dir, 'reliability'));
        fullAt = wallNow();
        during = await conntrackNumbers(owner.netns);
        rulesDuring = diffStates(before.kernel, await kernelStates(await current(lab)), ['iptables']);
        healthDuring = await fetch((await metricsUrl(lab, owner.name)).replace(/\/metrics$/, '/healthz'), { signal: AbortSignal.timeout(1000) }).then((r) => r.status, () => 0);
        await sleep(Math.max(0, fullAt + 3 * lab.leaseDurationMs - wallNow()));
      } finally {
        statsFull = await conntrackStats(owner.netns).catch(() => ({}));
        drainFrom = wallNow();
        await drainConntrack(owner.netns);
        drainedAt = wallNow();
        await sleep(2 * lab.leaseDurationMs);
        flowReport = await flow.stop();
        freshReport = await fresh.stop();
        seen = await watch.stop();
      }
      const movedAt = seen.find((s) => s.holder !== owner.name && s.holder !== '')?.t;
      const ownedUntil = movedAt ?? Infinity;
      const tries = (r: TrafficReport, from: number, to: number): { tries: number; ok: number } => {
        const w = r.outcomes.filter((o) => o.t >= from && o.t < to && o.result !== 'sent');
        return { tries: w.length, ok: w.filter((o) => o.result === 'ok').length };
      };
      // Tries that needed a new entry in the full table of the owner: started while it was full and still owned.
      const throughFullOwner = tries(freshReport, fullAt, Math.min(drainFrom, ownedUntil));
      const flowWhileOwned = tries(flowReport, fullAt, Math.min(drainFrom, ownedUntil));
      const afterMove = movedAt === undefined ? undefined : freshReport.outcomes.filter((o) => o.t >= movedAt && o.result === 'ok').sort((a, b) => a.t - b.t)[0];
      const firstOkAfterDrain = freshReport.outcomes.filter((o) => o.t >= drainedAt && o.result === 'ok').sort((a, b) => a.t - b.t)[0];
      const agentAfter = (await current(lab)).agents.find((a) => a.name === owner.name);
      const health = await fetch((await metricsUrl(lab, owner.name)).replace(/\/metrics$/, '/healthz'), { signal: AbortSignal.timeout(2000) }).then((r) => r.status, () => 0);
      const holdersAfter = await holders(lab);
      const dropped = (statsFull!['drop'] ?? 0) - (statsBefore!['drop'] ?? 0);
      const evicted = (statsFull!['early_drop'] ?? 0) - (statsBefore!['early_drop'] ?? 0);
      results.push(`conntrack full on ${owner.name}: ${fill!.loaded} filler entries in ${round(fill!.ms)} ms, count ${during!.count} of max ${during!.max}, held full ${round(drainFrom - fullAt)} ms, deleting the fillers took ${round(drainedAt - drainFrom)} ms; the kernel refused ${dropped} new entries and evicted ${evicted} closing or unassured ones (conntrack -S); ` +
        `address ${movedAt === undefined ? 'stayed' : `moved to ${holdersAfter[lab.target.address]} ${round(movedAt - fillFrom)} ms after the fill began (the owner's own API connections need new entries too), first new connection answered ${afterMove ? round(afterMove.t - movedAt) : '-'} ms after the move`}; ` +
        `new connections while the owner was full and held the address ${throughFullOwner.ok}/${throughFullOwner.tries} answered; all new connections ${describeTraffic(freshReport)}; the existing UDP flow ${flowWhileOwned.ok}/${flowWhileOwned.tries} answered in the same window (whole run: ${describeTraffic(flowReport)}); ` +
        `/healthz from the host while full ${healthDuring! || 'no answer'}, after ${health}; first new connection after the fillers went ${firstOkAfterDrain ? round(firstOkAfterDrain.t - drainedAt) : '-'} ms; rule changes while full ${rulesDuring!.length}`);
      log(results[results.length - 1]!);
      // The scenario needs the owner to still hold the address once its table is full. Under a loaded
      // machine it has lost the address before that for reasons other than the fault (its renewals were
      // already late when the fill began): then the fault was never applied to an owner, so the
      // scenario runs once more, and the second run is judged whatever happens.
      if (movedAt !== undefined && movedAt < fullAt! && attempt === 1) {
        log(`conntrack full: the address left ${owner.name} ${round(fullAt! - movedAt)} ms before its table was full; running the scenario again`);
        await waitSettled(lab);
        continue;
      }

      // The fault was real: the kernel refused new entries in the owner's namespace. (Some new
      // connections still get through while the owner holds the address: entries expire, and the
      // kernel evicts those of closed TCP connections and unassured UDP ones to make room; the test
      // reports how many.)
      expect(dropped).toBeGreaterThan(0);
      // A flow whose entry existed before keeps working while the full owner holds the address: it
      // fares better than the new connections tried through that owner at the same time.
      expect(flowWhileOwned.tries).toBeGreaterThan(0);
      expect(throughFullOwner.tries).toBeGreaterThan(0);
      expect(flowWhileOwned.ok / flowWhileOwned.tries).toBeGreaterThan(throughFullOwner.ok / throughFullOwner.tries);
      // The agent did not crash or drop a rule; traffic flows again (through a new owner if it moved).
      expect(agentAfter?.pid).toBe(owner.pid);
      expect(health).toBe(200);
      expect(rulesDuring!).toEqual([]);
      expect(firstOkAfterDrain).toBeDefined();
      if (movedAt !== undefined) expect(afterMove).toBeDefined();
      await waitSettled(lab);
      expect(await ownershipProblems(lab)).toEqual([]);
      // Rules do not depend on ownership: every agent's rules and ip rules are as before.
      expect(diffStates(before.kernel, await kernelStates(await current(lab)), ['iptables', 'rules'])).toEqual([]);
      break;
    }
  }, 300_000);
});
