// `smartnat cleanup`: removes everything SmartNat created on this host (SMARTNAT-* chains and the
// jumps into them, smartnat-* sets, ip rules and routes with our protocol number) and nothing else.
// Needs root. `--netns NAME` aims it at a network namespace (tests, the lab).
import type { Command } from 'commander';
import { DEFAULT_SETTINGS } from '../model/settings.js';
import { cleanupDataPlane } from '../dataplane/cleanup.js';
import { ExecaCommandRunner } from '../dataplane/command-runner.js';
import type { CliIo } from './index.js';

export function register(program: Command, io: CliIo): void {
  program
    .command('cleanup')
    .description('remove every chain, set, ip rule and route SmartNat created, and nothing else')
    .option('--netns <name>', 'run inside this network namespace')
    .option('--json', 'print what was removed as JSON')
    .action(async (opts: { netns?: string; json?: boolean }) => {
      const report = await cleanupDataPlane({ runner: new ExecaCommandRunner(opts.netns), settings: DEFAULT_SETTINGS });
      io.stdout.write(opts.json
        ? `${JSON.stringify(report)}\n`
        : `removed ${report.chains.length} chains, ${report.jumps} jumps, ${report.sets.length} sets, ${report.rules} ip rules, ${report.routes} routes\n`);
    });
}
