// `smartnat drain AGENT` / `smartnat undrain AGENT`: a merge patch of the drain annotation on the
// agent's lease (ADR 0005); every agent then leaves it out of its ranking and the drained agent
// hands its addresses to their successors. Guarantees: exit 1 with a clear message when the agent
// lease does not exist; touches nothing else. Does not wait for the addresses to move.
import type { Command } from 'commander';
import type { LeaseStore } from '../cluster/lease-store.js';
import { KubeLeaseStore } from '../cluster/lease-store.js';
import { loadKubeConfig } from '../cluster/kubeconfig.js';
import { ANNOTATION_DRAIN, agentLeaseName } from '../plan/lease-names.js';
import type { CliIo } from './index.js';

export class AgentLeaseMissingError extends Error {
  override readonly name = 'AgentLeaseMissingError';
}

/** Sets (`on`) or removes the drain annotation on `agent`'s lease. */
export async function drainAgent(store: LeaseStore, agent: string, on: boolean): Promise<void> {
  const name = agentLeaseName(agent);
  const r = await store.patchAnnotations(name, { [ANNOTATION_DRAIN]: on ? 'true' : null });
  if (r.outcome === 'notFound') {
    throw new AgentLeaseMissingError(`agent ${agent} has no lease ${name} in namespace ${store.namespace}: is the name right, and is the agent running there?`);
  }
  if (r.outcome !== 'written') throw new Error(`${on ? 'drain' : 'undrain'} ${agent}: ${r.outcome}: ${r.message}`);
}

interface DrainFlags {
  readonly namespace: string;
  readonly kubeconfig?: string;
}

export function register(program: Command, io: CliIo): void {
  for (const on of [true, false]) {
    const verb = on ? 'drain' : 'undrain';
    program
      .command(`${verb} <agent>`)
      .description(on ? 'hand every address of AGENT to its successors and keep it out of the ranking' : 'let AGENT own addresses again (it gets some back through the rebalance hold-down)')
      .option('--namespace <ns>', 'namespace of the agents\' leases', 'smartnat-system')
      .option('--kubeconfig <file>', 'kubeconfig (default: KUBECONFIG, in-cluster, ~/.kube/config)')
      .action(async (agent: string, flags: DrainFlags) => {
        const kc = loadKubeConfig(flags.kubeconfig, io.env);
        await drainAgent(new KubeLeaseStore(kc, flags.namespace), agent, on);
        io.stdout.write(`${verb}ed ${agent}\n`);
      });
  }
}
