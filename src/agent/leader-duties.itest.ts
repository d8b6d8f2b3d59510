// The leader's duties against a real kube-apiserver + etcd: cluster-wide conflicts across
// namespaces (first accepted claim keeps the pair, an edited old Mapping is refused), pool
// membership and namespace refusals, status written once (resourceVersions unchanged on a second
// pass), Events once per transition, address leases with router ids created and deleted, the
// original's finalizer removed so a deletion completes, and the original example Mapping.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ApiException, CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { installCrds } from '../../test/fixtures/crd/server.js';
import { createTestNamespace, kubectl, loadTestKubeConfig, waitFor } from '../../test/support/kube.js';
import { parseService } from '../api/core.js';
import { parseAddressPool } from '../api/parse.js';
import { API_VERSION, GROUP, LEGACY_FINALIZER, VERSION, type AddressPool } from '../api/types.js';
import { realClock } from '../cluster/clock.js';
import { kubeEventRecorder } from '../cluster/events.js';
import { acquireAddress } from '../cluster/lease-protocol.js';
import { KubeLeaseStore } from '../cluster/lease-store.js';
import { KubeStatusWriter } from '../cluster/status-writer.js';
import { silentLogger } from '../log/logger.js';
import { serviceInfo, type ServiceInfo } from '../model/snapshot.js';
import { readLeaderMapping, type LeaderMappingEntry } from '../plan/leader-input.js';
import { ANNOTATION_INTERFACE, ANNOTATION_POOL, ANNOTATION_VRID, addressLeaseName } from '../plan/lease-names.js';
import { LeaderDuties, type LeaderDutiesInput, type LeaderSyncReport } from './leader-duties.js';

const ORIGINAL_EXAMPLE = new URL('../../test/fixtures/crd/original-mapping.yaml', import.meta.url);
const ORIGINAL_ADDRESS = '192.168.60.5';

let kc: KubeConfig;
let custom: CustomObjectsApi;
let core: CoreV1Api;
const poolsMade: string[] = [];

beforeAll(async () => {
  await installCrds();
  kc = loadTestKubeConfig();
  custom = kc.makeApiClient(CustomObjectsApi);
  core = kc.makeApiClient(CoreV1Api);
}, 120_000);

afterAll(async () => {
  for (const name of poolsMade) await custom.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: 'addresspools', name }).catch(() => undefined);
});

/** One test's world: its lease namespace, its Mapping namespaces and its pools (other tests share the server). */
class World {
  readonly duties: LeaderDuties;
  readonly store: KubeLeaseStore;

  constructor(
    readonly leaseNamespace: string,
    readonly namespaces: string[],
    readonly poolNames: string[],
    readonly agents: { name: string; live: boolean }[] = [],
  ) {
    this.store = new KubeLeaseStore(kc, leaseNamespace);
    this.duties = new LeaderDuties({
      leases: this.store,
      status: new KubeStatusWriter(kc),
      events: kubeEventRecorder(kc, 'agent-test', realClock),
      namespace: leaseNamespace,
      log: silentLogger(),
      clock: realClock,
    });
  }

  static async make(poolNames: string[], namespaceCount: number): Promise<World> {
    const leaseNamespace = await createTestNamespace('leader-');
    const namespaces: string[] = [];
    for (let i = 0; i < namespaceCount; i++) namespaces.push(await createTestNamespace(`team-${String.fromCharCode(97 + i)}-`));
    return new World(leaseNamespace, namespaces, poolNames);
  }

  async input(): Promise<LeaderDutiesInput> {
    const mappings: LeaderMappingEntry[] = [];
    const services: ServiceInfo[] = [];
    for (const namespace of this.namespaces) {
      const list = (await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: 'mappings', namespace })) as { items: unknown[] };
      mappings.push(...list.items.map(readLeaderMapping));
      for (const s of (await core.listNamespacedService({ namespace })).items) {
        const parsed = parseService({ ...s, metadata: { ...s.metadata, namespace } });
        if (parsed.ok) services.push(serviceInfo(parsed.value));
      }
    }
    const poolList = (await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'addresspools' })) as { items: unknown[] };
    const pools = poolList.items.flatMap((raw) => {
      const p = parseAddressPool(raw);
      return p.ok && this.poolNames.includes(p.value.name) ? [p.value] : [];
    });
    const addressLeases = (await this.store.list('address')).items;
    return { mappings, pools, services, addressLeases, agents: this.agents };
  }

  async sync(): Promise<LeaderSyncReport> {
    const report = await this.duties.sync(await this.input());
    if (report.failures.length > 0) throw new Error(`leader pass failed: ${report.failures.map((f) => `${f.operation} ${f.target}: ${String(f.err)}`).join('; ')}`);
    return report;
  }
}

