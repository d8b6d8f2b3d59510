import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import type { AgentEvent } from '../cluster/agent-events.js';
import { FakeClock } from '../cluster/clock.js';
import { DataPlaneApplier } from '../dataplane/apply.js';
import { FakeKernel } from '../dataplane/testing/fake-kernel.js';
import { POD_1, VIP_1, VIP_2, mapping, ok, service, slice, snapshot } from '../dataplane/testing/fixtures.js';
import { silentLogger } from '../log/logger.js';
import { DEFAULT_SETTINGS } from '../model/settings.js';
import { planDataPlane } from '../plan/plan-dataplane.js';
import { ObservedDataPlane, applyFailedMessage, setKind } from './dataplane-observer.js';
import { createAgentMetrics } from './metrics.js';

/** `port` changes the rules (an iptables-restore), `owned` only the owned set (an ipset restore). */
function desired(owned: ReadonlySet<string> | 'allEligible' = 'allEligible', port = 8080) {
  return planDataPlane(
    snapshot({
      owned,
      mappings: [ok(mapping({ name: 'web', addresses: [VIP_1, VIP_2], ports: [{ port, servicePort: 80 }], allowedSources: ['198.18.1.0/24'] }))],
      services: [service('web', [{ name: 'http', port: 80 }])],
      endpointSlices: [slice({ name: 'web-1', service: 'web', ports: [{ name: 'http', port: 8080 }], endpoints: [POD_1] })],
    }),
    DEFAULT_SETTINGS,
  ).desired;
}

function setup() {
  const registry = new Registry();
  const metrics = createAgentMetrics(registry);
  const kernel = new FakeKernel();
  const recorded: AgentEvent[] = [];
  let refuse = false;
  const events = {
    create: async (e: AgentEvent): Promise<void> => {
      if (refuse) throw new Error('API server down');
      recorded.push(e);
    },
  };
  const plane = new ObservedDataPlane(new DataPlaneApplier({ runner: kernel, backoffMs: { initial: 1, max: 1 } }), { metrics, events, clock: new FakeClock(), log: silentLogger() });
  const value = async (name: string, label: string): Promise<number | undefined> => {
    const line = (await registry.metrics()).split('\n').find((l) => l.startsWith(`${name}{${label}}`));
    return line === undefined ? undefined : Number(line.split(' ').pop());
  };
  return { registry, metrics, kernel, recorded, plane, value, refuseEvents: (v: boolean) => void (refuse = v) };
}

describe('ObservedDataPlane', () => {
  it('sets rule and set sizes from what the applier put in place, after each successful apply', async () => {
    const { kernel, plane, value, metrics } = setup();
    expect(await value('smartnat_dataplane_rules', 'table="nat"')).toBeUndefined();
    await plane.sync(desired());
    // Count what the kernel holds in our chains, independently of the applier's bookkeeping.
    const inKernel = (table: string): number => [...(kernel.tables.get(table) ?? new Map())].filter(([c]) => c.startsWith('SMARTNAT-')).reduce((n, [, d]) => n + d.rules.length, 0);
    for (const table of ['mangle', 'nat', 'filter']) expect(await value('smartnat_dataplane_rules', `table="${table}"`)).toBe(inKernel(table));
    expect(inKernel('nat')).toBeGreaterThan(0);
    expect(await value('smartnat_dataplane_set_entries', 'set="owned"')).toBe(2);
    expect(await value('smartnat_dataplane_set_entries', 'set="eligible"')).toBe(kernel.sets.get('smartnat-eligible')?.entries.size);
    expect(await value('smartnat_dataplane_set_entries', 'set="allow"')).toBe(kernel.sets.get('smartnat-allow')?.entries.size);
    expect(await value('smartnat_dataplane_set_entries', 'set="egress"')).toBe(0);

    await plane.setOwned(new Set([VIP_1]));
    expect(await value('smartnat_dataplane_set_entries', 'set="owned"')).toBe(1);

    // A failed apply leaves the gauges at what is still in force.
    kernel.failNext.set('ipset', 1);
    await expect(plane.setOwned(new Set())).rejects.toThrow(/injected failure/);
    expect(await value('smartnat_dataplane_set_entries', 'set="owned"')).toBe(1);
    metrics.close();
  });

  it('records DataPlaneApplyFailed once per failure streak, with the tool and a stderr excerpt', async () => {
    const { kernel, plane, recorded, metrics } = setup();
    await plane.sync(desired());
    kernel.failNext.set('iptables-restore', 3);
    for (let i = 0; i < 3; i++) await expect(plane.sync(desired('allEligible', 8081))).rejects.toThrow(/iptables/);
    await plane.settled();
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toMatchObject({ type: 'Warning', reason: 'DataPlaneApplyFailed' });
    expect(recorded[0]?.message).toMatch(/^data-plane apply failed in phase iptables: iptables-restore exit 1: iptables-restore: injected failure; the previous rules stay/);
    // Success ends the streak; the next failure is a new one.
    await plane.sync(desired('allEligible', 8081));
    kernel.failNext.set('ipset', 1);
    await expect(plane.setOwned(new Set())).rejects.toThrow();
    await plane.settled();
    expect(recorded.map((e) => e.message.split(':')[0])).toEqual(['data-plane apply failed in phase iptables', 'data-plane apply failed in phase ipset']);
    metrics.close();
  });

  it('an Event the API server refused is tried again on the next failure of the same streak', async () => {
    const { kernel, plane, recorded, refuseEvents, metrics } = setup();
    await plane.sync(desired());
    refuseEvents(true);
    kernel.failNext.set('iptables-restore', 2);
    await expect(plane.sync(desired('allEligible', 8081))).rejects.toThrow();
    await plane.settled();
    expect(recorded).toHaveLength(0);
    refuseEvents(false);
    await expect(plane.sync(desired('allEligible', 8081))).rejects.toThrow();
    await plane.settled();
    expect(recorded).toHaveLength(1);
    metrics.close();
  });

  it('names the tool behind `ip netns exec` and bounds the message', () => {
    expect(setKind('smartnat-eg-203.0.113.10')).toBe('egress');
    expect(setKind('smartnat-tmp-x')).toBe('other');
    const long = applyFailedMessage(new Error('x'.repeat(1000)), 120);
    expect(long).toHaveLength(120);
    expect(long.endsWith('...')).toBe(true);
  });
});
