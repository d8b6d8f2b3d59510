import { describe, expect, it } from '@jest/globals';
import { parseAgentFacts } from './agent-facts.js';
import { canonicalIpv4, isValidInterfaceName, parseCidr, parseInterfaceAddress } from './net.js';
import { DEFAULT_SETTINGS, conntrackMaxFor, maxUplinks, validateSettings } from './settings.js';

describe('net', () => {
  it.each([
    ['203.0.113.10', '203.0.113.10'],
    ['203.0.113.010', undefined],
    ['203.0.113', undefined],
    ['0x7f.0.0.1', undefined],
    ['256.0.0.1', undefined],
  ])('canonicalIpv4(%s) = %s', (text, want) => {
    expect(canonicalIpv4(text)).toBe(want);
  });

  it('normalises CIDRs and keeps the host part of interface addresses', () => {
    expect(parseCidr('198.18.1.77/24')?.text).toBe('198.18.1.0/24');
    expect(parseCidr('198.18.1.77')?.text).toBe('198.18.1.77/32');
    expect(parseCidr('0.0.0.0/0')?.text).toBe('0.0.0.0/0');
    expect(parseCidr('1.2.3.4/33')).toBeUndefined();
    expect(parseInterfaceAddress('203.0.113.2/24')).toMatchObject({ text: '203.0.113.2/24', subnet: { text: '203.0.113.0/24' } });
  });

  it.each([
    ['eth0', true], ['ext0.100', true], ['a'.repeat(15), true], ['a'.repeat(16), false], ['', false],
    ['eth0:1', false], ['eth 0', false], ['a/b', false], ['..', false], ['eth0;rm', false],
  ])('isValidInterfaceName(%j) = %s', (name, want) => {
    expect(isValidInterfaceName(name)).toBe(want);
  });
});

describe('settings', () => {
  it('accepts the defaults and numbers 15 uplinks with them', () => {
    expect(validateSettings(DEFAULT_SETTINGS)).toEqual([]);
    expect(maxUplinks(DEFAULT_SETTINGS)).toBe(15);
  });

  it('sizes nf_conntrack_max as kube-proxy does', () => {
    expect([conntrackMaxFor(1), conntrackMaxFor(2), conntrackMaxFor(8)]).toEqual([131072, 131072, 262144]);
  });

  it.each([
    { desc: 'overlap with kube-proxy', s: { masqueradeMark: 0x4000 }, problem: 'overlapsForeignBits' },
    { desc: 'overlap with Cilium', s: { uplinkMarkMask: 0x0f00 }, problem: 'overlapsForeignBits' },
    { desc: 'masquerade inside the uplink field', s: { masqueradeMark: 0x10 }, problem: 'marksOverlap' },
    { desc: 'masquerade of two bits', s: { masqueradeMark: 0x3000 }, problem: 'masqueradeNotOneBit' },
    { desc: 'holes in the mask', s: { uplinkMarkMask: 0xb0 }, problem: 'maskNotContiguous' },
    { desc: 'kernel protocol number', s: { routeProtocol: 2 }, problem: 'protocolInvalid' },
    { desc: 'reserved tables', s: { tableBase: 250 }, problem: 'tableRangeInvalid' },
  ])('refuses $desc', ({ s, problem }) => {
    expect(validateSettings({ ...DEFAULT_SETTINGS, ...s }).map((i) => i.problem)).toContain(problem);
  });
});

describe('parseAgentFacts', () => {
  const good = {
    apiVersion: 'smartnat.aureacentral.com/v1alpha1',
    kind: 'AgentFacts',
    metadata: { name: 'agent-a', labels: { zone: 'a' } },
    interfaces: [{ name: 'ext0', role: 'external', addresses: ['203.0.113.2/24'], gateway: '203.0.113.1' }, { name: 'int0', role: 'internal', addresses: [] }],
  };

  it('parses a valid document', () => {
    const r = parseAgentFacts(good);
    expect(r.ok && r.value.interfaces.map((i) => [i.name, i.role, i.gateway])).toEqual([['ext0', 'external', '203.0.113.1'], ['int0', 'internal', undefined]]);
  });

  it('reports every problem with its field path', () => {
    const r = parseAgentFacts({
      ...good,
      interfaces: [
        { name: 'ext0/x', role: 'uplink', addresses: ['203.0.113.2/99'] },
        { name: 'int0', role: 'internal', addresses: [], gateway: '198.51.100.1' },
        { name: 'int0', role: 'internal', addresses: [] },
      ],
    });
    expect(r.ok ? [] : r.errors.map((e) => e.field)).toEqual([
      'interfaces[0].name', 'interfaces[0].role', 'interfaces[0].addresses[0]', 'interfaces[1].gateway', 'interfaces[2].name',
    ]);
  });
});
