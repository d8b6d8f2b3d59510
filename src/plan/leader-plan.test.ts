import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { LEGACY_FINALIZER } from '../api/types.js';
import type { LeaderInput, LeaderMappingEntry, LeaderPlan } from './leader-input.js';
import { planLeaderDuties } from './leader-plan.js';
import { addressLease, applyPlan, baseInput, entry, pool, type MappingOptions } from './leader-testing.js';

const VIP_1 = '203.0.113.10';
const VIP_2 = '203.0.113.11';
const VIP_3 = '203.0.113.12';
const OUTSIDE = '192.168.60.5';
const T1 = '2026-01-01T01:00:00Z';
const T2 = '2026-01-01T02:00:00Z';
const T3 = '2026-01-01T03:00:00Z';

function verdictOf(plan: LeaderPlan, key: string): unknown {
  return plan.verdicts.get(key);
}

function writeOf(plan: LeaderPlan, name: string, namespace = 'default') {
  return plan.mappingWrites.find((w) => w.ref.name === name && w.ref.namespace === namespace)?.status;
}

function condition(plan: LeaderPlan, name: string, type: string, namespace = 'default') {
  return writeOf(plan, name, namespace)?.conditions.find((c) => c.type === type);
}

/** Runs passes until nothing is written (at most 5), as a leader looping over a stable cluster would. */
function settle(input: LeaderInput, times = [T1, T2, T3, T3, T3]): { input: LeaderInput; plans: LeaderPlan[] } {
  const plans: LeaderPlan[] = [];
  let current = input;
  for (const now of times) {
    const plan = planLeaderDuties({ ...current, now });
    plans.push(plan);
    current = applyPlan(current, plan, now);
    if (plan.mappingWrites.length + plan.poolWrites.length + plan.leaseCreates.length + plan.leaseDeletes.length + plan.leaseReannotations.length === 0) break;
  }
  return { input: current, plans };
}

function edit(input: LeaderInput, name: string, namespace: string, o: MappingOptions): LeaderInput {
  const mappings = input.mappings.map((e): LeaderMappingEntry => {
    if (!e.ok || e.mapping.name !== name || e.mapping.namespace !== namespace) return e;
    const next = entry(name, { namespace, created: e.mapping.creationTimestamp, generation: e.mapping.generation + 1, ...o });
    if (!next.ok) throw new Error('edit made an invalid Mapping');
    return { ok: true, mapping: { ...next.mapping, status: e.mapping.status } };
  });
  return { ...input, mappings };
}

describe('status.owners (the OWNER column)', () => {
  it('lists the holders of the Mapping\'s address leases, sorted and unique, and is rewritten when one moves', () => {
    const m = entry('web', { addresses: ['203.0.113.12', '203.0.113.10', '203.0.113.11'] });
    const leases = [addressLease('203.0.113.10', { holder: 'a3', vrid: 1 }), addressLease('203.0.113.11', { holder: 'a2', vrid: 2 }), addressLease('203.0.113.12', { holder: 'a3', vrid: 3 })];
    const settled = settle(baseInput({ mappings: [m], addressLeases: leases })).input;
    const first = settled.mappings[0];
    expect(first?.ok && first.mapping.status.owners).toBe('a2,a3');
    const moved = planLeaderDuties({ ...settled, addressLeases: [leases[0]!, addressLease('203.0.113.11', { holder: '', vrid: 2 }), addressLease('203.0.113.12', { holder: 'a1', vrid: 3 })] });
    expect(writeOf(moved, 'web')?.owners).toBe('a1,a3');
  });

  it('is empty for a refused Mapping', () => {
    const plan = planLeaderDuties(baseInput({ mappings: [entry('far', { addresses: ['192.0.2.99'] })], addressLeases: [addressLease('192.0.2.99', { holder: 'a1' })] }));
    expect(writeOf(plan, 'far')?.owners).toBe('');
  });
});