function mappingBody(name: string, o: { addresses: string[]; ports: number[]; serviceName?: string; finalizers?: string[] }): Record<string, unknown> {
  return {
    apiVersion: API_VERSION,
    kind: 'Mapping',
    metadata: { name, ...(o.finalizers ? { finalizers: o.finalizers } : {}) },
    spec: { addresses: o.addresses, serviceName: o.serviceName ?? 'echo', ports: o.ports.map((port) => ({ port, protocol: 'tcp' })) },
  };
}

async function createMapping(namespace: string, name: string, o: Parameters<typeof mappingBody>[1]): Promise<void> {
  await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: 'mappings', namespace, body: mappingBody(name, o) });
}

async function patchSpec(namespace: string, name: string, spec: Record<string, unknown>): Promise<void> {
  await custom.patchNamespacedCustomObject(
    { group: GROUP, version: VERSION, plural: 'mappings', namespace, name, body: { spec } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}

interface Stored {
  metadata: { resourceVersion: string; uid: string; generation: number; finalizers?: string[]; deletionTimestamp?: string };
  status?: {
    invalid?: string;
    serviceVIP?: string;
    observedGeneration?: number;
    claims?: string[];
    conditions?: { type: string; status: string; reason: string; message: string; observedGeneration?: number; lastTransitionTime: string }[];
    configuredAddresses?: Record<string, Record<string, unknown>>;
  };
}

async function getMapping(namespace: string, name: string): Promise<Stored> {
  return (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: 'mappings', namespace, name })) as Stored;
}

function cond(m: Stored, type: string) {
  return m.status?.conditions?.find((c) => c.type === type);
}

async function createPool(name: string, spec: Record<string, unknown>): Promise<AddressPool> {
  poolsMade.push(name);
  const created = await custom.createClusterCustomObject({ group: GROUP, version: VERSION, plural: 'addresspools', body: { apiVersion: API_VERSION, kind: 'AddressPool', metadata: { name }, spec } });
  const parsed = parseAddressPool(created);
  if (!parsed.ok) throw new Error(`pool ${name} did not parse`);
  return parsed.value;
}

function uniqueName(prefix: string): string {
  return `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
}

async function eventsFor(namespace: string, uid: string): Promise<{ reason: string; message: string }[]> {
  const list = await core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.uid=${uid}` });
  return list.items.map((e) => ({ reason: e.reason ?? '', message: e.message ?? '' })).sort((a, b) => (a.reason + a.message < b.reason + b.message ? -1 : 1));
}

