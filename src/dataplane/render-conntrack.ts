// Decides which conntrack entries a change of desired state makes stale (DESIGN.md 3.4, ADR 0003)
// and prints each deletion as `conntrack -D` arguments. Pure. Cases: start-up (eligible addresses
// not owned), address acquired or given up, a port's endpoints going from none to some, an
// endpoint leaving, an allowed source removed, a port removed. It does not run anything.
import type { DesiredAddress, DesiredDataPlane, DesiredPort } from '../plan/desired.js';
import { netmaskText, parseCidr } from '../model/net.js';

export type ConntrackReason =
  | 'startupNotOwned'
  | 'addressAcquired'
  | 'addressReleased'
  | 'endpointsFromNone'
  | 'endpointGone'
  | 'sourceRemoved'
  | 'portRemoved';

export interface ConntrackDelete {
  readonly reason: ConntrackReason;
  /** Arguments after `conntrack`. */
  readonly args: readonly string[];
}

function byAddress(d: DesiredDataPlane | undefined): Map<string, DesiredAddress> {
  return new Map((d?.addresses ?? []).map((a) => [a.address, a]));
}

function portKey(p: DesiredPort): string {
  return `${p.protocol}/${p.port}`;
}

function whole(reason: ConntrackReason, address: string): ConntrackDelete {
  return { reason, args: ['-D', '--orig-dst', address] };
}

function onPort(reason: ConntrackReason, address: string, p: DesiredPort, extra: string[] = []): ConntrackDelete {
  return { reason, args: ['-D', '-p', p.protocol, '--orig-dst', address, '--orig-port-dst', String(p.port), ...extra] };
}

function sourceFilter(cidr: string): string[] {
  const parsed = parseCidr(cidr);
  if (!parsed || parsed.prefix === 0) return [];
  const [network = ''] = parsed.text.split('/');
  return ['-s', network, '--mask-src', netmaskText(parsed.prefix)];
}

function samePort(a: DesiredPort, b: DesiredPort): boolean {
  return a.endpoints.length === b.endpoints.length && a.sources.length === b.sources.length
    && a.endpoints.every((e, i) => e.ip === b.endpoints[i]?.ip && e.port === b.endpoints[i]?.port)
    && a.sources.every((x, i) => x === b.sources[i]);
}

function portChanges(address: string, before: DesiredPort, after: DesiredPort | undefined): ConntrackDelete[] {
  if (!after) return [onPort('portRemoved', address, before)];
  if (samePort(before, after)) return [];
  if (before.endpoints.length === 0 && after.endpoints.length > 0) return [onPort('endpointsFromNone', address, after)];
  const kept = new Set(after.endpoints.map((e) => `${e.ip}:${e.port}`));
  const gone = before.endpoints.filter((e) => !kept.has(`${e.ip}:${e.port}`)).map((e) => onPort('endpointGone', address, before, ['--reply-src', e.ip]));
  const sources = new Set(after.sources);
  const removed = before.sources.filter((s) => !sources.has(s)).map((s) => onPort('sourceRemoved', address, before, sourceFilter(s)));
  return [...gone, ...removed];
}

function addressChanges(before: DesiredAddress | undefined, after: DesiredAddress | undefined): ConntrackDelete[] {
  const wasOwned = before?.owned ?? false;
  const isOwned = after?.owned ?? false;
  const address = (after ?? before)?.address ?? '';
  if (!wasOwned && isOwned) return [whole('addressAcquired', address)];
  if (wasOwned && !isOwned) return [whole('addressReleased', address)];
  if (!wasOwned || !before || !after) return [];
  const next = new Map(after.ports.map((p) => [portKey(p), p]));
  const prevKeys = new Set(before.ports.map(portKey));
  const added = after.ports.filter((p) => !prevKeys.has(portKey(p)) && p.endpoints.length > 0);
  return [...before.ports.flatMap((p) => portChanges(address, p, next.get(portKey(p)))), ...added.map((p) => onPort('endpointsFromNone', address, p))];
}

/**
 * Deletions for going from `previous` to `next`; `previous` undefined means start-up (only the
 * eligible addresses this agent does not own are cleared: owned ones are adopted without a gap).
 */
export function computeConntrackDeletes(previous: DesiredDataPlane | undefined, next: DesiredDataPlane): ConntrackDelete[] {
  if (!previous) return next.addresses.filter((a) => !a.owned).map((a) => whole('startupNotOwned', a.address));
  const before = byAddress(previous);
  const after = byAddress(next);
  const addresses = [...new Set([...before.keys(), ...after.keys()])].sort();
  return addresses.flatMap((a) => addressChanges(before.get(a), after.get(a)));
}