describe('validation', () => {
  it('an unparseable Mapping is refused with its first error as invalid and Accepted=False InvalidSpec', () => {
    const bad = entry('bad', { ports: [{ port: 0 }] });
    expect(bad.ok).toBe(false);
    const plan = planLeaderDuties(baseInput({ mappings: [bad] }));
    const status = writeOf(plan, 'bad');
    expect(status?.invalid).toMatch(/^spec\.ports\[0\]\.port: /);
    expect(condition(plan, 'bad', 'Accepted')).toMatchObject({ status: 'False', reason: 'InvalidSpec', observedGeneration: 1 });
    expect(condition(plan, 'bad', 'Ready')).toMatchObject({ status: 'False', reason: 'Refused' });
    expect(plan.events).toEqual([expect.objectContaining({ reason: 'MappingRefused', type: 'Warning' })]);
  });

  it.each([
    ['an address in no pool', { addresses: [OUTSIDE] }, [pool('pool-a')], 'AddressNotInPool', `address ${OUTSIDE} is in no AddressPool`],
    ['a pool closed to the namespace', { namespace: 'team-b' }, [pool('pool-a', { allowedNamespaces: ['team-a'] })], 'NamespaceNotAllowed', 'closed to namespace team-b'],
  ])('%s is refused', (_what, o: MappingOptions, pools, reason, message) => {
    const plan = planLeaderDuties(baseInput({ mappings: [entry('m', o)], pools }));
    const ns = o.namespace ?? 'default';
    expect(verdictOf(plan, `${ns}/m`)).toMatchObject({ accepted: false, reason });
    expect(writeOf(plan, 'm', ns)?.invalid).toContain(message);
    expect(plan.leaseCreates).toEqual([]);
  });

  it('a pool open to the namespace is used when another pool holding the address is closed to it', () => {
    const pools = [pool('a-closed', { allowedNamespaces: ['other'] }), pool('b-open')];
    const plan = planLeaderDuties(baseInput({ mappings: [entry('m')], pools }));
    expect(verdictOf(plan, 'default/m')).toEqual({ accepted: true });
    expect(plan.leaseCreates).toEqual([{ address: VIP_1, pool: 'b-open', vrid: 1 }]);
  });

  it('a missing Service leaves the Mapping accepted but not Ready (ServiceNotFound), without serviceVIP', () => {
    const plan = planLeaderDuties(baseInput({ mappings: [entry('m', { serviceName: 'nothing' })] }));
    expect(writeOf(plan, 'm')).toMatchObject({ invalid: 'no', claims: [`${VIP_1}:80/tcp`] });
    expect(writeOf(plan, 'm')?.serviceVIP).toBeUndefined();
    expect(condition(plan, 'm', 'Ready')).toMatchObject({ status: 'False', reason: 'ServiceNotFound' });
  });

  it('an ExternalName Service leaves the Mapping accepted (claims kept) but not Ready (ServiceTypeUnsupported), without serviceVIP', () => {
    const plan = planLeaderDuties(baseInput({ services: [{ namespace: 'default', name: 'echo', externalName: 'echo.example.com', ports: [{ name: '', port: 80, protocol: 'tcp' }] }], mappings: [entry('m')] }));
    expect(writeOf(plan, 'm')).toMatchObject({ invalid: 'no', claims: [`${VIP_1}:80/tcp`] });
    expect(writeOf(plan, 'm')?.serviceVIP).toBeUndefined();
    expect(condition(plan, 'm', 'Accepted')?.status).toBe('True');
    expect(condition(plan, 'm', 'Ready')).toMatchObject({ status: 'False', reason: 'ServiceTypeUnsupported', message: 'Service default/echo is of type ExternalName (echo.example.com): it has no endpoints to forward to' });
  });

  it('serviceVIP is the Service ClusterIP', () => {
    const plan = planLeaderDuties(baseInput({ mappings: [entry('m')] }));
    expect(writeOf(plan, 'm')?.serviceVIP).toBe('198.19.0.10');
  });
});

