// Owns: the integration layer's one shared control plane (jest globalSetup, run in jest's parent).
// Guarantees: before any test worker starts, SMARTNAT_TEST_KUBECONFIG names an admin kubeconfig of
// a ready etcd + kube-apiserver and SMARTNAT_TESTENV_BIN the binaries' directory; workers inherit
// both. Does not: isolate tests from each other (kube.ts gives each its own namespace).
import { tsImport } from 'tsx/esm/api';
import type { ControlPlane } from './control-plane.js';

/** Where globalTeardown finds the plane (globals set in globalSetup are visible there). */
export const SHARED_PLANE_KEY = '__smartnatSharedControlPlane';

export default async function globalSetup(): Promise<void> {
  // jest loads this file through Node's own loader, which cannot resolve `./x.js` to `./x.ts`:
  // tsx's scoped import can.
  const { startControlPlane } = (await tsImport('./control-plane.js', import.meta.url)) as typeof import('./control-plane.js');
  const started = performance.now();
  const plane: ControlPlane = await startControlPlane();
  (globalThis as Record<string, unknown>)[SHARED_PLANE_KEY] = plane;
  process.env.SMARTNAT_TEST_KUBECONFIG = plane.kubeconfigPath;
  process.env.SMARTNAT_TESTENV_BIN = plane.binDir;
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  process.stderr.write(`\nintegration: control plane ready at ${plane.server} in ${seconds} s (${plane.dir})\n`);
}
