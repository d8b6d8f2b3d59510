// Removes everything SmartNat created on a host and nothing else: jumps from built-in chains into
// SMARTNAT-* chains, those chains, smartnat-* sets (after the rules that use them), and ip rules
// and routes carrying our protocol number. Reads the kernel back first; idempotent (a second run
// finds nothing and runs no writer). Foreign rules, chains, sets and routes are never named.
import type { CommandRunner } from './command-runner.js';
import type { JumpFix } from './render-iptables.js';
import { emptyRuleSet, renderIptablesRestore } from './render-iptables.js';
import { CHAIN_PREFIX, TABLES } from './render-names.js';
import { renderRoutes } from './render-routes.js';
import type { IptablesTools } from './readback.js';
import { DEFAULT_IPTABLES, readKernelState } from './readback.js';
import type { DataPlaneSettings } from '../model/settings.js';
import { maxUplinks } from '../model/settings.js';
import type { RuleSet } from './render-iptables.js';

export interface CleanupReport {
  readonly chains: readonly string[];
  readonly jumps: number;
  readonly sets: readonly string[];
  readonly rules: number;
  readonly routes: number;
}

/** Every rule in a built-in chain whose target is one of our chains, as a delete. */
export function planJumpRemovals(builtin: RuleSet): JumpFix[] {
  return TABLES.flatMap((table) =>
    [...builtin[table]].flatMap(([chain, rules]) =>
      rules.filter((r) => new RegExp(`(^| )-j ${CHAIN_PREFIX}\\S+$`).test(r)).map((spec): JumpFix => ({ table, chain, action: 'delete', spec })),
    ),
  );
}

export async function cleanupDataPlane(options: { runner: CommandRunner; settings: DataPlaneSettings; iptables?: IptablesTools }): Promise<CleanupReport> {
  const { runner, settings } = options;
  const tools = options.iptables ?? DEFAULT_IPTABLES;
  const tables = Array.from({ length: maxUplinks(settings) }, (_, i) => settings.tableBase + i + 1);
  const kernel = await readKernelState(runner, tools, { protocol: settings.routeProtocol, tables });
  const jumps = planJumpRemovals(kernel.builtin);
  const restore = renderIptablesRestore({ desired: emptyRuleSet(), current: kernel.ours, jumps });
  if (restore.text) await runner.run(tools.restore, ['--noflush', '-w', String(tools.lockWaitSeconds)], { input: restore.text });
  const sets = [...kernel.setNames].sort();
  if (sets.length) await runner.run('ipset', ['restore'], { input: sets.map((s) => `destroy ${s}\n`).join('') });
  const routes = renderRoutes({ desired: { rules: [], routes: [] }, current: kernel.routing, protocol: settings.routeProtocol });
  if (routes) await runner.run('ip', ['-batch', '-'], { input: routes });
  return { chains: restore.deleted, jumps: jumps.length, sets, rules: kernel.routing.rules.length, routes: kernel.routing.routes.length };
}
