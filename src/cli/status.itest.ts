// `smartnat status --json` against the real API server: a renewing agent is alive, a silent one is
// stale, a fenced one fenced; addresses show owner, pool, VRID and the Mappings using them.
import { execa } from 'execa';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { createTestNamespace, loadTestKubeConfig, testKubeconfigPath } from '../../test/support/kube.js';
import { installCrds } from '../../test/fixtures/crd/server.js';
import { KubeLeaseStore } from '../cluster/lease-store.js';
import { ANNOTATION_DRAIN, ANNOTATION_FENCED_BY, ANNOTATION_POOL, ANNOTATION_VRID, LABEL_ROLE, addressLeaseName, agentLeaseName, type LeaseRecord } from '../plan/lease-names.js';
import { GROUP, VERSION } from '../api/types.js';

// Addresses no other integration test uses: status lists Mappings from every namespace of the shared API server.
const VIP_1 = '198.18.77.10';
const VIP_2 = '198.18.77.11';

function lease(name: string, holder: string, role: 'agent' | 'address', annotations: Record<string, string> = {}): LeaseRecord {
  const now = new Date();
  return { name, resourceVersion: '', holder, leaseDurationSeconds: 2, leaseTransitions: 0, acquireTime: now, renewTime: now, labels: { [LABEL_ROLE]: role }, annotations };
}

import { jest } from '@jest/globals';

jest.setTimeout(60_000);

describe('smartnat status', () => {
  let stopRenewing = (): void => undefined;

  afterAll(() => stopRenewing());

  it('reports owners, pools, VRIDs, mappings and agent liveness observed over the window', async () => {
    await installCrds();
    const kc = loadTestKubeConfig();
    const ns = await createTestNamespace('status-');
    const appNs = await createTestNamespace('status-app-');
    const store = new KubeLeaseStore(kc, ns);
    for (const [agent, extra] of [['agent-a', {}], ['agent-b', { [ANNOTATION_DRAIN]: 'true' }], ['agent-c', { [ANNOTATION_FENCED_BY]: 'agent-a' }]] as const) {
      const r = await store.create(lease(agentLeaseName(agent), agent === 'agent-c' ? '' : agent, 'agent', extra));
      expect(r.outcome).toBe('written');
    }
    await store.create(lease(addressLeaseName(VIP_1), 'agent-a', 'address', { [ANNOTATION_POOL]: 'edge', [ANNOTATION_VRID]: '10' }));
    await store.create(lease(addressLeaseName(VIP_2), '', 'address', { [ANNOTATION_POOL]: 'edge', [ANNOTATION_VRID]: '11' }));
    await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: GROUP, version: VERSION, namespace: appNs, plural: 'mappings',
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'Mapping', metadata: { name: 'echo' }, spec: { addresses: [VIP_1], serviceName: 'echo', ports: [{ port: 8080 }] } },
    });

    // agent-a renews every 250 ms, like a live agent; agent-b stays silent.
    let current = (await store.get(agentLeaseName('agent-a')))!;
    const timer = setInterval(() => {
      void store.replace({ ...current, renewTime: new Date() }).then((r) => {
        if (r.outcome === 'written') current = r.lease;
      });
    }, 250);
    stopRenewing = () => clearInterval(timer);

    const result = await execa('npx', ['tsx', 'src/main.ts', 'status', '--json', '--namespace', ns, '--kubeconfig', testKubeconfigPath(), '--observe', '1500'], { reject: false });
    stopRenewing();
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    const status = JSON.parse(result.stdout) as { schemaVersion: number; addresses: unknown[]; agents: unknown[] };
    expect(status.schemaVersion).toBe(1);
    expect(status.addresses).toEqual([
      { address: VIP_1, pool: 'edge', owner: 'agent-a', vrid: 10, since: expect.any(String), mappings: [`${appNs}/echo`], ready: false },
      { address: VIP_2, pool: 'edge', owner: '', vrid: 11, mappings: [], ready: false },
    ]);
    expect(status.agents).toEqual([
      { name: 'agent-a', liveness: 'alive', leader: false, owned: 1, draining: false, health: '' },
      { name: 'agent-b', liveness: 'stale', leader: false, owned: 0, draining: true, health: '' },
      { name: 'agent-c', liveness: 'fenced', leader: false, owned: 0, draining: false, health: '' },
    ]);
  });

  it('says which kubeconfig it could not load, with exit 1', async () => {
    const result = await execa('npx', ['tsx', 'src/main.ts', 'status', '--kubeconfig', '/nonexistent/kubeconfig'], { reject: false });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/cannot load kubeconfig \(--kubeconfig \/nonexistent\/kubeconfig\)/);
  });

  it('refuses a bad --observe with exit 2', async () => {
    const result = await execa('npx', ['tsx', 'src/main.ts', 'status', '--observe', 'soon'], { reject: false });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/--observe must be/);
  });
});
