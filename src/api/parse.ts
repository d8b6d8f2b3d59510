// Parser/validator from raw Mapping and AddressPool objects (as the API server serves them) to the
// typed, defaulted, normalised values of types.ts. Guarantees: every rule of the CRD schemas is
// checked again (objects may predate a CRD upgrade), plus what a schema cannot do (servicePort =
// port, allowedSources normalised and defaulted to 0.0.0.0/0, protocol lowercased); errors carry
// the API server's field paths; never throws. Unknown fields are ignored (the server prunes them).
// Cluster-wide rules (address clashes, pool membership) are the planner's, not this module's.

import {
  checkUnique,
  child,
  field,
  FieldErrors,
  item,
  readBoolean,
  readInteger,
  readList,
  readObject,
  readString,
  type Raw,
} from './fields.js';
import { formatCidr, isGlobalUnicast, parseIpv4, parsePoolEntry, parseSource } from './ipv4.js';
import { parseAddressPoolStatus, parseMappingStatus } from './status.js';
import {
  ANY_SOURCE,
  LIMITS,
  VRRP_DEFAULTS,
  type AddressPool,
  type AddressPoolSpec,
  type AddressRange,
  type Cidr,
  type LabelRequirement,
  type Mapping,
  type MappingEgress,
  type MappingPort,
  type MappingSpec,
  type ParseResult,
  type PoolEgress,
  type Protocol,
  type VrrpSettings,
} from './types.js';

/** DNS-1035 label (a Service name). */
export const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
/** DNS-1123 label (a namespace name). */
export const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const INTERFACE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

export const PROTOCOLS_AS_WRITTEN = ['tcp', 'udp', 'TCP', 'UDP'] as const;
export const SELECTOR_OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;

interface Meta {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
  readonly generation: number;
  readonly creationTimestamp: string;
  readonly deletionTimestamp?: string;
  readonly finalizers: readonly string[];
}

function parseMeta(errs: FieldErrors, raw: Raw, kind: string, namespaced: boolean): Meta {
  const kindAsWritten = field(raw, 'kind');
  if (kindAsWritten !== undefined && kindAsWritten !== kind) errs.notSupported('kind', kindAsWritten, [kind]);
  const meta = readObject(errs, field(raw, 'metadata'), 'metadata');
  if (meta === undefined) {
    if (field(raw, 'metadata') === undefined) errs.required('metadata');
    return { name: '', namespace: '', uid: '', generation: 0, creationTimestamp: '', finalizers: [] };
  }
  const name = readString(errs, field(meta, 'name'), 'metadata.name', { minLength: 1, maxLength: 253 });
  if (field(meta, 'name') === undefined) errs.required('metadata.name');
  const namespace = readString(errs, field(meta, 'namespace'), 'metadata.namespace', { minLength: 1, maxLength: 63 });
  if (namespaced && field(meta, 'namespace') === undefined) errs.required('metadata.namespace');
  const finalizers = readList(errs, field(meta, 'finalizers'), 'metadata.finalizers') ?? [];
  const deletionTimestamp = readString(errs, field(meta, 'deletionTimestamp'), 'metadata.deletionTimestamp');
  return {
    name: name ?? '',
    namespace: namespace ?? '',
    uid: readString(errs, field(meta, 'uid'), 'metadata.uid') ?? '',
    generation: readInteger(errs, field(meta, 'generation'), 'metadata.generation', { minimum: 0 }) ?? 0,
    creationTimestamp: readString(errs, field(meta, 'creationTimestamp'), 'metadata.creationTimestamp') ?? '',
    ...(deletionTimestamp === undefined ? {} : { deletionTimestamp }),
    finalizers: finalizers.flatMap((f, i) => readString(errs, f, item('metadata.finalizers', i)) ?? []),
  };
}

