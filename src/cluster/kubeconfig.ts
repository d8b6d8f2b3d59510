// Loads the KubeConfig every command uses: an explicit file, else $KUBECONFIG, else the in-cluster
// ServiceAccount, else ~/.kube/config. The environment is passed in (main.ts is the only reader of
// process.env). Fails with a message naming what was tried; does not contact the API server.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

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
  return kc;
}
