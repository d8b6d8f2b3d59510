// What the chart's ServiceAccount may do, as tables: the rows the chart must add (nothing else),
// the parser of `kubectl auth can-i --list`, and a kubeconfig that authenticates with a
// TokenRequest token of that ServiceAccount.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { kubectl, loadTestKubeConfig, testKubeconfigPath } from '../support/kube.js';

/** One row of `kubectl auth can-i --list`: resource (with group), non-resource URLs, resource names, verbs. */
export type CanIRow = string;

function row(resource: string, verbs: string, urls = '[]', names = '[]'): CanIRow {
  return `${resource} | ${urls} | ${names} | ${verbs}`;
}

/**
 * The chart's own grant, row by row. In the release namespace it includes the leases; in any other
 * namespace it must be exactly the cluster-wide part.
 */
export function expectedChartRows(inReleaseNamespace: boolean, readNodes = true): CanIRow[] {
  const rows = [
    row('mappings.smartnat.aureacentral.com', '[get list watch patch]'),
    row('addresspools.smartnat.aureacentral.com', '[get list watch]'),
    row('mappings.smartnat.aureacentral.com/status', '[patch]'),
    row('addresspools.smartnat.aureacentral.com/status', '[patch]'),
    row('services', '[get list watch]'),
    row('endpointslices.discovery.k8s.io', '[get list watch]'),
    row('events', '[create]'),
  ];
  if (readNodes) rows.push(row('nodes', '[get]'));
  if (inReleaseNamespace) rows.push(row('leases.coordination.k8s.io', '[get list watch create patch delete]'));
  return rows.sort();
}

/** Parses the table by the header's column offsets; duplicate rows (the API server repeats some) are merged. */
export function parseCanIList(text: string): CanIRow[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const header = lines[0] ?? '';
  const cols = ['Non-Resource URLs', 'Resource Names', 'Verbs'].map((c) => header.indexOf(c));
  if (!header.startsWith('Resources') || cols.some((c) => c < 0)) throw new Error(`not a can-i --list table:\n${text}`);
  const [urlsAt, namesAt, verbsAt] = cols as [number, number, number];
  const rows = new Set<CanIRow>();
  for (const line of lines.slice(1)) {
    rows.add(row(line.slice(0, urlsAt).trim(), line.slice(verbsAt).trim(), line.slice(urlsAt, namesAt).trim(), line.slice(namesAt, verbsAt).trim()));
  }
  return [...rows].sort();
}

export async function canIList(user: string, namespace: string): Promise<CanIRow[]> {
  const r = await kubectl(['auth', 'can-i', '--list', `--as=${user}`, '-n', namespace]);
  return parseCanIList(r.stdout);
}

export function serviceAccountUser(namespace: string, name: string): string {
  return `system:serviceaccount:${namespace}:${name}`;
}

/**
 * Mints a token for the ServiceAccount (TokenRequest, `kubectl create token`) and writes a
 * kubeconfig with it beside `dir`; returns the path and the loaded KubeConfig.
 */
export async function serviceAccountKubeconfig(namespace: string, name: string, dir: string): Promise<{ path: string; kc: KubeConfig }> {
  const token = (await kubectl(['create', 'token', name, '-n', namespace, '--duration=1h'])).stdout.trim();
  if (token.split('.').length !== 3) throw new Error(`kubectl create token printed no JWT: ${token.slice(0, 80)}`);
  const admin = loadTestKubeConfig(testKubeconfigPath());
  const cluster = admin.getCurrentCluster();
  if (cluster === null) throw new Error('the test kubeconfig has no current cluster');
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ ...cluster, name: 'testenv' }],
    users: [{ name: name, token }],
    contexts: [{ name: 'sa', cluster: 'testenv', user: name, namespace }],
    currentContext: 'sa',
  });
  const path = join(dir, `${namespace}-${name}.kubeconfig`);
  writeFileSync(path, kc.exportConfig(), { mode: 0o600 });
  return { path, kc };
}
