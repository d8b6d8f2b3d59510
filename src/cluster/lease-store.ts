// The LeaseStore port (get, list by role, create, compare-and-swap replace, annotation merge
// patch, delete) and its client-node implementation over CoordinationV1Api. Guarantees: 404/409
// come back as typed outcomes, never exceptions; times are always sent as V1MicroTime. Does not
// decide anything, retry or cache (lease-protocol.ts and the informer do).
import { ApiException, CoordinationV1Api, PatchStrategy, V1MicroTime, setHeaderOptions, type KubeConfig, type V1Lease } from './k8s.js';
import { LABEL_ROLE, type LeaseRecord, type LeaseRole } from '../plan/lease-names.js';

export type WriteRefusal = 'conflict' | 'alreadyExists' | 'notFound';

export type WriteResult =
  | { readonly outcome: 'written'; readonly lease: LeaseRecord }
  | { readonly outcome: WriteRefusal; readonly message: string };

export interface LeaseList {
  readonly items: readonly LeaseRecord[];
  readonly resourceVersion: string;
}

/** Everything the protocol needs from the API server; one namespace per store. */
export interface LeaseStore {
  readonly namespace: string;
  get(name: string): Promise<LeaseRecord | undefined>;
  list(role: LeaseRole): Promise<LeaseList>;
  /** `lease.resourceVersion` is ignored. */
  create(lease: LeaseRecord): Promise<WriteResult>;
  /** Compare-and-swap on `lease.resourceVersion`; a missing lease is NotFound, never created. */
  replace(lease: LeaseRecord): Promise<WriteResult>;
  /** JSON merge patch of metadata.annotations; null removes a key. No version check. */
  patchAnnotations(name: string, annotations: Readonly<Record<string, string | null>>): Promise<WriteResult>;
  /** Delete, with a resourceVersion precondition when given. */
  delete(name: string, resourceVersion?: string): Promise<{ readonly outcome: 'deleted' } | { readonly outcome: 'conflict' | 'notFound'; readonly message: string }>;
}

/** A failure that is not a protocol outcome: transport, 5xx, 4xx other than 404/409. */
export class LeaseStoreError extends Error {
  constructor(
    message: string,
    readonly operation: string,
    readonly lease: string,
    readonly code: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'LeaseStoreError';
  }
}

/** Kubernetes' Status `reason` from an ApiException body (raw text in client-node 1.4). */
export function statusReason(body: unknown): string | undefined {
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return undefined;
    }
  }
  if (typeof parsed === 'object' && parsed !== null && 'reason' in parsed && typeof parsed.reason === 'string') return parsed.reason;
  return undefined;
}

function statusMessage(body: unknown): string {
  if (typeof body === 'string') {
    try {
      const p: unknown = JSON.parse(body);
      if (typeof p === 'object' && p !== null && 'message' in p && typeof p.message === 'string') return p.message;
    } catch {
      return body.slice(0, 300);
    }
  }
  return String(body).slice(0, 300);
}

function readTime(t: unknown): Date | undefined {
  if (t instanceof Date) return t;
  if (typeof t === 'string' && t !== '') return new Date(t);
  return undefined;
}

export function leaseFromApi(l: V1Lease): LeaseRecord {
  const acquireTime = readTime(l.spec?.acquireTime);
  const renewTime = readTime(l.spec?.renewTime);
  return {
    name: l.metadata?.name ?? '',
    resourceVersion: l.metadata?.resourceVersion ?? '',
    holder: l.spec?.holderIdentity ?? '',
    leaseDurationSeconds: l.spec?.leaseDurationSeconds ?? 0,
    leaseTransitions: l.spec?.leaseTransitions ?? 0,
    ...(acquireTime ? { acquireTime } : {}),
    ...(renewTime ? { renewTime } : {}),
    labels: { ...(l.metadata?.labels ?? {}) },
    annotations: { ...(l.metadata?.annotations ?? {}) },
  };
}

export function leaseToApi(r: LeaseRecord, namespace: string): V1Lease {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: r.name,
      namespace,
      ...(r.resourceVersion !== '' ? { resourceVersion: r.resourceVersion } : {}),
      labels: { ...r.labels },
      annotations: { ...r.annotations },
    },
    spec: {
      // An empty holderIdentity is stored as absent by the API server; send it explicitly anyway.
      holderIdentity: r.holder,
      leaseDurationSeconds: r.leaseDurationSeconds,
      leaseTransitions: r.leaseTransitions,
      ...(r.acquireTime ? { acquireTime: new V1MicroTime(r.acquireTime.getTime()) } : {}),
      ...(r.renewTime ? { renewTime: new V1MicroTime(r.renewTime.getTime()) } : {}),
    },
  };
}

