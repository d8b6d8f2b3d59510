import { describe, expect, it } from '@jest/globals';
import { DEFAULT_SETTINGS } from '../model/settings.js';
import type { DesiredDataPlane, DesiredPort } from './desired.js';
import { endpointAddresses, FAILED_ROUNDS_TO_REPORT, internalNextHops, reachabilitySamples, rotatingPick, roundAnswered } from './reachability.js';

const POD_1 = '198.51.100.21';
const POD_2 = '198.51.100.22';
const POD_FAR = '198.51.200.5';
const ROUTER_INT = '198.51.100.1';

function port(endpoints: string[]): DesiredPort {
  return { mapping: { namespace: 'demo', name: 'echo' }, protocol: 'tcp', port: 8080, sources: [], endpoints: endpoints.map((ip) => ({ ip, port: 8080 })) };
}
function desired(...ports: DesiredPort[][]): DesiredDataPlane {
  return { settings: DEFAULT_SETTINGS, uplinks: [], addresses: ports.map((p, i) => ({ address: `203.0.113.${10 + i}`, uplink: 'ext0', owned: i === 0, ports: p })) };
}

describe('internal reachability', () => {
  it('tries every ready endpoint of every eligible address, once each, in numeric order', () => {
    expect(endpointAddresses(undefined)).toEqual([]);
    expect(endpointAddresses(desired([port([POD_2, POD_1])], [port([POD_1]), port([])]))).toEqual([POD_1, POD_2]);
  });

  it('walks a long list a few at a time, round after round', () => {
    const items = ['a', 'b', 'c', 'd', 'e'];
    expect([0, 1, 2].map((r) => rotatingPick(items, r, 2))).toEqual([['a', 'b'], ['c', 'd'], ['e', 'a']]);
    expect(rotatingPick(['a'], 7, 3)).toEqual(['a']);
  });

  it('probes the next hop on an internal interface: the endpoint on its segment, the gateway when routed; once per hop', () => {
    const hops = internalNextHops(
      [
        { endpoint: POD_1, device: 'int0' },
        { endpoint: POD_FAR, device: 'int0', gateway: ROUTER_INT },
        { endpoint: '198.51.200.6', device: 'int0', gateway: ROUTER_INT },
        { endpoint: '198.51.201.7', device: 'ext0', gateway: '203.0.113.1' },
        { endpoint: '198.51.202.8' },
      ],
      new Set(['int0']),
    );
    expect(hops).toEqual([{ device: 'int0', hop: POD_1 }, { device: 'int0', hop: ROUTER_INT }]);
  });

  it('no ready endpoint: nothing to judge', () => {
    expect(reachabilitySamples(0, 5, ['int0'])).toEqual([]);
  });

  it('reports the internal interfaces unreachable only after rounds in a row without any answer', () => {
    expect(roundAnswered([{ device: 'int0', hop: POD_1, answered: false }, { device: 'int0', hop: POD_2, answered: true }])).toBe(true);
    expect(roundAnswered([])).toBe(false);
    expect(reachabilitySamples(2, FAILED_ROUNDS_TO_REPORT - 1, ['int0'])).toEqual([{ name: 'int0', role: 'internal', up: true, check: 'reachability' }]);
    expect(reachabilitySamples(2, FAILED_ROUNDS_TO_REPORT, ['int1', 'int0']).map((s) => `${s.name}:${s.up}`)).toEqual(['int0:false', 'int1:false']);
  });
});
