// Owns: removing the original SmartNat's finalizer (mapping.finalizers.aureacentral.com) from a
// Mapping being deleted, so manifests written for the original can be deleted (DESIGN 2.1).
// Guarantees: one JSON patch whose `test` ops check the uid and the finalizer at the index read,
// so a recreated object or a finalizer list changed meanwhile is never edited blindly (the server
// answers 422 and nothing changes). Does not decide when to remove it (src/plan/leader-plan.ts).
import { ApiException, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from './k8s.js';
import { GROUP, LEGACY_FINALIZER, VERSION } from '../api/types.js';
import type { FinalizerRemoval } from '../plan/leader-input.js';

/** removed; gone = the object no longer exists; stale = uid or list changed since it was read. */
export type FinalizerOutcome = 'removed' | 'gone' | 'stale';

export function legacyFinalizerPatch(removal: FinalizerRemoval): object[] {
  const at = `/metadata/finalizers/${removal.index}`;
  return [
    { op: 'test', path: '/metadata/uid', value: removal.uid },
    { op: 'test', path: at, value: LEGACY_FINALIZER },
    { op: 'remove', path: at },
  ];
}

export async function removeLegacyFinalizer(kc: KubeConfig, removal: FinalizerRemoval): Promise<FinalizerOutcome> {
  const api = kc.makeApiClient(CustomObjectsApi);
  try {
    await api.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, plural: 'mappings', namespace: removal.ref.namespace, name: removal.ref.name, body: legacyFinalizerPatch(removal) },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
    return 'removed';
  } catch (err: unknown) {
    if (err instanceof ApiException && err.code === 404) return 'gone';
    // A failed `test` op is 422 (or 409 on some versions): re-read on the next pass.
    if (err instanceof ApiException && (err.code === 422 || err.code === 409)) return 'stale';
    throw new Error(`removing ${LEGACY_FINALIZER} from Mapping ${removal.ref.namespace}/${removal.ref.name} failed`, { cause: err });
  }
}
