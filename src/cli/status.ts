// `smartnat status [--json]`: addresses (pool, owner, router id, since, mappings, ready) and agents
// (alive, leader, owned, draining, health) from the API server. Liveness is observed over
// --observe (default 2 s): an agent whose lease did not change in that window is shown as stale.
import type { Command } from 'commander';
import { loadKubeConfig } from '../cluster/kubeconfig.js';
import { KubeLeaseStore } from '../cluster/lease-store.js';
import { readClusterStatus } from '../cluster/status-reader.js';
import { computeStatusView, renderStatusTable } from '../plan/status-view.js';
import { UsageError } from './errors.js';
import type { CliIo } from './index.js';

export const STATUS_SCHEMA_VERSION = 1;

export function register(program: Command, io: CliIo): void {
  program
    .command('status')
    .description('show addresses, owners and agents as the API server records them')
    .option('--namespace <ns>', "the agents' lease namespace", 'smartnat-system')
    .option('--kubeconfig <path>', 'kubeconfig file (default: KUBECONFIG, in-cluster, ~/.kube/config)')
    .option('--observe <ms>', 'how long to watch agent leases change before judging liveness', '2000')
    .option('--json', 'print JSON (schemaVersion 1)')
    .action(async (opts: { namespace: string; kubeconfig?: string; observe: string; json?: boolean }) => {
      const observeMs = Number(opts.observe);
      if (!Number.isInteger(observeMs) || observeMs < 0 || observeMs > 60_000) throw new UsageError(`--observe must be 0..60000 milliseconds, got ${opts.observe}`);
      const kc = loadKubeConfig(opts.kubeconfig, io.env);
      const input = await readClusterStatus(kc, new KubeLeaseStore(kc, opts.namespace), {
        observeMs,
        sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
      });
      const view = computeStatusView(input);
      if (opts.json) {
        io.stdout.write(`${JSON.stringify({ schemaVersion: STATUS_SCHEMA_VERSION, ...view, invalidMappings: input.invalidMappings }, null, 2)}\n`);
      } else {
        io.stdout.write(renderStatusTable(view, new Date()));
        if (input.invalidMappings > 0) io.stdout.write(`(${input.invalidMappings} invalid Mapping(s) not shown: see kubectl get mappings -A)\n`);
      }
    });
}
