// Parses the snapshot file `smartnat render` reads (docs/render.md): a YAML stream of Kubernetes
// objects ('---'-separated documents, or `kind: List` as kubectl prints) plus AgentFacts documents.
// Objects go through src/api's parsers; a namespaced object without a namespace gets "default"
// (as kubectl would). Guarantees: bad input becomes a SnapshotFileError naming the document and
// field; an invalid Mapping is kept as such (the planner reports it); unknown kinds are noted.
import { parseAllDocuments } from 'yaml';
import { parseEndpointSlice, parseService } from '../api/core.js';
import { parseAddressPool, parseMapping } from '../api/parse.js';
import type { AddressPool, FieldError } from '../api/types.js';
import { AGENT_FACTS_KIND, parseAgentFacts } from './agent-facts.js';
import { canonicalIpv4 } from './net.js';
import type { AgentFacts, EndpointSliceInfo, MappingEntry, ServiceInfo, Snapshot } from './snapshot.js';
import { endpointSliceInfo, serviceInfo } from './snapshot.js';

export class SnapshotFileError extends Error {
  override readonly name = 'SnapshotFileError';
}

export interface SnapshotFileOptions {
  readonly agent: string;
  /** Addresses the agent owns; undefined = every address it is eligible for. */
  readonly owns?: readonly string[];
}

export interface SnapshotFile {
  readonly snapshot: Snapshot;
  /** Things worth telling the user that do not stop the render (skipped kinds). */
  readonly notes: readonly string[];
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(o: Obj, index: number): string {
  const meta = isObj(o['metadata']) ? o['metadata'] : {};
  return `document ${index + 1} (${String(o['kind'] ?? '?')} ${String(meta['namespace'] ?? '')}${meta['namespace'] ? '/' : ''}${String(meta['name'] ?? '?')})`;
}

function fail(where: string, errors: readonly FieldError[]): never {
  throw new SnapshotFileError(`${where}: ${errors.map((e) => `${e.field || '(object)'}: ${e.message}`).join('; ')}`);
}

function withNamespace(o: Obj): Obj {
  const meta = isObj(o['metadata']) ? o['metadata'] : {};
  return meta['namespace'] === undefined ? { ...o, metadata: { ...meta, namespace: 'default' } } : o;
}

function flatten(docs: readonly unknown[]): Obj[] {
  return docs.flatMap((d): Obj[] => {
    if (d === null || d === undefined) return [];
    if (!isObj(d)) throw new SnapshotFileError(`every document must be a Kubernetes object, got ${JSON.stringify(d).slice(0, 60)}`);
    if (d['kind'] === 'List') return flatten(Array.isArray(d['items']) ? d['items'] : []);
    return [d];
  });
}

function readYaml(text: string): unknown[] {
  const docs = parseAllDocuments(text);
  const list = Array.isArray(docs) ? docs : [docs];
  for (const d of list) {
    const err = d.errors[0];
    if (err) throw new SnapshotFileError(`not valid YAML: ${err.message}`);
  }
  return list.map((d) => d.toJS() as unknown);
}

interface Collected {
  mappings: MappingEntry[];
  services: ServiceInfo[];
  slices: EndpointSliceInfo[];
  pools: AddressPool[];
  agents: AgentFacts[];
  notes: string[];
}

function mappingEntry(o: Obj): MappingEntry {
  const parsed = parseMapping(o);
  if (parsed.ok) return { ok: true, mapping: parsed.value };
  const meta = isObj(o['metadata']) ? o['metadata'] : {};
  return { ok: false, ref: { namespace: String(meta['namespace'] ?? 'default'), name: String(meta['name'] ?? '') }, errors: parsed.errors };
}

function collect(o: Obj, index: number, into: Collected): void {
  const where = describe(o, index);
  const kind = o['kind'];
  if (kind === 'Mapping') into.mappings.push(mappingEntry(withNamespace(o)));
  else if (kind === 'AddressPool') {
    const r = parseAddressPool(o);
    if (r.ok) into.pools.push(r.value);
    else fail(where, r.errors);
  } else if (kind === 'Service') {
    const r = parseService(withNamespace(o));
    if (r.ok) into.services.push(serviceInfo(r.value));
    else fail(where, r.errors);
  } else if (kind === 'EndpointSlice') {
    const r = parseEndpointSlice(withNamespace(o));
    if (r.ok) into.slices.push(endpointSliceInfo(r.value));
    else fail(where, r.errors);
  } else if (kind === AGENT_FACTS_KIND) {
    const r = parseAgentFacts(o);
    if (r.ok) into.agents.push(r.value);
    else fail(where, r.errors);
  } else into.notes.push(`${where}: kind not used by render, skipped`);
}

function parseOwns(owns: readonly string[]): Set<string> {
  return new Set(owns.map((a) => {
    const c = canonicalIpv4(a.trim());
    if (!c) throw new SnapshotFileError(`--owns: ${JSON.stringify(a)} is not an IPv4 address`);
    return c;
  }));
}

export function parseSnapshotFile(text: string, options: SnapshotFileOptions): SnapshotFile {
  const into: Collected = { mappings: [], services: [], slices: [], pools: [], agents: [], notes: [] };
  flatten(readYaml(text)).forEach((o, i) => collect(o, i, into));
  const agent = into.agents.find((a) => a.name === options.agent);
  if (!agent) {
    const known = into.agents.map((a) => a.name).join(', ') || 'none';
    throw new SnapshotFileError(`no AgentFacts document named ${JSON.stringify(options.agent)} (found: ${known})`);
  }
  const snapshot: Snapshot = {
    mappings: into.mappings,
    services: into.services,
    endpointSlices: into.slices,
    pools: into.pools,
    owned: options.owns ? parseOwns(options.owns) : 'allEligible',
    agent,
  };
  return { snapshot, notes: into.notes };
}