/** A list of strings; each item checked by `check`, which returns the typed item or undefined. */
function readStrings<T>(
  errs: FieldErrors,
  list: readonly unknown[],
  path: string,
  maxLength: number,
  check: (text: string, path: string) => T | undefined,
): T[] {
  const out: T[] = [];
  list.forEach((x, i) => {
    const text = readString(errs, x, item(path, i), { maxLength });
    const value = text === undefined ? undefined : check(text, item(path, i));
    if (value !== undefined) out.push(value);
  });
  checkUnique(errs, list, path);
  return out;
}

function readAddresses(errs: FieldErrors, spec: Raw, path: string): string[] {
  const list = readList(errs, field(spec, 'addresses'), path, { minItems: 1, maxItems: LIMITS.addressesPerMapping });
  if (field(spec, 'addresses') === undefined) errs.required(path);
  return readStrings(errs, list ?? [], path, 45, (text, at) => {
    const value = parseIpv4(text);
    if (value !== undefined && isGlobalUnicast(value)) return text;
    errs.invalid(at, text, 'must be a unicast IPv4 address in dotted-quad form');
    return undefined;
  });
}

/** allowedSources normalised (host bits cleared, bare IP = /32), sorted, de-duplicated; [] -> 0.0.0.0/0. */
function readSources(errs: FieldErrors, spec: Raw, path: string): Cidr[] {
  const list = readList(errs, field(spec, 'allowedSources'), path, { maxItems: LIMITS.sourcesPerMapping }) ?? [];
  const parsed: { network: number; prefix: number }[] = [];
  list.forEach((x, i) => {
    const text = readString(errs, x, item(path, i), { maxLength: 49 });
    if (text === undefined) return;
    const source = parseSource(text);
    if (source === undefined) errs.invalid(item(path, i), text, 'must be an IPv4 CIDR (a.b.c.d/n) or an IPv4 address');
    else parsed.push(source);
  });
  if (parsed.length === 0) return [ANY_SOURCE];
  parsed.sort((a, b) => a.network - b.network || a.prefix - b.prefix);
  return [...new Set(parsed.map((s) => formatCidr(s.network, s.prefix)))];
}

function readPorts(errs: FieldErrors, spec: Raw, path: string): MappingPort[] {
  const list = readList(errs, field(spec, 'ports'), path, { minItems: 1, maxItems: LIMITS.portsPerMapping });
  if (field(spec, 'ports') === undefined) errs.required(path);
  const ports: MappingPort[] = [];
  (list ?? []).forEach((x, i) => {
    const at = item(path, i);
    const entry = readObject(errs, x, at);
    if (entry === undefined) return;
    const before = errs.count;
    const port = readInteger(errs, field(entry, 'port'), child(at, 'port'), { minimum: 1, maximum: 65535 });
    if (field(entry, 'port') === undefined) errs.required(child(at, 'port'));
    const protocol = readString(errs, field(entry, 'protocol'), child(at, 'protocol'), { enum: PROTOCOLS_AS_WRITTEN });
    const servicePort = readInteger(errs, field(entry, 'servicePort'), child(at, 'servicePort'), { minimum: 1, maximum: 65535 });
    if (errs.count !== before || port === undefined) return;
    ports.push({ port, protocol: (protocol ?? 'tcp').toLowerCase() as Protocol, servicePort: servicePort ?? port });
  });
  // The schema's CEL rule on the list: same path, protocols compared case-insensitively.
  const seen = new Set<string>();
  for (const p of ports) {
    const key = `${p.protocol}/${p.port}`;
    if (seen.has(key)) {
      errs.invalid(path, key, 'each protocol/port pair may appear once (protocols compared case-insensitively)');
      break;
    }
    seen.add(key);
  }
  return ports;
}

/**
 * spec.egress: {enabled, address?}. Enabled: the address is spec.egress.address, which must be one
 * of spec.addresses (the schema's CEL rule on spec), else the numerically lowest of them.
 * Disabled or absent: undefined (nothing to program).
 */
