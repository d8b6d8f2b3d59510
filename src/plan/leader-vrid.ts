// Owns: the address-lease lifecycle the leader decides: which leases to create, re-annotate or
// delete, and the VRRP router id (VRID) of each address (ADR 0008).
// Guarantees: a VRID is unique per interface (a pool without an interface conflicts with every
// interface), inside its pool's vridRange, and stable for the life of the lease (an existing
// lease keeps its id; new ones take the lowest free); a deleted lease's id is not reused in the
// same pass; an address that finds no id is reported (NoRouterIdLeft). Order of input is irrelevant.
// Does not write anything, and does not judge ownership (agents do, ADR 0005).

import type { AddressPool } from '../api/types.js';
import { byAddress, type Placement } from './leader-claims.js';
import type { LeaseCreate, LeaseDelete, LeaseReannotate } from './leader-input.js';
import { ANNOTATION_INTERFACE, ANNOTATION_POOL, ANNOTATION_VRID, parseAddressLeaseName, type LeaseRecord } from './lease-names.js';

export interface AddressAssignment {
  readonly address: string;
  readonly pool: string;
  readonly vrid: number;
  readonly interface?: string;
  /** The lease as it exists, undefined when it is to be created. */
  readonly lease?: LeaseRecord;
}

export interface LeasePlan {
  readonly assignments: ReadonlyMap<string, AddressAssignment>;
  readonly creates: readonly LeaseCreate[];
  readonly reannotations: readonly LeaseReannotate[];
  readonly deletes: readonly LeaseDelete[];
  /** Addresses in use that found no free router id on their interface. */
  readonly noRouterId: ReadonlyMap<string, string>;
}

/** Router ids taken per interface; '' stands for "unknown interface", which conflicts with all. */
class VridBook {
  private readonly byInterface = new Map<string, Set<number>>();
  private readonly anywhere = new Map<number, number>();

  taken(vrid: number, itf: string): boolean {
    if (itf === '') return (this.anywhere.get(vrid) ?? 0) > 0;
    return (this.byInterface.get(itf)?.has(vrid) ?? false) || (this.byInterface.get('')?.has(vrid) ?? false);
  }

  take(vrid: number, itf: string): void {
    const set = this.byInterface.get(itf) ?? new Set<number>();
    this.byInterface.set(itf, set);
    set.add(vrid);
    this.anywhere.set(vrid, (this.anywhere.get(vrid) ?? 0) + 1);
  }

  lowestFree(pool: AddressPool, itf: string): number | undefined {
    const [first, last] = pool.spec.vrrp.vridRange;
    for (let v = first; v <= last; v++) if (!this.taken(v, itf)) return v;
    return undefined;
  }
}

function annotatedVrid(lease: LeaseRecord): number | undefined {
  const text = lease.annotations[ANNOTATION_VRID];
  if (text === undefined || !/^[1-9][0-9]{0,2}$/.test(text)) return undefined;
  const v = Number(text);
  return v <= 255 ? v : undefined;
}

/** Whether an existing lease may keep its annotations for this placement. */
function fits(lease: LeaseRecord, pool: AddressPool, vrid: number | undefined): vrid is number {
  const [first, last] = pool.spec.vrrp.vridRange;
  return (
    vrid !== undefined &&
    vrid >= first &&
    vrid <= last &&
    lease.annotations[ANNOTATION_POOL] === pool.name &&
    lease.annotations[ANNOTATION_INTERFACE] === pool.spec.interface
  );
}

/**
 * Plans the address leases for the addresses in use (each placed in its pool). Leases of
 * addresses no longer in use are deleted (their holder then drops the address); a lease
 * whose name is not a valid address name is deleted too.
 */
export function planAddressLeases(inUse: readonly Placement[], leases: readonly LeaseRecord[]): LeasePlan {
  const book = new VridBook();
  const byAddr = new Map<string, LeaseRecord>();
  const deletes: LeaseDelete[] = [];
  for (const lease of [...leases].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const address = parseAddressLeaseName(lease.name);
    if (address === undefined) deletes.push({ name: lease.name, resourceVersion: lease.resourceVersion, reason: 'badName' });
    else byAddr.set(address, lease);
  }
  const wanted = new Map(inUse.map((p) => [p.address, p]));
  // Leases on their way out keep their ids booked for this pass: the delete may fail.
  for (const [address, lease] of byAddr) {
    if (wanted.has(address)) continue;
    deletes.push({ name: lease.name, resourceVersion: lease.resourceVersion, reason: 'unused' });
    const vrid = annotatedVrid(lease);
    if (vrid !== undefined) book.take(vrid, lease.annotations[ANNOTATION_INTERFACE] ?? '');
  }
  const addresses = [...wanted.keys()].sort(byAddress);
  const assignments = new Map<string, AddressAssignment>();
  const needId: Placement[] = [];
  // Existing leases first, in address order: they keep their ids when those still fit.
  for (const address of addresses) {
    const placement = wanted.get(address)!;
    const lease = byAddr.get(address);
    if (lease === undefined) continue;
    const itf = placement.pool.spec.interface ?? '';
    const vrid = annotatedVrid(lease);
    if (fits(lease, placement.pool, vrid) && !book.taken(vrid, itf)) {
      book.take(vrid, itf);
      assignments.set(address, assignment(placement, vrid, lease));
    } else needId.push(placement);
  }
  for (const address of addresses) if (!byAddr.has(address)) needId.push(wanted.get(address)!);
  const creates: LeaseCreate[] = [];
  const reannotations: LeaseReannotate[] = [];
  const noRouterId = new Map<string, string>();
  for (const placement of needId.sort((a, b) => byAddress(a.address, b.address))) {
    const itf = placement.pool.spec.interface ?? '';
    const vrid = book.lowestFree(placement.pool, itf);
    if (vrid === undefined) {
      const [first, last] = placement.pool.spec.vrrp.vridRange;
      noRouterId.set(placement.address, `no VRRP router id left in ${first}-${last} of AddressPool ${placement.pool.name} on interface ${placement.pool.spec.interface ?? '(any)'}`);
      continue;
    }
    book.take(vrid, itf);
    const lease = byAddr.get(placement.address);
    const a = assignment(placement, vrid, lease);
    assignments.set(placement.address, a);
    const spec = { address: a.address, pool: a.pool, vrid, ...(a.interface === undefined ? {} : { interface: a.interface }) };
    if (lease === undefined) creates.push(spec);
    else reannotations.push({ ...spec, name: lease.name });
  }
  return { assignments, creates, reannotations, deletes, noRouterId };
}

function assignment(p: Placement, vrid: number, lease: LeaseRecord | undefined): AddressAssignment {
  return {
    address: p.address,
    pool: p.pool.name,
    vrid,
    ...(p.pool.spec.interface === undefined ? {} : { interface: p.pool.spec.interface }),
    ...(lease === undefined ? {} : { lease }),
  };
}
