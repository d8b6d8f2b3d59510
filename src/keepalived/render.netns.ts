// Every keepalived golden file is accepted by the real `keepalived -t`, run inside a network
// namespace that has the interfaces the file names (keepalived checks they exist).
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ExecaCommandRunner } from '../dataplane/command-runner.js';
import { goldenPath } from '../../test/support/golden.js';
import { createAgentNamespace } from '../agent/testing/agent-netns.js';

const host = new ExecaCommandRunner();
const ns = `snkt-${randomBytes(3).toString('hex')}`;
const inNs = new ExecaCommandRunner(ns);


beforeAll(async () => {
  await createAgentNamespace(ns, { secondUplink: true });
});

afterAll(async () => {
  await host.run('ip', ['netns', 'del', ns], { okExitCodes: [0, 1] });
});

const goldens = readdirSync(goldenPath('keepalived')).filter((f) => f.endsWith('.conf'));

describe('keepalived goldens against the real keepalived -t', () => {
  it('has golden files to check', () => {
    expect(goldens.length).toBeGreaterThanOrEqual(2);
  });

  it.each(goldens)('%s passes keepalived -t', async (file) => {
    const result = await inNs.run('keepalived', ['-t', '-f', goldenPath(`keepalived/${file}`)], { okExitCodes: [0, 1, 2, 3, 4, 5] });
    expect({ exitCode: result.exitCode, stderr: result.stderr }).toEqual({ exitCode: 0, stderr: expect.any(String) });
  });

  it('and keepalived -t does refuse a broken file (the check can fail)', async () => {
    // A regular file: keepalived silently skips /dev/stdin ("not a regular non-executable file")
    // and then exits 0, so a check through a pipe would prove nothing.
    const dir = mkdtempSync(join(tmpdir(), 'snkt-'));
    try {
      const file = join(dir, 'bad.conf');
      writeFileSync(file, 'vrrp_instance X {\n interface nosuchif0\n virtual_router_id 300\n}\n');
      const result = await inNs.run('keepalived', ['-t', '-f', file], { okExitCodes: [0, 1, 2, 3, 4, 5] });
      expect(result.exitCode).not.toBe(0);
      expect(result.stderr).toMatch(/VRID '300' not valid/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
