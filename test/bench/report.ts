// Pure rendering of benchmark results (test/bench/results/*.json) into BENCHMARKS.md sections.
// Guarantees: a section sits between `<!-- bench:begin NAME -->` and `<!-- bench:end NAME -->`;
// replacing one leaves every other byte of the document alone (the hand-written data-plane
// sections stay intact); a missing section is appended. Says "met"/"missed" from the measured
// numbers only. Does not read or write files (run.ts does).
import type { AgentMemoryFigures } from './agent-memory.bench.js';
import type { ApiWritesFigures } from './api-writes.bench.js';
import { summariseDatapath, type DatapathFigures, type DatapathTrial } from './datapath.bench.js';
import type { FailoverFigures } from './failover.bench.js';
import type { ProgrammingFigures } from './programming.bench.js';
import type { SoakFigures } from './soak.bench.js';
import { computeSpread, formatMs, renderEnvironmentLine, renderTargetVerdict, type BenchResult, type Spread } from './summary.js';

const begin = (name: string): string => `<!-- bench:begin ${name} -->`;
const end = (name: string): string => `<!-- bench:end ${name} -->`;

/** The document with section `name` set to `body` (replaced in place, or appended). */
export function replaceSection(doc: string, name: string, body: string): string {
  const block = `${begin(name)}\n${body.trimEnd()}\n${end(name)}`;
  const i = doc.indexOf(begin(name));
  const j = doc.indexOf(end(name));
  if (i >= 0 && j > i) return doc.slice(0, i) + block + doc.slice(j + end(name).length);
  return `${doc.trimEnd()}\n\n${block}\n`;
}

function spreadRow(label: string, s: Spread | null): string {
  if (s === null) return `| ${label} | — | — | — | — | — |`;
  return `| ${label} | ${s.n} | ${formatMs(s.p50)} | ${formatMs(s.p90)} | ${formatMs(s.p99)} | ${formatMs(s.max)} |`;
}

function reproduce(r: BenchResult): string {
  return ['Reproduce (root; the benchmark brings up a lab of its own and brings it down):', '', '```sh', 'npm run build', r.command, '```'].join('\n');
}

function plots(r: BenchResult): string {
  return r.plots.map((p) => `![${p}](${p})`).join('\n');
}

export function renderFailoverSection(r: BenchResult<FailoverFigures>): string {
  const f = r.figures;
  const kill = f.kind === 'kill';
  const ls = f.leaseSettings;
  const lines = [
    kill ? '## Unplanned failover: `drill kill` (issue 9 item 1)' : '## Planned handoff: `drill drain` (issue 9 item 2)',
    '',
    reproduce(r),
    '',
    renderEnvironmentLine(r.env),
    '',
    `${f.runs} runs of \`smartnat drill ${f.kind} --repeat ${f.runs} --json\` (docs/drill.md) back to back in one lab; ${f.passed} met the drill's expectation, ` +
      `the address moved in ${f.moved}. Default settings: lease duration ${ls.leaseDurationMs} ms, renew deadline ${ls.renewDeadlineMs} ms, ` +
      `retry period ${ls.retryPeriodMs} ms, VRRP advert ${ls.vrrpAdvertMs} ms (ADR 0006). Probes from the allowed client: TCP ${f.probe.tcpPerSecond}/s, ` +
      `UDP ${f.probe.udpPerSecond}/s, ${f.probe.timeoutMs} ms timeout; the gap's resolution is the probe interval. Percentiles are nearest-rank over the runs ` +
      '(with 20 runs p99 is the maximum).',
    '',
    '| figure | runs | p50 | p90 | p99 | max |',
    '| --- | --- | --- | --- | --- | --- |',
    spreadRow('traffic gap (worse of TCP and UDP)', f.gapMs),
    spreadRow('recovery (fault -> traffic flows for good)', f.recoveryMs),
    spreadRow('address lease transition (fault -> new holder)', f.leaseTransitionMs),
    '',
    `Refused tries: ${f.refused} in all runs; failed (timed-out) tries: ${f.failed}.`,
    '',
  ];
  if (kill) {
    lines.push(
      `Targets: p50 <= 2 s ${renderTargetVerdict(f.gapMs?.p50 ?? null, 2000)}; p99 <= 3 s ${renderTargetVerdict(f.gapMs?.p99 ?? null, 3000)}.`,
      'Most of the gap is detection: the lease transition alone (median above) is the lease duration minus the time since the last',
      'renewal, as ADR 0006 budgets; the rest is VRRP master-down (3 adverts + skew) and the gratuitous ARP. The lab\'s routers accept',
      'gratuitous ARP at once, so these are best-case figures for the network part.',
    );
  } else {
    lines.push(
      `Targets: p50 <= 300 ms ${renderTargetVerdict(f.gapMs?.p50 ?? null, 300)}; no refused new TCP connections: ${f.refused === 0 ? 'met (0 refused)' : `**missed** (${f.refused} refused)`}.`,
    );
  }
  if (f.problems.length) lines.push('', `Runs that missed the drill's expectation: ${f.problems.join('; ')}.`);
  lines.push('', plots(r));
  return lines.join('\n');
}

