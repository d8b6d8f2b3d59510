// Parses iptables-save output (and restore-style rule specs) back into data: the tables' chains
// and rule specs, split into our chains and the built-in chains. Pure. Used by the applier's
// read-back, the fake kernel and the packet tracer. Counters ([x:y]) are ignored.
import type { RuleSet } from './render-iptables.js';
import { CHAIN_PREFIX, TABLES } from './render-names.js';
import type { Table } from './render-names.js';

export interface ChainDump {
  /** 'ACCEPT'/'DROP' for built-in chains, '-' for user chains. */
  policy: string;
  readonly rules: string[];
}

/** table -> chain -> dump, in the order iptables-save printed them. */
export type IptablesDump = Map<string, Map<string, ChainDump>>;

/** Splits a rule spec into arguments, honouring iptables-save's double quotes and backslashes. */
export function tokenize(spec: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let started = false;
  for (let i = 0; i < spec.length; i++) {
    const ch = spec[i] ?? '';
    if (ch === '\\' && i + 1 < spec.length) {
      cur += spec[++i];
      started = true;
    } else if (ch === '"') {
      quoted = !quoted;
      started = true;
    } else if (ch === ' ' && !quoted) {
      if (started) out.push(cur);
      cur = '';
      started = false;
    } else {
      cur += ch;
      started = true;
    }
  }
  if (started) out.push(cur);
  return out;
}

export function parseIptablesSave(text: string): IptablesDump {
  const dump: IptablesDump = new Map();
  let table: Map<string, ChainDump> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      table = dump.get(line.slice(1)) ?? new Map();
      dump.set(line.slice(1), table);
    } else if (line === 'COMMIT') table = undefined;
    else if (table && line.startsWith(':')) {
      const [name = '', policy = '-'] = line.slice(1).split(' ');
      table.set(name, { policy, rules: table.get(name)?.rules ?? [] });
    } else if (table && line.startsWith('-A ')) {
      const rest = line.slice(3);
      const space = rest.indexOf(' ');
      const chain = space < 0 ? rest : rest.slice(0, space);
      const entry = table.get(chain) ?? { policy: '-', rules: [] };
      entry.rules.push(space < 0 ? '' : rest.slice(space + 1));
      table.set(chain, entry);
    }
  }
  return dump;
}

function select(dump: IptablesDump, keep: (chain: string, policy: string) => boolean): RuleSet {
  const pick = (t: Table): Map<string, readonly string[]> =>
    new Map([...(dump.get(t) ?? new Map<string, ChainDump>())].filter(([name, c]) => keep(name, c.policy)).map(([name, c]) => [name, [...c.rules]]));
  return Object.fromEntries(TABLES.map((t) => [t, pick(t)])) as unknown as RuleSet;
}

/** Our chains (SMARTNAT-*) with their rules. */
export function ourChains(dump: IptablesDump): RuleSet {
  return select(dump, (name) => name.startsWith(CHAIN_PREFIX));
}

/** Built-in chains (those with a policy), for checking our jumps. */
export function builtinChains(dump: IptablesDump): RuleSet {
  return select(dump, (_name, policy) => policy !== '-');
}
