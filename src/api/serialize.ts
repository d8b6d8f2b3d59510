// Typed Mapping/AddressPool values back to plain API objects (for snapshots, fixtures and tests).
// Guarantees: parse(serialize(x)) deep-equals x for every parsed x; the output is the normalised
// form (defaults explicit, protocols lowercase, CIDRs canonical), so it is valid for the CRDs.
// Does not reproduce the object as originally written (that is the API server's job).

import { API_VERSION, type AddressPool, type Mapping } from './types.js';

export type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json };

function compact(obj: Readonly<Record<string, Json | undefined>>): { [key: string]: Json } {
  const out: { [key: string]: Json } = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined) out[k] = v;
  return out;
}

function metadata(m: {
  name: string;
  namespace?: string;
  uid: string;
  generation: number;
  creationTimestamp: string;
  deletionTimestamp?: string;
  finalizers?: readonly string[];
}): Json {
  return compact({
    name: m.name,
    namespace: m.namespace,
    uid: m.uid,
    generation: m.generation,
    creationTimestamp: m.creationTimestamp,
    deletionTimestamp: m.deletionTimestamp,
    finalizers: m.finalizers === undefined || m.finalizers.length === 0 ? undefined : [...m.finalizers],
  });
}

export function serializeMapping(m: Mapping): { [key: string]: Json } {
  const s = m.status;
  return {
    apiVersion: API_VERSION,
    kind: 'Mapping',
    metadata: metadata(m),
    spec: {
      addresses: [...m.spec.addresses],
      allowedSources: [...m.spec.allowedSources],
      serviceName: m.spec.serviceName,
      mode: m.spec.mode,
      ports: m.spec.ports.map((p) => ({ port: p.port, protocol: p.protocol, servicePort: p.servicePort })),
      ...(m.spec.egress === undefined ? {} : { egress: { enabled: true, address: m.spec.egress.address } }),
    },
    status: compact({
      invalid: s.invalid,
      serviceVIP: s.serviceVIP,
      observedGeneration: s.observedGeneration,
      configuredAddresses: Object.fromEntries(
        Object.entries(s.configuredAddresses).map(([address, c]) => [
          address,
          compact({
            podIPs: [...c.podIPs],
            endpoints: [...c.endpoints],
            owner: c.owner,
            observedGeneration: c.observedGeneration,
            programmedAt: c.programmedAt,
            claimedAt: c.claimedAt,
          }),
        ]),
      ),
      conditions: s.conditions.map((c) => compact({ ...c })),
      claims: s.claims === undefined ? undefined : [...s.claims],
      egress: s.egress === undefined ? undefined : compact({ ...s.egress }),
      owners: s.owners,
    }),
  };
}

export function serializeAddressPool(p: AddressPool): { [key: string]: Json } {
  const spec = p.spec;
  return {
    apiVersion: API_VERSION,
    kind: 'AddressPool',
    metadata: metadata(p),
    spec: compact({
      addresses: spec.addresses.map((r) => r.text),
      interface: spec.interface,
      agentSelector: {
        matchLabels: { ...spec.agentSelector },
        matchExpressions: spec.agentMatchExpressions.map((e) =>
          compact({ key: e.key, operator: e.operator, values: e.values.length === 0 ? undefined : [...e.values] }),
        ),
      },
      allowedNamespaces: spec.allowedNamespaces === undefined ? undefined : [...spec.allowedNamespaces],
      vrrp: {
        vridRange: { first: spec.vrrp.vridRange[0], last: spec.vrrp.vridRange[1] },
        advertIntervalMs: spec.vrrp.advertIntervalMs,
      },
      egress: spec.egress === undefined ? undefined : { gateways: spec.egress.gateways.map((r) => r.text) },
    }),
    status: compact({
      observedGeneration: p.status.observedGeneration,
      addresses: p.status.addresses.map((a) => compact({ ...a })),
      conditions: p.status.conditions.map((c) => compact({ ...c })),
    }),
  };
}
