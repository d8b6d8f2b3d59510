// The build bundles the client-node values the product uses (src/cluster/k8s.ts,
// scripts/bundle-client-node.mjs). Checked on a fresh build of our own: no emitted module loads
// @kubernetes/client-node at run time (statically, and with a module hook that fails any
// resolution of the package while the CLI and the cluster modules load), and the bundled client
// still does the lease protocol's requests against the layer's real API server (create, read with
// its MicroTimes, a stale replace refused as a conflict, a missing lease read as absent).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { createTestNamespace, testKubeconfigPath } from '../support/kube.js';

const ROOT = new URL('../..', import.meta.url).pathname;
let dir = '';

function jsFiles(d: string): string[] {
  return readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? jsFiles(join(d, e.name)) : e.name.endsWith('.js') ? [join(d, e.name)] : []));
}

beforeAll(async () => {
  // Inside node_modules/.cache so the build's bare imports (pino, yaml, ...) resolve as from dist/.
  mkdirSync(join(ROOT, 'node_modules', '.cache'), { recursive: true });
  dir = mkdtempSync(join(ROOT, 'node_modules', '.cache', 'smartnat-bundle-check-'));
  await execa('npx', ['tsc', '-p', 'tsconfig.build.json', '--outDir', dir], { cwd: ROOT });
  await execa(process.execPath, ['scripts/bundle-client-node.mjs', dir], { cwd: ROOT });
}, 180_000);

afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

describe('the built product loads client-node from its bundle only', () => {
  it('no emitted module imports the package; cluster/k8s.js is the bundle', () => {
    const files = jsFiles(dir);
    expect(files.length).toBeGreaterThan(50);
    const importing = files.filter((f) => /(?:\bfrom\s*|\bimport\s*\(\s*)['"]@kubernetes\/client-node['"]/.test(readFileSync(f, 'utf8'))).map((f) => f.slice(dir.length + 1));
    expect(importing).toEqual([]);
    expect(readFileSync(join(dir, 'cluster', 'k8s.js'), 'utf8').startsWith('// smartnat: bundled @kubernetes/client-node')).toBe(true);
  });

  it('loads the CLI and speaks the lease protocol to a real API server without resolving the package', async () => {
    const namespace = await createTestNamespace('bundle-');
    const hook = `export async function resolve(specifier, context, next) {
  if (specifier === '@kubernetes/client-node' || specifier.startsWith('@kubernetes/client-node/')) throw new Error('resolved ' + specifier + ' from ' + context.parentURL);
  return next(specifier, context);
}`;
    const script = join(dir, 'bundle-check.mjs');
    writeFileSync(script, `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));
await import('./cli/index.js');
const { loadKubeConfig } = await import('./cluster/kubeconfig.js');
const { KubeLeaseStore } = await import('./cluster/lease-store.js');
const store = new KubeLeaseStore(loadKubeConfig(process.argv[2], {}), process.argv[3]);
const when = new Date('2026-11-26T12:00:00.123Z');
const created = await store.create({ name: 'bundle-check', resourceVersion: '', holder: 'a1', leaseDurationSeconds: 2, leaseTransitions: 0, acquireTime: when, renewTime: when, labels: { role: 'check' }, annotations: {} });
const read = await store.get('bundle-check');
const stale = await store.replace({ ...read, holder: 'a2', resourceVersion: '1' });
const missing = await store.get('no-such-lease');
console.log(JSON.stringify({ created: created.outcome, holder: read?.holder, renewTime: read?.renewTime?.toISOString(), stale: stale.outcome, missing: missing === undefined }));
`);
    const r = await execa(process.execPath, [script, testKubeconfigPath(), namespace], { cwd: dir, reject: false });
    expect(r.stderr).not.toContain('resolved @kubernetes/client-node');
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}')).toEqual({ created: 'written', holder: 'a1', renewTime: '2026-11-26T12:00:00.123Z', stale: 'conflict', missing: true });
  }, 60_000);
});