/** LeaseStore over a real API server. */
export class KubeLeaseStore implements LeaseStore {
  private readonly api: CoordinationV1Api;

  constructor(
    kc: KubeConfig,
    readonly namespace: string,
  ) {
    this.api = kc.makeApiClient(CoordinationV1Api);
  }

  async get(name: string): Promise<LeaseRecord | undefined> {
    try {
      return leaseFromApi(await this.api.readNamespacedLease({ name, namespace: this.namespace }));
    } catch (err: unknown) {
      if (err instanceof ApiException && err.code === 404) return undefined;
      throw this.failure('get', name, err);
    }
  }

  async list(role: LeaseRole): Promise<LeaseList> {
    try {
      const res = await this.api.listNamespacedLease({ namespace: this.namespace, labelSelector: `${LABEL_ROLE}=${role}` });
      return { items: res.items.map(leaseFromApi), resourceVersion: res.metadata?.resourceVersion ?? '' };
    } catch (err: unknown) {
      throw this.failure('list', `role=${role}`, err);
    }
  }

  async create(lease: LeaseRecord): Promise<WriteResult> {
    return this.write('create', lease.name, async () =>
      this.api.createNamespacedLease({ namespace: this.namespace, body: leaseToApi({ ...lease, resourceVersion: '' }, this.namespace) }),
    );
  }

  async replace(lease: LeaseRecord): Promise<WriteResult> {
    if (lease.resourceVersion === '') throw new LeaseStoreError('replace needs the resourceVersion it read', 'replace', lease.name, undefined);
    // Not a PUT: Lease PUTs create a missing object (create-on-update), which would resurrect a
    // lease the leader deleted. A JSON patch carrying metadata.resourceVersion is the same
    // compare-and-swap (409 on a stale version) and answers 404 for a missing lease.
    const body = leaseToApi(lease, this.namespace);
    const ops = [
      { op: 'add', path: '/metadata/resourceVersion', value: lease.resourceVersion },
      { op: 'add', path: '/metadata/labels', value: body.metadata?.labels ?? {} },
      { op: 'add', path: '/metadata/annotations', value: body.metadata?.annotations ?? {} },
      { op: 'add', path: '/spec', value: body.spec ?? {} },
    ];
    return this.write('replace', lease.name, async () =>
      this.api.patchNamespacedLease(
        { name: lease.name, namespace: this.namespace, body: ops },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      ),
    );
  }

  async patchAnnotations(name: string, annotations: Readonly<Record<string, string | null>>): Promise<WriteResult> {
    return this.write('patch', name, async () =>
      this.api.patchNamespacedLease(
        { name, namespace: this.namespace, body: { metadata: { annotations } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    );
  }

  async delete(name: string, resourceVersion?: string): Promise<{ outcome: 'deleted' } | { outcome: 'conflict' | 'notFound'; message: string }> {
    try {
      await this.api.deleteNamespacedLease({
        name,
        namespace: this.namespace,
        ...(resourceVersion ? { body: { preconditions: { resourceVersion } } } : {}),
      });
      return { outcome: 'deleted' };
    } catch (err: unknown) {
      if (err instanceof ApiException && (err.code === 404 || err.code === 409)) {
        return { outcome: err.code === 404 ? 'notFound' : 'conflict', message: statusMessage(err.body) };
      }
      throw this.failure('delete', name, err);
    }
  }

  private async write(operation: string, name: string, call: () => Promise<V1Lease>): Promise<WriteResult> {
    try {
      return { outcome: 'written', lease: leaseFromApi(await call()) };
    } catch (err: unknown) {
      if (err instanceof ApiException && (err.code === 409 || err.code === 404)) {
        const message = statusMessage(err.body);
        if (err.code === 404) return { outcome: 'notFound', message };
        return { outcome: statusReason(err.body) === 'AlreadyExists' ? 'alreadyExists' : 'conflict', message };
      }
      throw this.failure(operation, name, err);
    }
  }

  private failure(operation: string, lease: string, err: unknown): LeaseStoreError {
    if (err instanceof ApiException) {
      return new LeaseStoreError(`lease ${operation} ${lease}: HTTP ${err.code}: ${statusMessage(err.body)}`, operation, lease, err.code, { cause: err });
    }
    const msg = err instanceof Error ? err.message : String(err);
    return new LeaseStoreError(`lease ${operation} ${lease}: ${msg}`, operation, lease, undefined, { cause: err });
  }
}
