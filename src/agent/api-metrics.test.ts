import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { FakeLeaseStore } from '../cluster/fake-lease-store.js';
import type { StatusWriter } from '../cluster/status-writer.js';
import { LABEL_ROLE, type LeaseRecord } from '../plan/lease-names.js';
import { apiErrorCode, instrumentConfiguredAddressWriter, instrumentEventSink, instrumentLeaseStore, instrumentStatusWriter } from './api-metrics.js';
import { createAgentMetrics, type AgentMetrics } from './metrics.js';

const LEASE: LeaseRecord = { name: 'smartnat-addr-203-0-113-10', resourceVersion: '', holder: 'a1', leaseDurationSeconds: 2, leaseTransitions: 0, labels: { [LABEL_ROLE]: 'address' }, annotations: {} };

async function metricsOf(): Promise<{ registry: Registry; metrics: AgentMetrics }> {
  const registry = new Registry();
  return { registry, metrics: createAgentMetrics(registry) };
}

/** `name{labels} value` lines of one metric, sorted, from the registry's text. */
async function series(registry: Registry, name: string): Promise<string[]> {
  const text = await registry.metrics();
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `)).sort();
}

class HttpError extends Error {
  constructor(readonly code: number) {
    super(`HTTP ${code}`);
  }
}

describe('API request metrics decorators', () => {
  it('times every lease-store call by resource and verb and counts typed refusals with their HTTP code', async () => {
    const { registry, metrics } = await metricsOf();
    const store = instrumentLeaseStore(new FakeLeaseStore(), metrics);
    expect(await store.get(LEASE.name)).toBeUndefined(); // 404
    const created = await store.create(LEASE);
    expect(created.outcome).toBe('written');
    expect((await store.create(LEASE)).outcome).toBe('alreadyExists'); // 409
    if (created.outcome !== 'written') throw new Error('create failed');
    expect((await store.replace({ ...created.lease, holder: 'a2' })).outcome).toBe('written');
    expect((await store.replace({ ...created.lease, holder: 'a3' })).outcome).toBe('conflict'); // stale version: 409
    expect((await store.list('address')).items).toHaveLength(1);
    expect((await store.delete('smartnat-addr-gone')).outcome).toBe('notFound'); // 404
    expect(store.namespace).toBe('smartnat-system');

    expect(await series(registry, 'smartnat_api_request_duration_seconds_count')).toEqual([
      'smartnat_api_request_duration_seconds_count{resource="leases",verb="create"} 2',
      'smartnat_api_request_duration_seconds_count{resource="leases",verb="delete"} 1',
      'smartnat_api_request_duration_seconds_count{resource="leases",verb="get"} 1',
      'smartnat_api_request_duration_seconds_count{resource="leases",verb="list"} 1',
      'smartnat_api_request_duration_seconds_count{resource="leases",verb="patch"} 2',
    ]);
    expect(await series(registry, 'smartnat_api_request_errors_total')).toEqual([
      'smartnat_api_request_errors_total{resource="leases",verb="create",code="409"} 1',
      'smartnat_api_request_errors_total{resource="leases",verb="delete",code="404"} 1',
      'smartnat_api_request_errors_total{resource="leases",verb="get",code="404"} 1',
      'smartnat_api_request_errors_total{resource="leases",verb="patch",code="409"} 1',
    ]);
    metrics.close();
  });

  it('passes thrown errors through unchanged, labelled with the HTTP code found on the error or its causes', async () => {
    const { registry, metrics } = await metricsOf();
    const boom = new Error('status apply of Mapping demo/echo failed', { cause: new HttpError(503) });
    const status: StatusWriter = {
      writeMappingStatus: async () => {
        throw boom;
      },
      writePoolStatus: async () => 'gone',
      removeLegacyFinalizer: async () => 'stale',
    };
    const writer = instrumentStatusWriter(status, metrics);
    const ref = { namespace: 'demo', name: 'echo' };
    await expect(writer.writeMappingStatus({ ref, uid: 'u', status: { invalid: false, observedGeneration: 1, conditions: [], claims: [] } } as never)).rejects.toBe(boom);
    expect(await writer.writePoolStatus({ name: 'pool', status: { addresses: [], conditions: [] } } as never)).toBe('gone');
    expect(await writer.removeLegacyFinalizer({ ref, uid: 'u', index: 0 })).toBe('stale');

    const refused = new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
    const configured = instrumentConfiguredAddressWriter({ apply: async () => Promise.reject(refused) }, metrics);
    await expect(configured.apply(ref, {})).rejects.toBe(refused);

    const seen: string[] = [];
    const events = instrumentEventSink({ create: async (e: string) => void seen.push(e) }, metrics);
    await events.create('MappingAccepted', new Date(0));
    expect(seen).toEqual(['MappingAccepted']);

    expect(await series(registry, 'smartnat_api_request_errors_total')).toEqual([
      'smartnat_api_request_errors_total{resource="addresspools",verb="patch",code="404"} 1',
      'smartnat_api_request_errors_total{resource="mappings",verb="apply",code="network"} 1',
      'smartnat_api_request_errors_total{resource="mappings",verb="patch",code="422"} 1',
      'smartnat_api_request_errors_total{resource="mappings",verb="patch",code="503"} 1',
    ]);
    expect(await series(registry, 'smartnat_api_request_duration_seconds_count')).toEqual([
      'smartnat_api_request_duration_seconds_count{resource="addresspools",verb="patch"} 1',
      'smartnat_api_request_duration_seconds_count{resource="events",verb="create"} 1',
      'smartnat_api_request_duration_seconds_count{resource="mappings",verb="apply"} 1',
      'smartnat_api_request_duration_seconds_count{resource="mappings",verb="patch"} 2',
    ]);
    metrics.close();
  });

  it('reads only codes 100-599 as HTTP codes; timeouts and transport errors get their own label', () => {
    expect(apiErrorCode(new HttpError(409))).toBe('409');
    expect(apiErrorCode(Object.assign(new Error('x'), { code: 70000 }))).toBe('network');
    expect(apiErrorCode(new DOMException('timed out', 'TimeoutError'))).toBe('timeout');
    expect(apiErrorCode(new Error('outer', { cause: new Error('mid', { cause: new HttpError(500) }) }))).toBe('500');
    expect(apiErrorCode('a string')).toBe('network');
  });
});
