// Proof that the chart's RBAC is enough: `helm install` of the chart into a real API server, a
// TokenRequest token of the chart's ServiceAccount, and the real `smartnat agent` run with the
// arguments of the installed DaemonSet (downward-API variables filled in) and that token. It must
// renew its agent lease, lead, create and own an address lease, program the kernel of a network
// namespace (--netns: the host's is never touched), write Mapping and AddressPool status and an
// Event, and log no authorization failure. Its own control plane; root for the namespace.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, CustomObjectsApi, DiscoveryV1Api, KubeConfig, type V1DaemonSet } from '@kubernetes/client-node';
import { execa, type ResultPromise } from 'execa';
import { writeFileSync } from 'node:fs';
import { createAgentNamespace, deleteAgentNamespace } from '../../src/agent/testing/agent-netns.js';
import { GROUP, VERSION } from '../../src/api/types.js';
import { startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { helm, kubectl, loadTestKubeConfig, waitFor, type ToolOptions } from '../support/kube.js';
import { CHART_DIR, withValuesFile } from './chart.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NETNS = `snchart-${process.pid}`;
const VIP = '203.0.113.10';
const NODE = 'nat-1';
const RELEASE_NS = 'smartnat-system';
const APP_NS = 'shop';
const SA = 'sn-smartnat';

let plane: ControlPlane | undefined;
let admin: KubeConfig;
let work = '';

function on(): ToolOptions {
  if (plane === undefined) throw new Error('no control plane');
  return { kubeconfig: plane.kubeconfigPath, timeoutMs: 120_000 };
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const addr = srv.address();
  await new Promise<void>((r) => srv.close(() => r()));
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}

/** The installed DaemonSet's agent arguments with the downward-API variables the kubelet would fill in. */
function agentArgs(ds: V1DaemonSet, env: Record<string, string>): string[] {
  const agent = ds.spec?.template.spec?.containers.find((c) => c.name === 'agent');
  if (agent?.args === undefined) throw new Error('the DaemonSet has no agent container args');
  return agent.args.map((a) => a.replace(/\$\(([A-Z_]+)\)/g, (_m, name: string) => {
    const v = env[name];
    if (v === undefined) throw new Error(`argument ${a} needs $(${name}), which the test does not provide`);
    return v;
  }));
}

beforeAll(async () => {
  plane = await startControlPlane();
  admin = loadTestKubeConfig(plane.kubeconfigPath);
  work = await mkdtemp(join(tmpdir(), 'snchart-'));
  await createAgentNamespace(NETNS);
}, 180_000);

afterAll(async () => {
  await deleteAgentNamespace(NETNS);
  if (work !== '') await rm(work, { recursive: true, force: true });
  await plane?.stop();
}, 60_000);

describe('the agent authenticated as the chart ServiceAccount', () => {
  test('runs its whole job with the installed DaemonSet arguments and logs no authorization failure', async () => {
    if (plane === undefined) throw new Error('no control plane');
    await kubectl(['create', 'namespace', RELEASE_NS], on());
    await kubectl(['create', 'namespace', APP_NS], on());
    const values = {
      agent: { interfaces: [{ name: 'ext0', role: 'external' }, { name: 'int0', role: 'internal' }], leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 },
      addressPools: [{ name: 'uplink', addresses: ['203.0.113.10-203.0.113.20'], interface: 'ext0', agentSelector: { matchLabels: { 'smartnat.aureacentral.com/pool': 'blue' } }, allowedNamespaces: [APP_NS] }],
    };
    await withValuesFile(values, async (file) => helm(['install', 'sn', CHART_DIR, '-n', RELEASE_NS, '-f', file], on()));
    await kubectl(['wait', '--for=condition=Established', '--timeout=60s', `crd/mappings.${GROUP}`, `crd/addresspools.${GROUP}`], on());

    // What a cluster would have: the Node (its labels select the pool), a Service and its slice, a Mapping.
    await admin.makeApiClient(CoreV1Api).createNode({ body: { metadata: { name: NODE, labels: { 'smartnat.aureacentral.com/pool': 'blue' } } } });
    await admin.makeApiClient(CoreV1Api).createNamespacedService({ namespace: APP_NS, body: { metadata: { name: 'echo' }, spec: { ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } } });
    await admin.makeApiClient(DiscoveryV1Api).createNamespacedEndpointSlice({
      namespace: APP_NS,
      body: {
        metadata: { name: 'echo-1', labels: { 'kubernetes.io/service-name': 'echo' } },
        addressType: 'IPv4',
        ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
        endpoints: [{ addresses: ['198.51.100.21'], conditions: { ready: true } }],
      },
    });
    const custom = admin.makeApiClient(CustomObjectsApi);
    await waitFor(async () => (await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'mappings' })) !== undefined, { timeoutMs: 60_000, what: 'mappings served' });
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: 'mappings',
      namespace: APP_NS,
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'Mapping', metadata: { name: 'echo' }, spec: { addresses: [VIP], serviceName: 'echo', ports: [{ port: 8080, protocol: 'tcp', servicePort: 80 }] } },
    });

    // The token and the kubeconfig the pod would get (server + CA + a TokenRequest token).
    const token = (await kubectl(['create', 'token', SA, '-n', RELEASE_NS, '--duration=1h'], on())).stdout.trim();
    const cluster = admin.getCurrentCluster();
    if (cluster === null) throw new Error('no cluster in the admin kubeconfig');
    const kc = new KubeConfig();
    kc.loadFromOptions({ clusters: [cluster], users: [{ name: SA, token }], contexts: [{ name: 'sa', cluster: cluster.name, user: SA }], currentContext: 'sa' });
    const tokenKubeconfig = join(work, 'sa.kubeconfig');
    writeFileSync(tokenKubeconfig, kc.exportConfig(), { mode: 0o600 });

    const ds = JSON.parse((await kubectl(['get', 'daemonset', SA, '-n', RELEASE_NS, '-o', 'json'], on())).stdout) as V1DaemonSet;
    const port = await freePort();
    const args = agentArgs(ds, { NODE_NAME: NODE, HOST_IP: '127.0.0.1' })
      // The pod's paths and port, moved to this test's: the state dir is an emptyDir there, the port is the host's.
      .map((a) => (a.startsWith('--state-dir=') ? `--state-dir=${join(work, 'state')}` : a))
      .map((a) => (a.startsWith('--metrics-address=') ? `--metrics-address=127.0.0.1:${port}` : a));
    expect(args.slice(0, 5)).toEqual(['agent', `--name=${NODE}`, `--namespace=${RELEASE_NS}`, `--state-dir=${join(work, 'state')}`, '--no-keepalived']);
    const child: ResultPromise = execa(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args, `--kubeconfig=${tokenKubeconfig}`, `--netns=${NETNS}`, '--handoff-grace=200ms'], {
      cwd: ROOT,
      reject: false,
      all: true,
    });
    let log = '';
    child.all?.on('data', (chunk: Buffer) => (log += chunk.toString()));
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, { timeoutMs: 90_000, what: `/readyz 200; log:\n${log}` });
      // The agent lease is renewed: its resourceVersion moves.
      const rv = async (): Promise<string> => (await kubectl(['get', 'lease', `smartnat-agent-${NODE}`, '-n', RELEASE_NS, '-o', 'jsonpath={.metadata.resourceVersion}'], on())).stdout;
      const first = await rv();
      await waitFor(async () => (await rv()) !== first, { timeoutMs: 10_000, what: 'the agent lease to be renewed' });
      // Leader: the address lease; owner: the kernel and its status entry; leader: Mapping status and an Event.
      const entry = await waitFor(
        async () => {
          const m = (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: 'mappings', namespace: APP_NS, name: 'echo' })) as {
            status?: { invalid?: string; configuredAddresses?: Record<string, { owner?: string }> };
          };
          return m.status?.invalid === 'no' ? m.status.configuredAddresses?.[VIP] : undefined;
        },
        { timeoutMs: 60_000, what: `the Mapping status; log:\n${log}` },
      );
      expect(entry).toMatchObject({ owner: NODE });
      expect((await kubectl(['get', 'lease', 'smartnat-addr-203-0-113-10', '-n', RELEASE_NS, '-o', 'jsonpath={.spec.holderIdentity}'], on())).stdout).toBe(NODE);
      expect((await execa('ip', ['netns', 'exec', NETNS, 'iptables-save', '-t', 'nat'])).stdout).toContain('--to-destination 198.51.100.21:8080');
      const pool = (await kubectl(['get', 'addresspool', 'uplink', '-o', 'jsonpath={.status.addresses[*].owner}'], on())).stdout;
      await waitFor(async () => (await kubectl(['get', 'addresspool', 'uplink', '-o', 'jsonpath={.status.addresses[*].owner}'], on())).stdout === NODE, { timeoutMs: 30_000, what: `AddressPool status (was ${JSON.stringify(pool)})` });
      await waitFor(async () => (await kubectl(['get', 'events', '-n', APP_NS, '-o', 'jsonpath={.items[*].reason}'], on())).stdout.includes('MappingAccepted'), { timeoutMs: 30_000, what: 'a MappingAccepted Event' });
      // The Node's labels were read with the token (no --labels in the chart's default args).
      expect((await kubectl(['get', 'lease', `smartnat-agent-${NODE}`, '-n', RELEASE_NS, '-o', 'jsonpath={.metadata.labels}'], on())).stdout).toContain('"smartnat.aureacentral.com/pool":"blue"');
    } finally {
      child.kill('SIGTERM');
    }
    const result = await child;
    expect(`${result.exitCode} ${result.signal ?? ''}`).toBe('0 ');
    expect(log).not.toMatch(/forbidden|\b403\b|cannot (get|list|watch|create|patch|delete)/i);
  }, 240_000);
});