describe('cluster-wide conflicts', () => {
  it('across namespaces the first accepted claim keeps a port; an edited old Mapping is refused; never both refused', async () => {
    const poolName = uniqueName('conflicts');
    const w = await World.make([poolName], 2);
    const [nsA, nsB] = w.namespaces as [string, string];
    await createPool(poolName, { addresses: ['203.0.113.32/29'] });
    const VIP = '203.0.113.33';
    await createMapping(nsA, 'old', { addresses: [VIP], ports: [80] });
    await w.sync();
    await createMapping(nsB, 'holder', { addresses: [VIP], ports: [443] });
    await w.sync();
    await createMapping(nsB, 'late', { addresses: [VIP], ports: [80] });
    await w.sync();

    const late = await getMapping(nsB, 'late');
    expect(cond(late, 'Accepted')).toMatchObject({ status: 'False', reason: 'PortConflict' });
    expect(late.status?.invalid).toBe(`${VIP}:80/tcp belongs to Mapping ${nsA}/old`);
    expect(cond(await getMapping(nsA, 'old'), 'Accepted')?.status).toBe('True');
    expect((await getMapping(nsA, 'old')).status?.claims).toEqual([`${VIP}:80/tcp`]);

    // The old Mapping (oldest creationTimestamp) is edited to take 443, which `holder` has.
    await patchSpec(nsA, 'old', { ports: [{ port: 80, protocol: 'tcp' }, { port: 443, protocol: 'tcp' }] });
    await w.sync();
    const old = await getMapping(nsA, 'old');
    expect(cond(old, 'Accepted')).toMatchObject({ status: 'False', reason: 'PortConflict', observedGeneration: 2 });
    expect(old.status?.invalid).toBe(`${VIP}:443/tcp belongs to Mapping ${nsB}/holder`);
    expect(old.status?.claims).toBeUndefined();
    const holder = await getMapping(nsB, 'holder');
    expect(cond(holder, 'Accepted')?.status).toBe('True');
    expect(holder.status?.claims).toEqual([`${VIP}:443/tcp`]);
    // The refused old Mapping released :80, so `late` (refused because of it) is now accepted.
    expect(cond(await getMapping(nsB, 'late'), 'Accepted')).toMatchObject({ status: 'True', reason: 'Accepted' });
    const events = await eventsFor(nsA, old.metadata.uid);
    expect(events).toEqual([
      { reason: 'MappingAccepted', message: 'every address and port is available to this Mapping' },
      { reason: 'MappingRefused', message: `PortConflict: ${VIP}:443/tcp belongs to Mapping ${nsB}/holder` },
    ]);
  }, 60_000);

  it('an address outside every pool, or in a pool closed to the namespace, is refused with the reason', async () => {
    const poolName = uniqueName('closed');
    const w = await World.make([poolName], 2);
    const [nsA, nsB] = w.namespaces as [string, string];
    await createPool(poolName, { addresses: ['203.0.113.40/30'], allowedNamespaces: [nsA] });
    await createMapping(nsA, 'inside', { addresses: ['203.0.113.41'], ports: [80] });
    await createMapping(nsB, 'closed', { addresses: ['203.0.113.41'], ports: [81] });
    await createMapping(nsA, 'outside', { addresses: ['203.0.113.200'], ports: [80] });
    await w.sync();
    expect(cond(await getMapping(nsA, 'inside'), 'Accepted')?.status).toBe('True');
    const closed = await getMapping(nsB, 'closed');
    expect(cond(closed, 'Accepted')).toMatchObject({ status: 'False', reason: 'NamespaceNotAllowed' });
    expect(closed.status?.invalid).toBe(`address 203.0.113.41 is in AddressPool ${poolName}, closed to namespace ${nsB}`);
    const outside = await getMapping(nsA, 'outside');
    expect(cond(outside, 'Accepted')).toMatchObject({ status: 'False', reason: 'AddressNotInPool' });
    expect(outside.status?.invalid).toBe('address 203.0.113.200 is in no AddressPool');
  }, 60_000);
});

