// DataPlaneApplier: puts a DesiredDataPlane into the kernel, kube-proxy style.
//
//   const applier = new DataPlaneApplier({ runner: new ExecaCommandRunner('my-netns') });
//   await applier.sync(desired);                 // first call: full sync (reads back, adopts)
//   await applier.sync(nextDesired);             // later: partial (only changed chains/sets)
//   await applier.setOwned(new Set([VIP]));      // failover path: one set change + conntrack
//   await applier.sync(desired, { full: true }); // periodic resync: read back, repair drift
//
// Guarantees: phases run in order (ipset restore, iptables-restore --noflush -w, ip -batch, then
// deletions of stale sets, then conntrack); one ipset restore and one iptables-restore per sync;
// nothing is run when nothing changed; a full sync (first, periodic, after any failure) reads the
// kernel back and rewrites only what differs, so a restart adopts rules in place without a gap;
// a restore the kernel refuses keeps the previous rules (iptables-restore commits per table), is
// retried without the offending Mapping, which is reported failed. It does not schedule retries:
// the caller calls sync again after `retryDelayMs()` (exponential backoff).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ObjectRef } from '../api/types.js';
import type { DesiredDataPlane } from '../plan/desired.js';
import { withOwned, withoutMapping } from '../plan/desired.js';
import { maxUplinks } from '../model/settings.js';
import type { CommandRunner } from './command-runner.js';
import { CommandFailedError } from './command-runner.js';
import type { ConntrackDelete } from './render-conntrack.js';
import { computeConntrackDeletes } from './render-conntrack.js';
import type { RuleCache, RuleSet } from './render-iptables.js';
import { computeRuleSet, planJumpFixes, renderIptablesRestore } from './render-iptables.js';
import type { SetContent, SetContents } from './render-ipset.js';
import { computeEgressSets, computeSets, renderIpsetDelta, renderIpsetFull } from './render-ipset.js';
import { egressSet, portComment, SETS, TMP_SET_PREFIX } from './render-names.js';
import type { RoutingState } from './render-routes.js';
import { computeRouting, renderRoutes } from './render-routes.js';
import type { IptablesTools, KernelState } from './readback.js';
import { DEFAULT_IPTABLES, readKernelState } from './readback.js';

export type SyncMode = 'full' | 'partial' | 'skipped';

export interface FailedMapping {
  readonly mapping: ObjectRef;
  readonly error: string;
}

export interface SyncReport {
  readonly mode: SyncMode;
  /** Tools actually run to write state. */
  readonly wrote: readonly ('ipset' | 'iptables' | 'routes' | 'ipset-deletions')[];
  readonly rewrittenChains: readonly string[];
  readonly deletedChains: readonly string[];
  readonly failedMappings: readonly FailedMapping[];
  readonly conntrack: readonly ConntrackDelete[];
  /** conntrack deletions that failed (they never fail the sync: rules are already in place). */
  readonly conntrackErrors: readonly string[];
  /** Milliseconds per phase: compute (render + diff, with read-back on full), ipset, iptables, routes, deletions, conntrack. */
  readonly durationsMs: Readonly<Record<string, number>>;
}

export interface DataPlaneSizes {
  readonly rules: Readonly<Record<'mangle' | 'nat' | 'filter', number>>;
  /** set name -> entries. */
  readonly sets: ReadonlyMap<string, number>;
}

export interface ApplierOptions {
  readonly runner: CommandRunner;
  readonly iptables?: IptablesTools;
  /** How many Mappings one sync may drop before giving up (default 8). */
  readonly maxExcludedMappings?: number;
  /** Backoff: first delay and cap, milliseconds (defaults 500 / 30000). */
  readonly backoffMs?: { readonly initial: number; readonly max: number };
  /** Monotonic milliseconds for phase durations (default performance.now). */
  readonly now?: () => number;
}

interface Applied {
  readonly desired: DesiredDataPlane;
  readonly rules: RuleSet;
  readonly sets: SetContents;
  readonly routing: RoutingState;
}

