// The chart against the real API server: helm install (no --wait: there is no kubelet) into a
// fresh namespace, every rendered object accepted by `kubectl apply --dry-run=server`, the
// ServiceAccount's permissions equal to the expected table (not more), every API call the agent
// makes performed with a TokenRequest token of that ServiceAccount (enough), what it must not do
// refused, helm upgrade, and helm uninstall leaving only the CRDs and the leases.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiException, CoordinationV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { readNodeLabels, KubeConfiguredAddressWriter } from '../../src/cluster/configured-addresses.js';
import { KubeEventSink } from '../../src/cluster/events.js';
import { ResourceInformers } from '../../src/cluster/informers.js';
import { KubeLeaseStore } from '../../src/cluster/lease-store.js';
import { KubeStatusWriter } from '../../src/cluster/status-writer.js';
import { agentLeaseName, LABEL_ROLE, type LeaseRecord } from '../../src/plan/lease-names.js';
import { GROUP, LEGACY_FINALIZER, VERSION } from '../../src/api/types.js';
import { installCrds } from '../fixtures/crd/server.js';
import { createTestNamespace, helm, kubectl, loadTestKubeConfig, waitFor } from '../support/kube.js';
import { CHART_DIR, parseManifests, testKubernetesVersion, withValuesFile, type KubeObject } from './chart.js';
import { canIList, expectedChartRows, serviceAccountKubeconfig, serviceAccountUser } from './rbac.js';

// Two busy cores: helm and kubectl each start in about a second.
jest.setTimeout(60_000);

const admin = loadTestKubeConfig();
let ns = '';
let other = '';
let release = '';
let sa = '';
let pools: string[] = [];
let manifest: KubeObject[] = [];
let tokenDir = '';
let asAgent: KubeConfig;

function values(): Record<string, unknown> {
  return {
    nodeSelector: { 'smartnat.aureacentral.com/pool': 'blue' },
    tolerations: [{ key: 'smartnat.aureacentral.com/dedicated', operator: 'Exists', effect: 'NoSchedule' }],
    agent: { interfaces: [{ name: 'eth1', role: 'external' }, { name: 'eth0', role: 'internal' }] },
    addressPools: pools.map((name, i) => ({ name, addresses: [`203.0.113.${16 * (i + 1)}/28`], interface: 'eth1', allowedNamespaces: [ns] })),
  };
}

/** The HTTP status of a refused call (403 expected), or 0 when it succeeded. */
async function statusOf(call: () => Promise<unknown>): Promise<number> {
  try {
    await call();
    return 0;
  } catch (err: unknown) {
    if (err instanceof ApiException) return err.code;
    throw err;
  }
}

beforeAll(async () => {
  await installCrds();
  // Right after a CRD is established its storage may still answer 429 "(re)initializing".
  const custom = admin.makeApiClient(CustomObjectsApi);
  for (const plural of ['mappings', 'addresspools']) {
    await waitFor(async () => (await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural })) !== undefined, { what: `${plural} to be served`, timeoutMs: 60_000 });
  }
  ns = await createTestNamespace('chart-');
  other = await createTestNamespace('chart-other-');
  release = `sn-${ns.slice(-5)}`;
  sa = `${release}-smartnat`;
  pools = [`${ns}-a`, `${ns}-b`];
  tokenDir = mkdtempSync(join(tmpdir(), 'smartnat-chart-'));
}, 120_000);

afterAll(() => {
  if (tokenDir !== '') rmSync(tokenDir, { recursive: true, force: true });
});