describe('status, leases and Events', () => {
  it('status and leases are written once: a second pass changes no resourceVersion and records no Event', async () => {
    const poolName = uniqueName('idem');
    const w = await World.make([poolName], 1);
    const [ns] = w.namespaces as [string];
    await createPool(poolName, { addresses: ['203.0.113.48/29'], interface: 'eth1', vrrp: { vridRange: { first: 40, last: 50 } } });
    await core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'echo' }, spec: { ports: [{ port: 80, protocol: 'TCP' }] } } });
    await createMapping(ns, 'web', { addresses: ['203.0.113.49', '203.0.113.50'], ports: [80, 81] });
    await w.sync(); // accepted first: `clash` may carry the same creationTimestamp (whole seconds)
    await createMapping(ns, 'clash', { addresses: ['203.0.113.50'], ports: [81] });
    await createMapping(ns, 'spare', { addresses: ['203.0.113.51'], ports: [82] });
    await w.sync();

    const web = await getMapping(ns, 'web');
    const svc = await core.readNamespacedService({ namespace: ns, name: 'echo' });
    expect(web.status).toMatchObject({ invalid: 'no', serviceVIP: svc.spec?.clusterIP, observedGeneration: 1 });
    expect(cond(web, 'Programmed')).toMatchObject({ status: 'False', reason: 'NoOwner', observedGeneration: 1 });
    expect(cond(await getMapping(ns, 'clash'), 'Accepted')?.reason).toBe('PortConflict');
    const leases = [...(await w.store.list('address')).items].sort((a, b) => (a.name < b.name ? -1 : 1));
    expect(leases.map((l) => [l.name, l.holder, l.annotations[ANNOTATION_POOL], l.annotations[ANNOTATION_VRID], l.annotations[ANNOTATION_INTERFACE]])).toEqual([
      [addressLeaseName('203.0.113.49'), '', poolName, '40', 'eth1'],
      [addressLeaseName('203.0.113.50'), '', poolName, '41', 'eth1'],
      [addressLeaseName('203.0.113.51'), '', poolName, '42', 'eth1'],
    ]);
    const pool = (await custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'addresspools', name: poolName })) as { status: { addresses: unknown[] } };
    expect(pool.status.addresses).toEqual([
      expect.objectContaining({ address: '203.0.113.49', owner: '', vrid: 40, transitions: 0 }),
      expect.objectContaining({ address: '203.0.113.50', owner: '', vrid: 41, transitions: 0 }),
      expect.objectContaining({ address: '203.0.113.51', owner: '', vrid: 42, transitions: 0 }),
    ]);

    const versions = async (): Promise<string[]> => [
      ...(await Promise.all(['web', 'clash', 'spare'].map(async (n) => `${n}@${(await getMapping(ns, n)).metadata.resourceVersion}`))),
      ...(await w.store.list('address')).items.map((l) => `${l.name}@${l.resourceVersion}`).sort(),
      `pool@${((await custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'addresspools', name: poolName })) as Stored).metadata.resourceVersion}`,
    ];
    const before = await versions();
    const eventsBefore = (await core.listNamespacedEvent({ namespace: ns })).items.length;
    const again = await w.sync();
    const third = await w.sync();
    expect(await versions()).toEqual(before);
    expect([again.done, third.done]).toEqual([
      { finalizer: 0, leaseDelete: 0, leaseCreate: 0, leaseAnnotate: 0, mappingStatus: 0, poolStatus: 0, event: 0 },
      { finalizer: 0, leaseDelete: 0, leaseCreate: 0, leaseAnnotate: 0, mappingStatus: 0, poolStatus: 0, event: 0 },
    ]);
    expect((await core.listNamespacedEvent({ namespace: ns })).items.length).toBe(eventsBefore);

    // A lease nobody needs is deleted: drop `spare`; its address lease goes, the others keep their ids.
    await custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: 'mappings', namespace: ns, name: 'spare' });
    await w.sync();
    const after = (await w.store.list('address')).items.map((l) => [l.name, l.annotations[ANNOTATION_VRID]]).sort();
    expect(after).toEqual([
      [addressLeaseName('203.0.113.49'), '40'],
      [addressLeaseName('203.0.113.50'), '41'],
    ]);
  }, 90_000);

  it("Programmed and Ready follow the owner's own configuredAddresses entry, which the leader never touches", async () => {
    const poolName = uniqueName('ready');
    const w = await World.make([poolName], 1);
    w.agents.push({ name: 'agent-a', live: true });
    const [ns] = w.namespaces as [string];
    const VIP = '203.0.113.57';
    await createPool(poolName, { addresses: [VIP] });
    await core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'echo' }, spec: { ports: [{ port: 80, protocol: 'TCP' }] } } });
    await createMapping(ns, 'web', { addresses: [VIP], ports: [80] });
    await w.sync();
    const lease = await w.store.get(addressLeaseName(VIP));
    expect(lease).toBeDefined();
    expect((await acquireAddress(w.store, lease!, 'agent-a', realClock)).outcome).toBe('moved');
    // The owner applies its own entry with its own field manager (DESIGN 2.1).
    await custom.patchNamespacedCustomObjectStatus(
      {
        group: GROUP, version: VERSION, plural: 'mappings', namespace: ns, name: 'web',
        body: { apiVersion: API_VERSION, kind: 'Mapping', metadata: { name: 'web' }, status: { configuredAddresses: { [VIP]: { owner: 'agent-a', observedGeneration: 1, podIPs: ['198.51.100.5'], endpoints: ['198.51.100.5:8080/tcp'] } } } },
        fieldManager: 'smartnat-agent/agent-a', force: true,
      },
      setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
    );
    const report = await w.sync();
    expect(report.done.mappingStatus).toBe(1);
    const web = await getMapping(ns, 'web');
    expect(cond(web, 'Programmed')).toMatchObject({ status: 'True', reason: 'Programmed' });
    expect(cond(web, 'Ready')).toMatchObject({ status: 'True', reason: 'Ready' });
    expect(web.status?.configuredAddresses?.[VIP]).toEqual({ owner: 'agent-a', observedGeneration: 1, podIPs: ['198.51.100.5'], endpoints: ['198.51.100.5:8080/tcp'] });
    const pool = (await custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'addresspools', name: poolName })) as { status: { addresses: { owner: string; transitions: number }[] } };
    expect(pool.status.addresses).toEqual([expect.objectContaining({ address: VIP, owner: 'agent-a', vrid: 1, transitions: 1 })]);
    expect((await eventsFor(ns, web.metadata.uid)).filter((e) => e.reason === 'OwnerChanged')).toEqual([{ reason: 'OwnerChanged', message: `${VIP} is now owned by agent-a` }]);

    // The owner dies (not live): Ready drops, Programmed stays (its rules may still be there).
    w.agents.splice(0, 1, { name: 'agent-a', live: false });
    await w.sync();
    const later = await getMapping(ns, 'web');
    expect(cond(later, 'Ready')).toMatchObject({ status: 'False', reason: 'OwnerNotLive' });
    expect(later.status?.configuredAddresses?.[VIP]?.owner).toBe('agent-a');
  }, 60_000);
});

