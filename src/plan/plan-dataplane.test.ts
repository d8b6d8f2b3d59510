import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { DEFAULT_SETTINGS } from '../model/settings.js';
import type { Snapshot } from '../model/snapshot.js';
import {
  CLIENTS_ALLOWED_NET, POD_1, POD_2, POD_3, VIP_1, VIP_2, VIP_B, VIP_NOT_IN_POOL, agent, goldenSnapshots, mapping, ok, pool, service, slice, snapshot,
} from '../dataplane/testing/fixtures.js';
import { planDataPlane } from './plan-dataplane.js';
import { resolveEndpoints } from './endpoints.js';

const echo = service('echo', [{ name: 'http', port: 80 }]);
const echoMapping = mapping({ name: 'echo', addresses: [VIP_1], ports: [{ port: 8080, servicePort: 80 }], allowedSources: [CLIENTS_ALLOWED_NET] });

function plan(s: Snapshot) {
  return planDataPlane(s, DEFAULT_SETTINGS);
}

describe('resolveEndpoints (EndpointSlice semantics of DESIGN.md 2.1)', () => {
  it.each([
    {
      desc: 'target port per slice by the service port name',
      slices: [
        slice({ name: 'a', service: 'echo', ports: [{ name: 'http', port: 8080 }, { name: 'other', port: 9 }], endpoints: [POD_1] }),
        slice({ name: 'b', service: 'echo', ports: [{ name: 'http', port: 8081 }], endpoints: [POD_2] }),
      ],
      want: [`${POD_1}:8080`, `${POD_2}:8081`],
      reason: 'ready',
    },
    {
      desc: 'an endpoint in two slices counts once',
      slices: [
        slice({ name: 'a', service: 'echo', ports: [{ name: 'http', port: 8080 }], endpoints: [POD_1, POD_2] }),
        slice({ name: 'b', service: 'echo', ports: [{ name: 'http', port: 8080 }], endpoints: [POD_2] }),
      ],
      want: [`${POD_1}:8080`, `${POD_2}:8080`],
      reason: 'ready',
    },
    {
      desc: 'ready absent means ready; ready false is left out',
      slices: [slice({ name: 'a', service: 'echo', ports: [{ name: 'http', port: 8080 }], endpoints: [POD_1, { ip: POD_2, ready: false }] })],
      want: [`${POD_1}:8080`],
      reason: 'ready',
    },
    {
      desc: 'serving-terminating endpoints are used when none is ready',
      slices: [slice({ name: 'a', service: 'echo', ports: [{ name: 'http', port: 8080 }], endpoints: [{ ip: POD_1, ready: false, serving: true, terminating: true }, { ip: POD_2, ready: false, serving: false, terminating: true }] })],
      want: [`${POD_1}:8080`],
      reason: 'servingTerminating',
    },
    {
      desc: 'serving-terminating endpoints are not used while one is ready',
      slices: [slice({ name: 'a', service: 'echo', ports: [{ name: 'http', port: 8080 }], endpoints: [{ ip: POD_1, ready: false, serving: true, terminating: true }, POD_3] })],
      want: [`${POD_3}:8080`],
      reason: 'ready',
    },
    {
      desc: 'IPv6 slices and slices of other services are ignored',
      slices: [
        slice({ name: 'a', service: 'echo', addressType: 'IPv6', ports: [{ name: 'http', port: 8080 }], endpoints: ['2001:db8::1'] }),
        slice({ name: 'b', service: 'other', ports: [{ name: 'http', port: 8080 }], endpoints: [POD_1] }),
        slice({ name: 'c', service: 'echo', namespace: 'elsewhere', ports: [{ name: 'http', port: 8080 }], endpoints: [POD_1] }),
      ],
      want: [],
      reason: 'noReadyEndpoints',
    },
  ])('$desc', ({ slices, want, reason }) => {
    const got = resolveEndpoints({ service: echo, slices, servicePort: 80, protocol: 'tcp' });
    expect(got.endpoints.map((e) => `${e.ip}:${e.port}`)).toEqual(want);
    expect(got.reason).toBe(reason);
  });

  it('reports a service port that does not exist (or has another protocol)', () => {
    expect(resolveEndpoints({ service: echo, slices: [], servicePort: 80, protocol: 'udp' }).reason).toBe('servicePortMissing');
    expect(resolveEndpoints({ service: echo, slices: [], servicePort: 81, protocol: 'tcp' }).reason).toBe('servicePortMissing');
  });
});

