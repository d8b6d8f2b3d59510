// The cluster objects the lab benchmarks create through the lab's admin kubeconfig: API clients,
// Mappings, Services, EndpointSlices (there is no controller-manager in the lab, so slices are
// written by hand), and a batched create. Guarantees: addresses and ports are whatever the caller
// passes (STYLE.md plan: floating addresses from the lab pools, endpoints in 198.51.100.0/24).
import { CoordinationV1Api, CoreV1Api, CustomObjectsApi, DiscoveryV1Api, KubeConfig, type V1EndpointSlice, type V1Service } from '@kubernetes/client-node';

export const BENCH_NAMESPACE = 'bench';
export const GROUP = 'smartnat.aureacentral.com';
export const VERSION = 'v1alpha1';

export interface Apis {
  kc: KubeConfig;
  core: CoreV1Api;
  discovery: DiscoveryV1Api;
  custom: CustomObjectsApi;
  coordination: CoordinationV1Api;
}

export function apisOf(kubeconfig: string): Apis {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  return { kc, core: kc.makeApiClient(CoreV1Api), discovery: kc.makeApiClient(DiscoveryV1Api), custom: kc.makeApiClient(CustomObjectsApi), coordination: kc.makeApiClient(CoordinationV1Api) };
}

/** A Mapping of one TCP port to the Service's port 8080, open to the lab's clients (198.18.0.0/16). */
export function mappingBody(name: string, address: string, port: number, service: string): object {
  return { apiVersion: `${GROUP}/${VERSION}`, kind: 'Mapping', metadata: { name, namespace: BENCH_NAMESPACE }, spec: { addresses: [address], allowedSources: ['198.18.0.0/16'], serviceName: service, ports: [{ port, protocol: 'TCP', servicePort: 8080 }] } };
}

/** A ready EndpointSlice of the Service with the given endpoint addresses on one port named tcp. */
export function sliceBody(name: string, service: string, ips: readonly string[], port: number): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name, namespace: BENCH_NAMESPACE, labels: { 'kubernetes.io/service-name': service, 'endpointslice.kubernetes.io/managed-by': 'smartnat-bench' } },
    addressType: 'IPv4', endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true } })), ports: [{ name: 'tcp', port, protocol: 'TCP' }],
  };
}

/**
 * A Service with port 8080 (named tcp) to the given target port. Headless where many are needed:
 * the lab's ClusterIP range (198.19.0.0/24) holds about 250 Services.
 */
export function serviceBody(name: string, targetPort: number, options: { headless?: boolean } = {}): V1Service {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: BENCH_NAMESPACE }, spec: { ...(options.headless ? { clusterIP: 'None' } : {}), ports: [{ name: 'tcp', port: 8080, protocol: 'TCP', targetPort }] } };
}

export async function createMapping(apis: Apis, body: object): Promise<unknown> {
  return apis.custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: BENCH_NAMESPACE, plural: 'mappings', body });
}

/** Runs fn over items, `width` at a time. */
export async function inBatches<T>(items: readonly T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map(fn));
}
