// Rendezvous (highest-random-weight) ranking of agents for an address (ADR 0006). Guarantees:
// deterministic and independent of input order; removing an agent changes only the addresses
// it ranked first. Does not decide liveness or eligibility (ownership.ts filters candidates).
import { createHash } from 'node:crypto';

/** The first 8 bytes of sha256(agent "\n" address) as an unsigned integer. */
export function rendezvousScore(agent: string, address: string): bigint {
  return createHash('sha256').update(`${agent}\n${address}`).digest().readBigUInt64BE(0);
}

/** Agents best first: score descending, name ascending on a tie; duplicates collapse. */
export function rankAgents(agents: Iterable<string>, address: string): string[] {
  const scored = [...new Set(agents)].map((agent) => ({ agent, score: rendezvousScore(agent, address) }));
  scored.sort((x, y) => (x.score === y.score ? (x.agent < y.agent ? -1 : x.agent > y.agent ? 1 : 0) : x.score > y.score ? -1 : 1));
  return scored.map((s) => s.agent);
}
