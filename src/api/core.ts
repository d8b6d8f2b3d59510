// The parts of core Kubernetes objects the planner needs, as small typed shapes: Service (v1) and
// EndpointSlice (discovery.k8s.io/v1). Guarantees: never throws; API defaults are applied
// (protocol TCP, targetPort = port, port name "", EndpointSlice `ready` absent = ready, `serving`
// absent = ready, `terminating` absent = false); errors carry field paths. Does not pick endpoints.

import {
  child,
  field,
  FieldErrors,
  isRecord,
  item,
  readInteger,
  readList,
  readObject,
  readString,
  type Raw,
} from './fields.js';
import { parseIpv4 } from './ipv4.js';
import type { Ipv4, ParseResult } from './types.js';

export type CoreProtocol = 'TCP' | 'UDP' | 'SCTP';
export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';

/** The label that ties an EndpointSlice to its Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

const PROTOCOLS: readonly CoreProtocol[] = ['TCP', 'UDP', 'SCTP'];
const SERVICE_TYPES: readonly ServiceType[] = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'];

export interface ServicePort {
  /** "" when the Service has a single unnamed port. */
  readonly name: string;
  readonly port: number;
  readonly protocol: CoreProtocol;
  /** A number, or a container port name resolved per pod through the EndpointSlice's ports. */
  readonly targetPort: number | string;
}

export interface Service {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly type: ServiceType;
  /** The IPv4 ClusterIP; undefined for headless ("None"), ExternalName, or non-IPv4 Services. */
  readonly clusterIP?: Ipv4;
  readonly headless: boolean;
  /** spec.externalName of an ExternalName Service (a DNS name: nothing SmartNat can forward to). */
  readonly externalName?: string;
  readonly ports: readonly ServicePort[];
}

export interface EndpointSlicePort {
  readonly name: string;
  /** Undefined means "all ports" (the API allows it; SmartNat cannot use such a port). */
  readonly port?: number;
  readonly protocol: CoreProtocol;
}

export interface Endpoint {
  readonly addresses: readonly string[];
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  readonly nodeName?: string;
}

export interface EndpointSlice {
  readonly namespace: string;
  readonly name: string;
  /** From the kubernetes.io/service-name label; undefined when the slice has none. */
  readonly serviceName?: string;
  readonly addressType: 'IPv4' | 'IPv6' | 'FQDN';
  readonly endpoints: readonly Endpoint[];
  readonly ports: readonly EndpointSlicePort[];
}

interface ObjectMeta {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly labels: Readonly<Record<string, string>>;
}

function readMeta(errs: FieldErrors, raw: Raw): ObjectMeta {
  const meta = readObject(errs, field(raw, 'metadata'), 'metadata');
  if (meta === undefined) {
    errs.required('metadata');
    return { namespace: '', name: '', uid: '', labels: {} };
  }
  const name = readString(errs, field(meta, 'name'), 'metadata.name', { minLength: 1 });
  const namespace = readString(errs, field(meta, 'namespace'), 'metadata.namespace', { minLength: 1 });
  if (name === undefined && field(meta, 'name') === undefined) errs.required('metadata.name');
  if (namespace === undefined && field(meta, 'namespace') === undefined) errs.required('metadata.namespace');
  const labels = field(meta, 'labels');
  return {
    name: name ?? '',
    namespace: namespace ?? '',
    uid: readString(errs, field(meta, 'uid'), 'metadata.uid') ?? '',
    labels: isRecord(labels)
      ? Object.fromEntries(Object.entries(labels).filter((e): e is [string, string] => typeof e[1] === 'string'))
      : {},
  };
}

function readProtocol(errs: FieldErrors, value: unknown, path: string): CoreProtocol {
  return (readString(errs, value, path, { enum: PROTOCOLS }) ?? 'TCP') as CoreProtocol;
}

function readServicePort(errs: FieldErrors, value: unknown, path: string): ServicePort | undefined {
  const entry = readObject(errs, value, path);
  if (entry === undefined) return undefined;
  const before = errs.count;
  const port = readInteger(errs, field(entry, 'port'), child(path, 'port'), { minimum: 1, maximum: 65535 });
  if (field(entry, 'port') === undefined) errs.required(child(path, 'port'));
  const target = field(entry, 'targetPort');
  let targetPort: number | string | undefined;
  if (typeof target === 'string') targetPort = readString(errs, target, child(path, 'targetPort'), { minLength: 1, maxLength: 15 });
  else targetPort = readInteger(errs, target, child(path, 'targetPort'), { minimum: 1, maximum: 65535 });
  const name = readString(errs, field(entry, 'name'), child(path, 'name')) ?? '';
  const protocol = readProtocol(errs, field(entry, 'protocol'), child(path, 'protocol'));
  if (errs.count !== before || port === undefined) return undefined;
  return { name, port, protocol, targetPort: targetPort ?? port };
}

