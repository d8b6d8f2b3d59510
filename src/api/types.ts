// Typed SmartNat API objects (group smartnat.aureacentral.com, version v1alpha1) and the
// constants every module shares. Types here are what the parser (parse.ts) returns: validated,
// defaulted, normalised. Raw objects from the API server are `unknown` until parsed.

export const GROUP = 'smartnat.aureacentral.com';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

/** The original SmartNat's finalizer: removed from Mappings being deleted, never added. */
export const LEGACY_FINALIZER = 'mapping.finalizers.aureacentral.com';

/**
 * Limits shared by the CRD schemas in charts/smartnat/crds/ (maxItems keeps CEL within its cost
 * budget) and the parser. Change both together; test/fixtures/crd checks they agree.
 */
export const LIMITS = {
  addressesPerMapping: 16,
  portsPerMapping: 64,
  sourcesPerMapping: 256,
  poolAddressEntries: 64,
  poolGatewayEntries: 64,
  allowedNamespaces: 256,
  serviceNameMax: 63,
  matchLabels: 32,
  matchExpressions: 16,
  matchValues: 64,
} as const;

/** The allow-list an absent or empty `allowedSources` means (the original's meaning). */
export const ANY_SOURCE = '0.0.0.0/0';

/** VRRP settings when an AddressPool leaves them out (applied by the parser, never stored); the advert interval is the one ADR 0006's failover budget assumes. */
export const VRRP_DEFAULTS = { vridFirst: 1, vridLast: 255, advertIntervalMs: 100 } as const;

export type Protocol = 'tcp' | 'udp';

/** One validated port entry of a Mapping: protocol lowercased, servicePort defaulted to port. */
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
  /**
   * Present only when spec.egress.enabled is true: the pods behind the Mapping's Service leave the
   * cluster with `address` as source (ADR 0009). `address` is spec.egress.address when written,
   * else the numerically lowest of `addresses`; always one of `addresses`.
   */
  readonly egress?: MappingEgress;
}

export interface MappingEgress {
  readonly address: Ipv4;
}

export interface ObjectRef {
  readonly namespace: string;
  readonly name: string;
}

export interface Mapping extends ObjectRef {
  readonly uid: string;
  readonly generation: number;
  readonly creationTimestamp: string;
  /** True when metadata.deletionTimestamp is set. */
  readonly deleting: boolean;
  readonly deletionTimestamp?: string;
  /** Finalizers as stored (the original's LEGACY_FINALIZER may be among them). */
  readonly finalizers: readonly string[];
  readonly spec: MappingSpec;
  /** The status as last written; read leniently (malformed entries are dropped, never refused). */
  readonly status: MappingStatus;
}

/** What one owner reports for one external address (status.configuredAddresses[address]). */
export interface ConfiguredAddress {
  readonly podIPs: readonly string[];
  readonly endpoints: readonly string[];
  readonly owner?: string;
  readonly observedGeneration?: number;
  readonly programmedAt?: string;
  readonly claimedAt?: string;
}

export type ConditionStatus = 'True' | 'False' | 'Unknown';

/** A metav1.Condition as stored. */
export interface Condition {
  readonly type: string;
  readonly status: ConditionStatus;
  readonly observedGeneration?: number;
  readonly lastTransitionTime: string;
  readonly reason: string;
  readonly message: string;
}

export interface MappingStatus {
  readonly invalid?: string;
  readonly serviceVIP?: string;
  readonly observedGeneration?: number;
  readonly configuredAddresses: Readonly<Record<Ipv4, ConfiguredAddress>>;
  readonly conditions: readonly Condition[];
  /** Held "address:port/protocol" pairs, sorted; absent when none. Written by the leader only (ADR 0008). */
  readonly claims?: readonly string[];
  /** Written by the leader when spec.egress is on (ADR 0009). */
  readonly egress?: EgressStatus;
  /** The agents holding the Mapping's address leases, sorted, comma-separated (leader; the OWNER column). */
  readonly owners?: string;
}

/** The egress source address and the gateway the nodes route to; `message` when there is none. */
export interface EgressStatus {
  readonly address: Ipv4;
  readonly gateway?: Ipv4;
  readonly message?: string;
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

/** One requirement of a label selector (metav1.LabelSelectorRequirement). */
export interface LabelRequirement {
  readonly key: string;
  readonly operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  /** Sorted and de-duplicated; empty for Exists and DoesNotExist. */
  readonly values: readonly string[];
}

export interface AddressPoolSpec {
  readonly addresses: readonly AddressRange[];
  readonly interface?: string;
  /**
   * Agent labels that must all match (spec.agentSelector.matchLabels); empty = every agent.
   * Use matchesAgentSelector() (selector.ts): it also applies agentMatchExpressions.
   */
  readonly agentSelector: Readonly<Record<string, string>>;
  /** spec.agentSelector.matchExpressions; all must hold as well. */
  readonly agentMatchExpressions: readonly LabelRequirement[];
  /** Namespaces allowed to use the pool; undefined = all namespaces. */
  readonly allowedNamespaces?: readonly string[];
  readonly vrrp: VrrpSettings;
  /** spec.egress: companion gateway addresses on the internal segment (ADR 0009); absent = no egress. */
  readonly egress?: PoolEgress;
}

/**
 * The i-th address of the pool (ascending, overlapping entries counted once) has the i-th gateway
 * address (ascending) as its companion: the internal address that moves with it (egressGatewayOf).
 */
export interface PoolEgress {
  readonly gateways: readonly AddressRange[];
}

/** One address of a pool in use, as the leader reports it (status.addresses[]). */
export interface AddressInUse {
  readonly address: Ipv4;
  readonly owner: string;
  readonly vrid?: number;
  readonly lastTransitionTime?: string;
  readonly transitions: number;
}

export interface AddressPoolStatus {
  readonly observedGeneration?: number;
  readonly addresses: readonly AddressInUse[];
  readonly conditions: readonly Condition[];
}

export interface AddressPool {
  readonly name: string;
  readonly uid: string;
  readonly generation: number;
  readonly creationTimestamp: string;
  readonly spec: AddressPoolSpec;
  /** The status as last written; read leniently (malformed entries are dropped, never refused). */
  readonly status: AddressPoolStatus;
}

/** The API server's cause reasons (metav1.CauseType), so parser and server errors compare. */
export type FieldErrorReason =
  | 'FieldValueRequired'
  | 'FieldValueInvalid'
  | 'FieldValueDuplicate'
  | 'FieldValueNotSupported'
  | 'FieldValueTooMany'
  | 'FieldValueTooLong'
  | 'FieldValueTypeInvalid';

/**
 * A validation problem: the field path as the API server prints it (`spec.ports[1].port`), the
 * cause reason, and a message in the server's style (`Invalid value: 0: must be ...`).
 */
export interface FieldError {
  readonly field: string;
  readonly reason: FieldErrorReason;
  readonly message: string;
}

export type ParseResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly errors: readonly FieldError[] };
