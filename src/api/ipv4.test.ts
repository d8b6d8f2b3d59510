// IPv4 parsing must accept exactly what Go's net/netip accepts (the API server's CEL isIP/isCIDR).
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';

import { formatIpv4, isGlobalUnicast, parseCidr, parseIpv4, parsePoolEntry, parseSource, rangeContains } from './ipv4.js';

describe('parseIpv4', () => {
  it.each([
    ['203.0.113.10', 0xcb00710a],
    ['0.0.0.0', 0],
    ['255.255.255.255', 0xffffffff],
  ])('%s -> %d', (text, value) => expect(parseIpv4(text)).toBe(value));

  it.each(['', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1.2.3.004', '256.0.0.1', '0x7f.0.0.1', '1.2.3.4 ', ' 1.2.3.4', '1.2.3.4\n', '::1', '::ffff:1.2.3.4', '1.2.3.-4', '+1.2.3.4', '１.2.3.4'])(
    '%p is refused',
    (text) => expect(parseIpv4(text)).toBeUndefined(),
  );

  it('formats back to the same text for every dotted quad', () => {
    fc.assert(fc.property(fc.ipV4(), (text) => formatIpv4(parseIpv4(text) ?? -1) === text));
  });
});

describe('parseCidr / parseSource', () => {
  it('keeps the written address and clears host bits in network', () => {
    expect(parseCidr('10.0.0.1/16')).toEqual({ address: 0x0a000001, prefix: 16, network: 0x0a000000 });
    expect(parseCidr('10.1.2.3/0')).toEqual({ address: 0x0a010203, prefix: 0, network: 0 });
    expect(parseCidr('10.1.2.3/32')?.network).toBe(0x0a010203);
  });

  it.each(['10.0.0.0/33', '10.0.0.0/08', '10.0.0.0/', '10.0.0.0', '/8', '10.0.0.0/8/8', '10.0.0.0/ 8', '10.0.0.0/-1', '10.0.0.0/0x8', '010.0.0.0/8'])(
    'CIDR %p is refused',
    (text) => expect(parseCidr(text)).toBeUndefined(),
  );

  it('a bare address is a /32 source', () => {
    expect(parseSource('198.18.1.7')).toEqual({ network: 0xc6120107, prefix: 32 });
    expect(parseSource('198.18.1.7/24')).toEqual({ network: 0xc6120100, prefix: 24 });
    expect(parseSource('198.18.1.7-198.18.1.9')).toBeUndefined();
  });
});

describe('isGlobalUnicast (Go semantics: private ranges count as global unicast)', () => {
  it.each([
    ['192.168.60.5', true],
    ['10.0.0.1', true],
    ['0.1.2.3', true],
    ['240.0.0.1', true],
    ['0.0.0.0', false],
    ['255.255.255.255', false],
    ['127.0.0.1', false],
    ['224.0.0.18', false],
    ['239.255.255.255', false],
    ['169.254.1.1', false],
    ['169.253.1.1', true],
  ])('%s -> %s', (text, expected) => expect(isGlobalUnicast(parseIpv4(text) ?? -1)).toBe(expected));
});

describe('parsePoolEntry', () => {
  it.each([
    ['203.0.113.7', 0xcb007107, 0xcb007107, '203.0.113.7'],
    ['203.0.113.7/30', 0xcb007104, 0xcb007107, '203.0.113.4/30'],
    ['0.0.0.0/0', 0, 0xffffffff, '0.0.0.0/0'],
    ['203.0.113.1-203.0.113.9', 0xcb007101, 0xcb007109, '203.0.113.1-203.0.113.9'],
  ])('%s -> [%d, %d] %s', (text, first, last, canonical) => {
    const range = parsePoolEntry(text);
    expect(range).toEqual({ first, last, text: canonical });
    expect(range !== undefined && rangeContains(range, first) && rangeContains(range, last) && !rangeContains(range, last + 1)).toBe(true);
  });

  it.each(['203.0.113.9-203.0.113.1', '203.0.113.1-', '-203.0.113.1', '203.0.113.1 - 203.0.113.2', '1.2.3.4-5.6.7.8-9.9.9.9', '1.2.3.0/24-1.2.4.0/24'])(
    '%p is refused',
    (text) => expect(parsePoolEntry(text)).toBeUndefined(),
  );
});
