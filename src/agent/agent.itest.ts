// Three agents in one process against the real kube-apiserver: real lease store, lease and
// resource informers, FakeKernel data planes, a recording fake keepalived. Address leases are
// created as the leader would (createAddressLease). A sampler checks, every 50 ms, that no address
// is carried by two keepalived holders at once.
import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, CustomObjectsApi, DiscoveryV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { loadTestKubeConfig, waitFor } from '../../test/support/kube.js';
import { installCrds } from '../../test/fixtures/crd/server.js';
import { GROUP, VERSION } from '../api/types.js';
import { ANNOTATION_FENCED_BY, agentLeaseName } from '../plan/lease-names.js';
import { rankAgents } from '../plan/ranking.js';
import { drainAgent } from '../cli/drain.js';
import { SETTINGS, allHeld, count, proxiedKubeConfig, running, scenario } from './testing/scenario.js';

/** Observations of a histogram in one agent's registry (its _count). */
async function observations(agent: { registry: import('prom-client').Registry }, name: string): Promise<number> {
  const metric = agent.registry.getSingleMetric(name);
  if (metric === undefined) throw new Error(`no metric ${name}`);
  return (await metric.get()).values.filter((v) => (v as { metricName?: string }).metricName === `${name}_count`).reduce((n, v) => n + v.value, 0);
}

async function totalObservations(agents: readonly { registry: import('prom-client').Registry }[], name: string): Promise<number> {
  let n = 0;
  for (const a of agents) n += await observations(a, name);
  return n;
}

afterEach(async () => {
  for (const s of running.splice(0)) await s.stop();
});

