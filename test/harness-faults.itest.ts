// Proves what fault tests rely on: a control plane of their own whose API server can be stopped and
// started again, and whose etcd can be restarted, with objects, URL and credentials kept; a failed
// start explains itself; stop() leaves no process and no directory.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from './support/control-plane.js';
import { kubectl, loadTestKubeConfig, waitFor } from './support/kube.js';
import { isRunning, processesMentioning } from './support/processes.js';

jest.setTimeout(180_000);

async function createConfigMap(kc: KubeConfig, name: string, value: string): Promise<void> {
  await kc.makeApiClient(CoreV1Api).createNamespacedConfigMap({
    namespace: 'default',
    body: { metadata: { name }, data: { value } },
  });
}

async function readValue(kc: KubeConfig, name: string): Promise<string | undefined> {
  const cm = await kc.makeApiClient(CoreV1Api).readNamespacedConfigMap({ name, namespace: 'default' });
  return cm.data?.value;
}

describe('a control plane of its own', () => {
  let parent: string;
  let cp: ControlPlane;
  let kc: KubeConfig;

  beforeAll(async () => {
    parent = mkdtempSync(join(tmpdir(), 'smartnat-harness-faults-'));
    cp = await startControlPlane({ tmpDir: parent });
    kc = loadTestKubeConfig(cp.kubeconfigPath);
  });
  afterAll(async () => {
    await cp?.stop();
    rmSync(parent, { recursive: true, force: true });
  });

  test('is not the shared one', () => {
    expect(cp.kubeconfigPath).not.toBe(process.env.SMARTNAT_TEST_KUBECONFIG);
    expect(cp.server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  test('stopping and starting the API server keeps objects, URL and credentials', async () => {
    await createConfigMap(kc, 'before-api-restart', 'kept');
    const oldPid = cp.pids().apiServer!;

    await cp.stopApiServer();
    expect(isRunning(oldPid)).toBe(false);
    expect(cp.pids().apiServer).toBeUndefined();
    await expect(readValue(kc, 'before-api-restart')).rejects.toThrow(/ECONNREFUSED/);

    await cp.startApiServer();
    expect(cp.pids().apiServer).not.toBe(oldPid);
    // The same KubeConfig object: same server URL, same CA, same token.
    expect(await readValue(kc, 'before-api-restart')).toBe('kept');
    const viaKubectl = await kubectl(['get', 'configmap', 'before-api-restart', '-o', 'jsonpath={.data.value}'], { kubeconfig: cp.kubeconfigPath });
    expect(viaKubectl.stdout).toBe('kept');
  });

  test('restarting etcd keeps objects and the API server serves reads and writes again', async () => {
    await createConfigMap(kc, 'before-etcd-restart', 'kept');
    const oldPid = cp.pids().etcd!;
    const apiPid = cp.pids().apiServer;

    await cp.restartEtcd();
    expect(isRunning(oldPid)).toBe(false);
    expect(cp.pids().etcd).not.toBe(oldPid);
    expect(cp.pids().apiServer).toBe(apiPid);

    // The API server reconnects on its own; a write proves more than a (possibly cached) read.
    await waitFor(async () => (await createConfigMap(kc, 'after-etcd-restart', 'new'), true), { what: 'a write after the etcd restart' });
    expect(await readValue(kc, 'before-etcd-restart')).toBe('kept');
    expect(await readValue(kc, 'before-api-restart')).toBe('kept');
  });

  test('stop() kills etcd, the API server and the guard, and removes the temp dir', async () => {
    const pids = cp.pids();
    expect(pids.etcd).toBeDefined();
    expect(pids.apiServer).toBeDefined();
    expect(pids.guard).toBeDefined();
    expect(existsSync(cp.dir)).toBe(true);

    await cp.stop();
    for (const pid of [pids.etcd!, pids.apiServer!, pids.guard!]) expect(isRunning(pid)).toBe(false);
    expect(existsSync(cp.dir)).toBe(false);
    expect(processesMentioning(parent)).toEqual([]);
    expect(readdirSync(parent)).toEqual([]);
  });
});

test('a start that fails shows the API server log and leaves no process and no directory', async () => {
  const parent = mkdtempSync(join(tmpdir(), 'smartnat-harness-badstart-'));
  try {
    await expect(startControlPlane({ tmpDir: parent, extraApiServerArgs: ['--no-such-flag=1'] }))
      .rejects.toThrow(/kube-apiserver \/readyz: process exited[\s\S]*last lines of kube-apiserver\.log[\s\S]*unknown flag: --no-such-flag/);
    // etcd had started before the API server failed: it must be gone, and the guard with it.
    await waitFor(() => processesMentioning(parent).length === 0, { what: `no process mentioning ${parent}`, timeoutMs: 10_000 });
    expect(readdirSync(parent)).toEqual([]);
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});
