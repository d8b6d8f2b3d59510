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
      // Different TLS material (a rotated certificate): a different agent.
      const other = loadKubeConfig(kubeconfig(dir, 'BBBB'), {});
      expect(await agentOf(other)).not.toBe(first);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