export function renderProgrammingSection(r: BenchResult<ProgrammingFigures>): string {
  const f = r.figures;
  // A trial that timed out counts as the timeout (a lower bound), so percentiles never drop the slow ones.
  const timeoutMs = f.timeoutMs ?? 15_000;
  const row = (label: string, xs: (number | null)[]): { text: string; spread: Spread | null } => {
    const lost = xs.filter((x) => x === null).length;
    const spread = computeSpread(xs.map((x) => x ?? timeoutMs));
    return { text: spreadRow(lost ? `${label} (${lost} timed out at ${timeoutMs / 1000} s, counted as ${timeoutMs / 1000} s)` : label, spread), spread };
  };
  const measured = f.sizes.map((s) => ({ size: s, create: row(`${s.mappings} Mappings: Mapping created`, s.createSamples), change: row(`${s.mappings} Mappings: EndpointSlice changed`, s.sliceChangeSamples) }));
  const rows = measured.flatMap((m) => [m.create.text, m.change.text]);
  const largest = measured.at(-1);
  const verdict = (label: string, s: Spread | null): string => `${label}: p50 < 200 ms ${renderTargetVerdict(s?.p50 ?? null, 200, true)}, p99 < 1 s ${renderTargetVerdict(s?.p99 ?? null, 1000, true)}`;
  return [
    '## Programming latency: change -> rule in the owner\'s kernel (issue 9 item 3)',
    '',
    reproduce(r),
    '',
    renderEnvironmentLine(r.env),
    '',
    `How: ${f.method}. The clock starts just before the API request (create of the Mapping, or replace of its EndpointSlice with a`,
    'new endpoint address) and stops when that line is read; both from the benchmark\'s monotonic clock. Background Mappings',
    '(one TCP port each, distinct address:port pairs on the lab pools, one shared Service) are created first and the benchmark',
    `waits until the owner's kernel holds all their rules. ${f.trials} trials per size; the measured Mapping (address ${f.address},`,
    `owner ${f.owner}) has its own Service and EndpointSlice, created a second before it, and is deleted after each trial.`,
    '"Mappings present" counts the background, an anchor Mapping that keeps the probe address leased, and the measured one;',
    'the lab\'s demo Mapping is one more.',
    'It includes the API server\'s write, the watch delivery to the agent, the agent\'s coalescing sync (plan, render, diff,',
    '`iptables-restore`) and nft\'s notification.',
    '',
    '| figure | trials | p50 | p90 | p99 | max |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
    largest ? `Targets at ${largest.size.mappings} Mappings: ${verdict('Mapping created', largest.create.spread)}; ${verdict('EndpointSlice changed', largest.change.spread)}.` : '',
    '',
    plots(r),
  ].join('\n');
}

