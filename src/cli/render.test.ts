import { describe, expect, it } from '@jest/globals';
import { Command } from 'commander';
import { Writable } from 'node:stream';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerCommands } from './index.js';
import { UsageError } from './errors.js';
import { SECTION_HEADERS } from './render.js';

const EXAMPLE = join(process.cwd(), 'examples', 'snapshot.yaml');

class Sink extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

async function cli(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  const stdout = new Sink();
  const stderr = new Sink();
  const program = new Command('smartnat').exitOverride().configureOutput({ writeErr: () => undefined });
  registerCommands(program, { env: {}, stdout, stderr });
  await program.parseAsync(['node', 'smartnat', ...args]);
  return { stdout: stdout.text, stderr: stderr.text };
}

function tmpFile(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'sn-render-')), 'snap.yaml');
  writeFileSync(path, text);
  return path;
}

describe('smartnat render on examples/snapshot.yaml', () => {
  it('prints every part under its fixed header, in order', async () => {
    const { stdout, stderr } = await cli('render', '--snapshot', EXAMPLE, '--agent', 'agent-a');
    const positions = Object.values(SECTION_HEADERS).map((h) => stdout.indexOf(`${h}\n`));
    expect(positions.every((p) => p >= 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(stdout).toContain('-A SMARTNAT-A-203.0.113.10 -p tcp -m tcp --dport 8080 -m comment --comment "demo/echo 203.0.113.10:8080/tcp"');
    expect(stdout).toContain('--to-destination 198.51.100.22:8080');
    expect(stdout).not.toContain('198.51.100.23');
    expect(stderr).toContain('left out (noReadyEndpoints, reject): Service demo/dns');
  });

  it('--only prints just that part, with no header; --owns gates the owned set', async () => {
    const { stdout } = await cli('render', '--snapshot', EXAMPLE, '--agent', 'agent-a', '--owns', '203.0.113.10', '--only', 'ipset');
    expect(stdout.startsWith('create smartnat-eligible')).toBe(true);
    expect(stdout).not.toContain('# ====');
    expect(stdout).toContain('add smartnat-tmp-owned 203.0.113.10\nswap smartnat-tmp-owned smartnat-owned');
    expect(stdout).not.toContain('add smartnat-tmp-owned 192.0.2.10');
  });

  it.each([
    { desc: 'unknown agent', args: ['--agent', 'nobody'], message: /no AgentFacts document named "nobody"/ },
    { desc: 'bad --only', args: ['--agent', 'agent-a', '--only', 'nft'], message: /--only must be one of/ },
    { desc: 'bad --owns', args: ['--agent', 'agent-a', '--owns', '203.0.113.300'], message: /--owns: "203.0.113.300" is not an IPv4 address/ },
  ])('refuses bad input with a UsageError: $desc', async ({ args, message }) => {
    await expect(cli('render', '--snapshot', EXAMPLE, ...args)).rejects.toThrow(message);
    await expect(cli('render', '--snapshot', EXAMPLE, ...args)).rejects.toBeInstanceOf(UsageError);
  });

  it('refuses a broken file, a bad interface name and a bad pool with the document named', async () => {
    await expect(cli('render', '--snapshot', tmpFile('a: [\n'), '--agent', 'a')).rejects.toThrow(/not valid YAML/);
    const badFacts = 'apiVersion: smartnat.aureacentral.com/v1alpha1\nkind: AgentFacts\nmetadata: {name: a}\ninterfaces: [{name: "eth0; rm", role: external, addresses: [203.0.113.2/24]}]\n';
    await expect(cli('render', '--snapshot', tmpFile(badFacts), '--agent', 'a')).rejects.toThrow(/document 1 \(AgentFacts \/?a\).*interfaces\[0\]\.name/);
    const badPool = `${badFacts.replace('eth0; rm', 'ext0')}---\napiVersion: smartnat.aureacentral.com/v1alpha1\nkind: AddressPool\nmetadata: {name: p}\nspec: {addresses: [not-an-ip]}\n`;
    await expect(cli('render', '--snapshot', tmpFile(badPool), '--agent', 'a')).rejects.toThrow(/document 2 \(AddressPool p\).*spec\.addresses/);
    await expect(cli('render', '--snapshot', '/nonexistent/snap.yaml', '--agent', 'a')).rejects.toThrow(/cannot read --snapshot/);
  });
});
