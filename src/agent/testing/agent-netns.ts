// Test support: a network namespace shaped like one agent host (veth uplink ext0 203.0.113.2/24
// with a default route via 203.0.113.1, internal int0 198.51.100.2/24, optionally ext1 192.0.2.2/24),
// for running a real `smartnat agent --netns` and for the renderers' real-tool checks. Deleting the namespace removes everything in it. Tests only.
import { execa } from 'execa';

export const AGENT_HOST_SETUP = [
  'link set lo up',
  'link add ext0 type veth peer name ext0-peer',
  'addr add 203.0.113.2/24 dev ext0',
  'link set ext0-peer up',
  'link set ext0 up',
  'route add default via 203.0.113.1 dev ext0',
  'link add int0 type veth peer name int0-peer',
  'addr add 198.51.100.2/24 dev int0',
  'link set int0-peer up',
  'link set int0 up',
] as const;

/** A second uplink, ext1 192.0.2.2/24 (no default route through it), for two-uplink tests. */
export const SECOND_UPLINK_SETUP = [
  'link add ext1 type veth peer name ext1-peer',
  'addr add 192.0.2.2/24 dev ext1',
  'link set ext1-peer up',
  'link set ext1 up',
] as const;

export async function createAgentNamespace(name: string, options: { secondUplink?: boolean } = {}): Promise<void> {
  await execa('ip', ['netns', 'add', name]);
  const setup = options.secondUplink ? [...AGENT_HOST_SETUP, ...SECOND_UPLINK_SETUP] : AGENT_HOST_SETUP;
  for (const cmd of setup) await execa('ip', ['-n', name, ...cmd.split(' ')]);
}

export async function deleteAgentNamespace(name: string): Promise<void> {
  await execa('ip', ['netns', 'del', name], { reject: false });
}
