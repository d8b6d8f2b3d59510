// An agent restarted within its lease duration, as the chart deploys it (`labUp({podAgents})`:
// PID 1 of its own PID namespace, keepalived outside under the watchdog): SIGKILL of the agent's
// PID 1 only — keepalived keeps running — and the agent started again at once, three times. The
// lab's agents run with a lease duration (15 s) longer than a restart takes on this loaded 2-core
// machine (node alone needs about a second to start; the restart to /healthz took 5-7 s at a load
// of 8-10), so the restarted agent re-adopts what it held. Never two agents on the wire; the gap
// (100 TCP connects/s, 50 UDP round trips/s) is recorded with its median, not asserted.
import { describe, expect, it } from '@jest/globals';
import { percentile } from './drill-plan.js';
import { reviveLab } from './lab.js';
import { describeObservation, killPodAgent, wallNow, type WireObservation } from './wire-drill.js';
import { useWireLab } from './testing/wire-lab.js';

const LEASE_DURATION_MS = 15_000;
const TRIALS = 3;
const lab = useWireLab({ podAgents: ['a1', 'a2', 'a3'], leaseDurationMs: LEASE_DURATION_MS });
const results = lab.results;
const NAME = lab.name;
const log = lab.log;

describe(`quick agent restart within the lease duration (lab ${NAME}, lease ${LEASE_DURATION_MS} ms)`, () => {
  it('SIGKILL of the agent only, started again at once: keepalived keeps running, the agent re-adopts, never two agents on the wire; gap recorded', async () => {
    const d = lab.drill();
    const trials: (WireObservation & { restartedMs: number })[] = [];
    for (let i = 1; i <= TRIALS; i++) {
      let restartedMs = 0;
      const o = await d.observe(async (owner) => {
        const t0 = wallNow();
        await killPodAgent(owner);
        await reviveLab({ name: NAME, log });
        restartedMs = Math.round(wallNow() - t0);
      });
      trials.push({ ...o, restartedMs });
      results.push(`${describeObservation(`quick restart ${i}`, o)}; killed to /healthz again ${restartedMs} ms; keepalived pid ${o.keepalived.before} -> ${o.keepalived.after}`);
      log(results[results.length - 1]!);
    }
    const gaps = trials.map((t) => t.gapMs);
    results.push(`quick restart: gap median ${percentile(gaps, 50)} ms, max ${Math.max(...gaps)} ms over ${TRIALS} trials (probe period 10 ms TCP, 20 ms UDP); failed ${trials.map((t) => t.tcp.failed + t.udp.failed).join('/')}, refused ${trials.map((t) => t.tcp.refused + t.udp.refused).join('/')}; restart ${trials.map((t) => t.restartedMs).join('/')} ms`);
    log(results[results.length - 1]!);
    for (const t of trials) {
      expect(t.wire.duplicates).toEqual([]);
      // Restarted within the lease duration, the same agent holds the address and carries it.
      if (t.restartedMs < LEASE_DURATION_MS) expect(t.after).toBe(t.before);
      expect(t.wire.final).toEqual([t.after]);
      // keepalived lives outside the agent's PID namespace: the kill did not touch it.
      expect(t.keepalived.after).toBe(t.keepalived.before);
      expect(t.tcp.tries).toBeGreaterThan(100);
    }
  }, 180_000);
});