describe('hostile input: a pool deleted in use, a Service changing type', () => {
  it("an AddressPool deleted under its Mappings refuses them (AddressNotInPool) and deletes their address leases; another pool's Mapping is untouched", async () => {
    const doomed = uniqueName('doomed');
    const kept = uniqueName('kept');
    const w = await World.make([doomed, kept], 1);
    const [ns] = w.namespaces as [string];
    await createPool(doomed, { addresses: ['203.0.113.64/30'] });
    await createPool(kept, { addresses: ['203.0.113.68/30'] });
    await core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'echo' }, spec: { ports: [{ port: 80, protocol: 'TCP' }] } } });
    await createMapping(ns, 'doomed-a', { addresses: ['203.0.113.65'], ports: [80] });
    await createMapping(ns, 'doomed-b', { addresses: ['203.0.113.65', '203.0.113.66'], ports: [81] });
    await createMapping(ns, 'other', { addresses: ['203.0.113.69'], ports: [80] });
    await w.sync();
    w.agents.push({ name: 'agent-a', live: true });
    const held = await w.store.get(addressLeaseName('203.0.113.65'));
    expect((await acquireAddress(w.store, held!, 'agent-a', realClock)).outcome).toBe('moved');
    await w.sync();
    const otherBefore = await getMapping(ns, 'other');
    const otherLeaseBefore = await w.store.get(addressLeaseName('203.0.113.69'));
    expect(cond(otherBefore, 'Accepted')?.status).toBe('True');

    await custom.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: 'addresspools', name: doomed });
    const report = await w.sync(); // throws on any failed write
    expect(report.done.leaseDelete).toBe(2);
    for (const [name, address] of [['doomed-a', '203.0.113.65'], ['doomed-b', '203.0.113.65']] as const) {
      const m = await getMapping(ns, name);
      expect(m.status?.invalid).toBe(`address ${address} is in no AddressPool`);
      expect(cond(m, 'Accepted')).toMatchObject({ status: 'False', reason: 'AddressNotInPool' });
      expect(cond(m, 'Ready')).toMatchObject({ status: 'False', reason: 'Refused' });
      expect(m.status?.claims).toBeUndefined();
      expect((await eventsFor(ns, m.metadata.uid)).filter((e) => e.reason === 'MappingRefused')).toEqual([{ reason: 'MappingRefused', message: `AddressNotInPool: address ${address} is in no AddressPool` }]);
    }
    // Leases of addresses no Mapping may use are deleted, the held one too: its holder drops the
    // address from the wire and its rules (an address outside every pool is nobody's to keep).
    expect(await w.store.get(addressLeaseName('203.0.113.65'))).toBeUndefined();
    expect(await w.store.get(addressLeaseName('203.0.113.66'))).toBeUndefined();
    const otherAfter = await getMapping(ns, 'other');
    expect(otherAfter.metadata.resourceVersion).toBe(otherBefore.metadata.resourceVersion);
    expect((await w.store.get(addressLeaseName('203.0.113.69')))?.resourceVersion).toBe(otherLeaseBefore?.resourceVersion);
    const again = await w.sync();
    expect(again.done).toEqual({ finalizer: 0, leaseDelete: 0, leaseCreate: 0, leaseAnnotate: 0, mappingStatus: 0, poolStatus: 0, event: 0 });

    // The pool back: accepted again, leases recreated.
    await createPool(doomed, { addresses: ['203.0.113.64/30'] });
    await w.sync();
    expect(cond(await getMapping(ns, 'doomed-a'), 'Accepted')?.status).toBe('True');
    expect(await w.store.get(addressLeaseName('203.0.113.65'))).toBeDefined();
  }, 60_000);

  it('a Service turned ExternalName or recreated headless under a Mapping: the Mapping says why it is not Ready; other Mappings undisturbed', async () => {
    const poolName = uniqueName('svctype');
    const w = await World.make([poolName], 1);
    const [ns] = w.namespaces as [string];
    await createPool(poolName, { addresses: ['203.0.113.72/30'] });
    await core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'echo' }, spec: { ports: [{ port: 80, protocol: 'TCP' }] } } });
    await core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'steady' }, spec: { ports: [{ port: 80, protocol: 'TCP' }] } } });
    await createMapping(ns, 'web', { addresses: ['203.0.113.73'], ports: [80] });
    await createMapping(ns, 'other', { addresses: ['203.0.113.74'], ports: [80], serviceName: 'steady' });
    await w.sync();
    const svc = await core.readNamespacedService({ namespace: ns, name: 'echo' });
    expect((await getMapping(ns, 'web')).status?.serviceVIP).toBe(svc.spec?.clusterIP);
    const otherBefore = (await getMapping(ns, 'other')).metadata.resourceVersion;
    const leasesBefore = (await w.store.list('address')).items.map((l) => `${l.name}@${l.resourceVersion}`).sort();

    await core.patchNamespacedService(
      { namespace: ns, name: 'echo', body: { spec: { type: 'ExternalName', externalName: 'echo.example.com', clusterIP: null, clusterIPs: null } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    expect((await core.readNamespacedService({ namespace: ns, name: 'echo' })).spec?.type).toBe('ExternalName');
    await w.sync();
    const external = await getMapping(ns, 'web');
    expect(external.status?.serviceVIP).toBeUndefined();
    expect(cond(external, 'Accepted')?.status).toBe('True'); // the address and port stay claimed
    expect(cond(external, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'ServiceTypeUnsupported',
      message: `Service ${ns}/echo is of type ExternalName (echo.example.com): it has no endpoints to forward to`,
    });

    await core.deleteNamespacedService({ namespace: ns, name: 'echo' });
    await core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'echo' }, spec: { clusterIP: 'None', ports: [{ port: 80, protocol: 'TCP' }] } } });
    await w.sync();
    const headless = await getMapping(ns, 'web');
    expect(headless.status?.serviceVIP).toBeUndefined();
    expect(cond(headless, 'Accepted')?.status).toBe('True'); // a headless Service's endpoints are forwarded to as any other's
    expect(cond(headless, 'Ready')).toMatchObject({ status: 'False', reason: 'NoOwner' });

    expect((await getMapping(ns, 'other')).metadata.resourceVersion).toBe(otherBefore);
    expect((await w.store.list('address')).items.map((l) => `${l.name}@${l.resourceVersion}`).sort()).toEqual(leasesBefore);
  }, 60_000);
});