describe('conflicts: the first accepted claim keeps the pair', () => {
  it('across namespaces, among newcomers the older Mapping wins and the other is refused naming it', () => {
    const a = entry('a', { namespace: 'team-a', created: '2026-01-01T00:00:01Z' });
    const b = entry('b', { namespace: 'team-b', created: '2026-01-01T00:00:00Z' });
    const plan = planLeaderDuties(baseInput({ mappings: [a, b] }));
    expect(verdictOf(plan, 'team-b/b')).toEqual({ accepted: true });
    expect(verdictOf(plan, 'team-a/a')).toMatchObject({ accepted: false, reason: 'PortConflict', winners: ['team-b/b'] });
    expect(writeOf(plan, 'a', 'team-a')?.invalid).toBe(`${VIP_1}:80/tcp belongs to Mapping team-b/b`);
    expect(writeOf(plan, 'a', 'team-a')?.claims).toEqual([]);
  });

  it('udp and tcp on the same port do not clash; another address does not clash', () => {
    const plan = planLeaderDuties(
      baseInput({ mappings: [entry('a'), entry('b', { ports: [{ port: 80, protocol: 'UDP' }] }), entry('c', { addresses: [VIP_2] })] }),
    );
    expect([...plan.verdicts.values()].every((v) => v.accepted)).toBe(true);
  });

  it('an old Mapping edited to grab a port in use is refused; the holder keeps it and stays accepted', () => {
    const holder = entry('holder', { namespace: 'new', created: '2026-06-01T00:00:00Z', ports: [{ port: 443 }] });
    const old = entry('old', { namespace: 'old', created: '2025-01-01T00:00:00Z', ports: [{ port: 80 }] });
    const settled = settle(baseInput({ mappings: [holder, old] })).input;
    const edited = edit(settled, 'old', 'old', { ports: [{ port: 80 }, { port: 443 }] });
    const plan = planLeaderDuties({ ...edited, now: T3 });
    expect(verdictOf(plan, 'new/holder')).toEqual({ accepted: true });
    expect(verdictOf(plan, 'old/old')).toMatchObject({ accepted: false, reason: 'PortConflict', winners: ['new/holder'] });
    expect(writeOf(plan, 'holder', 'new')).toBeUndefined(); // nothing changes for the holder
    expect(plan.events).toEqual([expect.objectContaining({ reason: 'MappingRefused', regarding: expect.objectContaining({ name: 'old' }) })]);
  });

  it('a refused holder releases what it held, so nobody is refused because of a refused Mapping', () => {
    // x holds :80; y holds :81; x is edited to want :81 too (refused); z (newcomer) wants :80.
    const start = baseInput({
      mappings: [entry('x', { created: '2026-01-01T00:00:01Z', ports: [{ port: 80 }] }), entry('y', { created: '2026-01-01T00:00:02Z', ports: [{ port: 81 }] })],
    });
    const settled = settle(start).input;
    const withZ = { ...edit(settled, 'x', 'default', { ports: [{ port: 80 }, { port: 81 }] }), mappings: [...edit(settled, 'x', 'default', { ports: [{ port: 80 }, { port: 81 }] }).mappings, entry('z', { ports: [{ port: 80 }] })] };
    const plan = planLeaderDuties({ ...withZ, now: T3 });
    expect(verdictOf(plan, 'default/x')).toMatchObject({ accepted: false, winners: ['default/y'] });
    expect(verdictOf(plan, 'default/y')).toEqual({ accepted: true });
    expect(verdictOf(plan, 'default/z')).toEqual({ accepted: true });
  });

  it('a Mapping being deleted never blocks anything: its pairs go to the next claimant, its finalizer is removed', () => {
    const first = entry('first', { created: '2026-01-01T00:00:00Z', finalizers: ['other.example.com/keep', LEGACY_FINALIZER] });
    const settled = settle(baseInput({ mappings: [first, entry('second', { created: '2026-01-01T00:00:09Z' })] })).input;
    expect(settled.mappings.find((e) => e.ok && e.mapping.name === 'second')?.ok && true).toBe(true);
    const deleting = settled.mappings.map((e) => (e.ok && e.mapping.name === 'first' ? { ok: true as const, mapping: { ...e.mapping, deleting: true } } : e));
    const plan = planLeaderDuties({ ...settled, mappings: deleting, now: T3 });
    expect(plan.verdicts.has('default/first')).toBe(false);
    expect(verdictOf(plan, 'default/second')).toEqual({ accepted: true });
    expect(plan.finalizerRemovals).toEqual([{ ref: { namespace: 'default', name: 'first' }, uid: 'uid-default-first', index: 1 }]);
    expect(writeOf(plan, 'first')).toBeUndefined();
  });
});

