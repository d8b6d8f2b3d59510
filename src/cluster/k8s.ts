// Owns: the one door to @kubernetes/client-node for production code. Every value the agent and
// the CLI use from the library is re-exported here by name, and `npm run build` replaces the
// compiled dist/cluster/k8s.js with a minified bundle of just these names and what they reach
// (scripts/bundle-client-node.mjs). Importing the package itself loads all of its generated API
// groups and models: 65 MiB of RSS before the agent does anything, the largest part of its
// memory (BENCHMARKS.md, agent memory); the bundle loads about 19 MiB. Tests and tsx run this file
// unbundled (the same classes, from the package). Guarantees: production code imports values from
// the package only through this module (eslint no-restricted-imports; types may come directly).
export {
  ApiException,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  KubeConfig,
  PatchStrategy,
  V1MicroTime,
  makeInformer,
  setHeaderOptions,
} from '@kubernetes/client-node';
export type {
  CoreV1Event,
  Informer,
  KubernetesListObject,
  KubernetesObject,
  ObjectCache,
  V1Lease,
} from '@kubernetes/client-node';
