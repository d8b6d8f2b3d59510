// Renders policy routing (ADR 0003) as `ip -batch` input: per uplink one `ip rule fwmark` and a
// table with the connected routes and the default route, numeric table ids, our protocol number on
// every rule and route. Pure. Given the current rules/routes it emits only the difference, and it
// never names a rule or route that does not carry our protocol.
import type { DesiredDataPlane, DesiredRoute, DesiredUplink } from '../plan/desired.js';
import { hex } from './render-names.js';

export interface RouteRule {
  readonly pref: number;
  readonly fwmark: string;
  readonly table: number;
}

export interface TableRoute {
  readonly table: number;
  readonly destination: string;
  readonly gateway?: string;
  readonly device: string;
  readonly scope: 'link' | 'global';
}

export interface RoutingState {
  readonly rules: readonly RouteRule[];
  readonly routes: readonly TableRoute[];
}

export function computeRouting(desired: DesiredDataPlane): RoutingState {
  const fwmark = (u: DesiredUplink): string => `${hex(u.mark)}/${hex(desired.settings.uplinkMarkMask)}`;
  const rules = desired.uplinks.map((u) => ({ pref: u.pref, fwmark: fwmark(u), table: u.table }));
  const routes = desired.uplinks.flatMap((u) => u.routes.map((r: DesiredRoute) => ({ ...r, table: u.table })));
  return { rules, routes };
}

function ruleKey(r: RouteRule): string {
  return `${r.pref} ${r.fwmark} ${r.table}`;
}

function routeKey(r: TableRoute): string {
  return `${r.table} ${r.destination} ${r.gateway ?? ''} ${r.device} ${r.scope}`;
}

function ruleLine(verb: 'add' | 'del', r: RouteRule, protocol: number): string {
  return `rule ${verb} pref ${r.pref} fwmark ${r.fwmark} lookup ${r.table} protocol ${protocol}`;
}

function routeLine(r: TableRoute, protocol: number): string {
  const via = r.gateway ? ` via ${r.gateway}` : '';
  return `route replace ${r.destination}${via} dev ${r.device} table ${r.table} proto ${protocol} scope ${r.scope}`;
}

export interface RoutesInput {
  readonly desired: RoutingState;
  /** Our rules and routes in the kernel now (protocol = ours); empty from nothing. */
  readonly current: RoutingState;
  readonly protocol: number;
}

/** `ip -batch` input: stale routes and rules deleted, missing ones added ('' when equal). */
export function renderRoutes(input: RoutesInput): string {
  const wantRules = new Set(input.desired.rules.map(ruleKey));
  const haveRules = new Set(input.current.rules.map(ruleKey));
  const wantRoutes = new Set(input.desired.routes.map(routeKey));
  const haveRoutes = new Set(input.current.routes.map(routeKey));
  const lines = [
    ...input.current.routes.filter((r) => !wantRoutes.has(routeKey(r))).map((r) => `route del ${r.destination} dev ${r.device} table ${r.table} proto ${input.protocol}`),
    ...input.current.rules.filter((r) => !wantRules.has(ruleKey(r))).map((r) => ruleLine('del', r, input.protocol)),
    ...input.desired.routes.filter((r) => !haveRoutes.has(routeKey(r))).map((r) => routeLine(r, input.protocol)),
    ...input.desired.rules.filter((r) => !haveRules.has(ruleKey(r))).map((r) => ruleLine('add', r, input.protocol)),
  ];
  return lines.length ? `${lines.join('\n')}\n` : '';
}

export function renderRoutesFromNothing(desired: DesiredDataPlane): string {
  return renderRoutes({ desired: computeRouting(desired), current: { rules: [], routes: [] }, protocol: desired.settings.routeProtocol });
}