describe('helm install into the real API server', () => {
  test('install without --wait succeeds and creates the release objects', async () => {
    const r = await withValuesFile(values(), async (file) => helm(['install', release, CHART_DIR, '-n', ns, '-f', file], { timeoutMs: 120_000 }));
    expect(r.stdout).toContain('STATUS: deployed');
    expect(r.stdout).toContain(`kubectl -n ${ns} get leases -l smartnat.aureacentral.com/role=agent`);
    manifest = parseManifests((await helm(['get', 'manifest', release, '-n', ns])).stdout);
    expect(manifest.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(
      [
        ...pools.map((p) => `AddressPool/${p}`),
        `ClusterRole/${sa}`,
        `ClusterRoleBinding/${sa}`,
        `DaemonSet/${sa}`,
        `Role/${sa}-leases`,
        `RoleBinding/${sa}-leases`,
        `Service/${sa}-metrics`,
        `ServiceAccount/${sa}`,
      ].sort(),
    );
    const ds = await kubectl(['get', 'daemonset', sa, '-n', ns, '-o', 'jsonpath={.spec.template.spec.nodeSelector}']);
    expect(JSON.parse(ds.stdout)).toEqual({ 'kubernetes.io/os': 'linux', 'smartnat.aureacentral.com/pool': 'blue' });
    const pool = await kubectl(['get', 'addresspool', pools[0]!, '-o', 'jsonpath={.spec.addresses}']);
    expect(JSON.parse(pool.stdout)).toEqual(['203.0.113.16/28']);
  }, 180_000);

  test('every rendered object passes kubectl apply --dry-run=server --validate=strict', async () => {
    const text = (await helm(['get', 'manifest', release, '-n', ns])).stdout;
    const r = await kubectl(['apply', '--dry-run=server', '--validate=strict', '-n', ns, '-f', '-'], { input: text });
    const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
    expect(lines).toHaveLength(manifest.length);
    for (const line of lines) expect(line).toMatch(/\((server dry run)\)$/);
  });

  test.each(readdirSync(join(CHART_DIR, 'ci')).filter((f) => f.endsWith('.yaml')).sort())('ci/%s renders objects the API server accepts (server dry run)', async (file) => {
    // Another release name: these are creates, not patches of the installed objects.
    const rendered = await helm(['template', `ci-${ns.slice(-5)}`, CHART_DIR, '-n', ns, '--kube-version', testKubernetesVersion(), '-f', join(CHART_DIR, 'ci', file)]);
    // The test API server has no Prometheus Operator CRDs: a ServiceMonitor is checked by the render tests only.
    const objects = parseManifests(rendered.stdout).filter((o) => o.kind !== 'ServiceMonitor');
    const r = await kubectl(['apply', '--dry-run=server', '--validate=strict', '-n', ns, '-f', '-'], { input: objects.map((o) => JSON.stringify(o)).join('\n') });
    const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
    expect(lines).toHaveLength(objects.length);
    for (const line of lines) expect(line).toMatch(/ created \(server dry run\)$/);
  });

  test('a pod of the DaemonSet is admitted only where Pod Security allows privileged (docs/helm.md)', async () => {
    const ds = JSON.parse((await kubectl(['get', 'daemonset', sa, '-n', ns, '-o', 'json'])).stdout) as { spec: { template: { metadata: Record<string, unknown>; spec: Record<string, unknown> } } };
    const pod = (namespace: string): string => JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { ...ds.spec.template.metadata, name: 'agent-probe', namespace }, spec: { ...ds.spec.template.spec, nodeName: 'nat-1' } });
    const baseline = await createTestNamespace('chart-baseline-');
    await kubectl(['label', 'namespace', baseline, 'pod-security.kubernetes.io/enforce=baseline']);
    const refused = await kubectl(['create', '--dry-run=server', '-f', '-'], { input: pod(baseline), allowFailure: true });
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr).toContain('violates PodSecurity "baseline:latest"');
    expect(refused.stderr).toMatch(/host namespaces|hostNetwork/);
    await kubectl(['label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=privileged']);
    const admitted = await kubectl(['create', '--dry-run=server', '-f', '-'], { input: pod(ns) });
    expect(admitted.stdout).toContain('pod/agent-probe created (server dry run)');
  });

  test('the ServiceAccount can do exactly the expected table, in its namespace and elsewhere', async () => {
    // The API server grants every authenticated account some rows (discovery, self reviews):
    // measure them with a ServiceAccount nobody bound, and expect the chart to add exactly its own.
    const baselineHere = await canIList(serviceAccountUser(ns, 'nobody'), ns);
    const baselineThere = await canIList(serviceAccountUser(ns, 'nobody'), other);
    for (const own of expectedChartRows(true)) expect(baselineHere).not.toContain(own);
    expect(await canIList(serviceAccountUser(ns, sa), ns)).toEqual([...baselineHere, ...expectedChartRows(true)].sort());
    expect(await canIList(serviceAccountUser(ns, sa), other)).toEqual([...baselineThere, ...expectedChartRows(false)].sort());
  });
});

