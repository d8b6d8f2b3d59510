#!/usr/bin/env node
// The smartnat CLI. The only file that reads process.env and process.argv; it builds the real
// adapters and hands them to one subcommand. Exit codes: 0 ok, 1 failure, 2 usage.
import { Command, CommanderError } from 'commander';
import { registerCommands } from './cli/index.js';
import { UsageError } from './cli/errors.js';

const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

async function main(argv: readonly string[]): Promise<number> {
  const program = new Command('smartnat')
    .description('Expose Kubernetes TCP/UDP Services on floating external addresses')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  registerCommands(program, { env: process.env, stdout: process.stdout, stderr: process.stderr });
  try {
    await program.parseAsync([...argv]);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK;
  } catch (err: unknown) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT_OK;
      return EXIT_USAGE;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`smartnat: ${err.message}\n`);
      return EXIT_USAGE;
    }
    process.stderr.write(`smartnat: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_FAILURE;
  }
}

main(process.argv).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`smartnat: ${String(err)}\n`);
    process.exit(EXIT_FAILURE);
  },
);
