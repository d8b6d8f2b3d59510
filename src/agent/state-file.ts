// The agent's local memory across restarts (DESIGN.md 3.5): the addresses it last held and the
// keepalived instances it carried. Guarantees: written atomically (temp file + rename); a missing
// or unreadable file reads as "nothing held". Does not decide anything: the agent re-adopts from it
// at the degraded priority only while the API is unreachable at start.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { KeepalivedInstanceInput } from '../keepalived/render.js';

export interface AgentState {
  readonly agent: string;
  readonly held: readonly string[];
  readonly instances: readonly KeepalivedInstanceInput[];
}

export async function readAgentState(path: string, agent: string): Promise<AgentState | undefined> {
  try {
    const raw = JSON.parse(await readFile(path, 'utf8')) as Partial<AgentState>;
    if (raw.agent !== agent || !Array.isArray(raw.held) || !Array.isArray(raw.instances)) return undefined;
    return { agent, held: raw.held.filter((h): h is string => typeof h === 'string'), instances: raw.instances };
  } catch {
    return undefined;
  }
}

export async function writeAgentState(path: string, state: AgentState): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp`;
  await writeFile(tmp, `${JSON.stringify(state)}\n`);
  await rename(tmp, path);
}