describe('a TokenRequest token of the chart ServiceAccount runs every API call of the agent, through the agent\'s own adapters', () => {
  beforeAll(async () => {
    asAgent = (await serviceAccountKubeconfig(ns, sa, tokenDir)).kc;
  });

  test('the informers list and watch Mappings, AddressPools, Services, EndpointSlices cluster-wide; the Node labels are read', async () => {
    const errors: string[] = [];
    const informers = new ResourceInformers({ kc: asAgent, changed: () => undefined, onError: (c, err) => errors.push(`${c}: ${String(err)}`) });
    await informers.start();
    try {
      await waitFor(() => informers.synced, { what: `informers to sync (unsynced: ${informers.unsynced().join(', ')}; errors: ${errors.join('; ')})`, timeoutMs: 30_000 });
      const objects = informers.objects();
      expect((objects.addressPools as KubeObject[]).map((p) => p.metadata.name)).toEqual(expect.arrayContaining(pools));
      // Errors before stop() (stopping aborts the open watches, which the informers report too).
      expect(errors).toEqual([]);
    } finally {
      await informers.stop();
    }
    const node = `chart-node-${ns.slice(-5)}`;
    await admin.makeApiClient(CoreV1Api).createNode({ body: { metadata: { name: node, labels: { 'smartnat.aureacentral.com/pool': 'blue' } } } });
    expect(await readNodeLabels(asAgent, node)).toEqual({ 'smartnat.aureacentral.com/pool': 'blue' });
  });

  test('leases through the real lease store and informer: create, get, list, watch, CAS, stale CAS refused, annotation patch, delete', async () => {
    const store = new KubeLeaseStore(asAgent, ns);
    const lease: LeaseRecord = {
      name: agentLeaseName('node-a'),
      resourceVersion: '',
      holder: 'node-a',
      leaseDurationSeconds: 2,
      leaseTransitions: 0,
      renewTime: new Date(),
      labels: { [LABEL_ROLE]: 'agent' },
      annotations: {},
    };
    const created = await store.create(lease);
    if (created.outcome !== 'written') throw new Error(`create: ${created.outcome} ${created.message}`);
    expect((await store.list('agent')).items.map((l) => l.name)).toEqual([lease.name]);
    const renewed = await store.replace({ ...created.lease, renewTime: new Date() });
    if (renewed.outcome !== 'written') throw new Error(`replace: ${renewed.outcome} ${renewed.message}`);
    expect((await store.replace({ ...created.lease, holder: '' })).outcome).toBe('conflict');
    expect((await store.patchAnnotations(lease.name, { 'smartnat.aureacentral.com/drain': 'true' })).outcome).toBe('written');
    expect((await store.get(lease.name))?.annotations['smartnat.aureacentral.com/drain']).toBe('true');
    const scratch = await store.create({ ...lease, name: 'smartnat-addr-203-0-113-17', labels: { [LABEL_ROLE]: 'address' } });
    if (scratch.outcome !== 'written') throw new Error(`create: ${scratch.outcome}`);
    expect((await store.delete(scratch.lease.name, scratch.lease.resourceVersion)).outcome).toBe('deleted');
    const watch = await kubectl(['get', '--raw', `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases?watch=1&timeoutSeconds=1`], { kubeconfig: (await serviceAccountKubeconfig(ns, sa, tokenDir)).path });
    expect(watch.stdout).toContain(lease.name);
    // The agent lease stays: helm uninstall must leave it (checked below).
  });

  test('leader status and owner entries (server-side apply), Events, legacy finalizer removal', async () => {
    const adminCustom = admin.makeApiClient(CustomObjectsApi);
    const mapping = {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'Mapping',
      metadata: { name: 'legacy', namespace: other, finalizers: [LEGACY_FINALIZER] },
      spec: { addresses: ['203.0.113.17'], serviceName: 'echo', ports: [{ port: 8080, protocol: 'tcp' }] },
    };
    const stored = (await adminCustom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: other, plural: 'mappings', body: mapping })) as KubeObject & { metadata: { uid: string } };
    const ref = { namespace: other, name: 'legacy' };
    const uid = stored.metadata.uid;
    const writer = new KubeStatusWriter(asAgent);
    expect(await writer.writeMappingStatus({ ref, uid, status: { invalid: 'no', observedGeneration: 1, conditions: [], claims: [] } })).toBe('written');
    expect(await writer.writePoolStatus({ name: pools[0]!, status: { observedGeneration: 1, addresses: [], conditions: [] } })).toBe('written');
    await new KubeConfiguredAddressWriter(asAgent, 'node-a').apply(ref, { '203.0.113.17': { podIPs: [], endpoints: [], owner: 'node-a' } });
    const read = (await adminCustom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: other, plural: 'mappings', name: 'legacy' })) as { status?: { invalid?: string; configuredAddresses?: Record<string, { owner?: string }> } };
    expect(read.status?.invalid).toBe('no');
    expect(read.status?.configuredAddresses?.['203.0.113.17']?.owner).toBe('node-a');

    await new KubeEventSink(asAgent, 'node-a').create({ regarding: { ...ref, uid }, type: 'Normal', reason: 'MappingAccepted', message: 'chart RBAC test' }, new Date());
    const events = await kubectl(['get', 'events', '-n', other, '-o', 'jsonpath={.items[*].reason}']);
    expect(events.stdout.split(' ')).toContain('MappingAccepted');

    // A Mapping deleted while it carries the original's finalizer stays until the agent removes it.
    await adminCustom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: other, plural: 'mappings', name: 'legacy' });
    expect(await writer.removeLegacyFinalizer({ ref, uid, index: 0 })).toBe('removed');
    await waitFor(async () => (await statusOf(() => adminCustom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: other, plural: 'mappings', name: 'legacy' }))) === 404, { what: 'the Mapping to be gone' });
  });

  test('and nothing beyond: leases elsewhere, PUT, creating or deleting SmartNat objects, Secrets, listing Nodes are refused', async () => {
    const leases = asAgent.makeApiClient(CoordinationV1Api);
    const body = { metadata: { name: 'smartnat-agent-x' }, spec: { holderIdentity: 'x' } };
    expect(await statusOf(() => leases.createNamespacedLease({ namespace: other, body }))).toBe(403);
    expect(await statusOf(() => leases.replaceNamespacedLease({ name: agentLeaseName('node-a'), namespace: ns, body: { ...body, metadata: { name: agentLeaseName('node-a') } } }))).toBe(403);
    const custom = asAgent.makeApiClient(CustomObjectsApi);
    expect(await statusOf(() => custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: other, plural: 'mappings', body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'Mapping', metadata: { name: 'x' } } }))).toBe(403);
    expect(await statusOf(() => custom.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: 'addresspools', name: pools[0]! }))).toBe(403);
    expect(await statusOf(() => asAgent.makeApiClient(CoreV1Api).listSecretForAllNamespaces())).toBe(403);
    expect(await statusOf(() => asAgent.makeApiClient(CoreV1Api).listNode())).toBe(403);
  });
});

