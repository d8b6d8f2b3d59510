// Test support for agent integration tests: a scenario is a fresh lease namespace, an AddressPool,
// N address leases (created as the leader would) and agents built by makeTestAgent, plus a sampler
// that records every moment two live agents' keepalived carry one address as holders.
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { createTestNamespace, loadTestKubeConfig, waitFor } from '../../../test/support/kube.js';
import { GROUP, VERSION } from '../../api/types.js';
import { createAddressLease } from '../../cluster/lease-protocol.js';
import { KubeLeaseStore } from '../../cluster/lease-store.js';
import type { LeaseSettings } from '../../plan/lease-settings.js';
import { makeTestAgent, type TestAgent } from './agents.js';
import { FreezableProxy } from './tcp-proxy.js';

export const SETTINGS: LeaseSettings = {
  leaseDurationMs: 3000,
  renewDeadlineMs: 2000,
  retryPeriodMs: 500,
  takeoverBurst: 256,
  takeoverPerSecond: 64,
  fenceBurst: 4,
};

export function addresses(n: number, first = 10): string[] {
  return Array.from({ length: n }, (_, i) => `203.0.113.${first + i}`);
}

export interface Scenario {
  readonly kc: KubeConfig;
  readonly ns: string;
  readonly pool: string;
  readonly store: KubeLeaseStore;
  readonly agents: TestAgent[];
  readonly addresses: string[];
  /** Agents whose process state is gone (not sampled). */
  readonly dead: Set<string>;
  readonly violations: string[];
  holders(): Promise<Map<string, string>>;
  transitions(): Promise<Map<string, number>>;
  stop(): Promise<void>;
}

export const running: Scenario[] = [];

/** A kubeconfig like `kc` whose server is reached through a FreezableProxy. */
export async function proxiedKubeConfig(kc: KubeConfig): Promise<{ kc: KubeConfig; proxy: FreezableProxy }> {
  const url = new URL(kc.getCurrentCluster()?.server ?? '');
  const proxy = new FreezableProxy(url.hostname, Number(url.port));
  const port = await proxy.listen();
  const config = JSON.parse(kc.exportConfig()) as { clusters: { cluster: { server: string } }[] };
  for (const c of config.clusters) c.cluster.server = `https://127.0.0.1:${port}`;
  const copy = new KubeConfig();
  copy.loadFromString(JSON.stringify(config));
  return { kc: copy, proxy };
}

export async function scenario(opts: { count: number; agents?: number; settings?: LeaseSettings; kc?: KubeConfig; handoffGraceMs?: number; proxy?: FreezableProxy; proxiedKc?: KubeConfig; proxied?: number; proxiedWhole?: boolean; unsampled?: readonly string[]; stateDir?: string; withLeader?: boolean; firstHost?: number }): Promise<Scenario> {
  const kc = opts.kc ?? loadTestKubeConfig();
  const settings = opts.settings ?? SETTINGS;
  const ns = await createTestNamespace('agt-', kc);
  const pool = `agt-${ns}`;
  const list = addresses(opts.count, opts.firstHost);
  await kc.makeApiClient(CustomObjectsApi).createClusterCustomObject({
    group: GROUP,
    version: VERSION,
    plural: 'addresspools',
    body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'AddressPool', metadata: { name: pool }, spec: { addresses: [`${list[0]}-${list[list.length - 1]}`] } },
  });
  const store = new KubeLeaseStore(kc, ns);
  const agents = Array.from({ length: opts.agents ?? 3 }, (_, i) =>
    makeTestAgent({
      kc: opts.proxied === i && opts.proxiedKc && opts.proxiedWhole === true ? opts.proxiedKc : kc,
      namespace: ns,
      watchNamespaces: [ns],
      name: `agent-${i}`,
      index: i,
      settings,
      handoffGraceMs: opts.handoffGraceMs ?? 300,
      ...(opts.stateDir ? { stateFile: `${opts.stateDir}/agent-${i}.json` } : {}),
      ...(opts.withLeader ? { withLeader: true } : {}),
      ...(opts.proxied === i && opts.proxiedKc ? { leaseKc: opts.proxiedKc } : {}),
    }),
  );
  const dead = new Set<string>();
  const violations: string[] = [];
  const sampler = setInterval(() => {
    const carriers = new Map<string, string[]>();
    for (const a of agents) {
      if (dead.has(a.agent.name) || opts.unsampled?.includes(a.agent.name)) continue;
      for (const address of a.keepalived.holding()) carriers.set(address, [...(carriers.get(address) ?? []), a.agent.name]);
    }
    for (const [address, who] of carriers) {
      if (who.length < 2) continue;
      const detail = agents.map((a) => `${a.agent.name}:${JSON.stringify(a.keepalived.tracks.get(address))}/held=${a.agent.held().has(address)}/releasing=${a.agent.releasingNow().has(address)}`);
      violations.push(`${address} carried by ${who.join(', ')} [${detail.join(' ')}] at ${Math.round(performance.now())}`);
    }
  }, 50);
  const leases = async (): Promise<Awaited<ReturnType<KubeLeaseStore['list']>>['items']> => (await store.list('address')).items;
  const s: Scenario = {
    kc,
    ns,
    pool,
    store,
    agents,
    addresses: list,
    dead,
    violations,
    holders: async () => new Map((await leases()).map((l) => [l.name.replace('smartnat-addr-', '').split('-').join('.'), l.holder])),
    transitions: async () => new Map((await leases()).map((l) => [l.name, l.leaseTransitions])),
    stop: async () => {
      clearInterval(sampler);
      await opts.proxy?.close();
      await Promise.all(agents.filter((a) => !dead.has(a.agent.name)).map(async (a) => a.agent.kill()));
      agents.forEach((a) => dead.add(a.agent.name));
      await kc.makeApiClient(CustomObjectsApi).deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: 'addresspools', name: pool }).catch(() => undefined);
    },
  };
  running.push(s);
  await Promise.all(agents.map(async (a) => a.agent.start()));
  // As in a cluster: agents are up before Mappings exist and the leader creates address leases.
  await waitFor(() => agents.every((a) => a.agent.view.agentViews(0).length === agents.length), { what: 'every agent sees every agent lease' });
  if (!opts.withLeader) for (const [i, address] of list.entries()) await createAddressLease(store, { address, pool, vrid: i + 1 }, settings);
  return s;
}

export function count(holders: Map<string, string>): Map<string, number> {
  const out = new Map<string, number>();
  for (const h of holders.values()) out.set(h, (out.get(h) ?? 0) + 1);
  return out;
}

export async function allHeld(s: Scenario, by?: (address: string, holder: string) => boolean, timeoutMs = 30_000): Promise<Map<string, string>> {
  return waitFor(
    async () => {
      const h = await s.holders();
      const ok = s.addresses.every((a) => {
        const holder = h.get(a) ?? '';
        return holder !== '' && !s.dead.has(holder) && (by === undefined || by(a, holder));
      });
      // Every live agent's keepalived agrees with the leases (NAT programmed, priority raised).
      const carried = ok && s.agents.every((t) => s.dead.has(t.agent.name) || t.keepalived.holding().join() === s.addresses.filter((a) => h.get(a) === t.agent.name).sort().join());
      return carried ? h : undefined;
    },
    { timeoutMs, what: 'every address held by a live agent and carried by its keepalived' },
  );
}

