// FakeLeaseStore: an in-memory LeaseStore with the API server's optimistic concurrency (a new
// resourceVersion on every write, 409 on a stale one). For unit tests of the decision logic;
// the real behaviour is proven against kube-apiserver in *.itest.ts. Not for production use.
import type { LeaseRecord, LeaseRole } from '../plan/lease-names.js';
import { LABEL_ROLE } from '../plan/lease-names.js';
import type { LeaseList, LeaseStore, WriteResult } from './lease-store.js';

export class FakeLeaseStore implements LeaseStore {
  private readonly leases = new Map<string, LeaseRecord>();
  private version = 0;
  /** Every successful write, in order, for assertions on API write counts. */
  readonly writes: Array<{ op: string; name: string }> = [];

  constructor(readonly namespace = 'smartnat-system') {}

  async get(name: string): Promise<LeaseRecord | undefined> {
    return this.leases.get(name);
  }

  async list(role: LeaseRole): Promise<LeaseList> {
    const items = [...this.leases.values()].filter((l) => l.labels[LABEL_ROLE] === role).sort((a, b) => (a.name < b.name ? -1 : 1));
    return { items, resourceVersion: String(this.version) };
  }

  async create(lease: LeaseRecord): Promise<WriteResult> {
    if (this.leases.has(lease.name)) return { outcome: 'alreadyExists', message: `leases "${lease.name}" already exists` };
    return this.store('create', lease);
  }

  async replace(lease: LeaseRecord): Promise<WriteResult> {
    const cur = this.leases.get(lease.name);
    if (cur === undefined) return { outcome: 'notFound', message: `leases "${lease.name}" not found` };
    if (cur.resourceVersion !== lease.resourceVersion) return { outcome: 'conflict', message: 'the object has been modified' };
    return this.store('replace', lease);
  }

  async patchAnnotations(name: string, annotations: Readonly<Record<string, string | null>>): Promise<WriteResult> {
    const cur = this.leases.get(name);
    if (cur === undefined) return { outcome: 'notFound', message: `leases "${name}" not found` };
    const merged: Record<string, string> = { ...cur.annotations };
    for (const [k, v] of Object.entries(annotations)) {
      if (v === null) delete merged[k];
      else merged[k] = v;
    }
    return this.store('patch', { ...cur, annotations: merged });
  }

  async delete(name: string, resourceVersion?: string): Promise<{ outcome: 'deleted' } | { outcome: 'conflict' | 'notFound'; message: string }> {
    const cur = this.leases.get(name);
    if (cur === undefined) return { outcome: 'notFound', message: 'not found' };
    if (resourceVersion !== undefined && cur.resourceVersion !== resourceVersion) return { outcome: 'conflict', message: 'precondition failed' };
    this.leases.delete(name);
    this.writes.push({ op: 'delete', name });
    return { outcome: 'deleted' };
  }

  private store(op: string, lease: LeaseRecord): WriteResult {
    const stored = { ...lease, resourceVersion: String(++this.version) };
    this.leases.set(lease.name, stored);
    this.writes.push({ op, name: lease.name });
    return { outcome: 'written', lease: stored };
  }
}
