// Watches one floating address on every agent namespace of a lab at once: one `ip -ts monitor
// address` per namespace (kernel notifications, so even a change that lasts a millisecond is seen),
// plus `ip -j addr` snapshots at the start and the end. Guarantees: stop() ends every monitor and
// checks that the replayed end state equals what the kernel shows (a monitor that missed a change
// is an error, not a silent pass). Does not judge: replayWire (wire-timeline.ts) does.
import { ExecaDaemonLauncher, type Daemon } from '../dataplane/daemon.js';
import type { CommandRunner } from '../dataplane/command-runner.js';
import { parseMonitorLine, replayWire, type AddressEvent, type WireTimeline } from './wire-timeline.js';

export interface WatchedAgent {
  readonly name: string;
  readonly netns: string;
}

/** How long a fresh `ip monitor` gets to subscribe before the initial snapshot (it prints nothing when ready). */
const SUBSCRIBE_MS = 300;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const wallNow = (): number => performance.timeOrigin + performance.now();

/** The agents whose interfaces carry `address` now (`ip -n NS -4 -j addr show`). */
export async function carriersOf(host: CommandRunner, agents: readonly WatchedAgent[], address: string): Promise<string[]> {
  const on: string[] = [];
  for (const a of agents) {
    const { stdout } = await host.run('ip', ['-n', a.netns, '-4', '-j', 'addr', 'show']);
    const links = JSON.parse(stdout) as { addr_info?: { local?: string }[] }[];
    if (links.some((l) => (l.addr_info ?? []).some((i) => i.local === address))) on.push(a.name);
  }
  return on.sort();
}

export class WireWatch {
  readonly events: AddressEvent[] = [];
  readonly #daemons: { agent: string; daemon: Daemon; exited: Promise<void> }[] = [];
  #initial: string[] = [];
  #start = 0;

  private constructor(
    private readonly host: CommandRunner,
    private readonly agents: readonly WatchedAgent[],
    readonly address: string,
  ) {}

  /** Starts a monitor in every agent's namespace, then takes the initial snapshot. */
  static async start(host: CommandRunner, agents: readonly WatchedAgent[], address: string): Promise<WireWatch> {
    const w = new WireWatch(host, agents, address);
    for (const a of agents) {
      let exit: () => void = () => undefined;
      const exited = new Promise<void>((r) => (exit = r));
      // TZ=UTC: `ip -ts` prints local time without a zone.
      const daemon = new ExecaDaemonLauncher(a.netns).launch('env', ['TZ=UTC', 'ip', '-ts', '-4', 'monitor', 'address'], {
        dieWithParent: 'KILL',
        onOutput: (line) => {
          const e = parseMonitorLine(line, address);
          if (e) w.events.push({ ...e, agent: a.name });
        },
        onExit: () => exit(),
      });
      w.#daemons.push({ agent: a.name, daemon, exited });
    }
    await sleep(SUBSCRIBE_MS);
    w.#start = wallNow();
    w.#initial = await carriersOf(host, agents, address);
    return w;
  }

  /** Who carries the address now, from the kernel. */
  async carriers(): Promise<string[]> {
    return carriersOf(this.host, this.agents, this.address);
  }

  /** Ends the monitors and replays what they saw; throws when the replay disagrees with the kernel. */
  async stop(): Promise<WireTimeline & { readonly initial: readonly string[]; readonly events: number }> {
    const actual = await this.carriers();
    const end = wallNow();
    // Lines already written reach us shortly; give them a moment before ending the monitors.
    await sleep(200);
    for (const d of this.#daemons) d.daemon.signal('SIGTERM');
    await Promise.all(this.#daemons.map((d) => d.exited));
    const timeline = replayWire(this.#initial, this.events, this.#start, end);
    if (timeline.final.join(',') !== actual.join(',')) {
      throw new Error(`the monitors of ${this.address} end with [${timeline.final.join(',')}] but the kernel shows [${actual.join(',')}]: a change was missed`);
    }
    return { ...timeline, initial: this.#initial, events: this.events.length };
  }
}