export function renderApiWritesSection(r: BenchResult<ApiWritesFigures>): string {
  const f = r.figures;
  const verbs = [...new Set(f.sizes.flatMap((s) => Object.keys(s.writesByVerbResource)))].sort();
  const agents = [...new Set(f.sizes.flatMap((s) => Object.keys(s.agentRssMiB)))].sort();
  const header = ['figure', ...f.sizes.map((s) => `${s.addresses} addresses`)];
  const row = (label: string, cells: string[]): string => `| ${label} | ${cells.join(' | ')} |`;
  return [
    '## Steady-state API writes and agent memory (issue 9 item 7, first part)',
    '',
    reproduce(r),
    '',
    renderEnvironmentLine(r.env),
    '',
    `${f.agents} agents; every address in use is one Mapping with one TCP port (extra pools 203.0.113.100-199 on ext0 and 192.0.2.100-199`,
    'on ext1, created by the benchmark). After every address lease has a holder and 30 s more, `apiserver_request_total` is read',
    `from the API server's /metrics (admin kubeconfig) twice, ${f.sizes[0]?.windowSeconds ?? 60} s apart; rates are the increase over that window. It counts`,
    'every client: the three agents (including the leader\'s duties) are the only writers once the benchmark\'s Mappings exist; its two',
    'scrapes are GETs. RSS is VmRSS of each agent process (and of its keepalived when the recorded pid still runs) from /proc at the',
    'end of the window.',
    '',
    row(header[0] ?? '', header.slice(1)),
    row('---', f.sizes.map(() => '---')),
    row('**API writes per second, total**', f.sizes.map((s) => `**${s.writesPerSecond.toFixed(2)}**`)),
    ...verbs.map((v) => row(`... ${v}`, f.sizes.map((s) => (s.writesByVerbResource[v] ?? 0).toFixed(2)))),
    row('API reads per second (GET/LIST/WATCH), total', f.sizes.map((s) => s.readsPerSecond.toFixed(2))),
    ...agents.map((a) => row(`agent ${a} RSS`, f.sizes.map((s) => `${s.agentRssMiB[a] ?? '—'} MiB`))),
    // keepalived's pid is the one `lab up` recorded; the agent may have restarted it since (then no reading).
    ...agents.filter((a) => f.sizes.some((s) => typeof s.keepalivedRssMiB[a] === 'number')).map((a) => row(`keepalived of ${a} RSS`, f.sizes.map((s) => (typeof s.keepalivedRssMiB[a] === 'number' ? `${s.keepalivedRssMiB[a]} MiB` : '—')))),
    '',
    plots(r),
  ].join('\n');
}

export function renderAgentMemorySection(r: BenchResult<AgentMemoryFigures>): string {
  const f = r.figures;
  const mib = (v: number | null): string => (v === null ? '—' : `${v} MiB`);
  const seconds = (v: number | null | undefined): string => (v === null || v === undefined ? '—' : `${v.toFixed(3)} s`);
  const worst = Math.max(...f.agents.map((a) => a.rssEndMiB ?? 0));
  return [
    `## Agent memory and CPU at ${f.mappings} Mappings / ${f.mappings * f.endpointsPerMapping} endpoints (issue 9 item 7, second part)`,
    '',
    reproduce(r),
    '',
    renderEnvironmentLine(r.env),
    '',
    `${f.agents.length} agents; ${f.mappings} Mappings of one TCP port each, each with its own (headless) Service and an EndpointSlice of`,
    `${f.endpointsPerMapping} ready endpoints (${f.mappings * f.endpointsPerMapping} endpoints). ` +
      (f.programmedAfterSeconds === null
        ? 'Not every agent\'s kernel held every DNAT rule within 300 s of the first create'
        : `Every agent's kernel held every DNAT rule ${f.programmedAfterSeconds} s after the first create`) +
      ` (rules seen: ${Object.entries(f.dnatRulesSeen).map(([a, n]) => `${a} ${n}`).join(', ')});`,
    `30 s later a ${f.windowSeconds} s window opened: RSS (VmRSS) at its start and end, CPU (utime+stime) over it, the V8 heap at its end`,
    '(`smartnat_nodejs_heap_size_used_bytes`, `..._total_bytes`, `smartnat_nodejs_external_memory_bytes`; what RSS holds beyond them is',
    'native memory: code, thread stacks, OpenSSL and allocator arenas), the agent\'s',
    '`smartnat_event_loop_lag_seconds` (largest event-loop delay since the previous scrape) scraped at the window\'s start and end:',
    '"lag under load" covers the first create to the window (creating and programming everything), "lag idle" the window.',
    'Fences and lease transitions count what each agent did from before the first create to the end: nothing was killed, so any',
    'is a false failover.',
    '',
    '| agent | RSS at start | RSS at end | V8 heap used / reserved, external at end | CPU idle, % of one core | lag under load | lag idle | fences | lease transitions |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...f.agents.map((a) => `| ${a.name} | ${mib(a.rssStartMiB)} | ${mib(a.rssEndMiB)} | ${a.heapUsedMiB === undefined ? '—' : `${mib(a.heapUsedMiB)} / ${mib(a.heapTotalMiB ?? null)}, ${mib(a.externalMiB ?? null)}`} | ${a.cpuPercentOfOneCore ?? '—'} | ${seconds(a.loadLagSeconds)} | ${seconds(a.eventLoopLagSeconds)} | ${a.fences ?? '—'} | ${a.leaseTransitions ?? '—'} |`),
    '',
    `Target < 150 MB RSS: ${worst * 1.048576 < 150 ? 'met' : '**missed**'} (largest at the end of the window ${worst} MiB = ${(worst * 1.048576).toFixed(0)} MB).`,
    '',
    plots(r),
  ].join('\n');
}