/** Thrown when a sync fails; the kernel keeps its previous rules, the next sync is full. */
export class DataPlaneSyncError extends Error {
  override readonly name = 'DataPlaneSyncError';
  constructor(readonly phase: 'read' | 'ipset' | 'iptables' | 'routes' | 'deletions', cause: unknown) {
    super(`data-plane sync failed in phase ${phase}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

interface Writes {
  readonly ipset: string;
  readonly iptables: string;
  readonly routes: string;
  readonly staleSets: readonly string[];
  readonly rewritten: readonly string[];
  readonly deleted: readonly string[];
}

export class DataPlaneApplier {
  private readonly runner: CommandRunner;
  private readonly tools: IptablesTools;
  private applied: Applied | undefined;
  private needFull = true;
  private failures = 0;
  private readonly now: () => number;
  private durations: Record<string, number> = {};
  /** Per-address rendered rules reused across syncs (render-iptables RuleCache). */
  private readonly ruleCache: RuleCache = new Map();

  constructor(private readonly options: ApplierOptions) {
    this.runner = options.runner;
    this.tools = options.iptables ?? DEFAULT_IPTABLES;
    this.now = options.now ?? ((): number => performance.now());
  }

  /** Delay before the caller should retry after a failed sync (0 when the last sync succeeded). */
  retryDelayMs(): number {
    if (this.failures === 0) return 0;
    const { initial, max } = this.options.backoffMs ?? { initial: 500, max: 30_000 };
    return Math.min(max, initial * 2 ** (this.failures - 1));
  }

  /** The state the last successful sync put in place. */
  current(): DesiredDataPlane | undefined {
    return this.applied?.desired;
  }

  /** Rules in our chains per table and entries per set, as the last successful sync left them (metrics). */
  sizes(): DataPlaneSizes | undefined {
    const applied = this.applied;
    if (!applied) return undefined;
    const count = (chains: ReadonlyMap<string, readonly string[]>): number => [...chains.values()].reduce((n, rules) => n + rules.length, 0);
    const rules = { mangle: count(applied.rules.mangle), nat: count(applied.rules.nat), filter: count(applied.rules.filter) };
    return { rules, sets: new Map([...applied.sets].map(([name, content]) => [name, content.entries.length])) };
  }

  async sync(desired: DesiredDataPlane, options: { full?: boolean } = {}): Promise<SyncReport> {
    const full = this.needFull || options.full === true || !this.applied;
    try {
      const report = await this.syncExcluding(desired, full);
      this.failures = 0;
      return report;
    } catch (err: unknown) {
      this.failures += 1;
      this.needFull = true;
      throw err;
    }
  }

  /**
   * The failover path: one `ipset restore` of the owned-set difference plus conntrack deletions of
   * the addresses that changed hands. Rules do not depend on ownership, so nothing is re-rendered.
   * Falls back to a full sync when the last one failed.
   */
  async setOwned(owned: ReadonlySet<string>): Promise<SyncReport> {
    const applied = this.applied;
    if (!applied) throw new Error('setOwned before the first sync');
    const next = withOwned(applied.desired, owned);
    if (this.needFull) return this.sync(next);
    // Ownership decides the owned set and the egress sets' members (ADR 0009); nothing else.
    const beforeSets = new Map([...applied.sets].filter(([name]) => name === SETS.owned || isEgressSet(name)));
    const before = beforeSets.get(SETS.owned);
    const after = { type: 'hash:ip' as const, entries: next.addresses.filter((a) => a.owned).map((a) => a.address) };
    const afterSets = new Map<string, SetContent>([[SETS.owned, after], ...computeEgressSets(next)]);
    const input = renderIpsetDelta(beforeSets, afterSets);
    const flipped = new Set([...(before?.entries ?? []), ...after.entries].filter((a) => (before?.entries.includes(a) ?? false) !== after.entries.includes(a)));
    const conntrack = computeConntrackDeletes(
      { ...applied.desired, addresses: applied.desired.addresses.filter((a) => flipped.has(a.address)) },
      { ...next, addresses: next.addresses.filter((a) => flipped.has(a.address)) },
    );
    this.durations = {};
    try {
      if (input) await this.phase('ipset', () => this.runner.run('ipset', ['restore'], { input }));
    } catch (err: unknown) {
      this.failures += 1;
      this.needFull = true;
      throw err;
    }
    const ctStart = this.now();
    const conntrackErrors = await this.deleteConntrack(conntrack);
    this.durations['conntrack'] = this.now() - ctStart;
    this.applied = { ...applied, desired: next, sets: new Map([...applied.sets, ...afterSets]) };
    this.failures = 0;
    const wrote: SyncReport['wrote'] = input ? ['ipset'] : [];
    return { mode: input ? 'partial' : 'skipped', wrote, rewrittenChains: [], deletedChains: [], failedMappings: [], conntrack, conntrackErrors, durationsMs: this.durations };
  }

  private async syncExcluding(desired: DesiredDataPlane, full: boolean): Promise<SyncReport> {
    const failed: FailedMapping[] = [];
    let attempt = desired;
    for (;;) {
      try {
        const report = await this.syncOnce(attempt, full || failed.length > 0);
        return { ...report, failedMappings: failed };
      } catch (err: unknown) {
        const culprit = err instanceof DataPlaneSyncError ? this.culprit(err, attempt) : undefined;
        if (!culprit || failed.length >= (this.options.maxExcludedMappings ?? 8)) throw err;
        failed.push({ mapping: culprit, error: err instanceof Error ? err.message : String(err) });
        attempt = withoutMapping(attempt, culprit);
      }
    }
  }

  /** The Mapping whose rule (by its comment) is on the line the tool complained about. */
  private culprit(err: DataPlaneSyncError, desired: DesiredDataPlane): ObjectRef | undefined {
    const cause = err.cause;
    if (!(cause instanceof CommandFailedError) || (err.phase !== 'iptables' && err.phase !== 'ipset')) return undefined;
    const numbers = [...cause.stderr.matchAll(/line:? (\d+)/gi)].map((m) => `${m[1]}: `);
    const lines = cause.inputExcerpt.filter((l) => numbers.some((n) => l.startsWith(n))).join('\n');
    for (const a of desired.addresses) {
      for (const p of a.ports) {
        const comment = portComment({ ...p, address: a.address });
        const setEntry = `${a.address},${p.protocol}:${p.port},`;
        if (lines.includes(comment) || (err.phase === 'ipset' && lines.includes(setEntry))) return p.mapping;
      }
    }
    return undefined;
  }

  private async syncOnce(desired: DesiredDataPlane, full: boolean): Promise<Omit<SyncReport, 'failedMappings'>> {
    this.durations = {};
    const start = this.now();
    const rules = computeRuleSet(desired, this.ruleCache);
    const sets = computeSets(desired);
    const routing = computeRouting(desired);
    const writes = full ? await this.fullWrites({ rules, sets, routing, desired }) : this.partialWrites({ rules, sets, routing, desired });
    const conntrack = computeConntrackDeletes(full && !this.applied ? undefined : this.applied?.desired, desired);
    this.durations['compute'] = this.now() - start;
    const wrote = await this.write(writes);
    const ctStart = this.now();
    const conntrackErrors = await this.deleteConntrack(conntrack);
    this.durations['conntrack'] = this.now() - ctStart;
    this.applied = { desired, rules, sets, routing };
    this.needFull = false;
    const mode: SyncMode = wrote.length === 0 ? 'skipped' : full ? 'full' : 'partial';
    return { mode, wrote, rewrittenChains: writes.rewritten, deletedChains: writes.deleted, conntrack, conntrackErrors, durationsMs: this.durations };
  }

  private partialWrites(next: Applied): Writes {
    const prev = this.applied as Applied;
    const ipt = renderIptablesRestore({ desired: next.rules, current: prev.rules, jumps: [] });
    return {
      ipset: renderIpsetDelta(prev.sets, next.sets),
      iptables: ipt.text,
      routes: renderRoutes({ desired: next.routing, current: prev.routing, protocol: next.desired.settings.routeProtocol }),
      // Sets the new rules no longer reference (an egress address gone), destroyed after iptables.
      staleSets: [...prev.sets.keys()].filter((n) => !next.sets.has(n)).sort(),
      rewritten: ipt.rewritten,
      deleted: ipt.deleted,
    };
  }

  private async readBack(desired: DesiredDataPlane): Promise<KernelState> {
    const s = desired.settings;
    const tables = Array.from({ length: maxUplinks(s) }, (_, i) => s.tableBase + i + 1);
    try {
      return await readKernelState(this.runner, this.tools, { protocol: s.routeProtocol, tables });
    } catch (err: unknown) {
      throw new DataPlaneSyncError('read', err);
    }
  }

  private async fullWrites(next: Applied): Promise<Writes> {
    const kernel = await this.readBack(next.desired);
    const differing = new Set(
      [...next.sets].filter(([name, c]) => {
        const have = kernel.setEntries.get(name);
        return !have || have.size !== c.entries.length || c.entries.some((e) => !have.has(e));
      }).map(([name]) => name),
    );
    const existing = new Set([...kernel.setNames].filter((n) => next.sets.has(n) || n.startsWith(TMP_SET_PREFIX)));
    const ipt = renderIptablesRestore({ desired: next.rules, current: kernel.ours, jumps: planJumpFixes(kernel.builtin) });
    return {
      ipset: differing.size ? renderIpsetFull(next.sets, { existing, only: differing }) : '',
      iptables: ipt.text,
      routes: renderRoutes({ desired: next.routing, current: kernel.routing, protocol: next.desired.settings.routeProtocol }),
      staleSets: [...kernel.setNames].filter((n) => !next.sets.has(n) && !n.startsWith(TMP_SET_PREFIX)).sort(),
      rewritten: ipt.rewritten,
      deleted: ipt.deleted,
    };
  }

  private async phase(name: DataPlaneSyncError['phase'], run: () => Promise<unknown>): Promise<void> {
    const start = this.now();
    try {
      await run();
    } catch (err: unknown) {
      throw new DataPlaneSyncError(name, err);
    } finally {
      this.durations[name] = this.now() - start;
    }
  }

  private async write(w: Writes): Promise<SyncReport['wrote'][number][]> {
    const wrote: SyncReport['wrote'][number][] = [];
    if (w.ipset) {
      await this.phase('ipset', () => this.runner.run('ipset', ['restore'], { input: w.ipset }));
      wrote.push('ipset');
    }
    if (w.iptables) {
      const args = ['--noflush', '-w', String(this.tools.lockWaitSeconds)];
      await this.phase('iptables', () => this.runner.run(this.tools.restore, args, { input: w.iptables }));
      wrote.push('iptables');
    }
    if (w.routes) {
      await this.phase('routes', () => this.runner.run('ip', ['-batch', '-'], { input: w.routes }));
      wrote.push('routes');
    }
    if (w.staleSets.length) {
      const input = w.staleSets.map((n) => `destroy ${n}\n`).join('');
      await this.phase('deletions', () => this.runner.run('ipset', ['restore'], { input }));
      wrote.push('ipset-deletions');
    }
    return wrote;
  }

  /**
   * One exec whatever the count: a single deletion runs as `conntrack -D ...` (exit 1 with "0 flow
   * entries have been deleted" when nothing matched is fine), several as one `conntrack -R FILE` with
   * a deletion per line. One exec per deletion cost a fork of the whole agent each, and at 1,000
   * new Mappings that blocked the event loop for seconds (issue 4).
   */
  private async deleteConntrack(deletes: readonly ConntrackDelete[]): Promise<string[]> {
    if (deletes.length === 0) return [];
    try {
      if (deletes.length === 1) await ensureConntrackDeleted(this.runner, deletes[0]!.args);
      else await ensureConntrackBatchDeleted(this.runner, deletes.map((d) => d.args));
      return [];
    } catch (err: unknown) {
      return [err instanceof Error ? err.message : String(err)];
    }
  }
}

const EGRESS_SET_PREFIX = egressSet('');

function isEgressSet(name: string): boolean {
  return name.startsWith(EGRESS_SET_PREFIX);
}

/**
 * Several deletions through `conntrack -R FILE` (conntrack reads one command per line and splits
 * it on blanks itself; no shell). The file is ours, written to a private temporary directory and
 * removed after: conntrack opens its argument by path, and `-` (/dev/stdin) cannot be opened when
 * stdin is the socket the runner pipes through. Every argument comes from typed data (addresses,
 * ports, protocols, masks), so none may contain a blank: one that does is refused, not split.
 */
export async function ensureConntrackBatchDeleted(runner: CommandRunner, lines: readonly (readonly string[])[]): Promise<void> {
  for (const args of lines) {
    const bad = args.find((a) => a === '' || /\s/.test(a));
    if (bad !== undefined) throw new Error(`conntrack -R: argument ${JSON.stringify(bad)} is empty or contains a blank`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'smartnat-conntrack-'));
  try {
    const file = join(dir, 'deletions');
    await writeFile(file, `${lines.map((args) => args.join(' ')).join('\n')}\n`, { mode: 0o600 });
    await runner.run('conntrack', ['-R', file]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function ensureConntrackDeleted(runner: CommandRunner, args: readonly string[]): Promise<void> {
  const result = await runner.run('conntrack', args, { okExitCodes: [0, 1] });
  if (result.exitCode === 1 && !/0 flow entries/.test(result.stderr)) {
    throw new CommandFailedError(['conntrack', ...args], 1, result.stderr, []);
  }
}
