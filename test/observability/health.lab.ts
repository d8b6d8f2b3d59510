// The agent's health endpoints in a lab of their own: /healthz fails when the agent's loop stalls
// (a stopped process times out; on resuming it reports the stall by its own threshold before its
// loop catches up), stays 200 on every agent while the API server is down (liveness never depends
// on the API), and /readyz says not ready while a restarted agent cannot reach the API (informers
// not synced) and ready once it can. Only pids of the lab this file started are signalled.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { connect } from 'node:net';
import { uniqueLabName } from '../../src/lab/topology.js';
import { build, httpGet, labDown, labUp, readLab, sleep, smartnat, waitFor, type Lab, type LabAgentEndpoints } from './harness.js';

const NAME = uniqueLabName();
let lab: Lab | undefined;

beforeAll(async () => {
  await build();
  lab = await labUp(NAME);
  await waitFor('every agent ready', async () => {
    const r = await Promise.all(lab!.agents.map(async (a) => (await httpGet(`${a.base}/readyz`)).status));
    return r.every((s) => s === 200) ? true : undefined;
  }, 60_000);
}, 900_000);

afterAll(async () => {
  await labDown(NAME);
}, 300_000);

/** An agent that owns no address, so stalling or restarting it moves no traffic. */
async function idleAgent(): Promise<LabAgentEndpoints> {
  const status = JSON.parse(await smartnat(['status', '--kubeconfig', lab!.descriptor.kubeconfig, '--json'])) as { agents: { name: string; owned: number }[] };
  const idle = status.agents.find((a) => a.owned === 0);
  const current = await readLab(NAME);
  const agent = current.agents.find((a) => a.name === idle?.name);
  if (agent === undefined || agent.pid <= 0) throw new Error(`no idle running agent: ${JSON.stringify(status.agents)}`);
  return agent;
}

async function apiServerAccepts(url: string): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = connect({ host: u.hostname, port: Number(u.port), timeout: 500 });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(false));
  });
}

describe('agent health endpoints', () => {
  test('/healthz fails while the agent is stopped, reports the stall itself on resuming, and recovers', async () => {
    const agent = await idleAgent();
    expect((await httpGet(`${agent.base}/healthz`)).status).toBe(200);
    process.kill(agent.pid, 'SIGSTOP');
    let whileStopped: { status: number; body: string };
    let onResume: Promise<{ status: number; body: string }>;
    try {
      await sleep(500);
      // As the kubelet probes (2 s timeout): no answer is a failure.
      whileStopped = await httpGet(`${agent.base}/healthz`, 2000);
      // A request waiting in the socket backlog is answered first thing after SIGCONT, before the
      // loop can run a sync: the answer must be the agent's own staleness verdict.
      onResume = httpGet(`${agent.base}/healthz`, 60_000);
      await sleep(12_500);
    } finally {
      process.kill(agent.pid, 'SIGCONT');
    }
    expect(whileStopped.status).toBe(0);
    expect(whileStopped.body).toMatch(/TimeoutError|abort/i);
    const resumed = await onResume;
    expect(resumed.status).toBe(503);
    expect(resumed.body).toMatch(/^not ok: no sync finished for \d+ ms/);
    const ok = await waitFor('/healthz 200 again', async () => {
      const r = await httpGet(`${agent.base}/healthz`);
      return r.status === 200 ? r : undefined;
    }, 15_000, 200);
    expect(ok.body).toMatch(/^ok: last sync \d+ ms ago/);
  }, 120_000);

  test('/healthz stays 200 on every agent while the API server is down (drill apiserver-down)', async () => {
    const apiUrl = lab!.descriptor.apiserver.url;
    let done = false;
    const drill = smartnat(['drill', 'apiserver-down', '--name', NAME, '--json'], 180_000).finally(() => {
      done = true;
    });
    const bad: string[] = [];
    let roundsWhileDown = 0;
    while (!done) {
      const apiUp = await apiServerAccepts(apiUrl);
      const answers = await Promise.all(lab!.agents.map(async (a) => ({ agent: a.name, ...(await httpGet(`${a.base}/healthz`, 2000)) })));
      if (!apiUp) roundsWhileDown += 1;
      for (const a of answers) if (a.status !== 200) bad.push(`${a.agent} (api ${apiUp ? 'up' : 'down'}): ${a.status} ${a.body.trim()}`);
      await sleep(250);
    }
    const report = JSON.parse(await drill) as { ok: boolean; runs: { moved: boolean }[] };
    expect(roundsWhileDown).toBeGreaterThanOrEqual(5);
    expect(bad).toEqual([]);
    expect({ ok: report.ok, moved: report.runs[0]?.moved }).toEqual({ ok: true, moved: false });
  }, 240_000);

  test('/readyz is 503 (not synced) while a restarted agent cannot reach the API, /healthz 200 meanwhile; ready once the API is back', async () => {
    const agent = await idleAgent();
    await smartnat(['lab', 'api', agent.name, 'refuse', '--name', NAME]);
    try {
      process.kill(agent.pid, 'SIGKILL');
      await waitFor(`agent ${agent.name} gone`, async () => ((await httpGet(`${agent.base}/healthz`, 500)).status === 0 ? true : undefined), 10_000, 100);
      await smartnat(['lab', 'up', '--name', NAME], 300_000); // repairs: starts the killed agent again
      const samples: string[] = [];
      for (let i = 0; i < 6; i += 1) {
        const [live, ready] = await Promise.all([httpGet(`${agent.base}/healthz`), httpGet(`${agent.base}/readyz`)]);
        samples.push(`healthz ${live.status} readyz ${ready.status}${ready.status === 200 ? '' : ` (${/not synced|not joined/.test(ready.body) ? 'not synced' : ready.body.trim()})`}`);
        await sleep(500);
      }
      expect(samples).toEqual(samples.map(() => 'healthz 200 readyz 503 (not synced)'));
    } finally {
      await smartnat(['lab', 'api', agent.name, 'pass', '--name', NAME]);
    }
    const ready = await waitFor('/readyz 200 once the API is reachable', async () => {
      const r = await httpGet(`${agent.base}/readyz`);
      return r.status === 200 ? r : undefined;
    }, 30_000, 250);
    expect(ready.body.trim()).toBe('ok: synced');
  }, 360_000);
});