describe('address leases and router ids', () => {
  it('creates a lease per address in use with the lowest free id of the pool range, and deletes unused ones', () => {
    const pools = [pool('pool-a', { interface: 'eth1', vridRange: { first: 10, last: 20 } })];
    const leases = [addressLease(VIP_2, { vrid: 10, interface: 'eth1', holder: 'agent-a' }), addressLease(VIP_3, { vrid: 11, interface: 'eth1' })];
    const plan = planLeaderDuties(baseInput({ pools, addressLeases: leases, mappings: [entry('m', { addresses: [VIP_1, VIP_2] })] }));
    // VIP_3's lease is deleted, but its id 11 stays booked during this pass (the delete may fail).
    expect(plan.leaseCreates).toEqual([{ address: VIP_1, pool: 'pool-a', vrid: 12, interface: 'eth1' }]);
    expect(plan.leaseDeletes).toEqual([{ name: 'smartnat-addr-203-0-113-12', resourceVersion: `rv-${VIP_3}`, reason: 'unused' }]);
    expect(plan.leaseReannotations).toEqual([]);
  });

  it('ids are unique per interface; a pool without an interface conflicts with every interface', () => {
    const pools = [
      pool('p1', { addresses: ['203.0.113.10'], interface: 'eth1' }),
      pool('p2', { addresses: ['203.0.113.11'], interface: 'eth2' }),
      pool('p3', { addresses: ['203.0.113.12'] }),
    ];
    const plan = planLeaderDuties(baseInput({ pools, mappings: [entry('m', { addresses: [VIP_1, VIP_2, VIP_3] })] }));
    expect(plan.leaseCreates).toEqual([
      { address: VIP_1, pool: 'p1', vrid: 1, interface: 'eth1' },
      { address: VIP_2, pool: 'p2', vrid: 1, interface: 'eth2' },
      { address: VIP_3, pool: 'p3', vrid: 2 },
    ]);
  });

  it('an address beyond the router ids left is refused (NoRouterIdLeft) and reported on the pool', () => {
    const pools = [pool('pool-a', { vridRange: { first: 1, last: 2 } })];
    const mappings = [entry('a', { addresses: [VIP_1, VIP_2] }), entry('b', { addresses: [VIP_3], ports: [{ port: 81 }] })];
    const plan = planLeaderDuties(baseInput({ pools, mappings }));
    expect(verdictOf(plan, 'default/a')).toEqual({ accepted: true });
    expect(verdictOf(plan, 'default/b')).toMatchObject({ accepted: false, reason: 'NoRouterIdLeft' });
    expect(plan.leaseCreates.map((c) => c.address)).toEqual([VIP_1, VIP_2]);
    const poolStatus = plan.poolWrites[0]?.status;
    expect(poolStatus?.conditions[0]).toMatchObject({ type: 'Ready', status: 'False', reason: 'NoRouterIdLeft' });
  });

  it('a lease whose pool or id no longer fit is re-annotated in place, keeping its holder', () => {
    const pools = [pool('pool-a', { vridRange: { first: 50, last: 60 } })];
    const leases = [addressLease(VIP_1, { vrid: 3, holder: 'agent-a' })];
    const plan = planLeaderDuties(baseInput({ pools, addressLeases: leases, mappings: [entry('m')] }));
    expect(plan.leaseReannotations).toEqual([{ name: 'smartnat-addr-203-0-113-10', address: VIP_1, pool: 'pool-a', vrid: 50 }]);
    expect(plan.leaseCreates).toEqual([]);
  });
});

