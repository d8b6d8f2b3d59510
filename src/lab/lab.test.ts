// The lab's pure parts: who is allowed, the management address plan, the demo objects and the
// "what to try next" text. The real thing is exercised by lab.lab.ts.
import { describe, expect, test } from '@jest/globals';
import { parseAllDocuments } from 'yaml';
import { managementAddresses, nextSteps, planLab, renderDemoObjects, type LabDescriptor } from './lab.js';
import { isInAddressPlan } from './topology-spec.js';
import { cidrContains, parseCidr, parseInterfaceAddress, parseIpv4 } from '../model/net.js';

describe('planLab', () => {
  const { plan, pools, mapping, allowedSources } = planLab('smartnat');

  test('the demo Mapping allows c1 (behind r1) and not c2 (behind r2), one address per uplink', () => {
    const inAllowed = (ip: string): boolean => allowedSources.some((c) => cidrContains(parseCidr(c)!, parseIpv4(ip)!));
    const c1 = plan.clients.find((c) => c.name === 'c1')!;
    const c2 = plan.clients.find((c) => c.name === 'c2')!;
    expect(c1.addresses.every(inAllowed)).toBe(true);
    expect(c2.addresses.some(inAllowed)).toBe(false);
    expect(mapping.addresses).toEqual([pools[0]!.addresses[0], pools[1]!.addresses[0]]);
    expect(mapping.addresses.every(isInAddressPlan)).toBe(true);
  });

  test('three agents; pools are the uplinks floating ranges', () => {
    expect(plan.agents.map((a) => a.name)).toEqual(['a1', 'a2', 'a3']);
    expect(pools.map((p) => [p.name, p.addresses.length])).toEqual([['uplink1', 10], ['uplink2', 10]]);
  });
});

describe('managementAddresses', () => {
  test('a /30 per agent, 16 addresses per slot, all in 198.19.255.0/24, never shared between slots', () => {
    const seen = new Set<string>();
    for (let slot = 0; slot < 16; slot++) {
      for (let i = 0; i < 3; i++) {
        const m = managementAddresses(slot, i);
        const host = parseInterfaceAddress(`${m.host}/30`)!;
        expect(parseInterfaceAddress(`${m.agent}/30`)!.subnet.network).toBe(host.subnet.network);
        expect(host.address).toBe(host.subnet.network + 1);
        for (const a of [m.host, m.agent]) {
          expect(a.startsWith('198.19.255.')).toBe(true);
          expect(seen.has(a)).toBe(false);
          seen.add(a);
        }
      }
    }
    expect(() => managementAddresses(16, 0)).toThrow(RangeError);
    expect(() => managementAddresses(0, 4)).toThrow(RangeError);
  });
});

describe('renderDemoObjects', () => {
  const docs = parseAllDocuments(renderDemoObjects('smartnat')).map((d) => d.toJSON() as { kind: string; metadata: { name: string }; spec?: Record<string, unknown> });

  test('namespaces, Service, EndpointSlice, two pools and the Mapping', () => {
    expect(docs.map((d) => `${d.kind}/${d.metadata.name}`)).toEqual([
      'Namespace/smartnat-system', 'Namespace/demo', 'Service/echo', 'EndpointSlice/echo-lab',
      'AddressPool/uplink1', 'AddressPool/uplink2', 'Mapping/echo',
    ]);
    const m = docs.find((d) => d.kind === 'Mapping')!;
    expect(m.spec).toMatchObject({ allowedSources: ['198.18.1.0/24'], serviceName: 'echo' });
    expect(docs.find((d) => d.metadata.name === 'uplink1')!.spec).toEqual({ addresses: ['203.0.113.10-203.0.113.19'], interface: 'ext0' });
  });
});

describe('nextSteps', () => {
  test('names the allowed client, the other one and the lab', () => {
    const d: LabDescriptor = {
      schemaVersion: 1, name: 'demo1', dir: '/run/smartnat-lab/demo1', kubeconfig: '/run/smartnat-lab/demo1/kubeconfig',
      apiserver: { url: 'https://127.0.0.1:1', pid: 1 }, leaseNamespace: 'smartnat-system',
      agents: [{ name: 'a1', netns: 'demo1-a1', pid: 2, keepalivedPid: 3, metrics: 'http://198.19.255.2:9100/metrics', apiProxyControl: '/x.sock' }],
      clients: [{ name: 'c1', netns: 'demo1-c1', address: '198.18.1.10', allowed: true }, { name: 'c2', netns: 'demo1-c2', address: '198.18.2.10', allowed: false }],
      backends: [], pools: [],
      mappings: [{ namespace: 'demo', name: 'echo', addresses: ['203.0.113.10', '192.0.2.10'], ports: [{ port: 8080, protocol: 'tcp' }] }],
    };
    const text = nextSteps(d, 'node dist/main.js', '/bin/kubectl').join('\n');
    expect(text).toContain('ip netns exec demo1-c1 nc -w 2 203.0.113.10 8080');
    expect(text).toContain('ip netns exec demo1-c2 nc -w 2 192.0.2.10 8080');
    expect(text).toContain('/bin/kubectl --kubeconfig /run/smartnat-lab/demo1/kubeconfig');
    expect(text).toContain('node dist/main.js lab down --name demo1');
  });
});
