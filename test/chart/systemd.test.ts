// The systemd unit for instances outside the cluster, checked by systemd's own tools on this
// machine: `systemd-analyze verify` must be silent (it exits 0 even on ignored lines, so any output
// counts as a failure), `systemd-analyze security --offline` must rate it OK or better, and the
// capabilities are exactly NET_ADMIN and NET_RAW.
import { AGENT_NODE_ARGV, agentNodeOptions } from '../../src/cli/node-flags.js';
import { describe, expect, test } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const UNIT = fileURLToPath(new URL('../../packaging/systemd/smartnat-agent.service', import.meta.url));
const text = readFileSync(UNIT, 'utf8');

/** Every `Key=value` of the unit, by key (a key may repeat). */
function settings(unit: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of unit.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

async function verify(path: string): Promise<{ exitCode: number; output: string }> {
  const r = await execa('systemd-analyze', ['verify', path], { reject: false, all: true });
  return { exitCode: r.exitCode ?? -1, output: String(r.all ?? '').trim() };
}

describe('packaging/systemd/smartnat-agent.service', () => {
  test('runs the agent with the V8 settings the chart and the lab use (src/cli/node-flags.ts)', () => {
    expect(text).toContain(`Environment="NODE_OPTIONS=${agentNodeOptions().join(' ')}"`);
    expect(text).toContain(`ExecStart=/usr/bin/node ${AGENT_NODE_ARGV.join(' ')} /opt/smartnat/dist/main.js agent `);
  });

  test('systemd-analyze verify accepts it without a single warning', async () => {
    expect(await verify(UNIT)).toEqual({ exitCode: 0, output: '' });
  });

  test('the verify check can fail: a misspelt key and a bad value are reported', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'smartnat-unit-'));
    try {
      const bad = join(dir, 'smartnat-agent.service');
      writeFileSync(bad, text.replace('ProtectSystem=strict', 'ProtectSystm=strict').replace('KillMode=mixed', 'KillMode=sometimes'));
      const r = await verify(bad);
      expect(r.output).toContain("Unknown key 'ProtectSystm'");
      expect(r.output).toContain('Failed to parse kill mode');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('systemd-analyze security --offline rates it OK or better', async () => {
    const r = await execa('systemd-analyze', ['security', '--offline=yes', '--no-pager', UNIT], { all: true });
    const m = /Overall exposure level for smartnat-agent\.service: (\d+\.\d+) (\w+)/.exec(String(r.all));
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(5.0);
    expect(['OK', 'SAFE']).toContain(m![2]);
  });

  test('root with exactly CAP_NET_ADMIN and CAP_NET_RAW, no new privileges, read-only system', () => {
    const s = settings(text);
    expect(s.get('User')).toEqual(['root']);
    expect(s.get('CapabilityBoundingSet')).toEqual(['CAP_NET_ADMIN CAP_NET_RAW']);
    expect(s.get('AmbientCapabilities')).toEqual(['CAP_NET_ADMIN CAP_NET_RAW']);
    expect(s.get('NoNewPrivileges')).toEqual(['yes']);
    expect(s.get('ProtectSystem')).toEqual(['strict']);
    expect(s.get('KillMode')).toEqual(['mixed']);
    expect(s.get('ExecStart')?.[0]).toMatch(/\/dist\/main\.js agent /);
  });
});