describe('status: Programmed and Ready from the owners, pool status, idempotence', () => {
  const owned = (o: { owner: string; generation?: number; endpoints?: string[] }) => ({
    configuredAddresses: { [VIP_1]: { owner: o.owner, observedGeneration: o.generation ?? 1, endpoints: o.endpoints ?? ['198.51.100.5:8080/tcp'], podIPs: ['198.51.100.5'] } },
  });
  it.each([
    ['no holder', '', {}, [], 'NoOwner', 'False', 'False'],
    ['owner has not reported', 'agent-a', {}, ['agent-a'], 'NotProgrammed', 'False', 'False'],
    ['an entry by a former owner', 'agent-b', owned({ owner: 'agent-a' }), ['agent-a', 'agent-b'], 'NotProgrammed', 'False', 'False'],
    ['an older generation', 'agent-a', owned({ owner: 'agent-a', generation: 0 }), ['agent-a'], 'NotProgrammed', 'False', 'False'],
    ['owner not live', 'agent-a', owned({ owner: 'agent-a' }), [], 'OwnerNotLive', 'True', 'False'],
    ['no endpoints', 'agent-a', { configuredAddresses: { [VIP_1]: { owner: 'agent-a', observedGeneration: 1 } } }, ['agent-a'], 'NoReadyEndpoints', 'True', 'False'],
    ['programmed with endpoints by a live owner', 'agent-a', owned({ owner: 'agent-a' }), ['agent-a'], 'Ready', 'True', 'True'],
  ])('%s', (_what, holder, status, live, readyReason, programmed, ready) => {
    const plan = planLeaderDuties(
      baseInput({
        mappings: [entry('m', { status })],
        addressLeases: [addressLease(VIP_1, { vrid: 1, holder })],
        agents: live.map((name) => ({ name, live: true })),
      }),
    );
    expect(condition(plan, 'm', 'Programmed')?.status).toBe(programmed);
    expect(condition(plan, 'm', 'Ready')).toMatchObject({ status: ready, reason: readyReason });
  });

  it('pool status lists addresses in use with owner, id, transitions and the time the owner took it', () => {
    const plan = planLeaderDuties(baseInput({ mappings: [entry('m')], addressLeases: [addressLease(VIP_1, { vrid: 7, holder: 'agent-a', transitions: 3 })] }));
    expect(plan.poolWrites).toEqual([
      {
        name: 'pool-a',
        status: {
          observedGeneration: 1,
          addresses: [{ address: VIP_1, owner: 'agent-a', vrid: 7, lastTransitionTime: '2026-01-01T00:00:05Z', transitions: 3 }],
          conditions: [expect.objectContaining({ type: 'Ready', status: 'True', reason: 'AddressesAvailable' })],
        },
      },
    ]);
    expect(plan.events).toContainEqual(expect.objectContaining({ reason: 'OwnerChanged', message: `${VIP_1} is now owned by agent-a` }));
  });

  it('a second pass over what the first wrote writes nothing and emits nothing', () => {
    const mappings = [entry('a', { namespace: 'x' }), entry('b', { namespace: 'y', created: '2026-02-01T00:00:00Z' }), entry('bad', { ports: [{ port: 0 }] })];
    const { plans } = settle(baseInput({ mappings, services: [] }));
    const last = plans.at(-1)!;
    expect(plans.length).toBeLessThanOrEqual(3);
    expect([last.mappingWrites, last.poolWrites, last.events, last.leaseCreates, last.leaseDeletes]).toEqual([[], [], [], [], []]);
  });

  it('Accepted keeps its lastTransitionTime across passes and edits while it stays True', () => {
    const settled = settle(baseInput({ mappings: [entry('m')] })).input;
    const edited = edit(settled, 'm', 'default', { ports: [{ port: 80 }, { port: 81 }] });
    const plan = planLeaderDuties({ ...edited, now: T3 });
    expect(condition(plan, 'm', 'Accepted')).toMatchObject({ status: 'True', lastTransitionTime: T1, observedGeneration: 2 });
    expect(writeOf(plan, 'm')?.claims).toEqual([`${VIP_1}:80/tcp`, `${VIP_1}:81/tcp`]);
  });
});

