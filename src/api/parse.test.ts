// Table tests of the Mapping/AddressPool parser: defaults, normalisation, compatibility with the
// original SmartNat, field paths of refusals, and the shared invalid fixtures of test/fixtures/crd.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { parse as parseYaml } from 'yaml';

import { asServed, changedPaths, isAtOrUnder, loadBase, loadInvalidFixtures } from '../../test/fixtures/crd/fixtures.js';
import { parseAddressPool, parseMapping, parseMappingSpec } from './parse.js';
import type { FieldError, ParseResult } from './types.js';

const VIP_1 = '203.0.113.10';
const VIP_2 = '203.0.113.11';
const CLIENTS = '198.18.1.0/24';

function ok<T>(result: ParseResult<T>): T {
  if (!result.ok) throw new Error(`expected ok, got:\n${result.errors.map((e) => `${e.field}: ${e.message}`).join('\n')}`);
  return result.value;
}

function errors<T>(result: ParseResult<T>): readonly FieldError[] {
  if (result.ok) throw new Error(`expected a refusal, got ${JSON.stringify(result.value)}`);
  return result.errors;
}

function mapping(spec: Record<string, unknown>): Record<string, unknown> {
  return asServed({ apiVersion: 'smartnat.aureacentral.com/v1alpha1', kind: 'Mapping', metadata: { name: 'm' }, spec }, 'ns');
}

const SPEC = { addresses: [VIP_1], serviceName: 'echo', ports: [{ port: 8080 }] };

describe('parseMapping: defaults and normalisation', () => {
  it('the original example parses unchanged, finalizer and all', () => {
    const raw = parseYaml(readFileSync(new URL('../../test/fixtures/crd/original-mapping.yaml', import.meta.url), 'utf8')) as Record<string, unknown>;
    const m = ok(parseMapping(asServed(raw, 'default')));
    expect(m.spec).toEqual({
      addresses: ['192.168.60.5'],
      allowedSources: ['0.0.0.0/0'],
      serviceName: 'echo-test-service',
      mode: 'service',
      ports: [{ port: 8080, protocol: 'tcp', servicePort: 8080 }],
    });
    expect(m.finalizers).toEqual(['mapping.finalizers.aureacentral.com']);
    expect(m.deleting).toBe(false);
  });

  it.each([
    ['absent', undefined, ['0.0.0.0/0']],
    ['empty', [], ['0.0.0.0/0']],
    ['a bare IP becomes /32', ['198.18.1.7'], ['198.18.1.7/32']],
    ['host bits are cleared', ['10.0.0.1/16'], ['10.0.0.0/16']],
    ['duplicates after normalising collapse', ['10.0.0.1/16', '10.0.0.0/16', '10.0.200.9/16'], ['10.0.0.0/16']],
    ['sorted by network then prefix', ['198.18.2.0/24', CLIENTS, '198.18.0.0/16'], ['198.18.0.0/16', CLIENTS, '198.18.2.0/24']],
    ['0.0.0.0/0 as written', ['0.0.0.0/0'], ['0.0.0.0/0']],
  ])('allowedSources %s', (_name, allowedSources, expected) => {
    const spec = allowedSources === undefined ? SPEC : { ...SPEC, allowedSources };
    expect(ok(parseMapping(mapping(spec))).spec.allowedSources).toEqual(expected);
  });

  it.each([
    [{ port: 8080 }, { port: 8080, protocol: 'tcp', servicePort: 8080 }],
    [{ port: 53, protocol: 'UDP' }, { port: 53, protocol: 'udp', servicePort: 53 }],
    [{ port: 443, protocol: 'TCP', servicePort: 8443 }, { port: 443, protocol: 'tcp', servicePort: 8443 }],
  ])('port %j -> %j (protocol lowercased, servicePort defaults to port)', (port, expected) => {
    expect(ok(parseMapping(mapping({ ...SPEC, ports: [port] }))).spec.ports).toEqual([expected]);
  });

  it('same port number on tcp and udp is fine', () => {
    const ports = [{ port: 53 }, { port: 53, protocol: 'udp' }];
    expect(ok(parseMapping(mapping({ ...SPEC, ports }))).spec.ports.map((p) => p.protocol)).toEqual(['tcp', 'udp']);
  });

  it('metadata: deletion, legacy finalizer, generation and uid are read', () => {
    const raw = mapping(SPEC);
    const meta = raw.metadata as Record<string, unknown>;
    const m = ok(parseMapping({ ...raw, metadata: { ...meta, deletionTimestamp: '2026-01-02T00:00:00Z', finalizers: ['mapping.finalizers.aureacentral.com'], generation: 7 } }));
    expect([m.deleting, m.deletionTimestamp, m.finalizers, m.generation, m.namespace]).toEqual([
      true,
      '2026-01-02T00:00:00Z',
      ['mapping.finalizers.aureacentral.com'],
      7,
      'ns',
    ]);
  });

  it('null counts as absent, as the API server prunes it', () => {
    const m = ok(parseMapping(mapping({ ...SPEC, allowedSources: null, mode: null, ports: [{ port: 80, protocol: null, servicePort: null }] })));
    expect(m.spec.allowedSources).toEqual(['0.0.0.0/0']);
    expect(m.spec.ports).toEqual([{ port: 80, protocol: 'tcp', servicePort: 80 }]);
  });

  it('status is read leniently: a malformed entry is dropped, the Mapping stays valid', () => {
    const raw = {
      ...mapping(SPEC),
      status: {
        invalid: 'no',
        serviceVIP: '198.19.0.10',
        configuredAddresses: {
          [VIP_1]: { podIPs: ['198.51.100.5', 7], owner: 'agent-a', claimedAt: '2026-01-01T00:00:01Z' },
          [VIP_2]: 'garbage',
        },
        conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: 't', reason: 'Programmed', message: '' }, { type: 'Bad', status: 'Maybe' }],
      },
    };
    const m = ok(parseMapping(raw));
    expect(m.status).toEqual({
      invalid: 'no',
      serviceVIP: '198.19.0.10',
      configuredAddresses: { [VIP_1]: { podIPs: ['198.51.100.5'], endpoints: [], owner: 'agent-a', claimedAt: '2026-01-01T00:00:01Z' } },
      conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: 't', reason: 'Programmed', message: '' }],
    });
  });
});

