// Proves the integration layer's shared control plane: handed over by globalSetup through the
// environment, reachable with client-node, kubectl and helm from one kubeconfig, RBAC enforced,
// and ServiceAccount tokens minted by TokenRequest accepted.
import { describe, expect, jest, test } from '@jest/globals';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, VersionApi } from '@kubernetes/client-node';
import { createTestNamespace, helm, kubectl, loadTestKubeConfig, testKubeconfigPath } from './support/kube.js';
import { repoRoot } from './support/testenv-bin.js';

jest.setTimeout(60_000);

function versionsEnv(): Record<string, string> {
  const text = readFileSync(join(repoRoot(), 'test', 'testenv', 'versions.env'), 'utf8');
  return Object.fromEntries(
    text.split('\n').filter((line) => /^[A-Z_]+=/.test(line)).map((line) => {
      const eq = line.indexOf('=');
      return [line.slice(0, eq), line.slice(eq + 1).trim()];
    }),
  );
}

describe('shared control plane', () => {
  test('globalSetup hands the kubeconfig and binaries to test workers through the environment', () => {
    const kubeconfig = testKubeconfigPath();
    expect(existsSync(kubeconfig)).toBe(true);
    const bin = process.env.SMARTNAT_TESTENV_BIN;
    expect(bin).toBeDefined();
    for (const name of ['kube-apiserver', 'etcd', 'kubectl', 'helm']) expect(existsSync(join(bin!, name))).toBe(true);
  });

  test('client-node reaches the API server and sees the version versions.env names', async () => {
    const kc = loadTestKubeConfig();
    const version = await kc.makeApiClient(VersionApi).getCode();
    expect(version.gitVersion).toBe(versionsEnv().KUBERNETES_VERSION);
    const namespaces = await kc.makeApiClient(CoreV1Api).listNamespace();
    expect(namespaces.items.map((ns) => ns.metadata?.name)).toEqual(expect.arrayContaining(['default', 'kube-system']));
  });

  test('kubectl with the same kubeconfig creates and reads objects in a fresh namespace', async () => {
    const ns = await createTestNamespace('harness-');
    expect(ns).toMatch(/^harness-[a-z0-9]{5}$/);
    await kubectl(['-n', ns, 'apply', '-f', '-'], {
      input: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'probe' }, data: { from: 'kubectl' } }),
    });
    const cm = await loadTestKubeConfig().makeApiClient(CoreV1Api).readNamespacedConfigMap({ name: 'probe', namespace: ns });
    expect(cm.data).toEqual({ from: 'kubectl' });
  });

  test('kubectl reports a failing command with its exit code and stderr', async () => {
    await expect(kubectl(['get', 'configmap', 'no-such-object', '-n', 'default'])).rejects.toThrow(/exited 1[\s\S]*NotFound/);
    const result = await kubectl(['get', 'configmap', 'no-such-object', '-n', 'default'], { allowFailure: true });
    expect(result.exitCode).toBe(1);
  });

  test('helm talks to the API server with the same kubeconfig', async () => {
    const ns = await createTestNamespace('harness-helm-');
    const result = await helm(['list', '-n', ns, '-o', 'json']);
    expect(JSON.parse(result.stdout)).toEqual([]);
  });

  test('RBAC is enforced and a TokenRequest token authenticates as its ServiceAccount', async () => {
    const ns = await createTestNamespace('harness-sa-');
    await kubectl(['-n', ns, 'create', 'serviceaccount', 'probe']);
    const token = (await kubectl(['-n', ns, 'create', 'token', 'probe', '--duration=10m'])).stdout.trim();
    expect(token.split('.')).toHaveLength(3);
    const asProbe = [`--token=${token}`]; // replaces the admin token of the test kubeconfig
    const whoami = await kubectl([...asProbe, 'auth', 'whoami', '-o', 'json']);
    expect(JSON.parse(whoami.stdout).status.userInfo.username).toBe(`system:serviceaccount:${ns}:probe`);
    const denied = await kubectl([...asProbe, '-n', ns, 'get', 'configmaps'], { allowFailure: true });
    expect(denied.exitCode).toBe(1);
    expect(denied.stderr).toMatch(/Forbidden/);
    await kubectl(['-n', ns, 'create', 'role', 'read-cm', '--verb=get,list', '--resource=configmaps']);
    await kubectl(['-n', ns, 'create', 'rolebinding', 'read-cm', '--role=read-cm', `--serviceaccount=${ns}:probe`]);
    const allowed = await kubectl([...asProbe, '-n', ns, 'get', 'configmaps', '-o', 'name']);
    expect(allowed.exitCode).toBe(0);
  });
});