describe('the original SmartNat example and its finalizer', () => {
  it('is refused because 192.168.60.5 is in no pool, accepted once a pool holds it, and can be deleted', async () => {
    const poolName = uniqueName('original');
    const w = await World.make([poolName], 1);
    const [ns] = w.namespaces as [string];
    await kubectl(['apply', '-n', ns, '-f', ORIGINAL_EXAMPLE.pathname]);
    const name = (parseYaml(readFileSync(ORIGINAL_EXAMPLE, 'utf8')) as { metadata: { name: string } }).metadata.name;
    await w.sync();
    await w.sync();
    const refused = await getMapping(ns, name);
    expect(refused.status?.invalid).toBe(`address ${ORIGINAL_ADDRESS} is in no AddressPool`);
    expect(cond(refused, 'Accepted')).toMatchObject({ status: 'False', reason: 'AddressNotInPool', observedGeneration: 1 });
    expect(await eventsFor(ns, refused.metadata.uid)).toEqual([{ reason: 'MappingRefused', message: `AddressNotInPool: address ${ORIGINAL_ADDRESS} is in no AddressPool` }]);
    expect(refused.metadata.finalizers).toEqual([LEGACY_FINALIZER]); // SmartNat never strips it from a live Mapping

    await createPool(poolName, { addresses: [`${ORIGINAL_ADDRESS}/32`] });
    await w.sync();
    const accepted = await getMapping(ns, name);
    expect(accepted.status?.invalid).toBe('no');
    expect(cond(accepted, 'Accepted')).toMatchObject({ status: 'True', reason: 'Accepted' });
    expect(cond(accepted, 'Ready')).toMatchObject({ status: 'False', reason: 'ServiceNotFound' });
    expect(accepted.status?.claims).toEqual([`${ORIGINAL_ADDRESS}:8080/tcp`]);
    expect(await w.store.get(addressLeaseName(ORIGINAL_ADDRESS))).toBeDefined();

    // Deleting it: the legacy finalizer holds it in Terminating until the leader removes it.
    await kubectl(['delete', '-n', ns, 'mapping', name, '--wait=false']);
    const terminating = await getMapping(ns, name);
    expect(terminating.metadata.deletionTimestamp).toBeDefined();
    const report = await w.sync();
    expect(report.done.finalizer).toBe(1);
    await waitFor(async () => {
      try {
        await getMapping(ns, name);
        return false;
      } catch (err: unknown) {
        return err instanceof ApiException && err.code === 404;
      }
    }, { what: 'the original Mapping to be gone', timeoutMs: 10_000 });
    await w.sync();
    expect(await w.store.get(addressLeaseName(ORIGINAL_ADDRESS))).toBeUndefined();
  }, 60_000);
});

