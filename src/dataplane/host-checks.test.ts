import { describe, expect, it } from '@jest/globals';
import { DEFAULT_SETTINGS } from '../model/settings.js';
import { planDataPlane } from '../plan/plan-dataplane.js';
import type { CommandRunner, RunOptions, RunResult } from './command-runner.js';
import { CommandFailedError } from './command-runner.js';
import { checkEndpointRoutes, detectIptablesBackend, ensureSysctls } from './host-checks.js';
import { goldenSnapshots } from './testing/fixtures.js';

/** A runner answering from a table of "cmd args" -> stdout; anything else fails. */
class ScriptedRunner implements CommandRunner {
  readonly inputs: string[] = [];
  constructor(private readonly answers: Record<string, string>) {}
  async run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    if (options.input !== undefined) this.inputs.push(options.input);
    const key = [cmd, ...args].join(' ');
    const stdout = this.answers[key];
    if (stdout === undefined) throw new CommandFailedError([cmd, ...args], 1, 'not scripted', []);
    return { stdout, stderr: '', exitCode: 0 };
  }
}

const desired = planDataPlane(goldenSnapshots()['two-uplinks']!, DEFAULT_SETTINGS).desired;

describe('host checks', () => {
  it('picks the iptables backend that holds more rules', async () => {
    const legacyHost = new ScriptedRunner({ 'iptables-legacy-save': '*nat\n-A KUBE-SERVICES -j X\n-A POSTROUTING -j Y\n', 'iptables-nft-save': '*nat\n-A X -j Y\n' });
    expect((await detectIptablesBackend(legacyHost)).tools.restore).toBe('iptables-legacy-restore');
    const nftHost = new ScriptedRunner({ 'iptables-nft-save': '' });
    expect((await detectIptablesBackend(nftHost)).backend).toBe('nft');
  });

  it('writes the sysctls and reports an uplink whose effective rp_filter (max of all and its own) is strict', async () => {
    const runner = new ScriptedRunner({
      'sysctl -e -p -': '',
      'sysctl -n net.ipv4.conf.all.rp_filter': '1\n',
      'sysctl -n net.ipv4.conf.ext0.rp_filter': '2\n',
      'sysctl -n net.ipv4.conf.ext1.rp_filter': '1\n',
    });
    const findings = await ensureSysctls(runner, desired);
    // all=1 with ext0=2 is loose (max is 2); ext1=1 is strict.
    expect(findings.map((f) => [f.key, f.problem])).toEqual([['net.ipv4.conf.ext1.rp_filter', 'rpFilterStrict']]);
    expect(runner.inputs[0]).toContain('net.ipv4.conf.ext1.rp_filter = 2');
  });

  it('reports all=1 with an uplink left at 0 (effective 1)', async () => {
    const runner = new ScriptedRunner({
      'sysctl -e -p -': '',
      'sysctl -n net.ipv4.conf.all.rp_filter': '1\n',
      'sysctl -n net.ipv4.conf.ext0.rp_filter': '0\n',
      'sysctl -n net.ipv4.conf.ext1.rp_filter': '2\n',
    });
    expect((await ensureSysctls(runner, desired)).map((f) => f.key)).toEqual(['net.ipv4.conf.ext0.rp_filter']);
  });

  it('reports a sysctl write failure without throwing', async () => {
    const findings = await ensureSysctls(new ScriptedRunner({ 'sysctl -n net.ipv4.conf.all.rp_filter': '0' }), desired);
    expect(findings.map((f) => f.problem)).toContain('notWritable');
  });

  it('tells endpoints routed internally from those routed out of an uplink or not at all', async () => {
    const runner = new ScriptedRunner({ 'ip -j route get 198.51.100.21': '[{"dst":"198.51.100.21","dev":"int0"}]' });
    expect(await checkEndpointRoutes(runner, desired, ['int0'])).toEqual([{ endpoint: '198.51.100.21', route: 'internal', device: 'int0' }]);
    const external = new ScriptedRunner({ 'ip -j route get 198.51.100.21': '[{"dst":"198.51.100.21","gateway":"203.0.113.1","dev":"ext0"}]' });
    expect(await checkEndpointRoutes(external, desired, ['int0'])).toEqual([{ endpoint: '198.51.100.21', route: 'viaExternal', device: 'ext0' }]);
    expect(await checkEndpointRoutes(new ScriptedRunner({}), desired, ['int0'])).toEqual([{ endpoint: '198.51.100.21', route: 'noRoute' }]);
  });
});
