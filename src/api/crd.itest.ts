// The CRDs against the real kube-apiserver: they install and become Established; valid objects are
// accepted and defaulted; the original SmartNat example applies unchanged with kubectl; every
// invalid fixture is refused at its field; the status subresource and its granular map behave.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ApiextensionsV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';

import { asServed, loadBase, loadInvalidFixtures } from '../../test/fixtures/crd/fixtures.js';
import { CRD_NAMES, dryRunCreate, fieldCauses, installCrds } from '../../test/fixtures/crd/server.js';
import { createTestNamespace, kubectl, loadTestKubeConfig } from '../../test/support/kube.js';
import { parseAddressPool, parseMapping } from './parse.js';
import { GROUP, LEGACY_FINALIZER, LIMITS, VERSION } from './types.js';

const ORIGINAL_EXAMPLE = new URL('../../test/fixtures/crd/original-mapping.yaml', import.meta.url);
const VIP_1 = '203.0.113.10';
const VIP_2 = '203.0.113.11';

let kc: KubeConfig;
let ns: string;
let api: CustomObjectsApi;

beforeAll(async () => {
  kc = loadTestKubeConfig();
  await installCrds();
  ns = await createTestNamespace('crd-');
  api = kc.makeApiClient(CustomObjectsApi);
}, 120_000);

afterAll(async () => {
  // Namespaces cannot finish deleting without a controller-manager; pools are cluster-scoped.
  const pools = (await api.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'addresspools', labelSelector: `test-ns=${ns}` })) as {
    items: { metadata: { name: string } }[];
  };
  for (const p of pools.items) await api.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: 'addresspools', name: p.metadata.name });
});

function mappingBody(name: string, spec: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: `${GROUP}/${VERSION}`, kind: 'Mapping', metadata: { name }, spec };
}

describe('installation', () => {
  it.each(CRD_NAMES)('%s is Established, names accepted, with its CEL rules and status subresource kept', async (name) => {
    const crd = await kc.makeApiClient(ApiextensionsV1Api).readCustomResourceDefinition({ name });
    const conditions = Object.fromEntries((crd.status?.conditions ?? []).map((c) => [c.type, c.status]));
    expect(conditions).toMatchObject({ Established: 'True', NamesAccepted: 'True' });
    const version = crd.spec.versions.find((v) => v.name === VERSION);
    expect(version?.subresources?.status).toEqual({});
    expect(JSON.stringify(version?.schema)).toContain('x-kubernetes-validations');
    expect(version?.additionalPrinterColumns?.map((c) => c.name)).toEqual(
      name.startsWith('mappings') ? ['Addresses', 'Ports', 'Service', 'Owner', 'Ready', 'Age'] : ['Addresses', 'Interface', 'Namespaces', 'Ready', 'Age'],
    );
  });

  it('schema maxItems agree with the parser LIMITS', async () => {
    const crd = await kc.makeApiClient(ApiextensionsV1Api).readCustomResourceDefinition({ name: CRD_NAMES[0] });
    const spec = crd.spec.versions[0]?.schema?.openAPIV3Schema?.properties?.spec?.properties ?? {};
    expect([spec.addresses?.maxItems, spec.ports?.maxItems, spec.allowedSources?.maxItems, spec.serviceName?.maxLength]).toEqual([
      LIMITS.addressesPerMapping,
      LIMITS.portsPerMapping,
      LIMITS.sourcesPerMapping,
      LIMITS.serviceNameMax,
    ]);
  });
});

