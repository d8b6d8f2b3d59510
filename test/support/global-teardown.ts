// Owns: stopping the integration layer's shared control plane (jest globalTeardown).
// Guarantees: its processes are gone and its temp dir removed when this resolves. Does not: touch
// control planes that tests started themselves (those stop on their own or via their guard).
import type { ControlPlane } from './control-plane.js';

// Relative value imports do not resolve here (see global-setup.ts): the key is repeated, not imported.
const SHARED_PLANE_KEY = '__smartnatSharedControlPlane';

export default async function globalTeardown(): Promise<void> {
  const globals = globalThis as Record<string, unknown>;
  const plane = globals[SHARED_PLANE_KEY] as ControlPlane | undefined;
  delete globals[SHARED_PLANE_KEY];
  await plane?.stop();
}
