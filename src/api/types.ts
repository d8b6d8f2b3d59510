// Typed SmartNat API objects (group smartnat.aureacentral.com, version v1alpha1) and the
// constants every module shares. Types here are what the parser (parse.ts) returns: validated,
// defaulted, normalised. Raw objects from the API server are `unknown` until parsed.

export const GROUP = 'smartnat.aureacentral.com';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

/** The original SmartNat's finalizer: removed from Mappings being deleted, never added. */
export const LEGACY_FINALIZER = 'mapping.finalizers.aureacentral.com';

/** Limits shared by the CRD schema (maxItems keeps CEL within its cost budget) and the parser. */
export const LIMITS = {
  addressesPerMapping: 16,
  portsPerMapping: 64,
  sourcesPerMapping: 256,
  poolAddressEntries: 64,
  allowedNamespaces: 256,
  serviceNameMax: 63,
} as const;

export type Protocol = 'tcp' | 'udp';

/** One validated port entry of a Mapping. `protocol` is lowercased; `protocolAsWritten` is kept for status. */
export interface MappingPort {
  readonly port: number;
  readonly protocol: Protocol;
  readonly servicePort: number;
}

/** An IPv4 CIDR normalised to its network address, e.g. "198.18.1.0/24"; a bare IP becomes "/32". */
export type Cidr = string;
/** A dotted-quad IPv4 address in canonical form, e.g. "203.0.113.10". */
export type Ipv4 = string;

export interface MappingSpec {
  readonly addresses: readonly Ipv4[];
  /** Never empty after parsing: absent or [] means ["0.0.0.0/0"] (the original's meaning). */
  readonly allowedSources: readonly Cidr[];
  readonly serviceName: string;
  readonly mode: 'service';
  readonly ports: readonly MappingPort[];
}

export interface ObjectRef {
  readonly namespace: string;
  readonly name: string;
}

export interface Mapping extends ObjectRef {
  readonly uid: string;
  readonly generation: number;
  readonly creationTimestamp: string;
  readonly deleting: boolean;
  readonly spec: MappingSpec;
}

/** An inclusive range of IPv4 addresses, kept as numbers for cheap membership tests. */
export interface AddressRange {
  readonly first: number;
  readonly last: number;
  /** The entry as written, re-printed canonically (IP, CIDR or "a-b"). */
  readonly text: string;
}

export interface VrrpSettings {
  /** First and last VRRP router id this pool may use (1..255). */
  readonly vridRange: readonly [number, number];
  readonly advertIntervalMs: number;
}

export interface AddressPoolSpec {
  readonly addresses: readonly AddressRange[];
  readonly interface?: string;
  /** Node/agent labels that must all match (matchLabels semantics); empty = every agent. */
  readonly agentSelector: Readonly<Record<string, string>>;
  /** Namespaces allowed to use the pool; undefined = all namespaces. */
  readonly allowedNamespaces?: readonly string[];
  readonly vrrp: VrrpSettings;
}

export interface AddressPool {
  readonly name: string;
  readonly uid: string;
  readonly generation: number;
  readonly spec: AddressPoolSpec;
}

/** A validation problem: a JSONPath-like field path as the API server prints it, and a message. */
export interface FieldError {
  readonly field: string;
  readonly message: string;
}

export type ParseResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly errors: readonly FieldError[] };