describe('valid objects', () => {
  it('a minimal Mapping is accepted; the server defaults mode and protocol and keeps TCP as written', async () => {
    const body = mappingBody('minimal', { addresses: [VIP_1], serviceName: 'echo', ports: [{ port: 8080 }, { port: 53, protocol: 'UDP' }, { port: 443, protocol: 'TCP' }] });
    await api.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'mappings', body });
    const stored = (await api.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'mappings', name: 'minimal' })) as Record<string, unknown>;
    expect(stored.spec).toEqual({
      addresses: [VIP_1],
      serviceName: 'echo',
      mode: 'service',
      ports: [{ port: 8080, protocol: 'tcp' }, { port: 53, protocol: 'UDP' }, { port: 443, protocol: 'TCP' }],
    });
    // What the schema cannot default, the parser does.
    const parsed = parseMapping(stored);
    expect(parsed.ok && parsed.value.spec).toEqual({
      addresses: [VIP_1],
      allowedSources: ['0.0.0.0/0'],
      serviceName: 'echo',
      mode: 'service',
      ports: [
        { port: 8080, protocol: 'tcp', servicePort: 8080 },
        { port: 53, protocol: 'udp', servicePort: 53 },
        { port: 443, protocol: 'tcp', servicePort: 443 },
      ],
    });
  });

  it('bare-IP sources and CIDRs with host bits are accepted and stored as written', async () => {
    const body = mappingBody('sources', { addresses: [VIP_1], allowedSources: ['198.18.1.7', '10.0.0.1/16'], serviceName: 'echo', ports: [{ port: 80 }] });
    const verdict = await dryRunCreate(kc, body, ns);
    expect(verdict.accepted && (verdict.object.spec as Record<string, unknown>).allowedSources).toEqual(['198.18.1.7', '10.0.0.1/16']);
  });

  it('the original example applies unchanged with kubectl and reads back as written', async () => {
    const original = parseYaml(readFileSync(ORIGINAL_EXAMPLE, 'utf8')) as Record<string, unknown>;
    await kubectl(['apply', '-n', ns, '-f', ORIGINAL_EXAMPLE.pathname]);
    const out = await kubectl(['get', '-n', ns, 'mapping', 'mapping-echo-service', '-o', 'json']);
    const stored = JSON.parse(out.stdout) as Record<string, Record<string, unknown>>;
    expect(stored.spec).toEqual(original.spec);
    expect(stored.metadata?.finalizers).toEqual([LEGACY_FINALIZER]);
    const parsed = parseMapping(stored);
    expect(parsed.ok && parsed.value.finalizers).toEqual([LEGACY_FINALIZER]);
    // Applying the same file again changes nothing.
    const again = await kubectl(['apply', '-n', ns, '-f', ORIGINAL_EXAMPLE.pathname]);
    expect(again.stdout).toContain('unchanged');
  });

  it('kubectl prints the columns, and the short name works', async () => {
    const out = await kubectl(['get', '-n', ns, 'snm', 'mapping-echo-service']);
    const [header, row] = out.stdout.trim().split('\n');
    expect(header?.split(/\s+/)).toEqual(['NAME', 'ADDRESSES', 'SERVICE', 'OWNER', 'READY', 'AGE']);
    expect(row).toContain('["192.168.60.5"]');
    expect(row).toContain('echo-test-service');
  });

  it('an AddressPool (cluster-scoped) is accepted and parses as written', async () => {
    const base = loadBase('AddressPool');
    const name = `pool-${ns}`;
    const body = { ...base, metadata: { name, labels: { 'test-ns': ns } } };
    await api.createClusterCustomObject({ group: GROUP, version: VERSION, plural: 'addresspools', body });
    const stored = await api.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'addresspools', name });
    expect((stored as Record<string, unknown>).spec).toEqual(base.spec);
    const parsed = parseAddressPool(stored);
    expect(parsed.ok && parsed.value.spec.vrrp).toEqual({ vridRange: [10, 50], advertIntervalMs: 100 });
  });
});

describe('status subresource', () => {
  const statusPath = { group: GROUP, version: VERSION, plural: 'mappings', name: 'minimal' };

  it('each owner server-side-applies its own configuredAddresses entry; the map is granular', async () => {
    const apply = async (manager: string, address: string | undefined): Promise<void> => {
      const entries = address === undefined ? {} : { [address]: { owner: manager, podIPs: ['198.51.100.5'], endpoints: ['198.51.100.5:8080/tcp'], programmedAt: '2026-01-01T00:00:00Z' } };
      await api.patchNamespacedCustomObjectStatus(
        {
          ...statusPath,
          namespace: ns,
          body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'Mapping', metadata: { name: 'minimal' }, status: { configuredAddresses: entries } },
          fieldManager: `smartnat-agent/${manager}`,
          force: true,
        },
        setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
      );
    };
    const read = async (): Promise<string[]> => {
      const m = (await api.getNamespacedCustomObject({ ...statusPath, namespace: ns })) as { status?: { configuredAddresses?: Record<string, unknown> } };
      return Object.keys(m.status?.configuredAddresses ?? {}).sort();
    };
    await apply('agent-a', VIP_1);
    await apply('agent-b', VIP_2);
    expect(await read()).toEqual([VIP_1, VIP_2]);
    await apply('agent-a', undefined); // agent-a gives its address up; agent-b's entry stays
    expect(await read()).toEqual([VIP_2]);
    const parsed = parseMapping(await api.getNamespacedCustomObject({ ...statusPath, namespace: ns }));
    expect(parsed.ok && parsed.value.status.configuredAddresses[VIP_2]?.owner).toBe('agent-b');
  });

  it('a status write cannot change the spec, and conditions must be well-formed', async () => {
    const patch = async (body: Record<string, unknown>): Promise<void> => {
      await api.patchNamespacedCustomObjectStatus({ ...statusPath, namespace: ns, body }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    };
    await patch({ spec: { serviceName: 'hijacked' }, status: { invalid: 'no', serviceVIP: '198.19.0.10', observedGeneration: 1 } });
    const m = (await api.getNamespacedCustomObject({ ...statusPath, namespace: ns })) as { spec: { serviceName: string }; status: { invalid: string } };
    expect([m.spec.serviceName, m.status.invalid]).toEqual(['echo', 'no']);
    await expect(patch({ status: { conditions: [{ type: 'Ready', status: 'Maybe' }] } })).rejects.toMatchObject({ code: 422 });
  });
});