describe('parseMapping: refusals point at the field', () => {
  it.each<[string, Record<string, unknown>, string, string]>([
    ['no addresses', { ...SPEC, addresses: undefined }, 'spec.addresses', 'FieldValueRequired'],
    ['address 0.0.0.0', { ...SPEC, addresses: ['0.0.0.0'] }, 'spec.addresses[0]', 'FieldValueInvalid'],
    ['broadcast address', { ...SPEC, addresses: ['255.255.255.255'] }, 'spec.addresses[0]', 'FieldValueInvalid'],
    ['multicast address', { ...SPEC, addresses: ['224.0.0.18'] }, 'spec.addresses[0]', 'FieldValueInvalid'],
    ['link-local address', { ...SPEC, addresses: ['169.254.10.1'] }, 'spec.addresses[0]', 'FieldValueInvalid'],
    ['address with spaces', { ...SPEC, addresses: [` ${VIP_1}`] }, 'spec.addresses[0]', 'FieldValueInvalid'],
    ['address as number', { ...SPEC, addresses: [3405803786] }, 'spec.addresses[0]', 'FieldValueTypeInvalid'],
    ['addresses not a list', { ...SPEC, addresses: VIP_1 }, 'spec.addresses', 'FieldValueTypeInvalid'],
    ['second address duplicated', { ...SPEC, addresses: [VIP_1, VIP_2, VIP_2] }, 'spec.addresses[2]', 'FieldValueDuplicate'],
    ['a source of three octets', { ...SPEC, allowedSources: ['10.0.0/8'] }, 'spec.allowedSources[0]', 'FieldValueInvalid'],
    ['a source with a hex prefix', { ...SPEC, allowedSources: ['10.0.0.0/0x8'] }, 'spec.allowedSources[0]', 'FieldValueInvalid'],
    ['too many sources', { ...SPEC, allowedSources: Array.from({ length: 257 }, (_, i) => `10.0.${i >> 8}.${i & 255}`) }, 'spec.allowedSources', 'FieldValueTooMany'],
    ['serviceName too long', { ...SPEC, serviceName: 'a'.repeat(64) }, 'spec.serviceName', 'FieldValueTooLong'],
    ['serviceName ends with a dash', { ...SPEC, serviceName: 'echo-' }, 'spec.serviceName', 'FieldValueInvalid'],
    ['serviceName starts with a digit', { ...SPEC, serviceName: '1echo' }, 'spec.serviceName', 'FieldValueInvalid'],
    ['mode in upper case', { ...SPEC, mode: 'Service' }, 'spec.mode', 'FieldValueNotSupported'],
    ['port 1.5', { ...SPEC, ports: [{ port: 1.5 }] }, 'spec.ports[0].port', 'FieldValueTypeInvalid'],
    ['port entry not an object', { ...SPEC, ports: [8080] }, 'spec.ports[0]', 'FieldValueTypeInvalid'],
    ['servicePort 0', { ...SPEC, ports: [{ port: 80, servicePort: 0 }] }, 'spec.ports[0].servicePort', 'FieldValueInvalid'],
    ['udp twice, different case', { ...SPEC, ports: [{ port: 53, protocol: 'udp' }, { port: 53, protocol: 'UDP' }] }, 'spec.ports', 'FieldValueInvalid'],
    ['tcp twice via the default', { ...SPEC, ports: [{ port: 80 }, { port: 80, protocol: 'TCP', servicePort: 81 }] }, 'spec.ports', 'FieldValueInvalid'],
    ['65 ports', { ...SPEC, ports: Array.from({ length: 65 }, (_, i) => ({ port: i + 1 })) }, 'spec.ports', 'FieldValueTooMany'],
    ['spec not an object', 'spec' as unknown as Record<string, unknown>, 'spec', 'FieldValueTypeInvalid'],
  ])('%s', (_name, spec, field, reason) => {
    const errs = errors(parseMapping(mapping(spec)));
    expect(errs.map((e) => [e.field, e.reason])).toEqual([[field, reason]]);
  });

  it('every problem is reported, not only the first', () => {
    const errs = errors(parseMappingSpec({ addresses: ['x'], serviceName: 'Echo', ports: [{ port: 0 }, { port: 1, protocol: 'icmp' }] }));
    expect(errs.map((e) => e.field)).toEqual(['spec.serviceName', 'spec.addresses[0]', 'spec.ports[0].port', 'spec.ports[1].protocol']);
  });

  it('messages read like the API server', () => {
    const errs = errors(parseMappingSpec({ ...SPEC, ports: [{ port: 0, protocol: 'sctp' }] }));
    expect(errs.map((e) => `${e.field}: ${e.message}`)).toEqual([
      'spec.ports[0].port: Invalid value: 0: should be greater than or equal to 1',
      'spec.ports[0].protocol: Unsupported value: "sctp": supported values: "tcp", "udp", "TCP", "UDP"',
    ]);
  });

  it.each([
    ['no metadata', { spec: SPEC }, 'metadata'],
    ['no namespace', { metadata: { name: 'm' }, spec: SPEC }, 'metadata.namespace'],
    ['no name', { metadata: { namespace: 'ns' }, spec: SPEC }, 'metadata.name'],
    ['another kind', { kind: 'Service', metadata: { name: 'm', namespace: 'ns' }, spec: SPEC }, 'kind'],
  ])('%s', (_name, raw, field) => {
    expect(errors(parseMapping(raw)).map((e) => e.field)).toEqual([field]);
  });

  it.each([null, undefined, 42, 'Mapping', []])('%p is refused, not thrown', (raw) => {
    expect(errors(parseMapping(raw)).length).toBeGreaterThan(0);
  });
});

