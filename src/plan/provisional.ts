// Owns: which Mappings an owner may program before the leader has judged their current generation
// (ADR 0008 amendment 3). A Mapping qualifies when the leader's rules (leader-claims.ts) cannot
// refuse it on anything the owner sees: every address is in a pool open to its namespace, and no
// other live Mapping asks for or holds (status.claims) any of its pairs. Then the first accepted
// claim can only be its own, and the owner need not wait a second round trip for the grant.
// Guarantees: a pair another Mapping asks for or holds is never provisional, whatever the order of
// creation; a Mapping the leader judged at its generation is never provisional (its claims decide).
// Does not look at router ids: an address needing a new lease the leader cannot number refuses
// the Mapping a pass later (NoRouterIdLeft), and the owner drops it with that verdict.
import type { AddressPool, Mapping } from '../api/types.js';
import { placeMapping, wantedKeys } from './leader-claims.js';

/** Whether the leader has written its verdict for the Mapping's current generation. */
export function judged(mapping: Mapping): boolean {
  return mapping.status.observedGeneration === mapping.generation;
}

/**
 * The uids of the Mappings among `live` (valid, not being deleted) that may be programmed before
 * the leader's verdict. `live` must be every live Mapping the agent sees, not only its own.
 */
export function provisionalMappings(live: readonly Mapping[], pools: readonly AddressPool[]): Set<string> {
  const users = new Map<string, number>();
  const pairsOf = new Map<string, readonly string[]>();
  for (const m of live) {
    const pairs = [...new Set([...wantedKeys(m), ...(m.status.claims ?? [])])];
    pairsOf.set(m.uid, pairs);
    for (const p of pairs) users.set(p, (users.get(p) ?? 0) + 1);
  }
  const out = new Set<string>();
  for (const m of live) {
    if (judged(m)) continue;
    if (!(pairsOf.get(m.uid) ?? []).every((p) => users.get(p) === 1)) continue;
    if (placeMapping(m, pools).ok) out.add(m.uid);
  }
  return out;
}