function readEgress(errs: FieldErrors, spec: Raw, path: string, addresses: readonly string[]): MappingEgress | undefined {
  const egress = readObject(errs, field(spec, 'egress'), path);
  if (egress === undefined) return undefined;
  const enabled = readBoolean(errs, field(egress, 'enabled'), child(path, 'enabled'));
  const addressPath = child(path, 'address');
  const written = readString(errs, field(egress, 'address'), addressPath, { maxLength: 45 });
  if (written !== undefined) {
    const value = parseIpv4(written);
    if (value === undefined || !isGlobalUnicast(value)) errs.invalid(addressPath, written, 'must be a unicast IPv4 address in dotted-quad form');
    else if (!addresses.includes(written)) {
      errs.invalid(addressPath, written, 'must be one of spec.addresses');
    }
  }
  if (enabled !== true) return undefined;
  if (written !== undefined) return { address: written };
  const lowest = [...addresses].sort((a, b) => (parseIpv4(a) ?? 0) - (parseIpv4(b) ?? 0))[0];
  return lowest === undefined ? undefined : { address: lowest };
}

function parseMappingSpecInto(errs: FieldErrors, value: unknown, path: string): MappingSpec {
  const spec = readObject(errs, value, path);
  if (spec === undefined) {
    if (value === undefined || value === null) errs.required(path);
    return { addresses: [], allowedSources: [ANY_SOURCE], serviceName: '', mode: 'service', ports: [] };
  }
  const serviceName = readString(errs, field(spec, 'serviceName'), child(path, 'serviceName'), {
    minLength: 1,
    maxLength: LIMITS.serviceNameMax,
    pattern: [DNS1035_LABEL, 'must be a DNS-1035 label (lower-case letters, digits and "-", starting with a letter)'],
  });
  if (field(spec, 'serviceName') === undefined) errs.required(child(path, 'serviceName'));
  readString(errs, field(spec, 'mode'), child(path, 'mode'), { enum: ['service'] });
  const addresses = readAddresses(errs, spec, child(path, 'addresses'));
  const allowedSources = readSources(errs, spec, child(path, 'allowedSources'));
  const ports = readPorts(errs, spec, child(path, 'ports'));
  const egress = readEgress(errs, spec, child(path, 'egress'), addresses);
  return {
    addresses,
    allowedSources,
    serviceName: serviceName ?? '',
    mode: 'service',
    ports,
    ...(egress === undefined ? {} : { egress }),
  };
}

/** The spec alone (for objects without server metadata, e.g. a manifest or a snapshot entry). */
export function parseMappingSpec(value: unknown, path = 'spec'): ParseResult<MappingSpec> {
  const errs = new FieldErrors();
  const spec = parseMappingSpecInto(errs, value, path);
  return errs.result(() => spec);
}

export function parseMapping(raw: unknown): ParseResult<Mapping> {
  const errs = new FieldErrors();
  if (!isObject(raw, errs)) return errs.failure();
  const meta = parseMeta(errs, raw, 'Mapping', true);
  const spec = parseMappingSpecInto(errs, field(raw, 'spec'), 'spec');
  return errs.result(() => ({
    ...meta,
    deleting: meta.deletionTimestamp !== undefined,
    spec,
    status: parseMappingStatus(field(raw, 'status')),
  }));
}

function isObject(raw: unknown, errs: FieldErrors): raw is Raw {
  if (readObject(errs, raw, '') !== undefined) return true;
  if (raw === undefined || raw === null) errs.required('');
  return false;
}

// ---- AddressPool ----

function readPoolAddresses(errs: FieldErrors, spec: Raw, path: string, key = 'addresses', maxItems: number = LIMITS.poolAddressEntries): AddressRange[] {
  const list = readList(errs, field(spec, key), path, { minItems: 1, maxItems });
  if (field(spec, key) === undefined) errs.required(path);
  const ranges = readStrings(errs, list ?? [], path, 64, (text, at) => {
    const range = parsePoolEntry(text);
    if (range === undefined) errs.invalid(at, text, 'must be an IPv4 address, an IPv4 CIDR or a range first-last with first <= last');
    return range;
  });
  ranges.sort((a, b) => a.first - b.first || a.last - b.last);
  return ranges.filter((r, i) => i === 0 || r.text !== ranges[i - 1]?.text);
}

