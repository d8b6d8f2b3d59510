// Registers every subcommand on the commander program. Each subcommand lives in its own file and
// exports `register(program, io)`; main.ts passes the process's environment and streams.
import type { Command } from 'commander';
import { register as registerAgent } from './agent.js';
import { register as registerCleanup } from './cleanup.js';
import { register as registerDrain } from './drain.js';
import { register as registerDrill } from './drill.js';
import { register as registerLab } from './lab.js';
import { register as registerRender } from './render.js';
import { register as registerStatus } from './status.js';
import { register as registerWatchdog } from './watchdog.js';

export interface CliIo {
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

type Register = (program: Command, io: CliIo) => void;

const registrars: Register[] = [registerAgent, registerRender, registerCleanup, registerStatus, registerDrain, registerWatchdog, registerLab, registerDrill];

export function registerCommands(program: Command, io: CliIo): void {
  for (const register of registrars) register(program, io);
}