const POOL_SPEC = { addresses: ['203.0.113.16-203.0.113.31'] };
function pool(spec: Record<string, unknown>): Record<string, unknown> {
  return asServed({ apiVersion: 'smartnat.aureacentral.com/v1alpha1', kind: 'AddressPool', metadata: { name: 'p' }, spec });
}

describe('parseAddressPool', () => {
  it('addresses: IP, CIDR (host bits cleared), range; sorted and de-duplicated; defaults applied', () => {
    const p = ok(parseAddressPool(pool({ addresses: ['203.0.113.9/28', '192.0.2.7', '203.0.113.0/28', '198.51.100.1-198.51.100.3'] })));
    expect(p.spec.addresses).toEqual([
      { first: 0xc0000207, last: 0xc0000207, text: '192.0.2.7' },
      { first: 0xc6336401, last: 0xc6336403, text: '198.51.100.1-198.51.100.3' },
      { first: 0xcb007100, last: 0xcb00710f, text: '203.0.113.0/28' },
    ]);
    expect(p.spec).toMatchObject({ agentSelector: {}, agentMatchExpressions: [], vrrp: { vridRange: [1, 255], advertIntervalMs: 100 } });
    expect(p.spec.allowedNamespaces).toBeUndefined();
    expect(p.spec.interface).toBeUndefined();
  });

  it('the valid base fixture reads as written', () => {
    const p = ok(parseAddressPool(asServed(loadBase('AddressPool'))));
    expect(p.spec).toEqual({
      addresses: [
        { first: 0xc0000200, last: 0xc000020f, text: '192.0.2.0/28' },
        { first: 0xcb007110, last: 0xcb00711f, text: '203.0.113.16-203.0.113.31' },
      ],
      interface: 'eth1',
      agentSelector: { 'smartnat.aureacentral.com/pool': 'blue' },
      agentMatchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['zone-a', 'zone-b'] }],
      allowedNamespaces: ['default', 'team-a'],
      vrrp: { vridRange: [10, 50], advertIntervalMs: 100 },
    });
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['a single-address range is fine', { addresses: ['203.0.113.5-203.0.113.5'] }, ''],
    ['range with spaces', { addresses: ['203.0.113.5 - 203.0.113.9'] }, 'spec.addresses[0]'],
    ['range of CIDRs', { addresses: ['203.0.113.0/28-203.0.113.32/28'] }, 'spec.addresses[0]'],
    ['65 entries', { addresses: Array.from({ length: 65 }, (_, i) => `203.0.113.${i}`) }, 'spec.addresses'],
    ['interface "."', { ...POOL_SPEC, interface: '.' }, 'spec.interface'],
    ['interface empty', { ...POOL_SPEC, interface: '' }, 'spec.interface'],
    ['label key with an upper-case prefix', { ...POOL_SPEC, agentSelector: { matchLabels: { 'Example.com/x': 'y' } } }, 'spec.agentSelector.matchLabels'],
    ['label name of 64 characters', { ...POOL_SPEC, agentSelector: { matchLabels: { ['a'.repeat(64)]: 'y' } } }, 'spec.agentSelector.matchLabels'],
    ['Exists with values', { ...POOL_SPEC, agentSelector: { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] } }, 'spec.agentSelector.matchExpressions[0]'],
    ['expression without key', { ...POOL_SPEC, agentSelector: { matchExpressions: [{ operator: 'Exists' }] } }, 'spec.agentSelector.matchExpressions[0].key'],
    ['namespace twice', { ...POOL_SPEC, allowedNamespaces: ['a', 'a'] }, 'spec.allowedNamespaces[1]'],
    ['vridRange without last', { ...POOL_SPEC, vrrp: { vridRange: { first: 3 } } }, 'spec.vrrp.vridRange.last'],
    ['vrid 256', { ...POOL_SPEC, vrrp: { vridRange: { first: 1, last: 256 } } }, 'spec.vrrp.vridRange.last'],
    ['advert interval 41 s', { ...POOL_SPEC, vrrp: { advertIntervalMs: 41000 } }, 'spec.vrrp.advertIntervalMs'],
  ])('%s', (_name, spec, field) => {
    const result = parseAddressPool(pool(spec));
    if (field === '') expect(result.ok).toBe(true);
    else expect([...new Set(errors(result).map((e) => e.field))]).toEqual([field]);
  });
});