describe('status writer', () => {
  it('writes only the leader fields, removes a dropped serviceVIP and claims, and reports a deleted Mapping as gone', async () => {
    const [ns] = (await World.make([], 1)).namespaces as [string];
    await createMapping(ns, 'm', { addresses: ['203.0.113.60'], ports: [80] });
    const writer = new KubeStatusWriter(kc);
    const ref = { namespace: ns, name: 'm' };
    const uid = (await getMapping(ns, 'm')).metadata.uid;
    await writer.writeMappingStatus({ ref, uid, status: { invalid: 'no', serviceVIP: '198.19.0.9', observedGeneration: 1, conditions: [], claims: ['203.0.113.60:80/tcp'] } });
    expect((await getMapping(ns, 'm')).status).toEqual({ invalid: 'no', serviceVIP: '198.19.0.9', observedGeneration: 1, conditions: [], claims: ['203.0.113.60:80/tcp'] });
    await writer.writeMappingStatus({ ref, uid, status: { invalid: 'x', observedGeneration: 1, conditions: [], claims: [] } });
    expect((await getMapping(ns, 'm')).status).toEqual({ invalid: 'x', observedGeneration: 1, conditions: [] });
    await custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: 'mappings', namespace: ns, name: 'm' });
    expect(await writer.writeMappingStatus({ ref, uid, status: { invalid: 'x', observedGeneration: 1, conditions: [], claims: [] } })).toBe('gone');
  }, 30_000);

  it('a finalizer removal computed from an outdated read (index or uid) changes nothing', async () => {
    const [ns] = (await World.make([], 1)).namespaces as [string];
    await createMapping(ns, 'kept', { addresses: ['203.0.113.61'], ports: [80], finalizers: ['example.com/other', LEGACY_FINALIZER] });
    const uid = (await getMapping(ns, 'kept')).metadata.uid;
    const writer = new KubeStatusWriter(kc);
    const ref = { namespace: ns, name: 'kept' };
    expect(await writer.removeLegacyFinalizer({ ref, uid, index: 0 })).toBe('stale');
    expect(await writer.removeLegacyFinalizer({ ref, uid: '00000000-0000-0000-0000-000000000000', index: 1 })).toBe('stale');
    expect((await getMapping(ns, 'kept')).metadata.finalizers).toEqual(['example.com/other', LEGACY_FINALIZER]);
    expect(await writer.removeLegacyFinalizer({ ref, uid, index: 1 })).toBe('removed');
    expect((await getMapping(ns, 'kept')).metadata.finalizers).toEqual(['example.com/other']);
    await kubectl(['patch', '-n', ns, 'mapping', 'kept', '--type=json', '-p', '[{"op":"remove","path":"/metadata/finalizers"}]']);
  }, 30_000);
});