describe('planDataPlane', () => {
  const base = { services: [echo], endpointSlices: [slice({ name: 'e', service: 'echo', ports: [{ name: 'http', port: 8080 }], endpoints: [POD_1] })] };

  it('plans one port with its endpoints, sources and uplink', () => {
    const { desired, leftOut } = plan(snapshot({ ...base, mappings: [ok(echoMapping)] }));
    expect(leftOut).toEqual([]);
    expect(desired.addresses).toEqual([
      { address: VIP_1, uplink: 'ext0', owned: true, ports: [{ mapping: { namespace: 'default', name: 'echo' }, protocol: 'tcp', port: 8080, sources: [CLIENTS_ALLOWED_NET], endpoints: [{ ip: POD_1, port: 8080 }] }] },
    ]);
    expect(desired.uplinks).toEqual([{ name: 'ext0', index: 1, mark: 0x10, table: 7801, pref: 7801, routes: [
      { destination: '203.0.113.0/24', device: 'ext0', scope: 'link' },
      { destination: 'default', gateway: '203.0.113.1', device: 'ext0', scope: 'global' },
    ] }]);
  });

  it.each([
    { desc: 'address outside every pool', snap: { mappings: [ok(mapping({ name: 'echo', addresses: [VIP_NOT_IN_POOL], ports: [{ port: 1 }] }))] }, reason: 'addressNotInPool' },
    { desc: 'pool closed to the namespace', snap: { pools: [pool('edge', ['203.0.113.10'], { allowedNamespaces: ['prod'] })], mappings: [ok(echoMapping)] }, reason: 'namespaceNotAllowed' },
    { desc: 'agent not selected by the pool', snap: { pools: [pool('edge', ['203.0.113.10'], { agentSelector: { zone: 'b' } })], mappings: [ok(echoMapping)] }, reason: 'notEligible' },
    { desc: 'agent excluded by a matchExpression', snap: { pools: [pool('edge', ['203.0.113.10'], { agentMatchExpressions: [{ key: 'zone', operator: 'Exists', values: [] }] })], mappings: [ok(echoMapping)] }, reason: 'notEligible' },
    { desc: 'pool interface missing on the agent', snap: { pools: [pool('edge', ['203.0.113.10'], { interface: 'ext9' })], mappings: [ok(echoMapping)] }, reason: 'noExternalInterface' },
    { desc: 'no external subnet holds the address', snap: { pools: [pool('edge', ['198.19.0.10'])], mappings: [ok(mapping({ name: 'echo', addresses: ['198.19.0.10'], ports: [{ port: 1 }] }))] }, reason: 'noExternalInterface' },
    { desc: 'invalid Mapping', snap: { mappings: [{ ok: false as const, ref: { namespace: 'default', name: 'bad' }, errors: [{ field: 'spec.ports', reason: 'FieldValueRequired' as const, message: 'Required value' }] }] }, reason: 'invalidMapping' },
    { desc: 'Mapping being deleted', snap: { mappings: [ok({ ...echoMapping, deleting: true })] }, reason: 'mappingDeleting' },
    { desc: 'Service missing (rejected)', snap: { mappings: [ok(echoMapping)], services: [] }, reason: 'serviceMissing' },
    { desc: 'no ready endpoints (rejected)', snap: { mappings: [ok(echoMapping)], endpointSlices: [] }, reason: 'noReadyEndpoints' },
    { desc: 'service port missing (rejected)', snap: { mappings: [ok(mapping({ name: 'echo', addresses: [VIP_1], ports: [{ port: 8080, servicePort: 81 }] }))] }, reason: 'servicePortMissing' },
    { desc: 'address not owned (standby)', snap: { mappings: [ok(echoMapping)], owned: new Set<string>() }, reason: 'notOwned' },
  ])('leaves out with a reason: $desc', ({ snap, reason }) => {
    const { leftOut } = plan(snapshot({ ...base, ...snap }));
    expect(leftOut.map((l) => l.reason)).toEqual([reason]);
  });

  it('an ExternalName Service is rejected as having no endpoints, and the message says why', () => {
    const { leftOut } = plan(snapshot({ ...base, mappings: [ok(echoMapping)], services: [{ ...echo, externalName: 'echo.example.com' }], endpointSlices: [] }));
    expect(leftOut).toMatchObject([{ reason: 'noReadyEndpoints', effect: 'reject', message: 'Service default/echo is of type ExternalName (echo.example.com): it has no endpoints to forward to' }]);
  });

  it('gives a clashing address:port/proto to the oldest Mapping, whatever the input order', () => {
    const older = mapping({ name: 'zz-older', serviceName: 'echo', addresses: [VIP_1], ports: [{ port: 8080, servicePort: 80 }], created: '2026-01-01T00:00:00Z' });
    const newer = mapping({ name: 'aa-newer', serviceName: 'echo', addresses: [VIP_1], ports: [{ port: 8080, servicePort: 80 }], created: '2026-06-01T00:00:00Z' });
    for (const order of [[older, newer], [newer, older]]) {
      const { desired, leftOut } = plan(snapshot({ ...base, mappings: order.map(ok) }));
      expect(desired.addresses[0]?.ports.map((p) => p.mapping.name)).toEqual(['zz-older']);
      expect(leftOut).toMatchObject([{ reason: 'portConflict', mapping: { name: 'aa-newer' } }]);
    }
  });

  it('with the leader deciding (claimsFrom leader), programs only the claims the leader granted: an edited old Mapping cannot grab a port in use', () => {
    const holder = { ...mapping({ name: 'zz-holder', serviceName: 'echo', addresses: [VIP_1], ports: [{ port: 8080, servicePort: 80 }], created: '2026-06-01T00:00:00Z' }) };
    const grabber = mapping({ name: 'aa-old-edited', serviceName: 'echo', addresses: [VIP_1], ports: [{ port: 8080, servicePort: 80 }, { port: 9090, servicePort: 80 }], created: '2026-01-01T00:00:00Z' });
    const withClaims = (m: typeof holder, claims: string[]) => ({ ...m, status: { ...m.status, claims } });
    const { desired, leftOut } = plan(snapshot({
      ...base,
      claimsFrom: 'leader',
      mappings: [ok(withClaims(holder, [`${VIP_1}:8080/tcp`])), ok(withClaims(grabber, [`${VIP_1}:9090/tcp`]))],
    }));
    expect(desired.addresses[0]?.ports.map((p) => `${p.mapping.name} ${p.port}`)).toEqual(['zz-holder 8080', 'aa-old-edited 9090']);
    expect(leftOut).toMatchObject([{ reason: 'notClaimed', mapping: { name: 'aa-old-edited' }, port: 8080 }]);
    // Without the leader's word (a snapshot file), the oldest wins, as before.
    const local = plan(snapshot({ ...base, mappings: [ok(holder), ok(grabber)] }));
    expect(local.desired.addresses[0]?.ports.map((p) => `${p.mapping.name} ${p.port}`)).toEqual(['aa-old-edited 8080', 'aa-old-edited 9090']);
  });

  it('with the leader deciding, a Mapping the leader has not judged yet is programmed early only when no one else wants its pairs (ADR 0008 amendment 3)', () => {
    // Free: programmed before the grant.
    const early = plan(snapshot({ ...base, claimsFrom: 'leader', mappings: [ok(echoMapping)] }));
    expect(early.desired.addresses.map((a) => [a.address, a.ports.map((p) => `${p.mapping.name} ${p.port}`)])).toEqual([[VIP_1, ['echo 8080']]]);
    expect(early.leftOut).toEqual([]);
    // Another new Mapping asks for the same pair: neither before the leader's verdict.
    const rival = mapping({ name: 'rival', serviceName: 'echo', addresses: [VIP_1], ports: [{ port: 8080, servicePort: 80 }], created: '2026-01-01T00:00:00Z' });
    const clash = plan(snapshot({ ...base, claimsFrom: 'leader', mappings: [ok(echoMapping), ok(rival)] }));
    expect(clash.desired.addresses).toEqual([]);
    expect(clash.leftOut.map((l) => `${l.mapping?.name} ${l.reason}`)).toEqual(['echo notClaimed', 'rival notClaimed']);
    // The leader judged it (refused, so no claims): dropped, though no claim changed.
    const refused = { ...echoMapping, status: { ...echoMapping.status, observedGeneration: 1, invalid: 'PortConflict: ...' } };
    expect(plan(snapshot({ ...base, claimsFrom: 'leader', mappings: [ok(refused)] })).desired.addresses).toEqual([]);
  });

  it('numbers uplinks by name and places each address on the uplink whose subnet holds it', () => {
    const m = mapping({ name: 'echo', addresses: [VIP_B, VIP_1], ports: [{ port: 8080, servicePort: 80 }] });
    const { desired } = plan(snapshot({ ...base, agent: agent({ twoUplinks: true }), mappings: [ok(m)] }));
    expect(desired.uplinks.map((u) => [u.name, u.mark, u.table])).toEqual([['ext0', 0x10, 7801], ['ext1', 0x20, 7802]]);
    expect(desired.addresses.map((a) => [a.address, a.uplink])).toEqual([[VIP_B, 'ext1'], [VIP_1, 'ext0']]);
  });

  it('keeps rules of not-owned eligible addresses, gated off', () => {
    const m = mapping({ name: 'echo', addresses: [VIP_1, VIP_2], ports: [{ port: 8080, servicePort: 80 }] });
    const { desired } = plan(snapshot({ ...base, owned: new Set([VIP_2]), mappings: [ok(m)] }));
    expect(desired.addresses.map((a) => [a.address, a.owned])).toEqual([[VIP_1, false], [VIP_2, true]]);
  });
});

