// Service and EndpointSlice readers: API defaults, condition semantics, refusals with field paths.
import { describe, expect, it } from '@jest/globals';

import { parseEndpointSlice, parseService } from './core.js';
import type { ParseResult } from './types.js';

function ok<T>(result: ParseResult<T>): T {
  if (!result.ok) throw new Error(result.errors.map((e) => `${e.field}: ${e.message}`).join('\n'));
  return result.value;
}

const META = { name: 'echo', namespace: 'team-a', uid: 'u-1' };

describe('parseService', () => {
  it('reads a ClusterIP Service with named, numbered and defaulted ports', () => {
    const svc = ok(
      parseService({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: META,
        spec: {
          type: 'ClusterIP',
          clusterIP: '198.19.0.10',
          ports: [
            { name: 'http', port: 80, protocol: 'TCP', targetPort: 'web' },
            { name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 },
            { port: 9000 },
          ],
        },
      }),
    );
    expect(svc).toEqual({
      namespace: 'team-a',
      name: 'echo',
      uid: 'u-1',
      type: 'ClusterIP',
      clusterIP: '198.19.0.10',
      headless: false,
      ports: [
        { name: 'http', port: 80, protocol: 'TCP', targetPort: 'web' },
        { name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 },
        { name: '', port: 9000, protocol: 'TCP', targetPort: 9000 },
      ],
    });
  });

  it('a headless Service has no clusterIP', () => {
    const svc = ok(parseService({ metadata: META, spec: { clusterIP: 'None', ports: [{ port: 80 }] } }));
    expect([svc.headless, svc.clusterIP, svc.type]).toEqual([true, undefined, 'ClusterIP']);
  });

  it('an ExternalName Service has no clusterIP', () => {
    const svc = ok(parseService({ metadata: META, spec: { type: 'ExternalName', externalName: 'db.example.com' } }));
    expect([svc.type, svc.clusterIP, svc.externalName, svc.ports]).toEqual(['ExternalName', undefined, 'db.example.com', []]);
  });

  it('a ClusterIP Service carries no externalName, even when the field is left over', () => {
    const svc = ok(parseService({ metadata: META, spec: { clusterIP: '198.19.0.10', externalName: 'db.example.com', ports: [{ port: 80 }] } }));
    expect(svc.externalName).toBeUndefined();
  });

  it.each([
    ['port 0', { ports: [{ port: 0 }] }, 'spec.ports[0].port'],
    ['protocol icmp', { ports: [{ port: 1, protocol: 'ICMP' }] }, 'spec.ports[0].protocol'],
    ['numeric targetPort 70000', { ports: [{ port: 1, targetPort: 70000 }] }, 'spec.ports[0].targetPort'],
    ['ports not a list', { ports: {} }, 'spec.ports'],
    ['unknown type', { type: 'Magic' }, 'spec.type'],
  ])('%s is refused at %s', (_name, spec, field) => {
    const result = parseService({ metadata: META, spec });
    expect(result.ok ? [] : result.errors.map((e) => e.field)).toEqual([field]);
  });
});

describe('parseEndpointSlice', () => {
  const slice = (endpoints: unknown[], extra: Record<string, unknown> = {}): unknown => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'echo-abc12', namespace: 'team-a', labels: { 'kubernetes.io/service-name': 'echo' } },
    addressType: 'IPv4',
    endpoints,
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { port: 53, protocol: 'UDP' }],
    ...extra,
  });

  it('reads endpoints, ports and the service-name label', () => {
    const s = ok(parseEndpointSlice(slice([{ addresses: ['198.51.100.5'], conditions: { ready: true, serving: true, terminating: false }, nodeName: 'n1' }])));
    expect(s).toEqual({
      namespace: 'team-a',
      name: 'echo-abc12',
      serviceName: 'echo',
      addressType: 'IPv4',
      endpoints: [{ addresses: ['198.51.100.5'], ready: true, serving: true, terminating: false, nodeName: 'n1' }],
      ports: [
        { name: 'http', port: 8080, protocol: 'TCP' },
        { name: '', port: 53, protocol: 'UDP' },
      ],
    });
  });

  it.each([
    ['no conditions: ready, serving, not terminating', {}, [true, true, false]],
    ['ready absent means ready', { serving: false }, [true, false, false]],
    ['serving absent follows ready', { ready: false }, [false, false, false]],
    ['terminating but serving', { ready: false, serving: true, terminating: true }, [false, true, true]],
  ])('%s', (_name, conditions, [ready, serving, terminating]) => {
    const s = ok(parseEndpointSlice(slice([{ addresses: ['198.51.100.6'], conditions }])));
    expect(s.endpoints[0]).toMatchObject({ ready, serving, terminating });
  });

  it('a slice without the service-name label has no serviceName; null endpoints are none', () => {
    const s = ok(parseEndpointSlice(slice([], { metadata: { name: 'x', namespace: 'team-a' }, endpoints: null })));
    expect([s.serviceName, s.endpoints]).toEqual([undefined, []]);
  });

  it('a port without a number (all ports) is kept without one', () => {
    const s = ok(parseEndpointSlice(slice([], { ports: [{ name: '' }] })));
    expect(s.ports).toEqual([{ name: '', protocol: 'TCP' }]);
  });

  it.each([
    ['an IPv4 slice with an IPv6 address', slice([{ addresses: ['2001:db8::1'] }]), 'endpoints[0].addresses[0]'],
    ['an endpoint without addresses', slice([{ conditions: {} }]), 'endpoints[0].addresses'],
    ['ready as a string', slice([{ addresses: ['198.51.100.5'], conditions: { ready: 'yes' } }]), 'endpoints[0].conditions.ready'],
    ['no addressType', { ...(slice([]) as object), addressType: undefined }, 'addressType'],
  ])('%s is refused at %s', (_name, raw, field) => {
    const result = parseEndpointSlice(raw);
    expect(result.ok ? [] : result.errors.map((e) => e.field)).toEqual([field]);
  });

  it('an IPv6 slice keeps its addresses as written', () => {
    const s = ok(parseEndpointSlice(slice([{ addresses: ['2001:db8::1'] }], { addressType: 'IPv6' })));
    expect(s.endpoints[0]?.addresses).toEqual(['2001:db8::1']);
  });
});