describe('invalid fixtures (test/fixtures/crd/invalid): each breaks one field of a valid base', () => {
  const fixtures = loadInvalidFixtures();

  it('there are at least 15 of them, for both kinds', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(15);
    expect(new Set(fixtures.map((f) => f.kind))).toEqual(new Set(['Mapping', 'AddressPool']));
  });

  it.each(['Mapping', 'AddressPool'] as const)('the %s base is valid', (kind) => {
    const parse = kind === 'Mapping' ? parseMapping : parseAddressPool;
    expect(parse(asServed(loadBase(kind), 'ns')).ok).toBe(true);
  });

  it.each(fixtures.map((f) => [f.file, f] as const))('%s: differs from its base only at its field, and is refused there', (_file, f) => {
    const changed = changedPaths(f.base, f.object);
    expect(changed.length).toBeGreaterThan(0);
    expect(changed.filter((p) => !isAtOrUnder(p, f.field))).toEqual([]);
    const raw = asServed(f.object, 'ns');
    const result: ParseResult<unknown> = f.kind === 'Mapping' ? parseMapping(raw) : parseAddressPool(raw);
    const errs = errors(result);
    expect([...new Set(errs.map((e) => e.field))]).toEqual([f.field]);
  });
});

describe('spec.egress (ADR 0009)', () => {
  const spec = (egress: unknown): Record<string, unknown> => ({ ...SPEC, addresses: [VIP_2, VIP_1], egress });

  it('enabled without an address uses the numerically lowest of spec.addresses; an address names its own', () => {
    expect(ok(parseMapping(mapping(spec({ enabled: true })))).spec.egress).toEqual({ address: VIP_1 });
    expect(ok(parseMapping(mapping(spec({ enabled: true, address: VIP_2 })))).spec.egress).toEqual({ address: VIP_2 });
  });

  it('absent, or enabled false, means no egress (and the field is left out)', () => {
    expect(ok(parseMapping(mapping(SPEC))).spec).not.toHaveProperty('egress');
    expect(ok(parseMapping(mapping(spec({ enabled: false, address: VIP_2 })))).spec).not.toHaveProperty('egress');
    expect(ok(parseMapping(mapping(spec({})))).spec).not.toHaveProperty('egress');
  });

  it('refuses an address outside spec.addresses, a non-address, and a non-boolean enabled, at their field paths', () => {
    expect(errors(parseMapping(mapping(spec({ enabled: true, address: '203.0.113.99' }))))).toEqual([
      { field: 'spec.egress.address', reason: 'FieldValueInvalid', message: 'Invalid value: "203.0.113.99": must be one of spec.addresses' },
    ]);
    expect(errors(parseMapping(mapping(spec({ enabled: true, address: '203.0.113.x' }))))[0]).toMatchObject({ field: 'spec.egress.address', message: expect.stringContaining('unicast IPv4') });
    expect(errors(parseMapping(mapping(spec({ enabled: 'yes' }))))[0]).toMatchObject({ field: 'spec.egress.enabled', reason: 'FieldValueTypeInvalid' });
  });

  it('AddressPool spec.egress.gateways: entries like spec.addresses, required inside egress, errors at their paths', () => {
    const poolOf = (egress: unknown): Record<string, unknown> => ({ ...loadBase('AddressPool'), spec: { ...(loadBase('AddressPool').spec as Record<string, unknown>), egress } });
    const parsed = ok(parseAddressPool(asServed(poolOf({ gateways: ['198.51.100.110-198.51.100.119', '198.51.100.100'] }))));
    expect(parsed.spec.egress?.gateways.map((g) => g.text)).toEqual(['198.51.100.100', '198.51.100.110-198.51.100.119']);
    expect(errors(parseAddressPool(asServed(poolOf({}))))[0]).toMatchObject({ field: 'spec.egress.gateways', reason: 'FieldValueRequired' });
    expect(errors(parseAddressPool(asServed(poolOf({ gateways: ['198.51.100.120-198.51.100.110'] }))))[0]).toMatchObject({ field: 'spec.egress.gateways[0]' });
  });
});
