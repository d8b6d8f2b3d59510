import { describe, expect, it } from '@jest/globals';
import { rawMapping } from '../plan/leader-testing.js';
import { dataPlaneKey, parseCluster, sameKey } from './snapshot.js';

const empty = { addressPools: [], services: [], endpointSlices: [] };

describe('parseCluster and dataPlaneKey (what a watch event costs the agent)', () => {
  it('parses an unchanged raw object once: the same object gives the same entry', () => {
    const raw = rawMapping('echo');
    const a = parseCluster({ ...empty, mappings: [raw] });
    const b = parseCluster({ ...empty, mappings: [raw] });
    expect(b.mappings[0]).toBe(a.mappings[0]);
    const changed = parseCluster({ ...empty, mappings: [rawMapping('echo', { generation: 2 })] });
    expect(changed.mappings[0]).not.toBe(a.mappings[0]);
  });

  it('keeps the key when only status the data plane does not read changes', () => {
    const before = dataPlaneKey(parseCluster({ ...empty, mappings: [rawMapping('echo', { status: { claims: ['203.0.113.10:80/TCP'] } })] }));
    const reported = rawMapping('echo', {
      status: {
        claims: ['203.0.113.10:80/TCP'],
        configuredAddresses: { '203.0.113.10': { owner: 'agent-a', podIPs: ['198.51.100.21'], endpoints: ['198.51.100.21:80/TCP'] } },
        conditions: [{ type: 'Ready', status: 'True', reason: 'Programmed', message: '', lastTransitionTime: '2026-01-01T00:00:00Z' }],
      },
    });
    expect(sameKey(before, dataPlaneKey(parseCluster({ ...empty, mappings: [reported] })))).toBe(true);
  });

  it('changes the key when the leader judges the generation, even with the same claims (a refused provisional Mapping)', () => {
    const unjudged = dataPlaneKey(parseCluster({ ...empty, mappings: [rawMapping('echo')] }));
    const refused = dataPlaneKey(parseCluster({ ...empty, mappings: [rawMapping('echo', { status: { observedGeneration: 1, invalid: 'PortConflict: x' } })] }));
    expect(sameKey(unjudged, refused)).toBe(false);
  });

  it('changes the key for claims, spec, deletion and for any other object', () => {
    const base = dataPlaneKey(parseCluster({ ...empty, mappings: [rawMapping('echo', { status: { claims: ['203.0.113.10:80/TCP'] } })] }));
    const variants = [
      rawMapping('echo', { status: { claims: [] } }),
      rawMapping('echo', { status: { claims: ['203.0.113.10:80/TCP'] }, ports: [{ port: 81 }] }),
      rawMapping('echo', { status: { claims: ['203.0.113.10:80/TCP'] }, deleting: true }),
    ];
    for (const v of variants) expect(sameKey(base, dataPlaneKey(parseCluster({ ...empty, mappings: [v] })))).toBe(false);
    const service = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'echo', namespace: 'default', uid: 's1', resourceVersion: '1' }, spec: { type: 'ClusterIP', clusterIP: '10.0.0.1', ports: [{ port: 80, protocol: 'TCP' }] } };
    const withService = dataPlaneKey(parseCluster({ ...empty, mappings: [rawMapping('echo', { status: { claims: ['203.0.113.10:80/TCP'] } })], services: [service] }));
    expect(sameKey(base, withService)).toBe(false);
    expect(sameKey(undefined, base)).toBe(false);
  });
});
