// `smartnat agent` end to end, as a real process: its own control plane, a network namespace with
// veth uplink and internal interfaces, the real iptables/ipset inside it (--netns), keepalived's
// files only (--no-keepalived). A Mapping goes in; the agent, as leader, creates the address lease,
// acquires it as owner, programs the kernel and reports status.configuredAddresses; /healthz,
// /readyz and /metrics answer; SIGTERM ends it with exit 0.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { closeSync, constants as fsConstants, openSync, statSync, writeSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, DiscoveryV1Api, type KubeConfig } from '@kubernetes/client-node';
import { execa, type ResultPromise } from 'execa';
import { startControlPlane, type ControlPlane } from '../../test/support/control-plane.js';
import { createTestNamespace, kubectl, loadTestKubeConfig, waitFor } from '../../test/support/kube.js';
import { CRD_DIR, CRD_NAMES } from '../../test/fixtures/crd/server.js';
import { GROUP, VERSION } from '../api/types.js';
import { createAgentNamespace, deleteAgentNamespace } from '../agent/testing/agent-netns.js';

const VIP = '203.0.113.10';
const NETNS = `sncli-${process.pid}`;
const ROOT = new URL('../../', import.meta.url).pathname;

let plane: ControlPlane | undefined;
let kc: KubeConfig;
let stateDir = '';
const pool = `sncli-${process.pid}`;

async function sh(args: string[]): Promise<string> {
  return (await execa(args[0] ?? '', args.slice(1))).stdout;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const addr = srv.address();
  await new Promise<void>((r) => srv.close(() => r()));
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}

async function get(url: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url);
  return { status: res.status, text: await res.text() };
}

beforeAll(async () => {
  plane = await startControlPlane();
  const kubeconfig = plane.kubeconfigPath;
  await kubectl(['apply', '-f', CRD_DIR], { kubeconfig });
  await kubectl(['wait', '--for=condition=Established', '--timeout=60s', ...CRD_NAMES.map((n) => `crd/${n}`)], { kubeconfig });
  kc = loadTestKubeConfig(kubeconfig);
  await createAgentNamespace(NETNS);
  stateDir = await mkdtemp(join(tmpdir(), 'sncli-'));
}, 180_000);

afterAll(async () => {
  await deleteAgentNamespace(NETNS);
  if (stateDir !== '') await rm(stateDir, { recursive: true, force: true });
  await plane?.stop();
}, 60_000);

