// The leader-election decision for `smartnat-leader` (client-go's algorithm, ADR 0005): given
// what this agent last observed of the lease and when, may it create, renew or take it? Pure.
// Guarantees: a lease held by someone else is taken only after a full leaseDuration without an
// observed change on the local clock. Does not fence: the leader writes no ownership.
import type { LeaseRecord } from './lease-names.js';

export type LeaderAction =
  | { readonly action: 'create'; readonly reason: 'absent' }
  | { readonly action: 'renew'; readonly reason: 'leader' }
  | { readonly action: 'acquire'; readonly reason: 'free' | 'holderExpired' }
  | { readonly action: 'wait'; readonly reason: 'holderAlive' | 'viewNotSettled' };

export interface LeaderObservation {
  readonly lease: LeaseRecord | undefined;
  /** Local monotonic time the lease's resourceVersion last changed, or the view was reset. */
  readonly observedAt: number;
}

export function decideLeader(me: string, obs: LeaderObservation, now: number, leaseDurationMs: number, settled: boolean): LeaderAction {
  if (obs.lease === undefined) return { action: 'create', reason: 'absent' };
  if (obs.lease.holder === me) return { action: 'renew', reason: 'leader' };
  if (obs.lease.holder === '') return { action: 'acquire', reason: 'free' };
  if (!settled) return { action: 'wait', reason: 'viewNotSettled' };
  if (now - obs.observedAt < leaseDurationMs) return { action: 'wait', reason: 'holderAlive' };
  return { action: 'acquire', reason: 'holderExpired' };
}