describe('agents against the real API server', () => {
  beforeAll(async () => installCrds(), 120_000);

  it('three agents split 100 addresses 25..42 each; a departing agent moves only its own addresses', async () => {
    const s = await scenario({ count: 100 });
    const before = await allHeld(s);
    const per = count(before);
    expect([...per.keys()].sort()).toEqual(['agent-0', 'agent-1', 'agent-2']);
    for (const n of per.values()) {
      expect(n).toBeGreaterThanOrEqual(25);
      expect(n).toBeLessThanOrEqual(42);
    }
    const leaving = s.agents[2];
    if (!leaving) throw new Error('no agent-2');
    const { handedOff } = await leaving.agent.shutdown({ graceMs: 200 });
    s.dead.add('agent-2');
    expect(handedOff).toEqual(s.addresses.filter((a) => before.get(a) === 'agent-2').sort());
    const after = await allHeld(s);
    for (const a of s.addresses) {
      if (before.get(a) !== 'agent-2') expect(`${a} ${after.get(a)}`).toBe(`${a} ${before.get(a)}`);
    }
    // The departed agent's keepalived was stopped and its kernel owns nothing any more.
    expect(leaving.keepalived.stopped).toBe(true);
    expect([...leaving.agent.ownedInKernel()]).toEqual([]);
    expect(s.violations).toEqual([]);
  }, 120_000);

  it('a dead agent is fenced and its addresses taken over within the configured bound', async () => {
    const s = await scenario({ count: 12 });
    const before = await allHeld(s);
    const victim = s.agents[0];
    if (!victim) throw new Error('no agent-0');
    const victims = s.addresses.filter((a) => before.get(a) === 'agent-0');
    expect(victims.length).toBeGreaterThan(0);
    const killedAt = performance.now();
    await victim.agent.kill();
    s.dead.add('agent-0');
    await allHeld(s, undefined, 20_000);
    const elapsed = performance.now() - killedAt;
    // Detection needs at most leaseDuration after the last observed renewal; fencing, the
    // takeover writes and the watch delivery get one more retry period plus 1 s of slack.
    expect(elapsed).toBeLessThan(SETTINGS.leaseDurationMs + SETTINGS.retryPeriodMs + 1000);
    const fenced = await s.store.get(agentLeaseName('agent-0'));
    expect(fenced?.holder).toBe('');
    expect(fenced?.annotations[ANNOTATION_FENCED_BY]).toMatch(/^agent-[12]$/);
    const after = await s.holders();
    for (const a of s.addresses) if (!victims.includes(a)) expect(after.get(a)).toBe(before.get(a));
    // Each taken-over address is one failover observation on its new owner, none a handoff.
    const survivors = s.agents.slice(1);
    await waitFor(async () => (await totalObservations(survivors, 'smartnat_failover_duration_seconds')) === victims.length, { timeoutMs: 10_000 });
    expect(await totalObservations(survivors, 'smartnat_handoff_duration_seconds')).toBe(0);
    expect(s.violations).toEqual([]);
  }, 120_000);

  it('a live owner keeps its addresses when an observer\'s lease watch silently stalls for longer than the lease duration (the fence CAS fails with 409)', async () => {
    const { kc: proxiedKc, proxy } = await proxiedKubeConfig(loadTestKubeConfig());
    const s = await scenario({ count: 12, proxy, proxiedKc, proxied: 1 });
    const before = await allHeld(s);
    const transitions = await s.transitions();
    const observer = s.agents[1];
    if (!observer) throw new Error('no agent-1');
    // The observer's watch connection stops carrying bytes: no error, no reconnect, no blindness.
    proxy.freeze();
    await new Promise((r) => setTimeout(r, 2.5 * SETTINGS.leaseDurationMs));
    expect(observer.agent.view.blind).toBe(false);
    const fences = await observer.registry.getSingleMetric('smartnat_fence_attempts_total')?.get();
    const alive = fences?.values.filter((v) => v.labels.outcome === 'holderAlive').reduce((n, v) => n + v.value, 0) ?? 0;
    // The observer did judge the others expired and tried to fence them: the CAS said they live.
    expect(alive).toBeGreaterThan(0);
    expect(await s.holders()).toEqual(before);
    expect(await s.transitions()).toEqual(transitions);
    for (const a of ['agent-0', 'agent-2']) expect((await s.store.get(agentLeaseName(a)))?.annotations[ANNOTATION_FENCED_BY]).toBeUndefined();
    proxy.thaw();
    await allHeld(s);
    expect(await s.holders()).toEqual(before);
    expect(s.violations).toEqual([]);
  }, 120_000);

  it('a live owner keeps its addresses when an observer\'s lease watch breaks for longer than the lease duration (the observer is blind)', async () => {
    const s = await scenario({ count: 12 });
    const before = await allHeld(s);
    const transitions = await s.transitions();
    const observer = s.agents[1];
    if (!observer) throw new Error('no agent-1');
    await observer.leaseInformer().stop();
    expect(observer.agent.view.blind).toBe(true);
    await new Promise((r) => setTimeout(r, 2 * SETTINGS.leaseDurationMs));
    expect(await s.holders()).toEqual(before);
    expect(await s.transitions()).toEqual(transitions);
    await observer.leaseInformer().start();
    await waitFor(() => !observer.agent.view.blind, { what: 'the observer sees again' });
    // Observation clocks restarted on reconnect: still nobody is judged dead.
    await new Promise((r) => setTimeout(r, SETTINGS.leaseDurationMs));
    expect(await s.holders()).toEqual(before);
    expect(await s.transitions()).toEqual(transitions);
    expect(s.violations).toEqual([]);
  }, 120_000);

  it('an owner cut off from the API is fenced and replaced; it degrades meanwhile, demotes when it sees the fence, and rejoins owning nothing', async () => {
    const { kc: proxiedKc, proxy } = await proxiedKubeConfig(loadTestKubeConfig());
    // agent-0's degraded priority (200) loses on the wire to the new holder's 250 (ADR 0007): it is
    // left out of the sampler, which checks the agents that can reach the API.
    const s = await scenario({ count: 12, proxy, proxiedKc, proxied: 0, proxiedWhole: true, unsampled: ['agent-0'] });
    const before = await allHeld(s);
    const cut = s.agents[0];
    if (!cut) throw new Error('no agent-0');
    const victims = s.addresses.filter((a) => before.get(a) === 'agent-0');
    expect(victims.length).toBeGreaterThan(0);
    proxy.freeze();
    await waitFor(async () => {
      const h = await s.holders();
      return victims.every((a) => h.get(a) !== 'agent-0' && h.get(a) !== '');
    }, { timeoutMs: 20_000, what: 'agent-0\'s addresses taken over' });
    expect((await s.store.get(agentLeaseName('agent-0')))?.annotations[ANNOTATION_FENCED_BY]).toMatch(/^agent-[12]$/);
    // Meanwhile the cut owner keeps its rules and carries its addresses only at the degraded priority.
    await waitFor(() => victims.every((a) => cut.keepalived.tracks.get(a)?.role === 'degraded'), { timeoutMs: 5000, what: 'agent-0 degraded' });
    expect([...cut.agent.ownedInKernel()].sort()).toEqual(victims);
    // Its loop keeps running with every API connection hung: /healthz stays ok.
    expect(cut.agent.live().ok).toBe(true);
    const taken = await s.holders();
    proxy.thaw();
    // The renewal sees the fence: demote (nothing owned, nothing carried), then rejoin as a new agent.
    await waitFor(() => cut.agent.ownedInKernel().size === 0 && cut.keepalived.holding().length === 0, { timeoutMs: 20_000, what: 'agent-0 demoted' });
    await waitFor(async () => {
      const lease = await s.store.get(agentLeaseName('agent-0'));
      return lease?.holder === 'agent-0' && lease.annotations[ANNOTATION_FENCED_BY] === undefined;
    }, { timeoutMs: 20_000, what: 'agent-0 rejoined' });
    await new Promise((r) => setTimeout(r, SETTINGS.leaseDurationMs));
    // No fail-back (rebalance is off here): the addresses stay where the takeover put them.
    expect(await s.holders()).toEqual(taken);
    expect(s.violations).toEqual([]);
  }, 120_000);

  it('drain moves everything off an agent; after undrain it gets addresses back only through the rebalance hold-down', async () => {
    const holdDownMs = 5000;
    const s = await scenario({ count: 15, settings: { ...SETTINGS, rebalance: { holdDownMs, intervalMs: 100, maxPerInterval: 20 } } });
    const before = await allHeld(s);
    expect(count(before).get('agent-0') ?? 0).toBeGreaterThan(0);
    await drainAgent(s.store, 'agent-0', true);
    const drained = await allHeld(s, (_a, h) => h !== 'agent-0');
    for (const a of s.addresses) if (before.get(a) !== 'agent-0') expect(drained.get(a)).toBe(before.get(a));
    // Each drained address is one handoff observation on its receiver, none a failover.
    const moved = s.addresses.filter((a) => before.get(a) === 'agent-0').length;
    const receivers = s.agents.slice(1);
    await waitFor(async () => (await totalObservations(receivers, 'smartnat_handoff_duration_seconds')) === moved, { timeoutMs: 10_000 });
    expect(await totalObservations(receivers, 'smartnat_failover_duration_seconds')).toBe(0);
    const undrainedAt = performance.now();
    await drainAgent(s.store, 'agent-0', false);
    // No automatic fail-back: nothing comes back before the hold-down.
    await new Promise((r) => setTimeout(r, holdDownMs / 2));
    expect(count(await s.holders()).get('agent-0') ?? 0).toBe(0);
    const preferred = s.addresses.filter((a) => rankAgents(['agent-0', 'agent-1', 'agent-2'], a)[0] === 'agent-0');
    await allHeld(s, (a, h) => (preferred.includes(a) ? h === 'agent-0' : h !== 'agent-0'), 30_000);
    expect(performance.now() - undrainedAt).toBeGreaterThanOrEqual(holdDownMs);
    expect(s.violations).toEqual([]);
  }, 120_000);

  it('the holder programs the Mapping and reports it; when it dies the successor flips only the owned set and raises its priority after NAT', async () => {
    // The leader judges the Mapping and creates its address lease: agents program only what it granted.
    const s = await scenario({ count: 1, withLeader: true, firstHost: 230 });
    const vip = s.addresses[0] ?? '';
    const core = s.kc.makeApiClient(CoreV1Api);
    await core.createNamespacedService({ namespace: s.ns, body: { metadata: { name: 'echo' }, spec: { ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } } });
    await s.kc.makeApiClient(DiscoveryV1Api).createNamespacedEndpointSlice({
      namespace: s.ns,
      body: {
        metadata: { name: 'echo-1', labels: { 'kubernetes.io/service-name': 'echo' } },
        addressType: 'IPv4',
        ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
        endpoints: [{ addresses: ['198.51.100.21'], conditions: { ready: true } }],
      },
    });
    await s.kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: 'mappings',
      namespace: s.ns,
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'Mapping', metadata: { name: 'echo' }, spec: { addresses: [vip], serviceName: 'echo', ports: [{ port: 8080, protocol: 'tcp', servicePort: 80 }] } },
    });
    const holders = await allHeld(s);
    const owner = holders.get(vip) ?? '';
    const status = await waitFor(async () => {
      const m = (await s.kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: 'mappings', namespace: s.ns, name: 'echo' })) as {
        status?: { configuredAddresses?: Record<string, { owner?: string; endpoints?: string[] }> };
      };
      return m.status?.configuredAddresses?.[vip];
    }, { what: 'configuredAddresses entry' });
    expect(status.owner).toBe(owner);
    expect(status.endpoints).toEqual(['198.51.100.21:8080/tcp']);
    // The owner's kernel has the address in its owned set; the others have the rules, not ownership
    // (each programs once its own cache has seen the leader's claims: wait for that, then compare).
    await waitFor(() => s.agents.every((t) => t.kernel.sets.get('smartnat-eligible')?.entries.has(vip) === true), { what: 'every agent has the rules' });
    for (const t of s.agents) {
      const owned = t.kernel.sets.get('smartnat-owned')?.entries ?? new Set<string>();
      expect(`${t.agent.name} ${owned.has(vip)}`).toBe(`${t.agent.name} ${t.agent.name === owner}`);
      expect(t.kernel.sets.get('smartnat-eligible')?.entries.has(vip)).toBe(true);
    }
    // Failover: the successor's kernel sees one ipset change (no iptables-restore: no re-render),
    // and its keepalived is told 'holder' only once the address is in its owned set.
    const late: string[] = [];
    const callsBefore = new Map(s.agents.map((t) => [t.agent.name, t.kernel.calls.length]));
    for (const t of s.agents) {
      t.keepalived.onTrack = (address, state) => {
        // Only addresses with rules count (the second address has no Mapping: nothing to program).
        const hasRules = t.kernel.sets.get('smartnat-eligible')?.entries.has(address) ?? false;
        if (state.role === 'holder' && hasRules && !(t.kernel.sets.get('smartnat-owned')?.entries.has(address) ?? false)) late.push(`${t.agent.name} ${address}`);
      };
    }
    const dying = s.agents.find((t) => t.agent.name === owner);
    if (!dying) throw new Error('no owner');
    await dying.agent.kill();
    s.dead.add(owner);
    const after = await allHeld(s, undefined, 20_000);
    const successor = s.agents.find((t) => t.agent.name === after.get(vip));
    if (!successor) throw new Error('no successor');
    const calls = successor.kernel.calls.slice(callsBefore.get(successor.agent.name) ?? 0).map((c) => c.cmd);
    expect(calls).toContain('ipset');
    expect(calls).not.toContain('iptables-restore');
    expect(successor.kernel.sets.get('smartnat-owned')?.entries.has(vip)).toBe(true);
    expect(late).toEqual([]);
    await waitFor(async () => {
      const m = (await s.kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: 'mappings', namespace: s.ns, name: 'echo' })) as {
        status?: { configuredAddresses?: Record<string, { owner?: string }> };
      };
      return m.status?.configuredAddresses?.[vip]?.owner === successor.agent.name;
    }, { what: 'the successor reports the address' });
    expect(s.violations).toEqual([]);
  }, 120_000);

  it('with the leader\'s duties: one leader creates the leases, owners report; when the leader dies another takes over the duties and its addresses move', async () => {
    const s = await scenario({ count: 3, withLeader: true, firstHost: 240 });
    const custom = s.kc.makeApiClient(CustomObjectsApi);
    await s.kc.makeApiClient(CoreV1Api).createNamespacedService({ namespace: s.ns, body: { metadata: { name: 'echo' }, spec: { ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } } });
    const mapping = async (name: string, addresses: string[]): Promise<void> => {
      await custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        plural: 'mappings',
        namespace: s.ns,
        body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'Mapping', metadata: { name }, spec: { addresses, serviceName: 'echo', ports: [{ port: 8080, protocol: 'tcp', servicePort: 80 }] } },
      });
    };
    const configured = async (name: string): Promise<Record<string, { owner?: string }>> => {
      const m = (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: 'mappings', namespace: s.ns, name })) as { status?: { configuredAddresses?: Record<string, { owner?: string }> } };
      return m.status?.configuredAddresses ?? {};
    };
    await mapping('first', s.addresses);
    const holders = await allHeld(s);
    const leaders = s.agents.filter((a) => a.elector?.isLeader === true).map((a) => a.agent.name);
    expect(leaders).toHaveLength(1);
    // Every owner reports its own entries (server-side apply by field manager smartnat-agent/<agent>).
    await waitFor(async () => {
      const c = await configured('first');
      return s.addresses.every((a) => c[a]?.owner === holders.get(a));
    }, { what: 'an entry per address, by its owner' });
    const leader = s.agents.find((a) => a.agent.name === leaders[0]);
    if (!leader) throw new Error('no leader');
    await leader.agent.kill();
    s.dead.add(leader.agent.name);
    const after = await allHeld(s, undefined, 20_000);
    for (const a of s.addresses) if (holders.get(a) !== leader.agent.name) expect(after.get(a)).toBe(holders.get(a));
    await waitFor(() => s.agents.filter((a) => !s.dead.has(a.agent.name) && a.elector?.isLeader === true).length === 1, { timeoutMs: 20_000, what: 'a new leader' });
    // The new leader does the duties: an address of a new Mapping gets its lease and an owner.
    const extra = '203.0.113.243';
    await custom.patchClusterCustomObject({ group: GROUP, version: VERSION, plural: 'addresspools', name: s.pool, body: [{ op: 'replace', path: '/spec/addresses', value: [`${s.addresses[0]}-${extra}`] }] }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch));
    await mapping('second', [extra]);
    const owner = await waitFor(async () => (await s.holders()).get(extra) || undefined, { timeoutMs: 20_000, what: 'a lease and an owner for the new address' });
    expect(s.dead.has(owner)).toBe(false);
    await waitFor(async () => (await configured('second'))[extra]?.owner === owner, { what: 'the new owner reports' });
    expect(s.violations).toEqual([]);
  }, 120_000);
  it('an owner programs a new Mapping nobody else wants before any verdict, withdraws it when a rival asks for its port, and follows the verdict (ADR 0008 amendment 3)', async () => {
    // No leader runs here: only the owner's own view decides until a verdict is written.
    const s = await scenario({ count: 1, firstHost: 250 });
    const vip = s.addresses[0] ?? '';
    const owner = (await allHeld(s)).get(vip) ?? '';
    const t = s.agents.find((a) => a.agent.name === owner);
    if (!t) throw new Error(`no agent holds ${vip}`);
    const core = s.kc.makeApiClient(CoreV1Api);
    const discovery = s.kc.makeApiClient(DiscoveryV1Api);
    const custom = s.kc.makeApiClient(CustomObjectsApi);
    for (const [name, pod] of [['early', '198.51.100.21'], ['rival', '198.51.100.22']] as const) {
      await core.createNamespacedService({ namespace: s.ns, body: { metadata: { name }, spec: { ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } } });
      await discovery.createNamespacedEndpointSlice({
        namespace: s.ns,
        body: { metadata: { name: `${name}-1`, labels: { 'kubernetes.io/service-name': name } }, addressType: 'IPv4', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: [{ addresses: [pod], conditions: { ready: true } }] },
      });
    }
    const create = async (name: string): Promise<void> => {
      await custom.createNamespacedCustomObject({
        group: GROUP, version: VERSION, plural: 'mappings', namespace: s.ns,
        body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'Mapping', metadata: { name }, spec: { addresses: [vip], serviceName: name, ports: [{ port: 8080, protocol: 'tcp', servicePort: 80 }] } },
      });
    };
    const dnatTo = (pod: string): boolean =>
      [...(t.kernel.tables.get('nat')?.values() ?? [])].some((c) => c.rules.some((r) => r.includes(`-j DNAT --to-destination ${pod}:8080`)));
    await create('early');
    await waitFor(() => dnatTo('198.51.100.21'), { what: 'the free Mapping programmed before any verdict' });
    await create('rival');
    await waitFor(() => !dnatTo('198.51.100.21'), { what: 'the provisional Mapping withdrawn once a rival asks for its port' });
    expect(dnatTo('198.51.100.22')).toBe(false);
    // The verdict, written as the leader writes it: early holds the pair, rival is refused.
    const verdict = async (name: string, status: Record<string, unknown>): Promise<void> => {
      await custom.patchNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, plural: 'mappings', namespace: s.ns, name, body: { status: { observedGeneration: 1, ...status } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    };
    await verdict('rival', { invalid: `PortConflict: ${vip}:8080/tcp belongs to Mapping ${s.ns}/early` });
    await verdict('early', { invalid: 'no', claims: [`${vip}:8080/tcp`] });
    await waitFor(() => dnatTo('198.51.100.21'), { what: 'the granted Mapping programmed again' });
    expect(dnatTo('198.51.100.22')).toBe(false);
    expect(s.violations).toEqual([]);
  }, 120_000);
});