describe('smartnat agent (process)', () => {
  it('becomes leader and owner of a Mapping\'s address, programs it, reports it, and exits 0 on SIGTERM', async () => {
    if (!plane) throw new Error('no control plane');
    const leaseNs = await createTestNamespace('sncli-leases-', kc);
    const appNs = await createTestNamespace('sncli-app-', kc);
    const custom = kc.makeApiClient(CustomObjectsApi);
    await custom.createClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: 'addresspools',
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'AddressPool', metadata: { name: pool }, spec: { addresses: ['203.0.113.10-203.0.113.20'] } },
    });
    await kc.makeApiClient(CoreV1Api).createNamespacedService({ namespace: appNs, body: { metadata: { name: 'echo' }, spec: { ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } } });
    await kc.makeApiClient(DiscoveryV1Api).createNamespacedEndpointSlice({
      namespace: appNs,
      body: {
        metadata: { name: 'echo-1', labels: { 'kubernetes.io/service-name': 'echo' } },
        addressType: 'IPv4',
        ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
        endpoints: [{ addresses: ['198.51.100.21'], conditions: { ready: true } }],
      },
    });
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: 'mappings',
      namespace: appNs,
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'Mapping', metadata: { name: 'echo' }, spec: { addresses: [VIP], serviceName: 'echo', ports: [{ port: 8080, protocol: 'tcp', servicePort: 80 }] } },
    });
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const child: ResultPromise = execa(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/main.ts',
        'agent',
        '--name=cli-agent',
        `--namespace=${leaseNs}`,
        `--kubeconfig=${plane.kubeconfigPath}`,
        `--netns=${NETNS}`,
        '--interface=ext0=external',
        '--interface=int0=internal',
        '--labels=role=edge',
        `--state-dir=${stateDir}`,
        '--no-keepalived',
        `--metrics-address=127.0.0.1:${port}`,
        '--lease-duration=3s',
        '--renew-deadline=2s',
        '--retry-period=500ms',
        '--handoff-grace=200ms',
        '--log-level=info',
      ],
      { cwd: ROOT, reject: false, all: true },
    );
    try {
      await waitFor(async () => (await get(`${base}/readyz`)).status === 200, { timeoutMs: 60_000, what: '/readyz 200' });
      expect((await get(`${base}/healthz`)).status).toBe(200);
      const entry = await waitFor(
        async () => {
          const m = (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: 'mappings', namespace: appNs, name: 'echo' })) as {
            status?: { configuredAddresses?: Record<string, { owner?: string; endpoints?: string[] }> };
          };
          return m.status?.configuredAddresses?.[VIP];
        },
        { timeoutMs: 60_000, what: 'the agent reports the address as configured' },
      );
      expect(entry).toMatchObject({ owner: 'cli-agent', endpoints: ['198.51.100.21:8080/tcp'] });
      // The kernel of the namespace really has it: owned set and a DNAT to the endpoint.
      expect(await sh(['ip', 'netns', 'exec', NETNS, 'ipset', 'list', 'smartnat-owned'])).toContain(VIP);
      expect(await sh(['ip', 'netns', 'exec', NETNS, 'iptables-save', '-t', 'nat'])).toContain('--to-destination 198.51.100.21:8080');
      // keepalived's files for the watchdog: the holder's track files and a config naming the address.
      expect(await readFile(join(stateDir, 'keepalived.conf'), 'utf8')).toContain(`${VIP}/32 dev ext0`);
      expect((await readFile(join(stateDir, 'track', 'SN_203_0_113_10.eligible'), 'utf8')).trim()).toBe('0');
      expect((await readFile(join(stateDir, 'track', 'SN_203_0_113_10.priority'), 'utf8')).trim()).toBe('150');
      const metrics = (await get(`${base}/metrics`)).text;
      expect(metrics).toMatch(/^smartnat_owned_addresses 1$/m);
      expect(metrics).toMatch(/^smartnat_lease_transitions_total\{reason="preferredFree"\} 1$/m);
      expect(metrics).toContain('smartnat_event_loop_lag_seconds');
      // The instrumented ports and the data-plane decorator are wired: lease requests timed, rule sizes set,
      // the Mapping's connection and byte counters read from the namespace's rules and sets (no traffic: 0).
      expect(metrics).toMatch(/^smartnat_api_request_duration_seconds_count\{resource="leases",verb="create"\} [1-9]/m);
      expect(metrics).toMatch(/^smartnat_dataplane_rules\{table="nat"\} [1-9]/m);
      expect(metrics).toMatch(/^smartnat_dataplane_set_entries\{set="owned"\} 1$/m);
      expect(metrics).toContain(`smartnat_mapping_connections_total{namespace="${appNs}",mapping="echo"} 0`);
      expect(metrics).toContain(`smartnat_mapping_bytes_total{namespace="${appNs}",mapping="echo",verdict="denied"} 0`);
      expect(metrics).toMatch(/^smartnat_dataplane_set_entries\{set="count"\} [1-9]/m);
      // --no-keepalived (the chart): the agent reads the notify FIFO in the shared state dir. A line
      // written as the keepalived container's keepalived would write it reaches the gauge.
      const fifo = join(stateDir, 'keepalived.fifo');
      expect(statSync(fifo).isFIFO()).toBe(true);
      const fd = openSync(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
      writeSync(fd, 'INSTANCE "SN_203_0_113_10" MASTER 250\n');
      closeSync(fd);
      await waitFor(async () => /^smartnat_keepalived_state\{address="203\.0\.113\.10",state="MASTER"\} 1$/m.test((await get(`${base}/metrics`)).text), { timeoutMs: 10_000, what: 'keepalived state MASTER in /metrics' });
      const lease = (await kubectl(['get', 'lease', '-n', leaseNs, 'smartnat-agent-cli-agent', '-o', 'json'], { kubeconfig: plane.kubeconfigPath })).stdout;
      const annotations = (JSON.parse(lease) as { metadata: { annotations: Record<string, string>; labels: Record<string, string> } }).metadata;
      expect(annotations.labels.role).toBe('edge');
      expect(JSON.parse(annotations.annotations['smartnat.aureacentral.com/interfaces'] ?? '[]')).toEqual([
        expect.objectContaining({ name: 'ext0', role: 'external', addresses: ['203.0.113.2/24'] }),
        expect.objectContaining({ name: 'int0', role: 'internal', addresses: ['198.51.100.2/24'] }),
      ]);
    } finally {
      child.kill('SIGTERM');
    }
    const result = await child;
    expect(`${result.exitCode} ${result.signal ?? ''}`).toBe('0 ');
    expect(String(result.all)).toContain('shutting down');
    await custom.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: 'addresspools', name: pool }).catch(() => undefined);
  }, 180_000);
});
