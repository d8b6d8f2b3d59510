// Decorators that time every API server request the agent makes through its ports (lease store,
// leader status writer, configured-address writer, Event sinks) into
// smartnat_api_request_duration_seconds{resource,verb} and count the failed ones in
// smartnat_api_request_errors_total{resource,verb,code}. Guarantees: labels come from closed sets
// (ApiResource, ApiVerb, an HTTP code 100-599 or `timeout` / `network`); a request the port answers
// with a typed refusal (404 as undefined or `notFound`/`gone`, 409 as `conflict`, 422 as `stale`)
// is counted as an error with that code, exactly like a thrown one; results and errors pass through
// unchanged. Does not retry, time out or log (the callers do), and never imports client-node
// (codes are read from the error's `code` or its causes').
import type { FinalizerOutcome } from '../cluster/finalizers.js';
import type { LeaseStore, WriteResult } from '../cluster/lease-store.js';
import type { ConfiguredAddressWriter } from '../cluster/configured-addresses.js';
import type { StatusOutcome, StatusWriter } from '../cluster/status-writer.js';
import type { AgentMetrics } from './metrics.js';

export type ApiResource = 'leases' | 'mappings' | 'addresspools' | 'events';
export type ApiVerb = 'get' | 'list' | 'create' | 'patch' | 'apply' | 'delete';

export type ApiMetrics = Pick<AgentMetrics, 'apiRequestDuration' | 'apiRequestErrors'>;

/** The `code` label of a failed request: the HTTP status found on the error or its causes, else timeout or network. */
export function apiErrorCode(err: unknown): string {
  let e: unknown = err;
  for (let depth = 0; depth < 6 && typeof e === 'object' && e !== null; depth++) {
    const code: unknown = (e as { code?: unknown }).code;
    if (typeof code === 'number' && Number.isInteger(code) && code >= 100 && code <= 599) return String(code);
    const name: unknown = (e as { name?: unknown }).name;
    if (name === 'TimeoutError' || name === 'AbortError' || name === 'ApiTimeoutError') return 'timeout';
    e = (e as { cause?: unknown }).cause;
  }
  return 'network';
}

/** Times one call; `refusal` maps a typed refusal the port returned to its HTTP code. */
export async function timeApiCall<T>(metrics: ApiMetrics, resource: ApiResource, verb: ApiVerb, call: () => Promise<T>, refusal?: (result: T) => number | undefined): Promise<T> {
  const end = metrics.apiRequestDuration.startTimer({ resource, verb });
  try {
    const result = await call();
    end();
    const code = refusal?.(result);
    if (code !== undefined) metrics.apiRequestErrors.inc({ resource, verb, code: String(code) });
    return result;
  } catch (err: unknown) {
    end();
    metrics.apiRequestErrors.inc({ resource, verb, code: apiErrorCode(err) });
    throw err;
  }
}

function writeRefusal(r: WriteResult): number | undefined {
  return r.outcome === 'written' ? undefined : r.outcome === 'notFound' ? 404 : 409;
}

export function instrumentLeaseStore(store: LeaseStore, metrics: ApiMetrics): LeaseStore {
  return {
    namespace: store.namespace,
    get: async (name) => timeApiCall(metrics, 'leases', 'get', async () => store.get(name), (r) => (r === undefined ? 404 : undefined)),
    list: async (role) => timeApiCall(metrics, 'leases', 'list', async () => store.list(role)),
    create: async (lease) => timeApiCall(metrics, 'leases', 'create', async () => store.create(lease), writeRefusal),
    // Both are PATCH requests (a JSON patch carrying the resourceVersion, and a merge patch).
    replace: async (lease) => timeApiCall(metrics, 'leases', 'patch', async () => store.replace(lease), writeRefusal),
    patchAnnotations: async (name, annotations) => timeApiCall(metrics, 'leases', 'patch', async () => store.patchAnnotations(name, annotations), writeRefusal),
    delete: async (name, resourceVersion) =>
      timeApiCall(metrics, 'leases', 'delete', async () => store.delete(name, resourceVersion), (r) => (r.outcome === 'deleted' ? undefined : r.outcome === 'notFound' ? 404 : 409)),
  };
}

const gone = (r: StatusOutcome): number | undefined => (r === 'gone' ? 404 : undefined);
const finalizerRefusal = (r: FinalizerOutcome): number | undefined => (r === 'gone' ? 404 : r === 'stale' ? 422 : undefined);

export function instrumentStatusWriter(writer: StatusWriter, metrics: ApiMetrics): StatusWriter {
  return {
    writeMappingStatus: async (write) => timeApiCall(metrics, 'mappings', 'patch', async () => writer.writeMappingStatus(write), gone),
    writePoolStatus: async (write) => timeApiCall(metrics, 'addresspools', 'patch', async () => writer.writePoolStatus(write), gone),
    removeLegacyFinalizer: async (removal) => timeApiCall(metrics, 'mappings', 'patch', async () => writer.removeLegacyFinalizer(removal), finalizerRefusal),
  };
}

export function instrumentConfiguredAddressWriter(writer: ConfiguredAddressWriter, metrics: ApiMetrics): ConfiguredAddressWriter {
  return { apply: async (mapping, entries) => timeApiCall(metrics, 'mappings', 'apply', async () => writer.apply(mapping, entries)) };
}

/** An Event sink (the leader's EventSink for Mappings, the agent's for its own Lease): one create per Event. */
export interface EventCreator<E> {
  create(event: E, at: Date): Promise<void>;
}

export function instrumentEventSink<E>(sink: EventCreator<E>, metrics: ApiMetrics): EventCreator<E> {
  return { create: async (event, at) => timeApiCall(metrics, 'events', 'create', async () => sink.create(event, at)) };
}
