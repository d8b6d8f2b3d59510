// One lab per wire-level test file (health-handoff, pod-agent, quick-restart): brings it up before
// the file's tests with a unique `ha` name, opens a WireDrill on it and waits until it settled;
// after them prints the collected results and brings the lab down, failing if anything was left.
// Call at the top level of a test file (it registers jest hooks).
import { afterAll, beforeAll, expect } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { labDown, labUp, type UpOptions } from '../lab.js';
import { WireDrill } from '../wire-drill.js';

export interface WireLab {
  readonly name: string;
  readonly log: (line: string) => void;
  /** Lines printed once after the file's tests. */
  readonly results: string[];
  /** The drill on the lab (after beforeAll). */
  drill(): WireDrill;
}

export function useWireLab(options: Omit<UpOptions, 'name' | 'log' | 'binDir'> = {}): WireLab {
  const name = `ha${randomBytes(4).toString('hex').slice(0, 6)}`;
  const log = (line: string): void => {
    process.stderr.write(`[${name}] ${line}\n`);
  };
  const results: string[] = [];
  let drill: WireDrill | undefined;
  beforeAll(async () => {
    const binDir = process.env['SMARTNAT_TESTENV_BIN'];
    await labUp({ ...options, name, log, ...(binDir ? { binDir } : {}) });
    drill = await WireDrill.open(name);
    await drill.settled();
  }, 300_000);
  afterAll(async () => {
    if (results.length) log(`results:\n  ${results.join('\n  ')}`);
    const report = await labDown({ name, log });
    expect({ namespaces: report.leftoverNamespaces, processes: report.leftoverProcesses, links: report.leftoverLinks }).toEqual({ namespaces: [], processes: [], links: [] });
  }, 180_000);
  return {
    name,
    log,
    results,
    drill: () => {
      if (drill === undefined) throw new Error(`lab ${name} is not up`);
      return drill;
    },
  };
}
