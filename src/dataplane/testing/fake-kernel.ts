// FakeKernel: a stateful stand-in for iptables-restore/-save, ipset, ip, conntrack and sysctl behind
// the CommandRunner port (component tests). It parses restore input into a rule dump, refuses
// jumps to missing chains, sets that do not exist and deletions of referenced chains, commits per
// table like iptables-legacy, and applies `ipset restore` line by line (not atomic, as the real
// one). It models no packet flow (see trace.ts) and only the command forms SmartNat uses.
import { readFileSync } from 'node:fs';
import type { CommandRunner, RunOptions, RunResult } from '../command-runner.js';
import { CommandFailedError, pickFailingInputLines } from '../command-runner.js';
import type { ChainDump, IptablesDump } from '../render-dump.js';
import { tokenize } from '../render-dump.js';

const BUILTIN: Record<string, string[]> = {
  raw: ['PREROUTING', 'OUTPUT'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
};
const TARGETS = new Set(['ACCEPT', 'DROP', 'RETURN', 'REJECT', 'DNAT', 'SNAT', 'MASQUERADE', 'MARK', 'CONNMARK', 'TCPMSS', 'LOG']);

export interface FakeSet {
  type: string;
  header: string;
  entries: Set<string>;
}

export interface CommandCall {
  readonly cmd: string;
  readonly args: readonly string[];
  readonly input?: string;
}

export interface IpRuleEntry {
  pref: number;
  fwmark: string;
  table: number;
  protocol: number;
}

export interface IpRouteEntry {
  table: number;
  destination: string;
  gateway?: string;
  device: string;
  scope: string;
  protocol: number;
}

class RestoreError extends Error {}

function cloneTables(tables: IptablesDump): IptablesDump {
  return new Map([...tables].map(([t, chains]) => [t, new Map([...chains].map(([c, d]) => [c, { policy: d.policy, rules: [...d.rules] }]))]));
}

export class FakeKernel implements CommandRunner {
  tables: IptablesDump = new Map(Object.entries(BUILTIN).map(([t, chains]) => [t, new Map(chains.map((c) => [c, { policy: 'ACCEPT', rules: [] as string[] }]))]));
  sets = new Map<string, FakeSet>();
  ipRules: IpRuleEntry[] = [];
  ipRoutes: IpRouteEntry[] = [];
  sysctls = new Map<string, string>();
  /** Flows by original destination address (count), for conntrack -D. */
  flows = new Map<string, number>();
  readonly calls: CommandCall[] = [];
  /** Any restore/ipset input line for which this returns true fails (a kernel refusing a rule). */
  failLine: (line: string) => boolean = () => false;
  /** Fail the next N invocations of this command name outright. */
  failNext = new Map<string, number>();

  async run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    // `conntrack -R FILE` reads its commands from a file the caller removes afterwards: keep its
    // content as the call's input, so tests can see what was deleted.
    if (cmd === 'conntrack' && args[0] === '-R') options = { ...options, input: readFileSync(args[1] ?? '', 'utf8') };
    this.calls.push(options.input === undefined ? { cmd, args } : { cmd, args, input: options.input });
    const left = this.failNext.get(cmd) ?? 0;
    if (left > 0) {
      this.failNext.set(cmd, left - 1);
      throw new CommandFailedError([cmd, ...args], 1, `${cmd}: injected failure`, []);
    }
    try {
      return this.dispatch(cmd, args, options.input ?? '');
    } catch (err: unknown) {
      if (!(err instanceof RestoreError)) throw err;
      const ok = options.okExitCodes ?? [0];
      const stderr = err.message;
      if (ok.includes(1)) return { stdout: '', stderr, exitCode: 1 };
      throw new CommandFailedError([cmd, ...args], 1, stderr, pickFailingInputLines(stderr, options.input));
    }
  }

  /** Calls of one command (e.g. 'iptables-restore'), for asserting what was written. */
  callsOf(cmd: string): CommandCall[] {
    return this.calls.filter((c) => c.cmd === cmd);
  }

  private dispatch(cmd: string, args: readonly string[], input: string): RunResult {
    switch (cmd) {
      case 'iptables-restore': return this.restore(input);
      case 'iptables-save': return out(this.save(args[args.indexOf('-t') + 1]));
      case 'ipset': return this.ipset(args, input);
      case 'ip': return this.ip(args, input);
      case 'conntrack': return args[0] === '-R' ? this.conntrackBatch(input) : this.conntrack(args);
      case 'sysctl': return this.sysctl(args, input);
      default: throw new RestoreError(`${cmd}: command not found in FakeKernel`);
    }
  }

  // ---------------------------------------------------------------- iptables
  save(table?: string): string {
    const lines: string[] = [];
    for (const [t, chains] of this.tables) {
      if (table !== undefined && t !== table) continue;
      lines.push(`*${t}`);
      const names = [...chains.keys()];
      for (const name of names) lines.push(`:${name} ${chains.get(name)?.policy ?? '-'} [0:0]`);
      for (const name of names) for (const r of chains.get(name)?.rules ?? []) lines.push(`-A ${name} ${r}`);
      lines.push('COMMIT');
    }
    return `${lines.join('\n')}\n`;
  }

  private restore(input: string): RunResult {
    let work: Map<string, ChainDump> | undefined;
    let tableName = '';
    const lines = input.split('\n');
    lines.forEach((line, i) => {
      const fail = (why: string): never => {
        throw new RestoreError(`iptables-restore: line ${i + 1} failed: ${why}`);
      };
      if (line === '' || line.startsWith('#')) return;
      if (this.failLine(line)) fail('refused by the kernel (injected)');
      if (line.startsWith('*')) {
        tableName = line.slice(1);
        const current = this.tables.get(tableName);
        if (!current) fail(`no table ${tableName}`);
        work = cloneTables(new Map([[tableName, current ?? new Map()]])).get(tableName);
      } else if (line === 'COMMIT') {
        if (work) this.tables.set(tableName, work);
        work = undefined;
      } else if (!work) fail('command outside a table');
      else this.restoreLine(work, tableName, line, fail);
    });
    if (work) throw new RestoreError(`iptables-restore: line ${lines.length} failed: missing COMMIT`);
    return out('');
  }

  private restoreLine(work: Map<string, ChainDump>, table: string, line: string, fail: (why: string) => never): void {
    if (line.startsWith(':')) {
      const [name = '', policy = '-'] = line.slice(1).split(' ');
      const existing = work.get(name);
      if (existing && existing.policy !== '-') existing.policy = policy;
      else work.set(name, { policy: '-', rules: [] });
      return;
    }
    const [op = '', chain = '', ...rest] = line.split(' ');
    const target = work.get(chain);
    if (!target) fail(`no chain ${chain}`);
    const chainDump = target as ChainDump;
    let spec = rest.join(' ');
    switch (op) {
      case '-A': this.checkRule(work, spec, fail); chainDump.rules.push(spec); return;
      case '-I': {
        let pos = 1;
        if (/^\d+$/.test(rest[0] ?? '')) { pos = Number(rest[0]); spec = rest.slice(1).join(' '); }
        this.checkRule(work, spec, fail);
        chainDump.rules.splice(pos - 1, 0, spec);
        return;
      }
      case '-D': {
        const idx = chainDump.rules.indexOf(spec);
        if (idx < 0) fail(`no such rule in ${chain}: ${spec}`);
        chainDump.rules.splice(idx, 1);
        return;
      }
      case '-F': chainDump.rules.length = 0; return;
      case '-X': {
        if (chainDump.policy !== '-') fail('cannot delete a built-in chain');
        if (chainDump.rules.length > 0) fail(`chain ${chain} is not empty`);
        const refs = [...work.values()].some((c) => c.rules.some((r) => r.endsWith(` -j ${chain}`) || r === `-j ${chain}`));
        if (refs) fail(`chain ${chain} is still referenced`);
        work.delete(chain);
        return;
      }
      default: fail(`unknown command ${op} (table ${table})`);
    }
  }

  private checkRule(work: Map<string, ChainDump>, spec: string, fail: (why: string) => never): void {
    const tokens = tokenize(spec);
    const j = tokens.indexOf('-j');
    const target = j >= 0 ? tokens[j + 1] : undefined;
    if (target !== undefined && !TARGETS.has(target) && !work.has(target)) fail(`jump to missing chain ${target}`);
    tokens.forEach((t, i) => {
      if (t === '--match-set' && !this.sets.has(tokens[i + 1] ?? '')) fail(`Set ${tokens[i + 1]} doesn't exist`);
    });
  }

  // ---------------------------------------------------------------- ipset
  private ipset(args: readonly string[], input: string): RunResult {
    const [sub = '', ...rest] = args;
    if (sub === 'restore') {
      input.split('\n').forEach((line, i) => {
        if (line.trim() === '') return;
        if (this.failLine(line)) throw new RestoreError(`ipset v7.17: Error in line ${i + 1}: refused (injected)`);
        try {
          this.ipsetCommand(line.split(' '));
        } catch (err: unknown) {
          throw new RestoreError(`ipset v7.17: Error in line ${i + 1}: ${err instanceof Error ? err.message : String(err)}`);
        }
      });
      return out('');
    }
    if (sub === 'list' && rest[0] === '-n') return out([...this.sets.keys()].map((n) => `${n}\n`).join(''));
    if (sub === 'save') return out(this.ipsetSave(rest[0]));
    try {
      this.ipsetCommand(args);
    } catch (err: unknown) {
      throw new RestoreError(`ipset v7.17: ${err instanceof Error ? err.message : String(err)}`);
    }
    return out('');
  }

  ipsetSave(name?: string): string {
    const lines: string[] = [];
    for (const [n, s] of this.sets) {
      if (name !== undefined && n !== name) continue;
      // A set made with `counters` prints them after each entry, as the real ipset does (always 0 here).
      const counted = s.header.split(' ').includes('counters') ? ' packets 0 bytes 0' : '';
      lines.push(`create ${n} ${s.type} ${s.header}`, ...[...s.entries].map((e) => `add ${n} ${e}${counted}`));
    }
    return lines.map((l) => `${l}\n`).join('');
  }

  private setOf(name: string | undefined): FakeSet {
    const s = this.sets.get(name ?? '');
    if (!s) throw new Error(`The set with the given name does not exist`);
    return s;
  }

  private ipsetCommand(argv: readonly string[]): void {
    const exist = argv.includes('-exist');
    const [op, name, ...rest] = argv.filter((a) => a !== '-exist');
    switch (op) {
      case 'create': {
        const [type = '', ...header] = rest;
        const existing = this.sets.get(name ?? '');
        if (existing && !(exist && existing.type === type && existing.header === header.join(' '))) throw new Error('Set cannot be created: set with the same name already exists');
        if (!existing) this.sets.set(name ?? '', { type, header: header.join(' '), entries: new Set() });
        return;
      }
      case 'add': {
        const s = this.setOf(name);
        if (s.entries.has(rest[0] ?? '') && !exist) throw new Error("Element cannot be added to the set: it's already added");
        s.entries.add(rest[0] ?? '');
        return;
      }
      case 'del': {
        const s = this.setOf(name);
        if (!s.entries.delete(rest[0] ?? '') && !exist) throw new Error("Element cannot be deleted from the set: it's not added");
        return;
      }
      case 'flush': this.setOf(name).entries.clear(); return;
      case 'swap': {
        const a = this.setOf(name);
        const b = this.setOf(rest[0]);
        if (a.type !== b.type) throw new Error('The sets cannot be swapped: their type does not match');
        this.sets.set(name ?? '', b);
        this.sets.set(rest[0] ?? '', a);
        return;
      }
      case 'destroy': {
        this.setOf(name);
        const used = [...this.tables.values()].some((t) => [...t.values()].some((c) => c.rules.some((r) => tokenize(r).includes(name ?? ''))));
        if (used) throw new Error('Set cannot be destroyed: it is in use by a kernel component');
        this.sets.delete(name ?? '');
        return;
      }
      default: throw new Error(`unknown ipset command ${op}`);
    }
  }

  // ---------------------------------------------------------------- ip
  private ip(args: readonly string[], input: string): RunResult {
    if (args[0] === '-batch') {
      input.split('\n').forEach((line, i) => {
        if (line.trim() === '') return;
        try {
          this.ipLine(line.split(' '));
        } catch (err: unknown) {
          throw new RestoreError(`Command failed -:${i + 1}: ${err instanceof Error ? err.message : String(err)}`);
        }
      });
      return out('');
    }
    const words = args.filter((a) => a !== '-j');
    if (words[0] === 'rule') return out(JSON.stringify(this.ipRules.map((r) => ({ priority: r.pref, src: 'all', fwmark: r.fwmark.split('/')[0], fwmask: r.fwmark.split('/')[1], table: String(r.table), protocol: String(r.protocol) }))));
    if (words[0] === 'route') {
      const table = Number(words[words.indexOf('table') + 1]);
      return out(JSON.stringify(this.ipRoutes.filter((r) => r.table === table).map((r) => ({ dst: r.destination, ...(r.gateway ? { gateway: r.gateway } : {}), dev: r.device, protocol: String(r.protocol), scope: r.scope, flags: [] }))));
    }
    throw new RestoreError(`ip: unsupported ${args.join(' ')}`);
  }

  private ipLine(w: readonly string[]): void {
    const val = (k: string): string => w[w.indexOf(k) + 1] ?? '';
    if (w[0] === 'rule') {
      const rule = { pref: Number(val('pref')), fwmark: val('fwmark'), table: Number(val('lookup')), protocol: Number(val('protocol')) };
      if (w[1] === 'add') this.ipRules.push(rule);
      else {
        const i = this.ipRules.findIndex((r) => r.pref === rule.pref && r.fwmark === rule.fwmark && r.table === rule.table);
        if (i < 0) throw new Error('RTNETLINK answers: No such file or directory');
        this.ipRules.splice(i, 1);
      }
      return;
    }
    const route: IpRouteEntry = { table: Number(val('table')), destination: w[2] ?? '', device: val('dev'), scope: w.includes('scope') ? val('scope') : 'global', protocol: Number(val('proto')) };
    if (w.includes('via')) route.gateway = val('via');
    const i = this.ipRoutes.findIndex((r) => r.table === route.table && r.destination === route.destination);
    if (w[1] === 'replace') {
      if (i >= 0) this.ipRoutes.splice(i, 1, route);
      else this.ipRoutes.push(route);
    } else {
      if (i < 0) throw new Error('RTNETLINK answers: No such process');
      this.ipRoutes.splice(i, 1);
    }
  }

  // ---------------------------------------------------------------- conntrack, sysctl
  private conntrack(args: readonly string[]): RunResult {
    const at = args.indexOf('--orig-dst');
    const dst = at >= 0 ? (args[at + 1] ?? '') : '';
    const n = this.flows.get(dst) ?? 0;
    this.flows.delete(dst);
    if (n === 0) throw new RestoreError('conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.');
    return { stdout: '', stderr: `conntrack v1.4.7 (conntrack-tools): ${n} flow entries have been deleted.\n`, exitCode: 0 };
  }

  /** `conntrack -R FILE`: one command per line; lines that match nothing are not an error. */
  private conntrackBatch(input: string): RunResult {
    for (const line of input.split('\n').filter((l) => l.trim() !== '')) {
      const args = line.trim().split(/\s+/);
      if (args[0] !== '-D') throw new RestoreError(`conntrack -R: FakeKernel handles -D lines only, got ${line}`);
      const at = args.indexOf('--orig-dst');
      this.flows.delete(at >= 0 ? (args[at + 1] ?? '') : '');
    }
    return { stdout: '', stderr: '', exitCode: 0 };
  }

  private sysctl(args: readonly string[], input: string): RunResult {
    if (args.includes('-p')) {
      for (const line of input.split('\n')) {
        const [k, v] = line.split(' = ');
        if (k && v !== undefined) this.sysctls.set(k.replaceAll('/', '.'), v);
      }
      return out('');
    }
    const key = args[args.length - 1] ?? '';
    return out(`${this.sysctls.get(key) ?? '0'}\n`);
  }
}

function out(stdout: string): RunResult {
  return { stdout, stderr: '', exitCode: 0 };
}
