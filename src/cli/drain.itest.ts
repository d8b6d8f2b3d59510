// `smartnat drain` / `undrain` as a process against the real API server: the drain annotation is
// merge-patched onto the agent lease (other annotations and labels kept); a missing agent lease is
// a clear failure with exit code 1.
import { describe, expect, it } from '@jest/globals';
import { execa } from 'execa';
import { createTestNamespace, loadTestKubeConfig, testKubeconfigPath } from '../../test/support/kube.js';
import { realClock } from '../cluster/clock.js';
import { joinAgent } from '../cluster/lease-protocol.js';
import { KubeLeaseStore } from '../cluster/lease-store.js';
import { ANNOTATION_DRAIN, ANNOTATION_HEALTH, agentLeaseName } from '../plan/lease-names.js';
import { DEFAULT_LEASE_SETTINGS } from '../plan/lease-settings.js';

const ROOT = new URL('../../', import.meta.url).pathname;

async function smartnat(args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await execa(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], { cwd: ROOT, reject: false });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

describe('smartnat drain / undrain', () => {
  it('sets and removes the drain annotation on the agent lease, keeping everything else', async () => {
    const kc = loadTestKubeConfig();
    const ns = await createTestNamespace('drain-', kc);
    const store = new KubeLeaseStore(kc, ns);
    await joinAgent(store, { agent: 'edge-1', labels: { zone: 'a' }, annotations: { [ANNOTATION_HEALTH]: 'ok' } }, DEFAULT_LEASE_SETTINGS, realClock);
    const common = ['--namespace', ns, '--kubeconfig', testKubeconfigPath()];
    const drained = await smartnat(['drain', 'edge-1', ...common]);
    expect(drained).toMatchObject({ exitCode: 0, stdout: 'drained edge-1' });
    const lease = await store.get(agentLeaseName('edge-1'));
    expect(lease?.annotations).toMatchObject({ [ANNOTATION_DRAIN]: 'true', [ANNOTATION_HEALTH]: 'ok' });
    expect(lease?.labels.zone).toBe('a');
    expect(lease?.holder).toBe('edge-1');
    expect(await smartnat(['undrain', 'edge-1', ...common])).toMatchObject({ exitCode: 0 });
    const after = await store.get(agentLeaseName('edge-1'));
    expect(after?.annotations[ANNOTATION_DRAIN]).toBeUndefined();
    expect(after?.annotations[ANNOTATION_HEALTH]).toBe('ok');
  }, 60_000);

  it('fails with exit 1 and says so when the agent has no lease', async () => {
    const ns = await createTestNamespace('drain-', loadTestKubeConfig());
    const r = await smartnat(['drain', 'nobody', '--namespace', ns, '--kubeconfig', testKubeconfigPath()]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`agent nobody has no lease smartnat-agent-nobody in namespace ${ns}`);
  }, 60_000);
});
