import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpMethod, RequestContext } from '@kubernetes/client-node';
import { loadKubeConfig } from './kubeconfig.js';

function kubeconfig(dir: string, caText: string): string {
  const path = join(dir, `kc-${caText}.yaml`);
  const ca = Buffer.from(`-----BEGIN CERTIFICATE-----\n${caText}\n-----END CERTIFICATE-----\n`).toString('base64');
  writeFileSync(path, [
    'apiVersion: v1', 'kind: Config', 'current-context: t',
    'clusters:', '- name: t', '  cluster:', '    server: https://192.0.2.1:6443', `    certificate-authority-data: ${ca}`,
    'users:', '- name: u', '  user:', '    token: abc',
    'contexts:', '- name: t', '  context:', '    cluster: t', '    user: u',
  ].join('\n'));
  return path;
}

async function agentOf(kc: ReturnType<typeof loadKubeConfig>): Promise<unknown> {
  const ctx = new RequestContext('https://192.0.2.1:6443/api', HttpMethod.GET);
  await kc.applySecurityAuthentication(ctx);
  return ctx.getAgent();
}

describe('loadKubeConfig shares one agent across requests', () => {
  it('returns the same agent for every request of one KubeConfig, with the token still set per request', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-'));
    try {
      const kc = loadKubeConfig(kubeconfig(dir, 'AAAA'), {});
      const first = await agentOf(kc);
      expect(first).toBeDefined();
      expect(await agentOf(kc)).toBe(first);
      const ctx = new RequestContext('https://192.0.2.1:6443/api', HttpMethod.GET);
      await kc.applySecurityAuthentication(ctx);
      expect(ctx.getHeaders()['Authorization']).toBe('Bearer abc');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('builds a new agent when the CA file changes under the same KubeConfig (a rotation), and keeps it after', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-'));
    try {
      const caFile = join(dir, 'ca.pem');
      const pem = (body: string): string => `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
      writeFileSync(caFile, pem('AAAA'));
      const path = join(dir, 'kc.yaml');
      writeFileSync(path, [
        'apiVersion: v1', 'kind: Config', 'current-context: t',
        'clusters:', '- name: t', '  cluster:', '    server: https://192.0.2.1:6443', `    certificate-authority: ${caFile}`,
        'users:', '- name: u', '  user:', '    token: abc',
        'contexts:', '- name: t', '  context:', '    cluster: t', '    user: u',
      ].join('\n'));
      const kc = loadKubeConfig(path, {});
      const before = await agentOf(kc);
      expect(await agentOf(kc)).toBe(before);
      writeFileSync(caFile, pem('BBBB'));
      const rotated = await agentOf(kc);
      expect(rotated).not.toBe(before);
      expect(await agentOf(kc)).toBe(rotated);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
