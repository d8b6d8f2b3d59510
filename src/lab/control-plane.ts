// Owns: one etcd + kube-apiserver pair on loopback for the lab (and the pieces the test harness
// shares: TLS material, token file, API server flags, kubeconfig text, readiness GET, free ports).
// Guarantees: lab processes run detached (start-stop-daemon) with pid + start time recorded, so a
// later `lab down` from another process stops exactly them. Does not: build binaries, run
// controllers, or remove its directory (the lab owns that).
import { readFile, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { CommandRunner } from '../dataplane/command-runner.js';
import { isRunning, startBackground, stopBackground, type BackgroundProcess } from './processes.js';

/** Allocation only: nothing ever connects to a ClusterIP here (STYLE.md, addresses in tests). */
export const SERVICE_CLUSTER_IP_RANGE = '198.19.0.0/24';

export interface ControlPlanePorts {
  readonly etcdClient: number;
  readonly etcdPeer: number;
  readonly apiServer: number;
}

export interface TokenUser {
  readonly token: string;
  readonly name: string;
  readonly groups: readonly string[];
}

export interface CredentialOptions {
  /** Users of the static token file; the first is the admin the kubeconfig uses. */
  readonly users: readonly TokenUser[];
  /** Extra IP subject alternative names of the serving certificate (127.0.0.1 is always there). */
  readonly extraIps?: readonly string[];
}

function opensslConfig(extraIps: readonly string[]): string {
  const sans = ['IP:127.0.0.1', 'DNS:localhost', ...extraIps.map((ip) => `IP:${ip}`)].join(',');
  return `[req]
distinguished_name = dn
prompt = no
[dn]
CN = smartnat-testenv
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = ${sans}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;
}

/** CA (ca.crt), serving certificate, service-account key and tokens.csv, all written into dir. */
export async function writeCredentials(runner: CommandRunner, dir: string, o: CredentialOptions): Promise<void> {
  for (const ip of o.extraIps ?? []) if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) throw new Error(`bad certificate IP ${ip}`);
  await writeFile(join(dir, 'openssl.cnf'), opensslConfig(o.extraIps ?? []));
  const f = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): Promise<unknown> => runner.run('openssl', args);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl('req', '-x509', '-config', f('openssl.cnf'), '-extensions', 'ca', ...ec, '-days', '30',
    '-subj', '/CN=smartnat-testenv-ca', '-keyout', f('ca.key'), '-out', f('ca.crt'));
  await openssl('req', '-new', '-config', f('openssl.cnf'), ...ec, '-subj', '/CN=localhost',
    '-keyout', f('apiserver.key'), '-out', f('apiserver.csr'));
  await openssl('x509', '-req', '-in', f('apiserver.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-set_serial', '2',
    '-days', '30', '-extfile', f('openssl.cnf'), '-extensions', 'server', '-out', f('apiserver.crt'));
  await openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', f('sa.key'));
  const lines = o.users.map((u) => `${u.token},${u.name},${u.name},"${u.groups.join(',')}"\n`);
  await writeFile(join(dir, 'tokens.csv'), lines.join(''), { mode: 0o600 });
}

/** A kubeconfig for one token user against one server. */
export function renderKubeconfig(o: { server: string; caPem: Buffer; token: string; user: string; cluster?: string; namespace?: string }): string {
  const cluster = o.cluster ?? 'smartnat-testenv';
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: cluster, cluster: { server: o.server, 'certificate-authority-data': o.caPem.toString('base64') } }],
    users: [{ name: o.user, user: { token: o.token } }],
    contexts: [{ name: cluster, context: { cluster, user: o.user, namespace: o.namespace ?? 'default' } }],
    'current-context': cluster,
  }, { lineWidth: 0 });
}

export function etcdArgs(dir: string, ports: ControlPlanePorts): string[] {
  const client = `http://127.0.0.1:${ports.etcdClient}`;
  const peer = `http://127.0.0.1:${ports.etcdPeer}`;
  return [
    '--name=default', `--data-dir=${join(dir, 'etcd')}`,
    `--listen-client-urls=${client}`, `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`, `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=default=${peer}`, '--unsafe-no-fsync=true', '--log-level=warn',
  ];
}

export function apiServerArgs(dir: string, ports: ControlPlanePorts, extra: readonly string[] = []): string[] {
  return [
    `--etcd-servers=http://127.0.0.1:${ports.etcdClient}`,
    '--bind-address=127.0.0.1', `--secure-port=${ports.apiServer}`,
    '--advertise-address=127.0.0.1', '--endpoint-reconciler-type=none',
    `--tls-cert-file=${join(dir, 'apiserver.crt')}`, `--tls-private-key-file=${join(dir, 'apiserver.key')}`,
    `--cert-dir=${join(dir, 'pki')}`,
    `--token-auth-file=${join(dir, 'tokens.csv')}`,
    '--authorization-mode=RBAC',
    `--service-account-issuer=https://127.0.0.1:${ports.apiServer}`,
    `--service-account-key-file=${join(dir, 'sa.key')}`,
    `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
    `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
    '--allow-privileged=true',
    '--disable-admission-plugins=ServiceAccount',
    '--profiling=false', '--v=1',
    ...extra,
  ];
}

/** One GET without connection reuse (nothing may keep the event loop alive). */
export function httpGet(url: string, auth: { ca?: Buffer; token?: string } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers = auth.token === undefined ? {} : { Authorization: `Bearer ${auth.token}` };
    const options = { headers, timeout: 5_000, agent: false as const, ...(auth.ca ? { ca: auth.ca } : {}) };
    const request = url.startsWith('https:') ? httpsRequest : httpRequest;
    const req = request(url, options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** n distinct free loopback ports: all are held open together, so none is handed out twice. */
export async function freePorts(n: number): Promise<number[]> {
  const servers = Array.from({ length: n }, () => createServer());
  try {
    return await Promise.all(servers.map((server) => new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
    })));
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}

/** Readiness probes of the two processes. */
export async function etcdHealthy(ports: ControlPlanePorts): Promise<boolean> {
  try {
    const res = await httpGet(`http://127.0.0.1:${ports.etcdClient}/health`);
    return res.status === 200 && (JSON.parse(res.body) as { health?: unknown }).health === 'true';
  } catch {
    return false;
  }
}

export async function apiServerReady(server: string, ca: Buffer, token: string): Promise<boolean> {
  try {
    if ((await httpGet(`${server}/readyz`, { ca, token })).status !== 200) return false;
    return (await httpGet(`${server}/api/v1/namespaces/default`, { ca, token })).status === 200;
  } catch {
    return false;
  }
}

/** What the lab records about its control plane (JSON in the lab directory). */
export interface LabControlPlane {
  readonly dir: string;
  readonly ports: ControlPlanePorts;
  readonly server: string;
  readonly kubeconfigPath: string;
  readonly adminToken: string;
  readonly etcd: BackgroundProcess;
  readonly apiServer: BackgroundProcess;
}

export interface StartLabControlPlaneOptions {
  /** Holds certs, tokens, etcd data and logs; must exist. */
  readonly dir: string;
  readonly binDir: string;
  /** Host runner (openssl, start-stop-daemon). */
  readonly runner: CommandRunner;
  readonly ports: ControlPlanePorts;
  readonly adminToken: string;
  /** Further token users (e.g. one per agent). */
  readonly users?: readonly TokenUser[];
  readonly extraIps?: readonly string[];
  readonly startTimeoutMs?: number;
}

const LAB_ADMIN = 'smartnat-lab-admin';

/** Writes credentials (once: kept when ca.crt exists) and starts etcd, then the API server, each detached. */
export async function startLabControlPlane(o: StartLabControlPlaneOptions): Promise<LabControlPlane> {
  const { dir, runner, ports } = o;
  const timeoutMs = o.startTimeoutMs ?? 120_000;
  const hasCa = await readFile(join(dir, 'ca.crt')).then(() => true, () => false);
  if (!hasCa) {
    await writeCredentials(runner, dir, {
      users: [{ token: o.adminToken, name: LAB_ADMIN, groups: ['system:masters'] }, ...(o.users ?? [])],
      extraIps: o.extraIps ?? [],
    });
  }
  const server = `https://127.0.0.1:${ports.apiServer}`;
  const ca = await readFile(join(dir, 'ca.crt'));
  const kubeconfigPath = join(dir, 'kubeconfig');
  await writeFile(kubeconfigPath, renderKubeconfig({ server, caPem: ca, token: o.adminToken, user: LAB_ADMIN, cluster: 'smartnat-lab' }), { mode: 0o600 });
  const etcd = await startBackground(runner, '', {
    label: 'etcd', cmd: join(o.binDir, 'etcd'), args: etcdArgs(dir, ports),
    pidFile: join(dir, 'etcd.pid'), logFile: join(dir, 'etcd.log'), readyTimeoutMs: timeoutMs,
  });
  await waitAlive(etcd, 'etcd /health', timeoutMs, () => etcdHealthy(ports));
  const apiServer = await startBackground(runner, '', {
    label: 'kube-apiserver', cmd: join(o.binDir, 'kube-apiserver'), args: apiServerArgs(dir, ports),
    pidFile: join(dir, 'kube-apiserver.pid'), logFile: join(dir, 'kube-apiserver.log'), readyTimeoutMs: timeoutMs,
  });
  await waitAlive(apiServer, 'kube-apiserver /readyz', timeoutMs, () => apiServerReady(server, ca, o.adminToken));
  return { dir, ports, server, kubeconfigPath, adminToken: o.adminToken, etcd, apiServer };
}

/** Stops the API server, then etcd. Idempotent. */
export async function stopLabControlPlane(cp: Pick<LabControlPlane, 'etcd' | 'apiServer'>): Promise<void> {
  await stopBackground(cp.apiServer, 15_000);
  await stopBackground(cp.etcd, 15_000);
}

async function waitAlive(p: BackgroundProcess, what: string, timeoutMs: number, ready: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (!(await isRunning(p))) throw new Error(`${what}: ${p.label} (pid ${p.pid}) exited; see ${p.logFile}:\n${await tail(p.logFile)}`);
    if (await ready()) return;
    if (performance.now() > deadline) {
      await stopBackground(p);
      throw new Error(`${what}: not ready after ${timeoutMs} ms; see ${p.logFile}:\n${await tail(p.logFile)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function tail(file: string): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '(no log)');
  return text.split('\n').slice(-30).join('\n');
}
