// Server-side apply of one agent's own `status.configuredAddresses` entries on a Mapping (field
// manager `smartnat-agent/<agent>`, DESIGN.md 2.1), and the Node-label read for agent labels.
// Guarantees: an apply names only this agent's entries, so entries of other owners are untouched
// and an entry the agent stops applying is removed by the API server. Does not decide what to
// report (src/agent/report.ts does) or when (only on change, the caller's job).
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from './k8s.js';
import type { ConfiguredAddress, ObjectRef } from '../api/types.js';
import { API_VERSION, GROUP, VERSION } from '../api/types.js';

export interface ConfiguredAddressWriter {
  /** Replaces this agent's entries on one Mapping with `entries` ({} removes them all). */
  apply(mapping: ObjectRef, entries: Readonly<Record<string, ConfiguredAddress>>): Promise<void>;
}

export class KubeConfiguredAddressWriter implements ConfiguredAddressWriter {
  private readonly api: CustomObjectsApi;

  constructor(
    kc: KubeConfig,
    private readonly agent: string,
  ) {
    this.api = kc.makeApiClient(CustomObjectsApi);
  }

  async apply(mapping: ObjectRef, entries: Readonly<Record<string, ConfiguredAddress>>): Promise<void> {
    await this.api.patchNamespacedCustomObjectStatus(
      {
        group: GROUP,
        version: VERSION,
        plural: 'mappings',
        namespace: mapping.namespace,
        name: mapping.name,
        body: { apiVersion: API_VERSION, kind: 'Mapping', metadata: { name: mapping.name, namespace: mapping.namespace }, status: { configuredAddresses: entries } },
        fieldManager: `smartnat-agent/${this.agent}`,
        force: true,
      },
      setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
    );
  }
}

/** The labels of Node `name`, or undefined when it cannot be read (no RBAC, not in a cluster). */
export async function readNodeLabels(kc: KubeConfig, name: string): Promise<Record<string, string> | undefined> {
  try {
    const node = await kc.makeApiClient(CoreV1Api).readNode({ name });
    return { ...(node.metadata?.labels ?? {}) };
  } catch {
    return undefined;
  }
}
