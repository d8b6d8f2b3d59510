import { describe, expect, it } from '@jest/globals';
import { parsePoolEntry } from '../api/ipv4.js';
import type { AddressPoolSpec, AddressRange } from '../api/types.js';
import { pool, service, slice } from '../dataplane/testing/fixtures.js';
import { egressGatewayOf, egressSourcesOf } from './egress.js';

function entries(texts: string[]): AddressRange[] {
  return texts.map((t) => {
    const r = parsePoolEntry(t);
    if (r === undefined) throw new Error(`bad fixture entry ${t}`);
    return r;
  });
}

const withGateways = (addresses: string[], gateways: string[]): AddressPoolSpec => ({
  ...pool('edge', []).spec,
  addresses: entries(addresses),
  egress: { gateways: entries(gateways) },
});

describe('egressGatewayOf: the i-th pool address goes with the i-th gateway', () => {
  it('aligns ascending addresses with ascending gateways across entries', () => {
    const spec = withGateways(['203.0.113.10-203.0.113.12', '192.0.2.10'], ['198.51.100.110', '198.51.100.120-198.51.100.125']);
    // Ascending pool order: 192.0.2.10, 203.0.113.10, .11, .12.
    expect(['192.0.2.10', '203.0.113.10', '203.0.113.11', '203.0.113.12'].map((a) => egressGatewayOf(spec, a))).toEqual([
      { ok: true, gateway: '198.51.100.110' },
      { ok: true, gateway: '198.51.100.120' },
      { ok: true, gateway: '198.51.100.121' },
      { ok: true, gateway: '198.51.100.122' },
    ]);
  });

  it('counts overlapping pool entries once, whatever their order', () => {
    const a = withGateways(['203.0.113.0/28', '203.0.113.10'], ['198.51.100.100-198.51.100.115']);
    const b = withGateways(['203.0.113.10', '203.0.113.0/28'], ['198.51.100.100-198.51.100.115']);
    expect(egressGatewayOf(a, '203.0.113.10')).toEqual({ ok: true, gateway: '198.51.100.110' });
    expect(egressGatewayOf(b, '203.0.113.10')).toEqual(egressGatewayOf(a, '203.0.113.10'));
  });

  it('says why there is no gateway: no egress, not in the pool, too few gateways, gateway inside the pool', () => {
    expect(egressGatewayOf({ ...pool('edge', []).spec, addresses: entries(['203.0.113.10']) }, '203.0.113.10')).toMatchObject({ ok: false, reason: 'poolWithoutEgress' });
    expect(egressGatewayOf(withGateways(['203.0.113.10'], ['198.51.100.110']), '203.0.113.11')).toMatchObject({ ok: false, reason: 'addressNotInPool' });
    expect(egressGatewayOf(withGateways(['203.0.113.10-203.0.113.11'], ['198.51.100.110']), '203.0.113.11')).toMatchObject({
      ok: false, reason: 'tooFewGateways', message: '203.0.113.11 is address #2 of its AddressPool, which lists fewer egress gateways',
    });
    expect(egressGatewayOf(withGateways(['203.0.113.10-203.0.113.11'], ['203.0.113.11']), '203.0.113.10')).toMatchObject({ ok: false, reason: 'gatewayInPool' });
  });
});

describe('egressSourcesOf', () => {
  it('takes every IPv4 endpoint of the Service, ready or not, once, sorted; other Services and namespaces are ignored', () => {
    const echo = service('echo', [{ port: 80 }]);
    const slices = [
      slice({ name: 'a', service: 'echo', ports: [{ port: 80 }], endpoints: ['198.51.100.30', { ip: '198.51.100.4', ready: false }] }),
      slice({ name: 'b', service: 'echo', ports: [{ port: 80 }], endpoints: ['198.51.100.30', '198.51.100.21'] }),
      slice({ name: 'c', service: 'other', ports: [{ port: 80 }], endpoints: ['198.51.100.99'] }),
      slice({ name: 'd', service: 'echo', namespace: 'elsewhere', ports: [{ port: 80 }], endpoints: ['198.51.100.98'] }),
    ];
    expect(egressSourcesOf(echo, slices)).toEqual(['198.51.100.4', '198.51.100.21', '198.51.100.30']);
  });
});
