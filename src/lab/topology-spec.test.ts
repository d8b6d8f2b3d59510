// Pure parts of the lab: spec validation keeps every address inside the STYLE.md plan, the
// standard lab's shape and addresses, and the probe-loop gap arithmetic, tcpdump line parsing.
import { describe, expect, it } from '@jest/globals';
import { validateTopology, isInAddressPlan, type TopologySpec } from './topology-spec.js';
import { planStandardLab } from './standard-lab.js';
import { longestGapMs, countResults, type ProbeOutcome } from './probe.js';
import { parseTcpdumpLines } from './capture.js';

describe('validateTopology', () => {
  it('accepts the standard lab, with and without a management segment', () => {
    expect(validateTopology(planStandardLab().spec)).toEqual([]);
    expect(validateTopology(planStandardLab({ agents: 3, management: true, c1LinkMtu: 1280 }).spec)).toEqual([]);
  });

  it('refuses addresses, routes and gateways outside the lab plan', () => {
    const spec: TopologySpec = {
      nodes: [
        { name: 'x', role: 'plain', routes: [{ to: '10.0.0.0/8', via: '198.18.1.1' }, { to: 'default', via: '8.8.8.8' }] },
        { name: 'y', role: 'plain' },
      ],
      segments: [],
      links: [{ a: { node: 'x', ifname: 'eth0', addresses: ['192.168.1.2/24'] }, b: { node: 'y', ifname: 'eth0', addresses: ['198.18.1.1/24'] } }],
    };
    const errors = validateTopology(spec).join('\n');
    expect(errors).toMatch(/route to 10\.0\.0\.0\/8 is outside/);
    expect(errors).toMatch(/gateway 8\.8\.8\.8 is outside/);
    expect(errors).toMatch(/192\.168\.1\.2\/24 is outside/);
    expect(errors).not.toMatch(/198\.18\.1\.1\/24/);
  });

  it('refuses bad names, unknown nodes, duplicates and bad MTUs', () => {
    const spec: TopologySpec = {
      nodes: [{ name: 'Bad-Name', role: 'plain' }, { name: 'ok', role: 'plain' }, { name: 'ok', role: 'plain' }],
      segments: [{ name: 's', members: [{ node: 'ghost', ifname: 'eth0' }, { node: 'ok', ifname: 'averyveryverylongname', mtu: 100 }] }],
      links: [],
    };
    const errors = validateTopology(spec).join('\n');
    for (const m of [/Bad-Name/, /node ok: duplicate/, /ghost\/eth0: unknown node/, /bad interface name/, /bad mtu 100/]) expect(errors).toMatch(m);
  });

  it('checks plan membership of addresses, interface addresses and CIDRs', () => {
    expect(isInAddressPlan('203.0.113.77/24')).toBe(true);
    expect(isInAddressPlan('203.0.113.256/24')).toBe(false);
    expect(isInAddressPlan('203.0.113.1/33')).toBe(false);
    expect(isInAddressPlan('203.0.112.1/23')).toBe(false); // spans outside the uplink /24
    expect(isInAddressPlan('198.19.255.7')).toBe(true);
    expect(isInAddressPlan('198.19.0.1')).toBe(false); // the Service range is allocation only
    expect(isInAddressPlan('198.18.0.0/15')).toBe(false); // wider than the client plan
  });
});

describe('planStandardLab', () => {
  it('places agents, backends, clients and floating addresses without overlap', () => {
    const { plan, spec } = planStandardLab({ agents: 3, backends: [{ name: 'b1' }, { name: 'b2' }], clientAddresses: 4, management: true });
    expect(plan.agents.map((a) => a.ext0)).toEqual(['203.0.113.2', '203.0.113.3', '203.0.113.4']);
    expect(plan.backends.map((b) => b.address)).toEqual(['198.51.100.21', '198.51.100.22']);
    expect(plan.clients[1]).toEqual({ name: 'c2', router: 'r2', addresses: ['198.18.2.10', '198.18.2.11', '198.18.2.12', '198.18.2.13'] });
    expect(plan.management).toEqual({ hub: '198.19.255.1', agents: { a1: '198.19.255.11', a2: '198.19.255.12', a3: '198.19.255.13' } });
    const configured = [...spec.segments.flatMap((s) => s.members), ...spec.links.flatMap((l) => [l.a, l.b])].flatMap((e) => e.addresses ?? []).map((a) => a.split('/')[0]);
    expect(new Set(configured).size).toBe(configured.length);
    for (const f of [...plan.floating.uplink1, ...plan.floating.uplink2]) expect(configured).not.toContain(f);
    expect(spec.nodes.filter((n) => n.role === 'router').every((n) => !(n.routes ?? []).some((r) => r.to === 'default'))).toBe(true);
  });

  it('refuses more agents than the address plan has room for', () => {
    expect(() => planStandardLab({ agents: 9 })).toThrow(/1\.\.8/);
  });
});

describe('longestGapMs', () => {
  const at = (t: number, result: ProbeOutcome['result'], ms = 5): ProbeOutcome => ({ seq: t, t, ms, result });

  it('is the time from the last success before a failure run to the first success after it', () => {
    const loop = [at(0, 'ok'), at(10, 'ok'), at(20, 'timeout'), at(230, 'refused'), at(240, 'ok'), at(250, 'ok')];
    expect(longestGapMs(loop)).toBe(230);
    expect(countResults(loop)).toEqual({ ok: 4, timeout: 1, refused: 1 });
  });

  it('runs to the end of the loop when it never recovers, and is 0 without failures', () => {
    expect(longestGapMs([at(0, 'ok'), at(10, 'timeout', 200)])).toBe(210);
    expect(longestGapMs([at(0, 'ok'), at(10, 'ok')])).toBe(0);
  });
});

describe('parseTcpdumpLines', () => {
  it('reads epoch timestamps to milliseconds and skips tcpdump chatter', () => {
    const text = 'tcpdump: verbose output suppressed\nlistening on eth0\n1764165600.123456 IP 198.51.100.2.40000 > 198.51.100.23.7000: UDP, length 5\n';
    const [p, ...rest] = parseTcpdumpLines(text);
    expect(rest).toEqual([]);
    expect(p!.t).toBeCloseTo(1764165600123.456, 2);
    expect(p!.text).toBe('IP 198.51.100.2.40000 > 198.51.100.23.7000: UDP, length 5');
  });
});
