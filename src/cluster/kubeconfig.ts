// Loads the KubeConfig every command uses: an explicit file, else $KUBECONFIG, else the in-cluster
// ServiceAccount, else ~/.kube/config. The environment is passed in (main.ts is the only reader of
// process.env). Fails with a message naming what was tried; does not contact the API server.
// The KubeConfig it returns shares one HTTP(S) agent across requests (see shareAgent).
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { Agent as HttpAgent } from 'node:http';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from './k8s.js';

export class KubeconfigError extends Error {
  override readonly name = 'KubeconfigError';
}

const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export function loadKubeConfig(explicit: string | undefined, env: Readonly<Record<string, string | undefined>>): KubeConfig {
  const kc = new KubeConfig();
  const fromEnv = env.KUBECONFIG?.split(':').find((p) => p !== '');
  const tried: string[] = [];
  try {
    if (explicit) {
      tried.push(`--kubeconfig ${explicit}`);
      kc.loadFromFile(explicit);
    } else if (fromEnv) {
      tried.push(`KUBECONFIG=${fromEnv}`);
      kc.loadFromFile(fromEnv);
    } else if (env.KUBERNETES_SERVICE_HOST && existsSync(IN_CLUSTER_TOKEN)) {
      tried.push('in-cluster ServiceAccount');
      kc.loadFromCluster();
    } else {
      const home = join(env.HOME ?? homedir(), '.kube', 'config');
      tried.push(home);
      if (!existsSync(home)) throw new KubeconfigError(`no kubeconfig: pass --kubeconfig, set KUBECONFIG, or run in a cluster (tried ${home})`);
      kc.loadFromFile(home);
    }
  } catch (err: unknown) {
    if (err instanceof KubeconfigError) throw err;
    throw new KubeconfigError(`cannot load kubeconfig (${tried.join(', ')}): ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (!kc.getCurrentCluster()) throw new KubeconfigError(`kubeconfig (${tried.join(', ')}) has no current cluster`);
  return shareAgent(kc);
}

type AgentFactory = (cluster: unknown, options: Record<string, unknown>) => HttpAgent;

/**
 * client-node 1.4 builds a new https.Agent for every request (KubeConfig.createAgent, called from
 * applySecurityAuthentication): a new TLS context — the CA and client certificate parsed again —
 * and no TLS session cache, so every request pays a full handshake and the allocations that go with
 * it (a CPU profile of a loaded agent showed ~5 % in it). This keeps the agent it built and returns
 * it again while the cluster, the TLS material and the verification options are the same (a
 * rotated client certificate gets a new agent). Connections are still not kept alive (the agent is
 * built with client-node's own options): each request opens its own connection, so a dead pooled
 * socket can never hold a lease renewal; what is shared is the TLS context and session cache
 * (resumed handshakes). Overrides a private method: `kubeconfig.test.ts` fails if the library
 * stops calling it.
 */
export function shareAgent(kc: KubeConfig): KubeConfig {
  const target = kc as unknown as { createAgent?: AgentFactory };
  const original = target.createAgent;
  if (typeof original !== 'function') throw new KubeconfigError('@kubernetes/client-node has no KubeConfig.createAgent: the shared-agent patch needs updating');
  let kept: { key: string; agent: HttpAgent } | undefined;
  target.createAgent = (cluster, options) => {
    const key = agentKey(cluster, options);
    if (kept?.key !== key) kept = { key, agent: original.call(kc, cluster, options) };
    return kept.agent;
  };
  return kc;
}

function agentKey(cluster: unknown, options: Record<string, unknown>): string {
  const h = createHash('sha256');
  const c = (cluster ?? {}) as { server?: unknown; proxyUrl?: unknown };
  h.update(`${String(c.server)}\0${String(c.proxyUrl)}\0`);
  for (const name of Object.keys(options).sort()) {
    const v = options[name];
    if (v === undefined) continue;
    h.update(`${name}=`);
    h.update(Buffer.isBuffer(v) ? v : typeof v === 'string' ? v : JSON.stringify(v) ?? '');
    h.update('\0');
  }
  return h.digest('hex');
}
