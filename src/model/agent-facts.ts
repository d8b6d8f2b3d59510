// Parses the `kind: AgentFacts` document (smartnat.aureacentral.com/v1alpha1) that describes one
// agent to `smartnat render`: its name, labels and interfaces. Guarantees every interface name is a
// valid Linux name and every address/gateway is canonical IPv4; reports all problems with paths.
import type { FieldError, FieldErrorReason, ParseResult } from '../api/types.js';
import { API_VERSION } from '../api/types.js';
import { canonicalIpv4, isValidInterfaceName, parseInterfaceAddress } from './net.js';
import type { AgentFacts, AgentInterface, InterfaceRole } from './snapshot.js';

export const AGENT_FACTS_KIND = 'AgentFacts';

type Obj = Record<string, unknown>;

function invalid(field: string, message: string, reason: FieldErrorReason = 'FieldValueInvalid'): FieldError {
  return { field, reason, message };
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseLabels(raw: unknown, errors: FieldError[]): Record<string, string> {
  if (raw === undefined) return {};
  if (!isObj(raw)) {
    errors.push(invalid('metadata.labels', 'must be a map of strings'));
    return {};
  }
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v === 'string') labels[k] = v;
    else errors.push(invalid(`metadata.labels.${k}`, 'must be a string'));
  }
  return labels;
}

function parseAddresses(raw: unknown, path: string, errors: FieldError[]): AgentInterface['addresses'] {
  if (!Array.isArray(raw)) {
    errors.push(invalid(path, 'must be a list of CIDRs (address/prefix)'));
    return [];
  }
  return raw.flatMap((item: unknown, i) => {
    const parsed = typeof item === 'string' ? parseInterfaceAddress(item) : undefined;
    if (!parsed) errors.push(invalid(`${path}[${i}]`, `not an IPv4 address/prefix: ${JSON.stringify(item)}`));
    return parsed ? [parsed] : [];
  });
}

function parseInterface(raw: unknown, path: string, errors: FieldError[]): AgentInterface | undefined {
  if (!isObj(raw)) {
    errors.push(invalid(path, 'must be an object'));
    return undefined;
  }
  const name = raw['name'];
  const role = raw['role'];
  const before = errors.length;
  if (typeof name !== 'string' || !isValidInterfaceName(name)) errors.push(invalid(`${path}.name`, `invalid interface name ${JSON.stringify(name)}`));
  if (role !== 'external' && role !== 'internal') errors.push(invalid(`${path}.role`, 'must be external or internal'));
  const addresses = parseAddresses(raw['addresses'] ?? [], `${path}.addresses`, errors);
  let gateway: string | undefined;
  if (raw['gateway'] !== undefined) {
    gateway = typeof raw['gateway'] === 'string' ? canonicalIpv4(raw['gateway']) : undefined;
    if (!gateway) errors.push(invalid(`${path}.gateway`, 'must be an IPv4 address'));
    else if (role !== 'external') errors.push(invalid(`${path}.gateway`, 'only external interfaces have a gateway'));
  }
  if (errors.length > before) return undefined;
  const parsed: AgentInterface = { name: name as string, role: role as InterfaceRole, addresses };
  return gateway ? { ...parsed, gateway } : parsed;
}

function checkUnique(raw: readonly unknown[], errors: FieldError[]): void {
  const seen = new Set<string>();
  raw.forEach((item, i) => {
    const name = isObj(item) ? item['name'] : undefined;
    if (typeof name !== 'string') return;
    if (seen.has(name)) errors.push(invalid(`interfaces[${i}].name`, `duplicate interface ${name}`, 'FieldValueDuplicate'));
    seen.add(name);
  });
}

/** Parses one AgentFacts document. */
export function parseAgentFacts(raw: unknown): ParseResult<AgentFacts> {
  const errors: FieldError[] = [];
  if (!isObj(raw)) return { ok: false, errors: [invalid('', 'AgentFacts must be an object')] };
  if (raw['apiVersion'] !== API_VERSION) errors.push(invalid('apiVersion', `must be ${API_VERSION}`));
  if (raw['kind'] !== AGENT_FACTS_KIND) errors.push(invalid('kind', `must be ${AGENT_FACTS_KIND}`));
  const meta = isObj(raw['metadata']) ? raw['metadata'] : {};
  const name = meta['name'];
  if (typeof name !== 'string' || name === '') errors.push(invalid('metadata.name', 'Required value', 'FieldValueRequired'));
  const labels = parseLabels(meta['labels'], errors);
  const rawInterfaces = raw['interfaces'];
  if (!Array.isArray(rawInterfaces)) errors.push(invalid('interfaces', 'must be a list'));
  const interfaces = (Array.isArray(rawInterfaces) ? rawInterfaces : []).flatMap((item: unknown, i) => {
    const parsed = parseInterface(item, `interfaces[${i}]`, errors);
    return parsed ? [parsed] : [];
  });
  checkUnique(Array.isArray(rawInterfaces) ? rawInterfaces : [], errors);
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, value: { name: name as string, labels, interfaces } };
}
