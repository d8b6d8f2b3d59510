// Owns: writing the leader-owned status of Mappings (invalid, serviceVIP, observedGeneration,
// conditions, claims) and AddressPools (addresses, conditions), and the legacy finalizer removal.
// Guarantees: a JSON merge patch of the leader's fields only (field manager `smartnat-leader`), so
// the owners' configuredAddresses entries are never touched and a field the leader drops is sent as
// null. Not guarded by uid: the status subresource ignores metadata in a patch (tried: a uid
// there neither fails nor sticks), so a Mapping deleted and recreated under the same name between
// read and write gets one stale status, which the next pass (it differs) rewrites.
// Does not decide whether to write: the planner lists only statuses that differ from what is stored.
import { ApiException, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from './k8s.js';
import { GROUP, VERSION, type AddressPoolStatus, type Condition } from '../api/types.js';
import type { FinalizerRemoval, LeaderMappingStatus, MappingWrite, PoolWrite } from '../plan/leader-input.js';
import { removeLegacyFinalizer, type FinalizerOutcome } from './finalizers.js';

export const LEADER_FIELD_MANAGER = 'smartnat-leader';

/** written; gone = the object was deleted meanwhile. */
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

/** The merge patch of a Mapping's leader-owned status (null removes a field). */
export function mappingStatusPatch(write: MappingWrite): Record<string, unknown> {
  const s: LeaderMappingStatus = write.status;
  return {
    status: {
      invalid: s.invalid,
      serviceVIP: s.serviceVIP ?? null,
      observedGeneration: s.observedGeneration,
      conditions: s.conditions.map(conditionBody),
      claims: s.claims.length === 0 ? null : [...s.claims],
      // Every key written (null when absent), so a merge patch never keeps a stale gateway or message.
      egress: s.egress === undefined ? null : { address: s.egress.address, gateway: s.egress.gateway ?? null, message: s.egress.message ?? null },
      owners: s.owners === undefined || s.owners === '' ? null : s.owners,
    },
  };
}

/** The merge patch of an AddressPool's status: the leader owns all of it. */
export function poolStatusPatch(write: PoolWrite): Record<string, unknown> {
  const s: AddressPoolStatus = write.status;
  return {
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
        { group: GROUP, version: VERSION, plural: 'mappings', namespace: write.ref.namespace, name: write.ref.name, body: mappingStatusPatch(write), fieldManager: LEADER_FIELD_MANAGER },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    );
  }

  async writePoolStatus(write: PoolWrite): Promise<StatusOutcome> {
    return this.apply(`AddressPool ${write.name}`, () =>
      this.api.patchClusterCustomObjectStatus(
        { group: GROUP, version: VERSION, plural: 'addresspools', name: write.name, body: poolStatusPatch(write), fieldManager: LEADER_FIELD_MANAGER },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
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
      // 404: deleted meanwhile.
      if (err instanceof ApiException && err.code === 404) return 'gone';
      throw new Error(`status apply of ${what} failed`, { cause: err });
    }
  }
}
