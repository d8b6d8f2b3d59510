// `smartnat render`: a snapshot file in, the exact text a sync from nothing would apply out
// (iptables-restore, ipset restore, `ip -batch` and `sysctl -p` input). Needs no root and touches
// nothing. Bad input is a UsageError (exit 2); what the planner left out goes to stderr.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { DEFAULT_SETTINGS } from '../model/settings.js';
import { parseSnapshotFile, SnapshotFileError } from '../model/snapshot-file.js';
import { planDataPlane } from '../plan/plan-dataplane.js';
import type { DataPlanePlan } from '../plan/desired.js';
import { renderIptablesFull } from '../dataplane/render-iptables.js';
import { renderIpsetFromNothing } from '../dataplane/render-ipset.js';
import { renderRoutesFromNothing } from '../dataplane/render-routes.js';
import { renderSysctl } from '../dataplane/render-sysctl.js';
import type { CliIo } from './index.js';
import { UsageError } from './errors.js';

export const RENDER_PARTS = ['iptables', 'ipset', 'routes', 'sysctl'] as const;
export type RenderPart = (typeof RENDER_PARTS)[number];

/** Fixed section headers (comment lines) used when every part is printed. */
export const SECTION_HEADERS: Readonly<Record<RenderPart, string>> = {
  iptables: '# ==== iptables-restore --noflush ====',
  ipset: '# ==== ipset restore ====',
  routes: '# ==== ip -batch - ====',
  sysctl: '# ==== sysctl -p - ====',
};

export interface RenderOptions {
  readonly snapshot: string;
  readonly agent: string;
  readonly owns?: string;
  readonly only?: string;
}

export function renderPart(plan: DataPlanePlan, part: RenderPart): string {
  switch (part) {
    case 'iptables': return renderIptablesFull(plan.desired);
    case 'ipset': return renderIpsetFromNothing(plan.desired);
    case 'routes': return renderRoutesFromNothing(plan.desired);
    case 'sysctl': return renderSysctl(plan.desired);
  }
}

function checkOnly(only: string | undefined): RenderPart | undefined {
  if (only === undefined) return undefined;
  if ((RENDER_PARTS as readonly string[]).includes(only)) return only as RenderPart;
  throw new UsageError(`--only must be one of ${RENDER_PARTS.join(', ')} (got ${JSON.stringify(only)})`);
}

async function readSnapshot(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err: unknown) {
    throw new UsageError(`cannot read --snapshot ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The whole render as text (stdout) plus notes (stderr). */
export async function runRender(options: RenderOptions): Promise<{ stdout: string; stderr: string }> {
  const only = checkOnly(options.only);
  const text = await readSnapshot(options.snapshot);
  let parsed;
  try {
    parsed = parseSnapshotFile(text, { agent: options.agent, ...(options.owns === undefined ? {} : { owns: options.owns.split(',').filter((s) => s !== '') }) });
  } catch (err: unknown) {
    if (err instanceof SnapshotFileError) throw new UsageError(`${options.snapshot}: ${err.message}`);
    throw err;
  }
  const plan = planDataPlane(parsed.snapshot, DEFAULT_SETTINGS);
  const notes = [...parsed.notes, ...plan.leftOut.map((l) => `left out (${l.reason}, ${l.effect}): ${l.message}`)];
  const stdout = only ? renderPart(plan, only) : RENDER_PARTS.map((p) => `${SECTION_HEADERS[p]}\n${renderPart(plan, p)}`).join('');
  return { stdout, stderr: notes.map((n) => `# ${n}\n`).join('') };
}

export function register(program: Command, io: CliIo): void {
  program
    .command('render')
    .description('print the data-plane text a sync from nothing would apply for one agent (no root needed)')
    .requiredOption('--snapshot <file>', 'YAML stream of Kubernetes objects plus a kind: AgentFacts document')
    .requiredOption('--agent <name>', 'the AgentFacts metadata.name to render for')
    .option('--owns <addresses>', 'comma-separated addresses the agent owns (default: every address it is eligible for)')
    .option('--only <part>', `one part, in its tool's input form: ${RENDER_PARTS.join('|')}`)
    .action(async (opts: RenderOptions) => {
      const { stdout, stderr } = await runRender(opts);
      io.stderr.write(stderr);
      io.stdout.write(stdout);
    });
}
