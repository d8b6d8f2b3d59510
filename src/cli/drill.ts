// `smartnat drill KIND [--name LAB] [--address ADDR] [--repeat N] [--json]` (root): one failover
// drill, or N back to back, against a running lab; the work is in src/lab/drill.ts. Guarantees:
// exit 0 when every run met its kind's expectation, 1 otherwise, 2 on bad flags; --json prints
// the report of docs/drill.schema.json and nothing else on stdout.
import type { Command } from 'commander';
import { DEFAULT_LAB_NAME, DEFAULT_LAB_ROOT, requireRoot } from '../lab/lab.js';
import { DRILL_KINDS, parseDrillKind } from '../lab/drill-plan.js';
import { runDrills, type DrillReport } from '../lab/drill.js';
import { UsageError } from './errors.js';
import type { CliIo } from './index.js';

interface DrillFlags {
  readonly name: string;
  readonly root: string;
  readonly address?: string;
  readonly repeat: string;
  readonly json?: boolean;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function renderDrillReport(r: DrillReport): string {
  const ms = (v: number | null): string => (v === null ? '-' : `${Math.round(v)} ms`);
  const lines = [`drill ${r.kind} on ${r.address} (lab ${r.lab}, client ${r.client.name} ${r.client.address}, lease duration ${r.leaseDurationMs} ms)`];
  for (const run of r.runs) {
    lines.push(
      `  run ${run.run}: ${run.ok ? 'ok' : 'FAILED'}  gap ${ms(run.gapMs)}  recovery ${ms(run.recoveryMs)}  refused ${run.refused}  failed ${run.failed}  ` +
        `lease ${run.previousOwner} -> ${run.owner ?? '?'}${run.moved ? ` after ${ms(run.leaseTransitionMs)}` : ' (not moved)'}`,
    );
    for (const p of run.problems) lines.push(`      ${p}`);
  }
  const s = r.summary;
  const spread = (x: { p50: number; p99: number; max: number } | null): string => (x ? `p50 ${ms(x.p50)} p99 ${ms(x.p99)} max ${ms(x.max)}` : '-');
  lines.push(`  ${s.passed}/${s.runs} passed; gap ${spread(s.gapMs)}; lease transition ${spread(s.leaseTransitionMs)}`);
  return `${lines.join('\n')}\n`;
}

export function register(program: Command, io: CliIo): void {
  program
    .command('drill')
    .description(`run a failover drill against a lab and report the traffic gap (KIND: ${DRILL_KINDS.join(', ')})`)
    .argument('<kind>', DRILL_KINDS.join(' | '))
    .option('--name <lab>', 'lab name', DEFAULT_LAB_NAME)
    .option('--root <dir>', 'directory holding one directory per lab', DEFAULT_LAB_ROOT)
    .option('--address <ip>', 'floating address to drill (default: the demo Mapping\'s first)')
    .option('--repeat <n>', 'run the drill N times; the summary gives p50/p99/max', '1')
    .option('--json', 'print the report as JSON (docs/drill.schema.json)')
    .action(async (kindText: string, flags: DrillFlags) => {
      const kind = parseDrillKind(kindText);
      if (!kind) throw new UsageError(`unknown drill ${JSON.stringify(kindText)}: one of ${DRILL_KINDS.join(', ')}`);
      const repeat = Number(flags.repeat);
      if (!/^\d+$/.test(flags.repeat) || repeat < 1 || repeat > 1000) throw new UsageError(`--repeat must be 1..1000, got ${flags.repeat}`);
      if (flags.address !== undefined && !IPV4.test(flags.address)) throw new UsageError(`--address must be an IPv4 address, got ${flags.address}`);
      requireRoot();
      const report = await runDrills({
        kind,
        labName: flags.name,
        root: flags.root,
        repeat,
        ...(flags.address !== undefined ? { address: flags.address } : {}),
        log: (line) => io.stderr.write(`${line}\n`),
      });
      io.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : renderDrillReport(report));
      if (!report.ok) process.exitCode = 1;
    });
}