function shuffled<T>(items: readonly T[], keys: readonly number[]): T[] {
  return items.map((item, i) => ({ item, k: keys[i % keys.length] ?? 0, i })).sort((a, b) => a.k - b.k || a.i - b.i).map((x) => x.item);
}

describe('determinism', () => {
  it('gives identical output for shuffled input (every golden snapshot)', () => {
    const snaps = Object.values(goldenSnapshots());
    fc.assert(
      fc.property(fc.integer({ min: 0, max: snaps.length - 1 }), fc.array(fc.integer(), { minLength: 1, maxLength: 12 }), (which, keys) => {
        const s = snaps[which]!;
        const reordered: Snapshot = {
          ...s,
          mappings: shuffled(s.mappings, keys),
          services: shuffled(s.services, keys),
          endpointSlices: shuffled(s.endpointSlices, keys).map((sl) => ({ ...sl, endpoints: shuffled(sl.endpoints, keys) })),
          pools: shuffled(s.pools, [...keys].reverse()),
          agent: { ...s.agent, interfaces: shuffled(s.agent.interfaces, keys) },
        };
        expect(JSON.stringify(plan(reordered))).toBe(JSON.stringify(plan(s)));
      }),
      { numRuns: 200 },
    );
  });
});

describe('planDataPlane: egress (ADR 0009)', () => {
  const gateways = { egress: { gateways: [{ first: 0xc6336464, last: 0xc63364c8, text: '198.51.100.100-198.51.100.200' }] } };
  const egressPool = pool('edge', ['203.0.113.10-203.0.113.50', '192.0.2.10-192.0.2.50'], gateways);
  const web = service('web', [{ name: 'http', port: 80 }]);
  const slices = [
    slice({ name: 'echo-1', service: 'echo', ports: [{ name: 'http', port: 8080 }], endpoints: [POD_1, POD_2] }),
    slice({ name: 'web-1', service: 'web', ports: [{ name: 'http', port: 8080 }], endpoints: [POD_2, POD_3] }),
  ];
  const old = mapping({ name: 'echo', addresses: [VIP_2, VIP_1], ports: [{ port: 8080, servicePort: 80 }], egress: VIP_1, created: '2026-11-26T09:00:00Z' });
  const young = mapping({ name: 'web', addresses: [VIP_2], ports: [{ port: 9090, servicePort: 80 }], egress: VIP_2 });

  it('the pods of an egress Mapping leave with its egress address, on that address\'s uplink; a pod in two egress Mappings stays with the older', () => {
    const p = plan(snapshot({ pools: [egressPool], owned: new Set([VIP_1]), mappings: [ok(young), ok(old)], services: [echo, web], endpointSlices: slices }));
    expect(p.desired.egress).toEqual([
      { address: VIP_1, uplink: 'ext0', owned: true, mappings: [{ namespace: 'default', name: 'echo' }], sources: [POD_1, POD_2] },
      { address: VIP_2, uplink: 'ext0', owned: false, mappings: [{ namespace: 'default', name: 'web' }], sources: [POD_3] },
    ]);
    expect(p.desired.internalInterfaces).toEqual(['int0']);
    expect(p.leftOut.filter((l) => l.reason === 'egressConflict')).toEqual([
      expect.objectContaining({ mapping: { namespace: 'default', name: 'web' }, address: VIP_2, message: expect.stringContaining(`${POD_2} (default/echo)`) }),
    ]);
  });

  it('a Mapping without egress adds no egress state at all (existing goldens unchanged)', () => {
    const p = plan(snapshot({ pools: [egressPool], mappings: [ok(echoMapping)], services: [echo], endpointSlices: slices }));
    expect(p.desired).not.toHaveProperty('egress');
    expect(p.desired).not.toHaveProperty('internalInterfaces');
  });

  it('no egress, with a reason, when the pool has no gateway for the address or the leader granted no port on it', () => {
    const noGateway = plan(snapshot({ mappings: [ok(old)], services: [echo], endpointSlices: slices }));
    expect(noGateway.desired.egress).toBeUndefined();
    expect(noGateway.leftOut).toContainEqual(expect.objectContaining({ reason: 'noEgressGateway', address: VIP_1, message: expect.stringContaining('no spec.egress.gateways') }));
    const unclaimed = plan(snapshot({ pools: [egressPool], claimsFrom: 'leader', mappings: [ok({ ...old, status: { ...old.status, claims: [`${VIP_2}:8080/tcp`] } })], services: [echo], endpointSlices: slices }));
    expect(unclaimed.desired.egress).toBeUndefined();
    expect(unclaimed.leftOut).toContainEqual(expect.objectContaining({ reason: 'notClaimed', address: VIP_1, message: expect.stringContaining('no egress') }));
  });

  it('is the same whatever the order of Mappings and slices', () => {
    const a = plan(snapshot({ pools: [egressPool], mappings: [ok(young), ok(old)], services: [echo, web], endpointSlices: slices }));
    const b = plan(snapshot({ pools: [egressPool], mappings: [ok(old), ok(young)], services: [web, echo], endpointSlices: [...slices].reverse() }));
    expect(b).toEqual(a);
  });
});