// ---- properties ----

const ADDRESSES = [VIP_1, VIP_2, VIP_3, '203.0.113.13'];
const arbMapping = fc.record({
  namespace: fc.constantFrom('a', 'b', 'c'),
  addresses: fc.uniqueArray(fc.constantFrom(...ADDRESSES), { minLength: 1, maxLength: 2 }),
  ports: fc.uniqueArray(fc.record({ port: fc.constantFrom(80, 81, 82), protocol: fc.constantFrom('tcp', 'udp') }), { minLength: 1, maxLength: 2, selector: (p) => `${p.port}/${p.protocol}` }),
  created: fc.integer({ min: 0, max: 5 }).map((s) => `2026-01-01T00:00:0${s}Z`),
});
const arbCluster = fc.uniqueArray(arbMapping, { minLength: 1, maxLength: 8, selector: (m) => JSON.stringify(m) }).map((list) =>
  list.map((m, i) => entry(`m${i}`, m)),
);

function acceptedKeys(input: LeaderInput, plan: LeaderPlan): Map<string, string> {
  const owners = new Map<string, string>();
  for (const e of input.mappings) {
    if (!e.ok || plan.verdicts.get(`${e.mapping.namespace}/${e.mapping.name}`)?.accepted !== true) continue;
    for (const a of e.mapping.spec.addresses) {
      for (const p of e.mapping.spec.ports) {
        const k = `${a}:${p.port}/${p.protocol}`;
        if (owners.has(k)) throw new Error(`${k} accepted for ${owners.get(k)} and ${e.mapping.name}`);
        owners.set(k, `${e.mapping.namespace}/${e.mapping.name}`);
      }
    }
  }
  return owners;
}

/** Every Mapping refused for a clash names winners that are accepted (never both refused). */
function checkWinners(plan: LeaderPlan): void {
  for (const v of plan.verdicts.values()) {
    if (!v.accepted && v.reason === 'PortConflict') for (const w of v.winners ?? []) expect(plan.verdicts.get(w)).toEqual({ accepted: true });
  }
}

function summary(plan: LeaderPlan): string {
  return JSON.stringify({ ...plan, verdicts: [...plan.verdicts.entries()].sort() });
}

