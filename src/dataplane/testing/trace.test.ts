import { describe, expect, it } from '@jest/globals';
import { parseIptablesSave } from '../render-dump.js';
import { traceAll, tracePacket } from './trace.js';

const dump = (text: string) => parseIptablesSave(text);
const packet = { src: '198.18.1.5', dst: '203.0.113.10', proto: 'tcp' as const, dport: 80, inIface: 'ext0' };
const empty = '*mangle\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n*filter\n:FORWARD ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\nCOMMIT\n';

describe('packet tracer', () => {
  it('refuses rules it does not understand instead of ignoring them', () => {
    const tables = dump(`${empty}*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A PREROUTING -m owner --uid-owner 0 -j DNAT --to-destination 1.2.3.4:1\nCOMMIT\n`);
    expect(() => tracePacket({ tables, sets: new Map() }, packet)).toThrow(/unsupported match option --uid-owner/);
  });

  it('refuses a jump to a missing chain and a missing set', () => {
    const jump = dump(`*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j SMARTNAT-GONE\nCOMMIT\n`);
    expect(() => tracePacket({ tables: jump, sets: new Map() }, packet)).toThrow(/unsupported target SMARTNAT-GONE/);
    const set = dump(`*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -m set --match-set nope dst -j DROP\nCOMMIT\n`);
    expect(() => tracePacket({ tables: set, sets: new Map() }, packet)).toThrow(/missing set nope/);
  });

  it('follows negation, RETURN and the statistic cascade', () => {
    const tables = dump(`${empty}*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:X - [0:0]\n` +
      `-A PREROUTING ! -d 203.0.113.10/32 -j RETURN\n-A PREROUTING -p tcp -m tcp --dport 80 -j X\n` +
      `-A X -p tcp -m statistic --mode random --probability 0.50000000000 -j DNAT --to-destination 198.51.100.1:80\n-A X -p tcp -j DNAT --to-destination 198.51.100.2:80\nCOMMIT\n`);
    const k = { tables, sets: new Map() };
    expect(traceAll(k, packet).map((v) => (v.kind === 'dnat' ? v.to : v.kind))).toEqual(['198.51.100.1:80', '198.51.100.2:80']);
    expect(tracePacket(k, { ...packet, dst: '203.0.113.11' })).toEqual({ kind: 'untouched', connmark: 0 });
    expect(tracePacket(k, { ...packet, dport: 81 })).toEqual({ kind: 'untouched', connmark: 0 });
  });
});