describe('helm upgrade and uninstall', () => {
  test('upgrade changes the DaemonSet and keeps the release objects', async () => {
    const next = { ...values(), agent: { logLevel: 'debug', interfaces: [{ name: 'eth1', role: 'external' }] } };
    const r = await withValuesFile(next, async (file) => helm(['upgrade', release, CHART_DIR, '-n', ns, '-f', file], { timeoutMs: 120_000 }));
    expect(r.stdout).toContain('REVISION: 2');
    const args = JSON.parse((await kubectl(['get', 'daemonset', sa, '-n', ns, '-o', 'jsonpath={.spec.template.spec.containers[0].args}'])).stdout) as string[];
    expect(args).toContain('--log-level=debug');
    expect(args).not.toContain('--interface=eth0=internal');
  }, 180_000);

  test('uninstall leaves only the CRDs and the leases; the documented command removes the leases', async () => {
    await helm(['uninstall', release, '-n', ns], { timeoutMs: 120_000 });
    const left = await kubectl(['get', 'daemonsets,serviceaccounts,roles,rolebindings,services,configmaps,secrets', '-n', ns, '-l', `app.kubernetes.io/instance=${release}`, '-o', 'name']);
    expect(left.stdout.trim()).toBe('');
    const cluster = await kubectl(['get', 'clusterroles,clusterrolebindings,addresspools', '-l', `app.kubernetes.io/instance=${release}`, '-o', 'name']);
    expect(cluster.stdout.trim()).toBe('');
    for (const pool of pools) expect((await kubectl(['get', 'addresspool', pool], { allowFailure: true })).exitCode).not.toBe(0);
    // Helm's own release record is gone too.
    expect((await kubectl(['get', 'secrets', '-n', ns, '-l', `owner=helm,name=${release}`, '-o', 'name'])).stdout.trim()).toBe('');
    await kubectl(['get', 'crd', `mappings.${GROUP}`, `addresspools.${GROUP}`]);
    const leases = await kubectl(['get', 'leases', '-n', ns, '-o', 'name']);
    expect(leases.stdout.trim()).toBe(`lease.coordination.k8s.io/${agentLeaseName('node-a')}`);
    await kubectl(['delete', 'leases', '-n', ns, '-l', LABEL_ROLE]);
    expect((await kubectl(['get', 'leases', '-n', ns, '-o', 'name'])).stdout.trim()).toBe('');
  }, 180_000);
});