describe('properties', () => {
  it('shuffled input gives the same plan', () => {
    fc.assert(
      fc.property(arbCluster, fc.func(fc.integer()), (cluster, order) => {
        const shuffled = [...cluster].sort((x, y) => order(x) - order(y));
        const leases = [addressLease(VIP_2, { vrid: 4 }), addressLease('203.0.113.99', { vrid: 1 })];
        const a = planLeaderDuties(baseInput({ mappings: cluster, addressLeases: leases }));
        const b = planLeaderDuties(baseInput({ mappings: shuffled, addressLeases: [...leases].reverse() }));
        expect(summary(b)).toBe(summary(a));
      }),
    );
  });

  it('never two accepted Mappings share (address, protocol, port); every clash names an accepted winner', () => {
    fc.assert(
      fc.property(arbCluster, (cluster) => {
        const input = baseInput({ mappings: cluster });
        const plan = planLeaderDuties(input);
        acceptedKeys(input, plan);
        checkWinners(plan);
      }),
    );
  });

  it('a Mapping edited to clash never wins against an accepted holder', () => {
    fc.assert(
      fc.property(arbCluster, fc.nat(), fc.nat(), (cluster, i, j) => {
        const settled = settle(baseInput({ mappings: cluster })).input;
        const first = planLeaderDuties({ ...settled, now: T3 });
        const holders = acceptedKeys(settled, first);
        const keys = [...holders.keys()].sort();
        if (keys.length === 0) return;
        const key = keys[i % keys.length]!;
        const holder = holders.get(key)!;
        const others = settled.mappings.filter((e) => e.ok && `${e.mapping.namespace}/${e.mapping.name}` !== holder);
        const target = others[j % Math.max(1, others.length)];
        if (target === undefined || !target.ok) return;
        const [address, rest] = key.split(':') as [string, string];
        const [port, protocol] = rest.split('/') as [string, string];
        const t = target.mapping;
        const edited = edit(settled, t.name, t.namespace, {
          addresses: [...new Set([...t.spec.addresses, address])],
          ports: [...new Map([...t.spec.ports, { port: Number(port), protocol }].map((p) => [`${p.port}/${p.protocol}`, p])).values()],
        });
        const plan = planLeaderDuties({ ...edited, now: T3 });
        expect(plan.verdicts.get(holder)).toEqual({ accepted: true });
        expect(plan.verdicts.get(`${t.namespace}/${t.name}`)).toMatchObject({ accepted: false });
        acceptedKeys(edited, plan);
        checkWinners(plan);
      }),
    );
  });

  it('router ids are unique per interface and stable across passes while leases live', () => {
    const pools = [pool('pool-a', { addresses: ['203.0.113.10-203.0.113.11'], interface: 'eth1', vridRange: { first: 5, last: 9 } }), pool('pool-b', { addresses: ['203.0.113.12-203.0.113.13'] })];
    fc.assert(
      fc.property(arbCluster, arbCluster, (before, after) => {
        const one = settle(baseInput({ pools, mappings: before })).input;
        const two = settle({ ...one, mappings: after.map((e, i) => (e.ok ? entry(`n${i}`, { namespace: e.mapping.namespace, addresses: [...e.mapping.spec.addresses], ports: [...e.mapping.spec.ports] }) : e)) }).input;
        for (const state of [one, two]) {
          const seen = new Map<string, string>();
          for (const l of state.addressLeases) {
            const vrid = l.annotations['smartnat.aureacentral.com/vrid'];
            const itf = l.annotations['smartnat.aureacentral.com/interface'] ?? '';
            for (const [k, other] of seen) {
              const [v2, i2] = k.split('|') as [string, string];
              if (v2 === vrid && (i2 === itf || i2 === '' || itf === '')) throw new Error(`vrid ${vrid} on ${l.name} and ${other}`);
            }
            seen.set(`${vrid}|${itf}`, l.name);
          }
        }
        for (const l of two.addressLeases) {
          const earlier = one.addressLeases.find((x) => x.name === l.name);
          if (earlier) expect(l.annotations).toEqual(earlier.annotations);
        }
      }),
    );
  });
});

describe('status.egress (ADR 0009)', () => {
  it('names the gateway the pool pairs with the egress address, and settles (no rewrite on the next pass)', () => {
    const input = baseInput({ pools: [pool('pool-a', { addresses: ['203.0.113.10-203.0.113.19'], gateways: ['198.51.100.110-198.51.100.119'] })], mappings: [entry('m', { addresses: [VIP_2], egress: { enabled: true } })] });
    const { plans } = settle(input);
    expect(writeOf(plans[0]!, 'm')?.egress).toEqual({ address: VIP_2, gateway: '198.51.100.111' });
    expect(plans[plans.length - 1]!.mappingWrites).toEqual([]);
  });

  it('says why there is no gateway, and writes nothing when egress is off or the Mapping is refused', () => {
    const noGateways = planLeaderDuties(baseInput({ mappings: [entry('m', { egress: { enabled: true } })] }));
    expect(writeOf(noGateways, 'm')?.egress).toEqual({ address: VIP_1, message: 'pool pool-a: the AddressPool has no spec.egress.gateways' });
    const off = planLeaderDuties(baseInput({ mappings: [entry('m', { egress: { enabled: false } })] }));
    expect(writeOf(off, 'm')).not.toHaveProperty('egress');
    const refused = planLeaderDuties(baseInput({ mappings: [entry('m', { addresses: [OUTSIDE], egress: { enabled: true } })] }));
    expect(writeOf(refused, 'm')).not.toHaveProperty('egress');
  });
});