export function parseService(raw: unknown): ParseResult<Service> {
  const errs = new FieldErrors();
  if (!isRecord(raw)) {
    errs.typeInvalid('', raw, 'object');
    return errs.failure();
  }
  const meta = readMeta(errs, raw);
  const spec = readObject(errs, field(raw, 'spec'), 'spec') ?? {};
  const type = (readString(errs, field(spec, 'type'), 'spec.type', { enum: SERVICE_TYPES }) ?? 'ClusterIP') as ServiceType;
  const clusterIPText = readString(errs, field(spec, 'clusterIP'), 'spec.clusterIP');
  const clusterIP = clusterIPText !== undefined && parseIpv4(clusterIPText) !== undefined ? clusterIPText : undefined;
  const externalName = type === 'ExternalName' ? (readString(errs, field(spec, 'externalName'), 'spec.externalName') ?? '') : undefined;
  const list = readList(errs, field(spec, 'ports'), 'spec.ports') ?? [];
  const ports = list.flatMap((p, i) => readServicePort(errs, p, item('spec.ports', i)) ?? []);
  return errs.result(() => ({
    namespace: meta.namespace,
    name: meta.name,
    uid: meta.uid,
    type,
    ...(clusterIP === undefined || type === 'ExternalName' ? {} : { clusterIP }),
    headless: clusterIPText === 'None',
    ...(externalName === undefined ? {} : { externalName }),
    ports,
  }));
}

function readEndpoint(errs: FieldErrors, value: unknown, path: string, addressType: string): Endpoint | undefined {
  const entry = readObject(errs, value, path);
  if (entry === undefined) return undefined;
  const before = errs.count;
  const list = readList(errs, field(entry, 'addresses'), child(path, 'addresses'), { minItems: 1 }) ?? [];
  if (field(entry, 'addresses') === undefined) errs.required(child(path, 'addresses'));
  const addresses = list.flatMap((a, i) => {
    const text = readString(errs, a, item(child(path, 'addresses'), i));
    if (text !== undefined && addressType === 'IPv4' && parseIpv4(text) === undefined) {
      errs.invalid(item(child(path, 'addresses'), i), text, 'must be an IPv4 address');
      return [];
    }
    return text ?? [];
  });
  const conditions = readObject(errs, field(entry, 'conditions'), child(path, 'conditions')) ?? {};
  const flag = (key: string): boolean | undefined => {
    const v = field(conditions, key);
    if (v === undefined || typeof v === 'boolean') return v;
    errs.typeInvalid(child(child(path, 'conditions'), key), v, 'boolean');
    return undefined;
  };
  const ready = flag('ready') ?? true;
  const serving = flag('serving') ?? ready;
  const terminating = flag('terminating') ?? false;
  const nodeName = readString(errs, field(entry, 'nodeName'), child(path, 'nodeName'));
  if (errs.count !== before) return undefined;
  return { addresses, ready, serving, terminating, ...(nodeName === undefined ? {} : { nodeName }) };
}

export function parseEndpointSlice(raw: unknown): ParseResult<EndpointSlice> {
  const errs = new FieldErrors();
  if (!isRecord(raw)) {
    errs.typeInvalid('', raw, 'object');
    return errs.failure();
  }
  const meta = readMeta(errs, raw);
  const addressType = readString(errs, field(raw, 'addressType'), 'addressType', { enum: ['IPv4', 'IPv6', 'FQDN'] });
  if (field(raw, 'addressType') === undefined) errs.required('addressType');
  const endpointList = readList(errs, field(raw, 'endpoints'), 'endpoints') ?? [];
  const endpoints = endpointList.flatMap((e, i) => readEndpoint(errs, e, item('endpoints', i), addressType ?? '') ?? []);
  const portList = readList(errs, field(raw, 'ports'), 'ports') ?? [];
  const ports = portList.flatMap((p, i): EndpointSlicePort[] => {
    const at = item('ports', i);
    const entry = readObject(errs, p, at);
    if (entry === undefined) return [];
    const port = readInteger(errs, field(entry, 'port'), child(at, 'port'), { minimum: 1, maximum: 65535 });
    const name = readString(errs, field(entry, 'name'), child(at, 'name')) ?? '';
    const protocol = readProtocol(errs, field(entry, 'protocol'), child(at, 'protocol'));
    return [{ name, protocol, ...(port === undefined ? {} : { port }) }];
  });
  const serviceName = meta.labels[SERVICE_NAME_LABEL];
  return errs.result(() => ({
    namespace: meta.namespace,
    name: meta.name,
    ...(serviceName === undefined ? {} : { serviceName }),
    addressType: addressType as EndpointSlice['addressType'],
    endpoints,
    ports,
  }));
}
