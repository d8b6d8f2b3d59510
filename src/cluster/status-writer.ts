// Owns: writing the leader-owned status of Mappings (invalid, serviceVIP, observedGeneration,
// conditions, claims) and AddressPools (addresses, conditions), and the legacy finalizer removal.
// Guarantees: server-side apply with field manager `smartnat-leader`, so owners' configuredAddresses
// entries (their own managers) are never touched and fields the leader stops sending are removed;
// the uid is sent, so a Mapping recreated under the same name is not written with stale status.
// Does not decide whether to write: the planner lists only statuses that differ from what is stored.
import { ApiException, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { API_VERSION, GROUP, VERSION, type AddressPoolStatus, type Condition } from '../api/types.js';
import type { FinalizerRemoval, LeaderMappingStatus, MappingWrite, PoolWrite } from '../plan/leader-input.js';
import { removeLegacyFinalizer, type FinalizerOutcome } from './finalizers.js';

export const LEADER_FIELD_MANAGER = 'smartnat-leader';

/** written; gone = the object was deleted (or recreated with another uid) meanwhile. */
export type StatusOutcome = 'written' | 'gone';

/** The port the leader's duties write through. */
export interface StatusWriter {
  writeMappingStatus(write: MappingWrite): Promise<StatusOutcome>;
  writePoolStatus(write: PoolWrite): Promise<StatusOutcome>;
  removeLegacyFinalizer(removal: FinalizerRemoval): Promise<FinalizerOutcome>;
}

function conditionBody(c: Condition): Record<string, unknown> {
  return {
    type: c.type,
    status: c.status,
    ...(c.observedGeneration === undefined ? {} : { observedGeneration: c.observedGeneration }),
    lastTransitionTime: c.lastTransitionTime,
    reason: c.reason,
    message: c.message,
  };
}

/** The apply configuration of a Mapping's leader-owned status. */
export function mappingStatusApply(write: MappingWrite): Record<string, unknown> {
  const s: LeaderMappingStatus = write.status;
  return {
    apiVersion: API_VERSION,
    kind: 'Mapping',
    metadata: { name: write.ref.name, namespace: write.ref.namespace, ...(write.uid === '' ? {} : { uid: write.uid }) },
    status: {
      invalid: s.invalid,
      ...(s.serviceVIP === undefined ? {} : { serviceVIP: s.serviceVIP }),
      observedGeneration: s.observedGeneration,
      conditions: s.conditions.map(conditionBody),
      ...(s.claims.length === 0 ? {} : { claims: [...s.claims] }),
    },
  };
}

export function poolStatusApply(write: PoolWrite): Record<string, unknown> {
  const s: AddressPoolStatus = write.status;
  return {
    apiVersion: API_VERSION,
    kind: 'AddressPool',
    metadata: { name: write.name },
    status: {
      ...(s.observedGeneration === undefined ? {} : { observedGeneration: s.observedGeneration }),
      addresses: s.addresses.map((a) => ({
        address: a.address,
        owner: a.owner,
        ...(a.vrid === undefined ? {} : { vrid: a.vrid }),
        ...(a.lastTransitionTime === undefined ? {} : { lastTransitionTime: a.lastTransitionTime }),
        transitions: a.transitions,
      })),
      conditions: s.conditions.map(conditionBody),
    },
  };
}

export class KubeStatusWriter implements StatusWriter {
  private readonly api: CustomObjectsApi;

  constructor(private readonly kc: KubeConfig) {
    this.api = kc.makeApiClient(CustomObjectsApi);
  }

  async writeMappingStatus(write: MappingWrite): Promise<StatusOutcome> {
    const what = `Mapping ${write.ref.namespace}/${write.ref.name}`;
    return this.apply(what, () =>
      this.api.patchNamespacedCustomObjectStatus(
        { group: GROUP, version: VERSION, plural: 'mappings', namespace: write.ref.namespace, name: write.ref.name, body: mappingStatusApply(write), fieldManager: LEADER_FIELD_MANAGER, force: true },
        setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
      ),
    );
  }

  async writePoolStatus(write: PoolWrite): Promise<StatusOutcome> {
    return this.apply(`AddressPool ${write.name}`, () =>
      this.api.patchClusterCustomObjectStatus(
        { group: GROUP, version: VERSION, plural: 'addresspools', name: write.name, body: poolStatusApply(write), fieldManager: LEADER_FIELD_MANAGER, force: true },
        setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
      ),
    );
  }

  async removeLegacyFinalizer(removal: FinalizerRemoval): Promise<FinalizerOutcome> {
    return removeLegacyFinalizer(this.kc, removal);
  }

  private async apply(what: string, call: () => Promise<unknown>): Promise<StatusOutcome> {
    try {
      await call();
      return 'written';
    } catch (err: unknown) {
      // 404: deleted meanwhile. 409 on an apply with force: the uid no longer matches (recreated).
      if (err instanceof ApiException && (err.code === 404 || err.code === 409)) return 'gone';
      throw new Error(`status apply of ${what} failed`, { cause: err });
    }
  }
}
