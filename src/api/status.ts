// Lenient readers of Mapping and AddressPool status, which SmartNat itself writes.
// Guarantees: never refuses and never throws; a malformed entry is dropped, not fatal (a bad status
// must not make a valid Mapping invalid). Output is deterministic (keys and lists sorted).
// Does not validate against the schema: the API server already did when the status was written.

import { field, isRecord, type Raw } from './fields.js';
import type {
  AddressInUse,
  AddressPoolStatus,
  Condition,
  ConditionStatus,
  ConfiguredAddress,
  EgressStatus,
  MappingStatus,
} from './types.js';

function text(obj: Raw, key: string): string | undefined {
  const v = field(obj, key);
  return typeof v === 'string' ? v : undefined;
}

function count(obj: Raw, key: string): number | undefined {
  const v = field(obj, key);
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined;
}

function strings(obj: Raw, key: string): string[] {
  const v = field(obj, key);
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/** `{key: value}` for each defined value, so optional fields stay absent rather than undefined. */
function defined<T extends object>(obj: T): T {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as T;
}

const CONDITION_STATUSES: readonly string[] = ['True', 'False', 'Unknown'];

export function readConditions(value: unknown): Condition[] {
  if (!Array.isArray(value)) return [];
  const out: Condition[] = [];
  for (const c of value) {
    if (!isRecord(c)) continue;
    const type = text(c, 'type');
    const status = text(c, 'status');
    if (type === undefined || status === undefined || !CONDITION_STATUSES.includes(status)) continue;
    if (out.some((o) => o.type === type)) continue;
    out.push(
      defined({
        type,
        status: status as ConditionStatus,
        observedGeneration: count(c, 'observedGeneration'),
        lastTransitionTime: text(c, 'lastTransitionTime') ?? '',
        reason: text(c, 'reason') ?? '',
        message: text(c, 'message') ?? '',
      }),
    );
  }
  return out.sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
}

function readConfiguredAddress(entry: Raw): ConfiguredAddress {
  return defined({
    podIPs: strings(entry, 'podIPs'),
    endpoints: strings(entry, 'endpoints'),
    owner: text(entry, 'owner'),
    observedGeneration: count(entry, 'observedGeneration'),
    programmedAt: text(entry, 'programmedAt'),
    claimedAt: text(entry, 'claimedAt'),
  });
}

export function parseMappingStatus(value: unknown): MappingStatus {
  const status = isRecord(value) ? value : {};
  const configured = field(status, 'configuredAddresses');
  const entries = isRecord(configured)
    ? Object.keys(configured)
        .sort()
        .flatMap((address) => {
          const entry = configured[address];
          return isRecord(entry) ? [[address, readConfiguredAddress(entry)] as const] : [];
        })
    : [];
  return defined({
    invalid: text(status, 'invalid'),
    serviceVIP: text(status, 'serviceVIP'),
    observedGeneration: count(status, 'observedGeneration'),
    configuredAddresses: Object.fromEntries(entries),
    conditions: readConditions(field(status, 'conditions')),
    claims: strings(status, 'claims').length > 0 ? [...new Set(strings(status, 'claims'))].sort() : undefined,
    egress: readEgressStatus(field(status, 'egress')),
    owners: text(status, 'owners'),
  });
}

function readEgressStatus(value: unknown): EgressStatus | undefined {
  if (!isRecord(value)) return undefined;
  const address = text(value, 'address');
  return address === undefined ? undefined : defined({ address, gateway: text(value, 'gateway'), message: text(value, 'message') });
}

export function parseAddressPoolStatus(value: unknown): AddressPoolStatus {
  const status = isRecord(value) ? value : {};
  const list = field(status, 'addresses');
  const addresses: AddressInUse[] = [];
  for (const a of Array.isArray(list) ? list : []) {
    if (!isRecord(a)) continue;
    const address = text(a, 'address');
    if (address === undefined || addresses.some((x) => x.address === address)) continue;
    const vrid = count(a, 'vrid');
    addresses.push(
      defined({
        address,
        owner: text(a, 'owner') ?? '',
        vrid: vrid !== undefined && vrid >= 1 && vrid <= 255 ? vrid : undefined,
        lastTransitionTime: text(a, 'lastTransitionTime'),
        transitions: count(a, 'transitions') ?? 0,
      }),
    );
  }
  return defined({
    observedGeneration: count(status, 'observedGeneration'),
    addresses: addresses.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0)),
    conditions: readConditions(field(status, 'conditions')),
  });
}
