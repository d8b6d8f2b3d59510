// Watches what the agent plans from: Mappings and EndpointSlices and Services (all namespaces, or
// the listed ones), AddressPools (cluster-scoped), each through a client-node informer with its own
// cache. Guarantees: any watch or list error restarts that informer with exponential backoff; a
// collection is `synced` once a list since its last error has landed in the cache; `changed` is
// called after every cache change. Does not parse or filter objects (the agent parses with
// src/api) and does not watch Leases (lease-informer.ts does). Watching every Service and
// EndpointSlice costs memory proportional to the cluster; only those Mappings name are used.
import {
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  makeInformer,
  type Informer,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type ObjectCache,
} from './k8s.js';
import { GROUP, VERSION } from '../api/types.js';

export type CollectionName = 'mappings' | 'addressPools' | 'services' | 'endpointSlices';

export interface ResourceInformerOptions {
  readonly kc: KubeConfig;
  /** Called after every change of any cache, and when readiness changes. */
  readonly changed: () => void;
  /** Namespaces to watch Mappings, Services and EndpointSlices in; undefined = all. */
  readonly namespaces?: readonly string[];
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  readonly onError?: (collection: string, err: unknown) => void;
}

type Lister = () => Promise<KubernetesListObject<KubernetesObject>>;

/** One informer (one path) with restart and a synced flag. */
class WatchedPath {
  private readonly informer: Informer<KubernetesObject> & ObjectCache<KubernetesObject>;
  private delayMs: number;
  private running = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  synced = false;
  restarts = 0;

  constructor(
    readonly label: string,
    kc: KubeConfig,
    path: string,
    list: Lister,
    private readonly backoff: { initialMs: number; maxMs: number },
    private readonly changed: () => void,
    private readonly onError: ((err: unknown) => void) | undefined,
  ) {
    this.delayMs = backoff.initialMs;
    const listed: Lister = async () => {
      const result = await list();
      // The informer fills its cache right after this promise resolves; mark synced after that.
      setImmediate(() => {
        if (!this.running) return;
        this.synced = true;
        this.delayMs = this.backoff.initialMs;
        this.changed();
      });
      return result;
    };
    this.informer = makeInformer(kc, path, listed);
    // The callbacks get the very object the cache keeps: dropping managedFields there keeps the
    // cache a third smaller (nothing here reads them).
    for (const ev of ['add', 'update'] as const) this.informer.on(ev, (obj) => {
      if (obj.metadata !== undefined) delete obj.metadata.managedFields;
      this.changed();
    });
    this.informer.on('delete', () => this.changed());
    this.informer.on('error', (err: unknown) => this.failed(err));
  }

  objects(): readonly KubernetesObject[] {
    return this.informer.list();
  }

  async start(): Promise<void> {
    this.running = true;
    await this.informer.start().catch((err: unknown) => this.failed(err));
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.informer.stop();
  }

  private failed(err: unknown): void {
    this.synced = false;
    this.onError?.(err);
    this.changed();
    if (!this.running || this.timer !== undefined) return;
    const delay = this.delayMs;
    this.delayMs = Math.min(this.backoff.maxMs, this.delayMs * 2);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.running) return;
      this.restarts++;
      this.informer.start().catch((e: unknown) => this.failed(e));
    }, delay);
  }
}

/** The four collections the planner reads, as raw API objects (JSON shape). */
export interface ClusterObjects {
  readonly mappings: readonly unknown[];
  readonly addressPools: readonly unknown[];
  readonly services: readonly unknown[];
  readonly endpointSlices: readonly unknown[];
}

/**
 * The plain-JSON form of a cached object, made once per object: the cache replaces an object when
 * it changes, so identity is a version. Typed client objects (from lists) go through JSON once so
 * dates are strings as the parsers expect; objects from watch events are plain already and are
 * used as they are. The same object keeps its plain form, which lets the agent memoise parses by
 * identity too (src/agent/snapshot.ts).
 */
const plainForms = new WeakMap<object, unknown>();

function plain(o: KubernetesObject): unknown {
  // Watch events carry the JSON as parsed (plain objects): use them as they are, no second copy.
  // Only listed objects are typed client models (class instances, Date fields).
  if (Object.getPrototypeOf(o) === Object.prototype) return o;
  const hit = plainForms.get(o);
  if (hit !== undefined) return hit;
  const { managedFields: _dropped, ...metadata } = o.metadata ?? {};
  const value = JSON.parse(JSON.stringify({ ...o, metadata })) as unknown;
  plainForms.set(o, value);
  return value;
}

export class ResourceInformers {
  private readonly paths: Map<CollectionName, WatchedPath[]> = new Map();

  constructor(opts: ResourceInformerOptions) {
    const backoff = opts.backoff ?? { initialMs: 200, maxMs: 5000 };
    const custom = opts.kc.makeApiClient(CustomObjectsApi);
    const core = opts.kc.makeApiClient(CoreV1Api);
    const discovery = opts.kc.makeApiClient(DiscoveryV1Api);
    const add = (name: CollectionName, path: string, list: Lister): void => {
      const w = new WatchedPath(`${name} ${path}`, opts.kc, path, list, backoff, opts.changed, (err) => opts.onError?.(name, err));
      this.paths.set(name, [...(this.paths.get(name) ?? []), w]);
    };
    const crd = `/apis/${GROUP}/${VERSION}`;
    add('addressPools', `${crd}/addresspools`, async () => (await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'addresspools' })) as KubernetesListObject<KubernetesObject>);
    const namespaces = opts.namespaces ?? [undefined];
    for (const ns of namespaces) {
      const scope = ns === undefined ? '' : `/namespaces/${ns}`;
      add('mappings', `${crd}${scope}/mappings`, async () =>
        (ns === undefined
          ? await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'mappings' })
          : await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: 'mappings', namespace: ns })) as KubernetesListObject<KubernetesObject>,
      );
      add('services', `/api/v1${scope}/services`, async () =>
        ns === undefined ? core.listServiceForAllNamespaces() : core.listNamespacedService({ namespace: ns }),
      );
      add('endpointSlices', `/apis/discovery.k8s.io/v1${scope}/endpointslices`, async () =>
        ns === undefined ? discovery.listEndpointSliceForAllNamespaces() : discovery.listNamespacedEndpointSlice({ namespace: ns }),
      );
    }
  }

  private all(): WatchedPath[] {
    return [...this.paths.values()].flat();
  }

  async start(): Promise<void> {
    await Promise.all(this.all().map(async (w) => w.start()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.all().map(async (w) => w.stop()));
  }

  /** Every collection has listed since its last error. */
  get synced(): boolean {
    return this.all().every((w) => w.synced);
  }

  /** Collections not synced yet (for /readyz). */
  unsynced(): string[] {
    return this.all().filter((w) => !w.synced).map((w) => w.label);
  }

  get restarts(): number {
    return this.all().reduce((n, w) => n + w.restarts, 0);
  }

  /**
   * The cached objects as plain JSON (see plain()): an unchanged object is the same value from
   * call to call. Callers must not modify them.
   */
  objects(): ClusterObjects {
    const of = (name: CollectionName): unknown[] => (this.paths.get(name) ?? []).flatMap((w) => w.objects()).map(plain);
    return { mappings: of('mappings'), addressPools: of('addressPools'), services: of('services'), endpointSlices: of('endpointSlices') };
  }
}