export function renderSoakSection(r: BenchResult<SoakFigures>): string {
  const f = r.figures;
  const mib = (v: number | null): string => (v === null ? '—' : `${v} MiB`);
  const falseFailovers = f.agents.reduce((n, a) => n + (a.fences ?? 0), 0);
  const stray = f.agents.filter((a) => !a.churnRulesExact).map((a) => a.name);
  const flat = f.agents.every((a) => a.rssSlopeMiBPerMin !== null && Math.abs(a.rssSlopeMiBPerMin) < 1);
  const failed = Object.entries(f.probe.results).filter(([k]) => k !== 'ok').reduce((n, [, v]) => n + v, 0);
  return [
    `## Soak: ${f.minutes} minutes with API latency and endpoint churn (issue 9 item 8)`,
    '',
    reproduce(r),
    '',
    renderEnvironmentLine(r.env),
    '',
    `3 agents; every agent's API connection delayed by its lab API proxy, ${f.delayMs.up} ms up and ${f.delayMs.down} ms down`,
    `(${f.delayMs.up + f.delayMs.down} ms added to every round trip); one Mapping's EndpointSlice rewritten every second (${f.churnWrites} writes),`,
    `alternating between two endpoint sets; a TCP probe every 100 ms from the allowed client to ${f.probe.target} (the demo Mapping)`,
    'for the whole soak. RSS (VmRSS) every 30 s after a one-minute warm-up; fence attempts and lease transitions from each',
    "agent's /metrics at the start and the end; the churned Mapping's DNAT rules read from every agent's kernel 10 s after the soak.",
    '',
    '| agent | RSS first | RSS last | RSS max | RSS slope | V8 heap used first / last | heap slope | fences | lease transitions | churned Mapping\'s rules = last endpoint set |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...f.agents.map((a) => {
      const h = a.heapUsedMiB ?? [];
      const heapCell = h.length === 0 ? '—' : `${h[0]!.mib} / ${h[h.length - 1]!.mib} MiB`;
      const heapSlope = a.heapSlopeMiBPerMin === undefined || a.heapSlopeMiBPerMin === null ? '—' : `${a.heapSlopeMiBPerMin} MiB/min`;
      return `| ${a.name} | ${mib(a.rssFirstMiB)} | ${mib(a.rssLastMiB)} | ${mib(a.rssMaxMiB)} | ${a.rssSlopeMiBPerMin === null ? '—' : `${a.rssSlopeMiBPerMin} MiB/min`} | ${heapCell} | ${heapSlope} | ${a.fences ?? '—'} | ${a.leaseTransitions ?? '—'} | ${a.churnRulesExact ? 'yes' : `**no** (${a.churnRules.join(', ') || 'none'})`} |`;
    }),
    '',
    `Probe: ${f.probe.tries} tries, ${JSON.stringify(f.probe.results)}, longest gap ${f.probe.longestGapMs} ms. Address-lease holders changed during the soak: ${f.holdersChanged.length === 0 ? 'none' : f.holdersChanged.join(', ')}.`,
    '',
    `Verdicts: no false failover ${falseFailovers === 0 && f.holdersChanged.length === 0 ? 'met' : '**missed**'} (${falseFailovers} fence attempts, ${f.holdersChanged.length} holder changes); ` +
      `no stray rules ${stray.length === 0 ? 'met' : `**missed** (${stray.join(', ')})`}; memory flat (|slope| < 1 MiB/min on every agent) ${flat ? 'met' : '**missed**'}; ` +
      `probe failures ${failed}.`,
    '',
    plots(r),
  ].join('\n');
}

