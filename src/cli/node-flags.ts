// The V8 settings every agent runs with (lab, chart, systemd unit), as one list. Measured at 1,000
// Mappings / 10,000 endpoints (BENCHMARKS.md, agent memory): with V8's defaults the heap grew to
// 200-240 MiB between collections and RSS reached 313-372 MiB, above the chart's 256 MiB memory
// limit, while the live heap was 65-85 MiB. A 4 MiB young generation (the default is up to 16 MiB
// per semi-space) and an old-space cap make V8 collect before growing; the cap must stay above the
// live heap with room for bursts (raise it with the Mapping count: chart `agent.maxHeapMiB`, the
// unit's NODE_OPTIONS). `--optimize-for-size` makes V8 size its heap and code for memory first:
// RSS 113-130 MiB instead of 143-169 MiB in the same benchmark, for a few points more CPU
// (31-36 % of one core against 24-28 % over the measured window). Node refuses that flag in
// NODE_OPTIONS, so it goes on node's command line (chart `command`, the unit's ExecStart).
export const DEFAULT_AGENT_HEAP_MIB = 160;
export const AGENT_SEMI_SPACE_MIB = 4;

/** V8 flags Node accepts in NODE_OPTIONS (the chart and the unit set them there). */
export function agentNodeOptions(maxHeapMiB = DEFAULT_AGENT_HEAP_MIB): string[] {
  return [`--max-semi-space-size=${AGENT_SEMI_SPACE_MIB}`, `--max-old-space-size=${maxHeapMiB}`];
}

/** V8 flags Node refuses in NODE_OPTIONS: they go on node's command line, before the script. */
export const AGENT_NODE_ARGV: readonly string[] = ['--optimize-for-size'];

/** node flags for an agent process (before the script path). */
export function agentNodeFlags(maxHeapMiB = DEFAULT_AGENT_HEAP_MIB): string[] {
  return [...agentNodeOptions(maxHeapMiB), ...AGENT_NODE_ARGV];
}