/** A label key: [DNS-1123 subdomain (<= 253) "/"] name (<= 63). */
export function isLabelKey(key: string): boolean {
  const slash = key.indexOf('/');
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (prefix !== undefined && (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix))) return false;
  return LABEL_NAME.test(name);
}

const LABEL_VALUE_RULES = { maxLength: 63, pattern: [LABEL_VALUE, 'must be a label value'] as const };

function readMatchLabels(errs: FieldErrors, value: unknown, path: string): Record<string, string> {
  const labels = readObject(errs, value, path);
  if (labels === undefined) return {};
  const out: Record<string, string> = {};
  const keys = Object.keys(labels);
  if (keys.length > LIMITS.matchLabels) errs.tooMany(path, keys.length, LIMITS.matchLabels);
  if (!keys.every((k) => k.length <= 317 && isLabelKey(k))) errs.invalid(path, '', 'keys must be label keys ([prefix/]name)');
  for (const key of keys.sort()) {
    const v = readString(errs, field(labels, key), child(path, key), LABEL_VALUE_RULES);
    if (v !== undefined) out[key] = v;
  }
  return out;
}

function readMatchExpressions(errs: FieldErrors, value: unknown, path: string): LabelRequirement[] {
  const list = readList(errs, value, path, { maxItems: LIMITS.matchExpressions }) ?? [];
  const out: LabelRequirement[] = [];
  list.forEach((x, i) => {
    const at = item(path, i);
    const entry = readObject(errs, x, at);
    if (entry === undefined) return;
    const before = errs.count;
    const key = readString(errs, field(entry, 'key'), child(at, 'key'), { maxLength: 317 });
    if (field(entry, 'key') === undefined) errs.required(child(at, 'key'));
    else if (key !== undefined && !isLabelKey(key)) errs.invalid(child(at, 'key'), key, 'must be a label key ([prefix/]name)');
    const operator = readString(errs, field(entry, 'operator'), child(at, 'operator'), { enum: SELECTOR_OPERATORS });
    if (field(entry, 'operator') === undefined) errs.required(child(at, 'operator'));
    const rawValues = readList(errs, field(entry, 'values'), child(at, 'values'), { maxItems: LIMITS.matchValues }) ?? [];
    const values = rawValues.flatMap((v, j) => readString(errs, v, item(child(at, 'values'), j), LABEL_VALUE_RULES) ?? []);
    if (operator !== undefined && (operator === 'In' || operator === 'NotIn') !== rawValues.length > 0) {
      errs.invalid(at, 'object', 'values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist');
    }
    if (errs.count !== before || key === undefined || operator === undefined) return;
    out.push({ key, operator: operator as LabelRequirement['operator'], values: [...new Set(values)].sort() });
  });
  return out.sort((a, b) => compareText(JSON.stringify(a), JSON.stringify(b)));
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function readVrrp(errs: FieldErrors, value: unknown, path: string): VrrpSettings {
  const vrrp = readObject(errs, value, path);
  const rangePath = child(path, 'vridRange');
  const range = vrrp === undefined ? undefined : readObject(errs, field(vrrp, 'vridRange'), rangePath);
  let first: number = VRRP_DEFAULTS.vridFirst;
  let last: number = VRRP_DEFAULTS.vridLast;
  if (range !== undefined) {
    const bounds = { minimum: 1, maximum: 255 };
    const f = readInteger(errs, field(range, 'first'), child(rangePath, 'first'), bounds);
    const l = readInteger(errs, field(range, 'last'), child(rangePath, 'last'), bounds);
    if (field(range, 'first') === undefined) errs.required(child(rangePath, 'first'));
    if (field(range, 'last') === undefined) errs.required(child(rangePath, 'last'));
    if (f !== undefined && l !== undefined && f > l) errs.invalid(rangePath, 'object', 'first must not be greater than last');
    first = f ?? first;
    last = l ?? last;
  }
  const interval = vrrp === undefined ? undefined : readInteger(errs, field(vrrp, 'advertIntervalMs'), child(path, 'advertIntervalMs'), {
    minimum: 10,
    maximum: 40950,
    multipleOf: 10,
  });
  return { vridRange: [first, last], advertIntervalMs: interval ?? VRRP_DEFAULTS.advertIntervalMs };
}

/** spec.egress: {gateways: [IP | CIDR | range]} (ADR 0009); absent = the pool offers no egress. */
function readPoolEgress(errs: FieldErrors, spec: Raw, path: string): PoolEgress | undefined {
  const egress = readObject(errs, field(spec, 'egress'), path);
  if (egress === undefined) return undefined;
  return { gateways: readPoolAddresses(errs, egress, child(path, 'gateways'), 'gateways', LIMITS.poolGatewayEntries) };
}

function parseAddressPoolSpecInto(errs: FieldErrors, value: unknown, path: string): AddressPoolSpec {
  const spec = readObject(errs, value, path);
  if (spec === undefined) {
    if (value === undefined || value === null) errs.required(path);
    return { addresses: [], agentSelector: {}, agentMatchExpressions: [], vrrp: readVrrp(errs, undefined, '') };
  }
  const egress = readPoolEgress(errs, spec, child(path, 'egress'));
  const iface = readString(errs, field(spec, 'interface'), child(path, 'interface'), {
    minLength: 1,
    maxLength: 15,
    pattern: [INTERFACE_NAME, 'must be a network interface name'],
  });
  const selectorPath = child(path, 'agentSelector');
  const selector = readObject(errs, field(spec, 'agentSelector'), selectorPath);
  const nsPath = child(path, 'allowedNamespaces');
  const nsList = readList(errs, field(spec, 'allowedNamespaces'), nsPath, { minItems: 1, maxItems: LIMITS.allowedNamespaces });
  const namespaces = readStrings(errs, nsList ?? [], nsPath, 63, (text, at) => {
    if (DNS1123_LABEL.test(text)) return text;
    errs.invalid(at, text, 'must be a namespace name (a DNS-1123 label)');
    return undefined;
  });
  return {
    addresses: readPoolAddresses(errs, spec, child(path, 'addresses')),
    ...(iface === undefined ? {} : { interface: iface }),
    agentSelector: selector === undefined ? {} : readMatchLabels(errs, field(selector, 'matchLabels'), child(selectorPath, 'matchLabels')),
    agentMatchExpressions:
      selector === undefined ? [] : readMatchExpressions(errs, field(selector, 'matchExpressions'), child(selectorPath, 'matchExpressions')),
    ...(nsList === undefined ? {} : { allowedNamespaces: namespaces.sort() }),
    vrrp: readVrrp(errs, field(spec, 'vrrp'), child(path, 'vrrp')),
    ...(egress === undefined ? {} : { egress }),
  };
}

export function parseAddressPoolSpec(value: unknown, path = 'spec'): ParseResult<AddressPoolSpec> {
  const errs = new FieldErrors();
  const spec = parseAddressPoolSpecInto(errs, value, path);
  return errs.result(() => spec);
}

export function parseAddressPool(raw: unknown): ParseResult<AddressPool> {
  const errs = new FieldErrors();
  if (!isObject(raw, errs)) return errs.failure();
  const meta = parseMeta(errs, raw, 'AddressPool', false);
  const spec = parseAddressPoolSpecInto(errs, field(raw, 'spec'), 'spec');
  return errs.result(() => ({
    name: meta.name,
    uid: meta.uid,
    generation: meta.generation,
    creationTimestamp: meta.creationTimestamp,
    spec,
    status: parseAddressPoolStatus(field(raw, 'status')),
  }));
}
