// The V8 settings every agent runs with (lab, chart, systemd unit), as one list. Measured at 1,000
// Mappings / 10,000 endpoints (BENCHMARKS.md, agent memory): the live heap is 65-85 MiB (a heap
// snapshot: half of it client-node's generated API code), but with V8's defaults the heap grew to
// 200-240 MiB between collections and RSS reached 313-372 MiB, above the chart's 256 MiB memory
// limit. A 4 MiB young generation (the default is up to 16 MiB per semi-space) and an old-space cap
// make V8 collect before growing; the cap must stay above the live heap with room for bursts (raise
// it with the Mapping count: chart `agent.maxHeapMiB`, the unit's NODE_OPTIONS).
export const DEFAULT_AGENT_HEAP_MIB = 160;
export const AGENT_SEMI_SPACE_MIB = 4;

/** node flags for an agent process (before the script path). */
export function agentNodeFlags(maxHeapMiB = DEFAULT_AGENT_HEAP_MIB): string[] {
  return [`--max-semi-space-size=${AGENT_SEMI_SPACE_MIB}`, `--max-old-space-size=${maxHeapMiB}`];
}
