// The agent's observability decorators against a real kube-apiserver + etcd, wired as
// src/cli/agent.ts wires them: a failing data-plane apply records one DataPlaneApplyFailed Event
// regarding the agent's own Lease (found by the Lease's uid, as `kubectl describe lease` finds it),
// once per failure streak; and the API requests made meanwhile (lease create/get/patch, a 404,
// a 409, the Event creates, a Mapping status patch that 404s) appear in the API metrics.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoordinationV1Api, CoreV1Api, type CoreV1Event, type KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { installCrds } from '../fixtures/crd/server.js';
import { createTestNamespace, kubectl, loadTestKubeConfig } from '../support/kube.js';
import { instrumentConfiguredAddressWriter, instrumentEventSink, instrumentLeaseStore } from '../../src/agent/api-metrics.js';
import { ObservedDataPlane } from '../../src/agent/dataplane-observer.js';
import { createAgentMetrics, type AgentMetrics } from '../../src/agent/metrics.js';
import { KubeAgentEventSink } from '../../src/cluster/agent-events.js';
import { realClock } from '../../src/cluster/clock.js';
import { KubeConfiguredAddressWriter } from '../../src/cluster/configured-addresses.js';
import { KubeLeaseStore } from '../../src/cluster/lease-store.js';
import { DataPlaneApplier } from '../../src/dataplane/apply.js';
import { FakeKernel } from '../../src/dataplane/testing/fake-kernel.js';
import { POD_1, VIP_1, mapping, ok, service, slice, snapshot } from '../../src/dataplane/testing/fixtures.js';
import { silentLogger } from '../../src/log/logger.js';
import { DEFAULT_SETTINGS } from '../../src/model/settings.js';
import { planDataPlane } from '../../src/plan/plan-dataplane.js';
import { LABEL_ROLE, agentLeaseName } from '../../src/plan/lease-names.js';

const AGENT = 'ob-agent-1';

function desired(port: number) {
  return planDataPlane(
    snapshot({
      mappings: [ok(mapping({ name: 'web', addresses: [VIP_1], ports: [{ port, servicePort: 80 }] }))],
      services: [service('web', [{ name: 'http', port: 80 }])],
      endpointSlices: [slice({ name: 'web-1', service: 'web', ports: [{ name: 'http', port: 8080 }], endpoints: [POD_1] })],
    }),
    DEFAULT_SETTINGS,
  ).desired;
}

let kc: KubeConfig;
let namespace: string;
let registry: Registry;
let metrics: AgentMetrics;

beforeAll(async () => {
  kc = loadTestKubeConfig();
  await installCrds();
  namespace = await createTestNamespace('ob-agents-');
  registry = new Registry();
  metrics = createAgentMetrics(registry);
}, 120_000);

afterAll(() => metrics.close());

async function leaseEvents(uid: string): Promise<CoreV1Event[]> {
  const list = await kc.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace, fieldSelector: `involvedObject.uid=${uid},reason=DataPlaneApplyFailed` });
  return list.items;
}

async function value(line: string): Promise<number | undefined> {
  const found = (await registry.metrics()).split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.split(' ').pop());
}

describe('agent observability against the real API server', () => {
  it('a failing apply records DataPlaneApplyFailed on the agent Lease once per failure streak; the API metrics count every request', async () => {
    const store = instrumentLeaseStore(new KubeLeaseStore(kc, namespace), metrics);
    const name = agentLeaseName(AGENT);
    expect(await store.get(name)).toBeUndefined(); // a 404
    const lease = { name, resourceVersion: '', holder: AGENT, leaseDurationSeconds: 2, leaseTransitions: 0, renewTime: new Date(), labels: { [LABEL_ROLE]: 'agent' }, annotations: {} };
    const created = await store.create(lease);
    if (created.outcome !== 'written') throw new Error(`lease create: ${created.outcome}`);
    expect((await store.create(lease)).outcome).toBe('alreadyExists'); // a 409
    expect((await store.replace({ ...created.lease, renewTime: new Date() })).outcome).toBe('written');
    const uid = (await kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ name, namespace })).metadata?.uid ?? '';
    expect(uid).not.toBe('');

    const kernel = new FakeKernel();
    const plane = new ObservedDataPlane(new DataPlaneApplier({ runner: kernel }), {
      metrics,
      events: instrumentEventSink(new KubeAgentEventSink(kc, namespace, AGENT), metrics),
      clock: realClock,
      log: silentLogger(),
    });
    await plane.sync(desired(8080));
    kernel.failNext.set('iptables-restore', 3);
    for (let i = 0; i < 3; i++) await expect(plane.sync(desired(8081))).rejects.toThrow(/iptables-restore/);
    await plane.settled();
    const first = await leaseEvents(uid);
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({
      type: 'Warning',
      reason: 'DataPlaneApplyFailed',
      involvedObject: { kind: 'Lease', name, namespace, uid },
      source: { component: 'smartnat-agent' },
      reportingInstance: AGENT,
    });
    expect(first[0]?.message).toContain('iptables-restore exit 1: iptables-restore: injected failure');

    // kubectl describe finds it through the Lease.
    const described = await kubectl(['describe', 'lease', name, '-n', namespace]);
    expect(described.stdout).toMatch(/Warning\s+DataPlaneApplyFailed/);

    // The streak ends with a success; a new failure is a new Event.
    await plane.sync(desired(8081));
    kernel.failNext.set('iptables-restore', 1);
    await expect(plane.sync(desired(8082))).rejects.toThrow();
    await plane.settled();
    expect(await leaseEvents(uid)).toHaveLength(2);

    // A Mapping that does not exist: the server-side apply of configuredAddresses answers 404.
    const configured = instrumentConfiguredAddressWriter(new KubeConfiguredAddressWriter(kc, AGENT), metrics);
    await expect(configured.apply({ namespace, name: 'no-such-mapping' }, {})).rejects.toThrow();

    expect(await value('smartnat_api_request_duration_seconds_count{resource="leases",verb="get"}')).toBe(1);
    expect(await value('smartnat_api_request_duration_seconds_count{resource="leases",verb="create"}')).toBe(2);
    expect(await value('smartnat_api_request_duration_seconds_count{resource="leases",verb="patch"}')).toBe(1);
    expect(await value('smartnat_api_request_duration_seconds_count{resource="events",verb="create"}')).toBe(2);
    expect(await value('smartnat_api_request_duration_seconds_count{resource="mappings",verb="apply"}')).toBe(1);
    expect(await value('smartnat_api_request_errors_total{resource="leases",verb="get",code="404"}')).toBe(1);
    expect(await value('smartnat_api_request_errors_total{resource="leases",verb="create",code="409"}')).toBe(1);
    expect(await value('smartnat_api_request_errors_total{resource="mappings",verb="apply",code="404"}')).toBe(1);
    expect(await value('smartnat_api_request_errors_total{resource="events",verb="create",code="404"}')).toBeUndefined();
    const sum = await value('smartnat_api_request_duration_seconds_sum{resource="leases",verb="create"}');
    expect(sum).toBeGreaterThan(0);
    // Rule sizes from the last successful apply.
    expect(await value('smartnat_dataplane_rules{table="nat"}')).toBeGreaterThan(0);
  });
});
