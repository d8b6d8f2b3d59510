// An API-server outage on a control plane of this test's own (stopApiServer/startApiServer): three
// agents keep every address and rule; holders degrade their VRRP priority while they cannot
// renew, recover afterwards, and nobody is fenced or moved (ADR 0005 "API unreachable"); an agent
// restarted during the outage re-adopts its addresses from its state file at the degraded priority.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane, type ControlPlane } from '../../test/support/control-plane.js';
import { kubectl, loadTestKubeConfig, waitFor } from '../../test/support/kube.js';
import { CRD_DIR, CRD_NAMES } from '../../test/fixtures/crd/server.js';
import { ANNOTATION_FENCED_BY, agentLeaseName } from '../plan/lease-names.js';
import { SETTINGS, allHeld, running, scenario } from './testing/scenario.js';
import { makeTestAgent } from './testing/agents.js';

let plane: ControlPlane | undefined;

beforeAll(async () => {
  plane = await startControlPlane();
  const kubeconfig = plane.kubeconfigPath;
  await kubectl(['apply', '-f', CRD_DIR], { kubeconfig });
  await kubectl(['wait', '--for=condition=Established', '--timeout=60s', ...CRD_NAMES.map((n) => `crd/${n}`)], { kubeconfig });
}, 180_000);

afterAll(async () => {
  for (const s of running.splice(0)) await s.stop();
  await plane?.stop();
}, 60_000);

describe('API server outage', () => {
  it('nothing moves: holders degrade while the API is down, recover after, and nobody is fenced', async () => {
    if (!plane) throw new Error('no control plane');
    const kc = loadTestKubeConfig(plane.kubeconfigPath);
    const stateDir = await mkdtemp(join(tmpdir(), 'agt-state-'));
    const s = await scenario({ count: 12, kc, stateDir });
    const before = await allHeld(s);
    const transitions = await s.transitions();
    const kernels = s.agents.map((a) => [...(a.kernel.sets.get('smartnat-owned')?.entries ?? [])].sort().join());
    await plane.stopApiServer();
    // Longer than two lease durations without the API: every holder self-degrades.
    await waitFor(() => s.agents.every((a) => [...a.keepalived.tracks.values()].filter((t) => t.eligible).every((t) => t.role === 'degraded')), {
      timeoutMs: 3 * SETTINGS.leaseDurationMs,
      what: 'every holder at the degraded priority',
    });
    await new Promise((r) => setTimeout(r, 2 * SETTINGS.leaseDurationMs));
    // Liveness never depends on the API server; readiness says the caches are not current.
    for (const a of s.agents) expect(a.agent.live()).toMatchObject({ ok: true });
    expect(s.agents[0]?.agent.ready().ok).toBe(false);
    // Still carried (degraded), rules untouched.
    for (const [i, a] of s.agents.entries()) {
      expect(a.keepalived.holding()).toEqual(s.addresses.filter((x) => before.get(x) === a.agent.name).sort());
      expect([...(a.kernel.sets.get('smartnat-owned')?.entries ?? [])].sort().join()).toBe(kernels[i]);
    }
    // agent-0 restarts while the API is unreachable: it re-adopts, from its state file, what it
    // held, at the degraded priority (DESIGN.md 3.5).
    const old = s.agents[0];
    if (!old) throw new Error('no agent-0');
    await old.agent.kill();
    const restarted = makeTestAgent({ kc, namespace: s.ns, watchNamespaces: [s.ns], name: 'agent-0', index: 0, settings: SETTINGS, stateFile: join(stateDir, 'agent-0.json') });
    s.agents[0] = restarted;
    const mine = s.addresses.filter((x) => before.get(x) === 'agent-0').sort();
    await restarted.agent.start();
    await waitFor(() => restarted.keepalived.holding().join() === mine.join(), { timeoutMs: 10_000, what: 'the restarted agent re-adopts its addresses' });
    for (const a of mine) expect(restarted.keepalived.tracks.get(a)).toEqual({ eligible: true, role: 'degraded' });
    expect(restarted.agent.live().ok).toBe(true);
    expect(restarted.agent.ready().ok).toBe(false);
    await plane.startApiServer();
    // Back to the holder priority, same holders, no transition, nobody fenced.
    await waitFor(() => s.agents.every((a) => [...a.keepalived.tracks.values()].filter((t) => t.eligible).every((t) => t.role === 'holder')), {
      timeoutMs: 30_000,
      what: 'every holder back at the holder priority',
    });
    // The informers restarted after their errors and listed again: every agent is ready.
    await waitFor(() => s.agents.every((a) => a.agent.ready().ok), { timeoutMs: 30_000, what: 'every agent ready again' });
    await new Promise((r) => setTimeout(r, 2 * SETTINGS.leaseDurationMs));
    expect(await s.holders()).toEqual(before);
    expect(await s.transitions()).toEqual(transitions);
    for (const a of s.agents) expect((await s.store.get(agentLeaseName(a.agent.name)))?.annotations[ANNOTATION_FENCED_BY]).toBeUndefined();
    expect(s.violations).toEqual([]);
    await rm(stateDir, { recursive: true, force: true });
  }, 180_000);
});
