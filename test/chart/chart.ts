// Test helpers for charts/smartnat: render it with the real helm (values given as an object and
// written to a temp file, never pasted into --set strings), parse the YAML stream into objects,
// and find objects by kind and name. Requires the integration layer (helm from test/support/kube.ts).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';
import { helm, type ToolResult } from '../support/kube.js';

export const CHART_DIR = fileURLToPath(new URL('../../charts/smartnat/', import.meta.url));
const VERSIONS_ENV = fileURLToPath(new URL('../testenv/versions.env', import.meta.url));

/** The Kubernetes version the test binaries are built at (helm template's --kube-version). */
export function testKubernetesVersion(): string {
  const line = readFileSync(VERSIONS_ENV, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('KUBERNETES_VERSION='));
  if (line === undefined) throw new Error(`${VERSIONS_ENV} has no KUBERNETES_VERSION`);
  return line.slice('KUBERNETES_VERSION='.length).trim().replace(/^v/, '');
}

export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Record<string, string> };
  readonly [key: string]: unknown;
}

function isKubeObject(v: unknown): v is KubeObject {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  const meta = o['metadata'];
  return typeof o['apiVersion'] === 'string' && typeof o['kind'] === 'string' && typeof meta === 'object' && meta !== null && typeof (meta as Record<string, unknown>)['name'] === 'string';
}

/** Parses a YAML stream (helm template / get manifest); empty documents are dropped, anything else not an object throws. */
export function parseManifests(text: string): KubeObject[] {
  const out: KubeObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`YAML error in rendered chart: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    if (!isKubeObject(value)) throw new Error(`rendered document is not a Kubernetes object: ${JSON.stringify(value).slice(0, 300)}`);
    out.push(value);
  }
  return out;
}

/** Writes `values` to a temp YAML file, runs `fn(path)`, removes the file. */
export async function withValuesFile<T>(values: Record<string, unknown>, fn: (path: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'smartnat-values-'));
  const path = join(dir, 'values.yaml');
  // YAML 1.1 on output: helm reads 1.1, where a bare `yes` or `on` is a boolean; quoting them
  // keeps every string a string.
  writeFileSync(path, stringify(values, { version: '1.1' }));
  try {
    return await fn(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface RenderOptions {
  readonly release?: string;
  readonly namespace?: string;
  readonly kubeVersion?: string;
}

/** `helm template` with `values`; resolves with helm's result (allowFailure: the caller checks). */
export async function template(values: Record<string, unknown>, opts: RenderOptions = {}): Promise<ToolResult> {
  return withValuesFile(values, async (file) =>
    helm(
      ['template', opts.release ?? 'rel', CHART_DIR, '--namespace', opts.namespace ?? 'smartnat', '--kube-version', opts.kubeVersion ?? testKubernetesVersion(), '-f', file],
      { allowFailure: true },
    ),
  );
}

/** Renders and parses; a failing render throws with helm's stderr. */
export async function render(values: Record<string, unknown> = {}, opts: RenderOptions = {}): Promise<KubeObject[]> {
  const r = await template(values, opts);
  if (r.exitCode !== 0) throw new Error(`helm template failed (exit ${r.exitCode}):\n${r.stderr}`);
  return parseManifests(r.stdout);
}

export function findObject(objects: readonly KubeObject[], kind: string, name?: string): KubeObject {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) {
    throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length} among ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  }
  return found[0]!;
}