export function renderDatapathSection(r: BenchResult<DatapathFigures>): string {
  const f = r.figures;
  const s = summariseDatapath(f);
  const num = (v: number | null, digits: number, unit: string): string => (v === null ? '—' : `${v.toFixed(digits)}${unit}`);
  const trials = (xs: readonly DatapathTrial[], digits: number): string => xs.map((t) => t.value.toFixed(digits)).join(', ');
  const loads = (xs: readonly DatapathTrial[]): string => (xs.length ? `${Math.min(...xs.map((t) => t.load1)).toFixed(1)}-${Math.max(...xs.map((t) => t.load1)).toFixed(1)}` : '—');
  const verdict = (v: number | null, target: number): string => (v === null ? 'not measured' : `${v >= target ? 'met' : '**missed**'} (${v.toFixed(3)} ${v >= target ? '>=' : '<'} ${target})`);
  const t = f.throughputGbps;
  const c = f.connectsPerSecond;
  return [
    '## Data path: throughput through the NAT and new-connection rate (issue 9 item 6)',
    '',
    'Reproduce (root; creates and removes its own namespaces `sndp-*`, veth pairs only, nothing leaves the machine):',
    '',
    '```sh',
    r.command,
    '```',
    '',
    renderEnvironmentLine(r.env),
    '',
    'Three namespaces: a client (198.18.0.10, also the agent\'s uplink router 203.0.113.1), an agent host shaped as',
    '`createAgentNamespace` builds it (ext0 203.0.113.2/24, int0 198.51.100.2/24) and a backend (198.51.100.20, iperf3',
    'server and a TCP sink), joined by veth pairs. The agent namespace is programmed by the real `DataPlaneApplier` from a',
    `planned snapshot (${f.iptables}). The measured Mapping puts 203.0.113.250 ports 5201 and 7000 on the backend (DNAT, masquerade,`,
    'connmark/policy routing of ADR 0003); "routed" sends to 198.51.100.20 directly through the agent namespace\'s routing.',
    `Cases alternate trial by trial (rotating order); conntrack is flushed in the agent namespace before every trial. ${f.trials} trials`,
    `of ${f.seconds} s per case; the 1-minute load average at each trial's start is given as a range.`,
    '',
    `Throughput: \`iperf3 -c TARGET -t ${f.seconds} -O 1\` (one TCP stream, receiver's rate; first second omitted). "Routed, no rules": none`,
    'of our rules in the agent namespace (so no conntrack either); "routed, rules installed": the one Mapping\'s rules present and',
    'the traffic sent to the backend\'s own address (our mangle chain and conntrack see every packet, nothing is translated);',
    '"NAT": through the floating address.',
    '',
    '| path | trials (Gbit/s) | median | load (1 min) |',
    '| --- | --- | --- | --- |',
    `| routed, no rules | ${trials(t.routed, 2)} | ${num(s.routedGbps, 2, ' Gbit/s')} | ${loads(t.routed)} |`,
    `| routed, rules installed | ${trials(t.routedWithRules, 2)} | ${num(s.routedWithRulesGbps, 2, ' Gbit/s')} | ${loads(t.routedWithRules)} |`,
    `| **NAT** (floating address -> DNAT -> backend) | ${trials(t.nat, 2)} | **${num(s.natGbps, 2, ' Gbit/s')}** | ${loads(t.nat)} |`,
    '',
    `Throughput ratio NAT / routed (no rules): **${num(s.throughputRatio, 3, '')}**; target >= 0.95 ${verdict(s.throughputRatio, 0.95)}.`,
    `NAT / routed with rules installed: ${num(s.routedWithRulesGbps === null || s.natGbps === null ? null : s.natGbps / s.routedWithRulesGbps, 3, '')}.`,
    '',
    `New connections: a Node connect storm in the client namespace, ${f.concurrency} connections in flight, each reset by the client as`,
    `soon as it is established (SYN, SYN-ACK, ACK, RST: no TIME_WAIT), counted over ${f.seconds} s after a 1 s warm-up; the backend's sink`,
    `accepts and drops them. "${f.large.mappings} Mappings": the measured one and ${f.large.mappings - 1} others of one TCP port each`,
    `(${f.large.addresses} addresses, ${f.large.rules} rules in our chains); the measured address's jump is rule ${f.large.servicesJumpPosition} of`,
    `${f.large.servicesChainLength} in \`SMARTNAT-SERVICES\` (the last, the worst place: the chain holds one \`-d ADDRESS\` jump per address and`,
    'the first packet of every new connection walks it in order).',
    '',
    '| case | trials (connections/s) | median | failed connects | load (1 min) |',
    '| --- | --- | --- | --- | --- |',
    `| routed, no rules (reference) | ${trials(c.routed, 0)} | ${num(s.routedCps, 0, '/s')} | ${f.connectErrors.routed} | ${loads(c.routed)} |`,
    `| NAT, 1 Mapping installed | ${trials(c.oneMapping, 0)} | ${num(s.oneMappingCps, 0, '/s')} | ${f.connectErrors.oneMapping} | ${loads(c.oneMapping)} |`,
    `| **NAT, ${f.large.mappings} Mappings installed** | ${trials(c.largeMappings, 0)} | **${num(s.largeCps, 0, '/s')}** | ${f.connectErrors.largeMappings} | ${loads(c.largeMappings)} |`,
    '',
    `New-connection ratio ${f.large.mappings} / 1 Mapping: **${num(s.connectRatio, 3, '')}**; target >= 0.9 ${verdict(s.connectRatio, 0.9)}.`,
    `NAT (1 Mapping) / routed without rules: ${num(s.natConnectRatio, 3, '')} (no target).`,
  ].join('\n');
}
