// Property tests of the parser: random valid objects parse and round-trip through serialise,
// objects broken in one field are refused with errors under `spec`, and nothing ever throws.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';

import {
  addressPoolObject,
  brokenAddressPoolSpec,
  brokenMappingSpec,
  mappingObject,
  validAddressPoolSpec,
  validMappingSpec,
  wildAddressPoolSpec,
  wildMappingSpec,
} from '../../test/fixtures/crd/arbitraries.js';
import { asServed } from '../../test/fixtures/crd/fixtures.js';
import { parseEndpointSlice, parseService } from './core.js';
import { parseAddressPool, parseMapping } from './parse.js';
import { serializeAddressPool, serializeMapping } from './serialize.js';
import type { ParseResult } from './types.js';

const RUNS = { numRuns: 300 };

function describeFailure<T>(result: ParseResult<T>): string {
  return result.ok ? 'ok' : result.errors.map((e) => `${e.field}: ${e.message}`).join('\n');
}

describe('Mapping', () => {
  it('random valid Mappings parse, and parse(serialise(parse(x))) equals parse(x)', () => {
    fc.assert(
      fc.property(validMappingSpec, (spec) => {
        const first = parseMapping(asServed(mappingObject(spec), 'ns'));
        if (!first.ok) throw new Error(`valid spec refused:\n${describeFailure(first)}\n${JSON.stringify(spec)}`);
        const again = parseMapping(JSON.parse(JSON.stringify(serializeMapping(first.value))));
        expect(again).toEqual(first);
      }),
      RUNS,
    );
  });

  it('parsed values are normalised: lowercase protocols, servicePort set, sources canonical and non-empty', () => {
    fc.assert(
      fc.property(validMappingSpec, (spec) => {
        const m = parseMapping(asServed(mappingObject(spec), 'ns'));
        if (!m.ok) return false;
        const ports = m.value.spec.ports;
        return (
          ports.every((p) => (p.protocol === 'tcp' || p.protocol === 'udp') && p.servicePort >= 1) &&
          m.value.spec.allowedSources.length > 0 &&
          m.value.spec.allowedSources.every((c) => /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(c)) &&
          new Set(ports.map((p) => `${p.protocol}/${p.port}`)).size === ports.length
        );
      }),
      RUNS,
    );
  });

  it('Mappings broken in one field are refused with errors under spec', () => {
    fc.assert(
      fc.property(brokenMappingSpec, (spec) => {
        const result = parseMapping(asServed(mappingObject(spec), 'ns'));
        if (result.ok) throw new Error(`broken spec accepted: ${JSON.stringify(spec)}`);
        expect(result.errors.length).toBeGreaterThan(0);
        expect(result.errors.every((e) => e.field === 'spec' || e.field.startsWith('spec.'))).toBe(true);
      }),
      RUNS,
    );
  });

  it('near-miss specs either parse or are refused; never throw', () => {
    fc.assert(
      fc.property(wildMappingSpec, (spec) => {
        const result = parseMapping(asServed(mappingObject(spec), 'ns'));
        expect(typeof result.ok).toBe('boolean');
      }),
      RUNS,
    );
  });
});

describe('AddressPool', () => {
  it('random valid pools parse and round-trip', () => {
    fc.assert(
      fc.property(validAddressPoolSpec, (spec) => {
        const first = parseAddressPool(asServed(addressPoolObject(spec)));
        if (!first.ok) throw new Error(`valid spec refused:\n${describeFailure(first)}\n${JSON.stringify(spec)}`);
        const again = parseAddressPool(JSON.parse(JSON.stringify(serializeAddressPool(first.value))));
        expect(again).toEqual(first);
      }),
      RUNS,
    );
  });

  it('pool ranges are well-formed (first <= last) and sorted by first address', () => {
    fc.assert(
      fc.property(validAddressPoolSpec, (spec) => {
        const p = parseAddressPool(asServed(addressPoolObject(spec)));
        return p.ok && p.value.spec.addresses.every((r, i, all) => r.first <= r.last && (i === 0 || (all[i - 1]?.first ?? 0) <= r.first));
      }),
      RUNS,
    );
  });

  it('pools broken in one field are refused with errors under spec', () => {
    fc.assert(
      fc.property(brokenAddressPoolSpec, (spec) => {
        const result = parseAddressPool(asServed(addressPoolObject(spec)));
        if (result.ok) throw new Error(`broken spec accepted: ${JSON.stringify(spec)}`);
        expect(result.errors.every((e) => e.field.startsWith('spec.'))).toBe(true);
      }),
      RUNS,
    );
  });

  it('near-miss pools never throw', () => {
    fc.assert(fc.property(wildAddressPoolSpec, (spec) => typeof parseAddressPool(asServed(addressPoolObject(spec))).ok === 'boolean'), RUNS);
  });
});

describe('any input at all', () => {
  const parsers = { parseMapping, parseAddressPool, parseService, parseEndpointSlice };
  it.each(Object.entries(parsers))('%s never throws and refuses with at least one error', (_name, parse) => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        const result = parse(value);
        return result.ok || result.errors.length > 0;
      }),
      RUNS,
    );
  });

  it.each(Object.entries({ parseMapping, parseAddressPool }))('%s: anything in place of the spec never throws', (_name, parse) => {
    fc.assert(
      fc.property(fc.anything(), fc.anything(), (spec, status) => {
        const result = parse(asServed({ metadata: { name: 'x' }, spec, status }, 'ns'));
        return result.ok || result.errors.length > 0;
      }),
      RUNS,
    );
  });
});