describe('invalid fixtures are refused at their field', () => {
  const fixtures = loadInvalidFixtures();

  it('has at least 15 fixtures', () => expect(fixtures.length).toBeGreaterThanOrEqual(15));

  it.each(['Mapping', 'AddressPool'] as const)('the %s base is accepted', async (kind) => {
    const verdict = await dryRunCreate(kc, loadBase(kind), kind === 'Mapping' ? ns : undefined);
    expect(verdict.accepted ? 'accepted' : verdict.message).toBe('accepted');
  });

  it.each(fixtures.map((f) => [f.file, f] as const))('%s', async (_file, f) => {
    const verdict = await dryRunCreate(kc, f.object, f.kind === 'Mapping' ? ns : undefined);
    expect(verdict.accepted).toBe(false);
    const fields = [...new Set(fieldCauses(verdict).map((c) => c.field))];
    expect(fields).toEqual([f.field]);
    // The parser agrees on where the problem is.
    const parsed = f.kind === 'Mapping' ? parseMapping(asServed(f.object, ns)) : parseAddressPool(asServed(f.object));
    expect(parsed.ok ? [] : [...new Set(parsed.errors.map((e) => e.field))]).toEqual(fields);
  });
});

describe('spec.egress (ADR 0009): server and parser agree', () => {
  const mappingWith = (egress: unknown): Record<string, unknown> => {
    const base = loadBase('Mapping');
    return { ...base, spec: { ...(base.spec as Record<string, unknown>), addresses: [VIP_1, VIP_2], egress } };
  };
  const poolWith = (egress: unknown): Record<string, unknown> => {
    const base = loadBase('AddressPool');
    return { ...base, spec: { ...(base.spec as Record<string, unknown>), egress } };
  };

  it('accepts an egress Mapping (enabled defaulted to false when left out) and a pool with gateways', async () => {
    for (const egress of [{ enabled: true }, { enabled: true, address: VIP_2 }, {}]) {
      const verdict = await dryRunCreate(kc, mappingWith(egress), ns);
      expect(verdict.accepted ? 'accepted' : verdict.message).toBe('accepted');
      expect(parseMapping(asServed(mappingWith(egress), ns)).ok).toBe(true);
    }
    const pool = await dryRunCreate(kc, poolWith({ gateways: ['198.51.100.100-198.51.100.119'] }), undefined);
    expect(pool.accepted ? 'accepted' : pool.message).toBe('accepted');
  });

  const refusals: [string, 'Mapping' | 'AddressPool', Record<string, unknown>, string][] = [
    ['an egress address outside spec.addresses', 'Mapping', { enabled: true, address: '203.0.113.99' }, 'spec.egress.address'],
    ['an egress address that is not an address', 'Mapping', { enabled: true, address: '203.0.113' }, 'spec.egress.address'],
    ['a reversed gateway range', 'AddressPool', { gateways: ['198.51.100.119-198.51.100.100'] }, 'spec.egress.gateways[0]'],
    ['a pool egress without gateways', 'AddressPool', {}, 'spec.egress.gateways'],
  ];
  it.each(refusals)('refuses %s at its field', async (_what, kind, egress, field) => {
    const obj = kind === 'Mapping' ? mappingWith(egress) : poolWith(egress);
    const verdict = await dryRunCreate(kc, obj, kind === 'Mapping' ? ns : undefined);
    expect(verdict.accepted).toBe(false);
    expect([...new Set(fieldCauses(verdict).map((c) => c.field))]).toEqual([field]);
    const parsed = kind === 'Mapping' ? parseMapping(asServed(obj, ns)) : parseAddressPool(asServed(obj));
    expect(parsed.ok ? [] : [...new Set(parsed.errors.map((e) => e.field))]).toEqual([field]);
  });
});
