// Reads the kernel's current data-plane state back through the CommandRunner: our chains and the
// built-in chains (iptables-save per table), our sets (ipset list -n / save), our ip rules and
// routes (ip -j, filtered by our protocol number). Used by full syncs, resync and cleanup. It
// never writes; anything without our prefix or protocol is returned only where jumps need it.
import type { CommandRunner } from './command-runner.js';
import type { RuleSet } from './render-iptables.js';
import type { IptablesDump } from './render-dump.js';
import { builtinChains, ourChains, parseIptablesSave } from './render-dump.js';
import { withoutCounters } from './render-ipset.js';
import { SET_PREFIX, TABLES } from './render-names.js';
import type { RouteRule, RoutingState, TableRoute } from './render-routes.js';

export interface IptablesTools {
  readonly restore: string;
  readonly save: string;
  /** Seconds to wait for the xtables lock (-w). */
  readonly lockWaitSeconds: number;
}

export const DEFAULT_IPTABLES: IptablesTools = { restore: 'iptables-restore', save: 'iptables-save', lockWaitSeconds: 5 };

export interface KernelState {
  readonly ours: RuleSet;
  readonly builtin: RuleSet;
  /** Our set names present now (including leftover temporary sets). */
  readonly setNames: ReadonlySet<string>;
  /** set name -> entries as `ipset save` prints them (a counting set's counters left out). */
  readonly setEntries: ReadonlyMap<string, ReadonlySet<string>>;
  readonly routing: RoutingState;
}

export async function readIptables(runner: CommandRunner, tools: IptablesTools): Promise<IptablesDump> {
  const dump: IptablesDump = new Map();
  for (const table of TABLES) {
    const { stdout } = await runner.run(tools.save, ['-t', table]);
    for (const [t, chains] of parseIptablesSave(stdout)) dump.set(t, chains);
  }
  return dump;
}

export async function readSets(runner: CommandRunner): Promise<{ names: Set<string>; entries: Map<string, Set<string>> }> {
  const { stdout } = await runner.run('ipset', ['list', '-n']);
  const names = new Set(stdout.split('\n').map((l) => l.trim()).filter((n) => n.startsWith(SET_PREFIX)));
  const entries = new Map<string, Set<string>>();
  for (const name of names) {
    const saved = await runner.run('ipset', ['save', name]);
    const members = saved.stdout.split('\n').filter((l) => l.startsWith(`add ${name} `)).map((l) => withoutCounters(l.slice(`add ${name} `.length).trim()));
    entries.set(name, new Set(members));
  }
  return { names, entries };
}

type Json = Record<string, unknown>;

function asArray(text: string): Json[] {
  const parsed: unknown = JSON.parse(text.trim() === '' ? '[]' : text);
  return Array.isArray(parsed) ? parsed.filter((x): x is Json => typeof x === 'object' && x !== null) : [];
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '';
}

/** Our `ip rule`s: those carrying our protocol number. */
export function parseIpRules(json: string, protocol: number): RouteRule[] {
  return asArray(json)
    .filter((r) => str(r['protocol']) === String(protocol))
    .map((r) => ({ pref: Number(r['priority']), fwmark: `${str(r['fwmark'])}/${str(r['fwmask'] ?? '0xffffffff')}`, table: Number(str(r['table'])) }));
}

/** Routes of one table carrying our protocol number. */
export function parseIpRoutes(json: string, table: number, protocol: number): TableRoute[] {
  return asArray(json)
    .filter((r) => str(r['protocol']) === String(protocol))
    .map((r) => {
      const base = { table, destination: str(r['dst']), device: str(r['dev']), scope: str(r['scope']) === 'link' ? 'link' as const : 'global' as const };
      return r['gateway'] === undefined ? base : { ...base, gateway: str(r['gateway']) };
    });
}

export interface RoutingScope {
  readonly protocol: number;
  /** Tables to read (our table-id range). */
  readonly tables: readonly number[];
}

export async function readRouting(runner: CommandRunner, scope: RoutingScope): Promise<RoutingState> {
  const rules = parseIpRules((await runner.run('ip', ['-j', 'rule', 'show'])).stdout, scope.protocol);
  const tables = [...new Set([...scope.tables, ...rules.map((r) => r.table)])].sort((a, b) => a - b);
  const routes: TableRoute[] = [];
  for (const table of tables) {
    // A table that does not exist yet: exit 2, "FIB table does not exist", and a truncated "[".
    const { stdout, exitCode } = await runner.run('ip', ['-j', 'route', 'show', 'table', String(table)], { okExitCodes: [0, 2] });
    if (exitCode === 0) routes.push(...parseIpRoutes(stdout, table, scope.protocol));
  }
  return { rules, routes };
}

export async function readKernelState(runner: CommandRunner, tools: IptablesTools, scope: RoutingScope): Promise<KernelState> {
  const dump = await readIptables(runner, tools);
  const sets = await readSets(runner);
  return { ours: ourChains(dump), builtin: builtinChains(dump), setNames: sets.names, setEntries: sets.entries, routing: await readRouting(runner, scope) };
}
