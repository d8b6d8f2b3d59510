// `smartnat lab up|down|status|api` (root) and the hidden `lab proxy` the lab runs per agent.
// Guarantees: `status --json` prints exactly the descriptor of docs/lab-status.schema.json; exit 1
// when there is no lab (status) or something was left behind (down). The work is in src/lab/lab.ts.
import { Command, InvalidArgumentError } from 'commander';
import { parseHostPort, parseStatePatch, runApiProxy, type ProxyMode } from '../lab/api-proxy.js';
import { DEFAULT_LAB_NAME, DEFAULT_LAB_ROOT, LabError, cliCommand, describeLab, labDown, labUp, nextSteps, requireRoot, setApiPath } from '../lab/lab.js';
import { UsageError } from './errors.js';
import type { CliIo } from './index.js';

interface Common {
  name: string;
  root: string;
  json?: boolean;
}

function nonNegativeInt(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 600_000) throw new InvalidArgumentError('must be an integer number of milliseconds 0..600000');
  return n;
}

export function register(program: Command, io: CliIo): void {
  const lab = program.command('lab').description('a whole SmartNat installation on this machine, in network namespaces (root)');
  const common = (c: Command): Command =>
    c.option('--name <name>', 'lab name: prefix of every namespace and link', DEFAULT_LAB_NAME)
      .option('--root <dir>', 'directory holding one directory per lab', DEFAULT_LAB_ROOT);
  const log = (line: string): void => {
    io.stderr.write(`${line}\n`);
  };

  common(lab.command('up'))
    .description('bring the lab up (idempotent: a healthy lab is left alone, a broken one rebuilt)')
    .option('--json', 'print the status descriptor as JSON')
    .option('--no-agents', 'do not start the agents')
    .action(async (opts: Common & { agents: boolean }) => {
      const binDir = io.env['SMARTNAT_TESTENV_BIN'];
      const result = await labUp({
        name: opts.name, root: opts.root, log,
        agents: opts.agents ? 'auto' : 'no',
        ...(binDir ? { binDir } : {}),
      });
      for (const w of result.warnings) log(`warning: ${w}`);
      if (result.action === 'unchanged') log(`lab ${opts.name} was already up: nothing to do`);
      if (result.action === 'repaired') log(`lab ${opts.name} was repaired (${result.problems.join('; ')})`);
      if (result.action === 'rebuilt') log(`lab ${opts.name} was rebuilt (${result.problems.join('; ')})`);
      io.stdout.write(opts.json ? `${JSON.stringify(result.descriptor, null, 2)}\n` : `${nextSteps(result.descriptor, cliCommand(), result.kubectl).join('\n')}\n`);
    });

  common(lab.command('down'))
    .description('stop every process of the lab, delete its namespaces and links, remove its directory')
    .option('--json', 'print what was removed as JSON')
    .action(async (opts: Common) => {
      const report = await labDown({ name: opts.name, root: opts.root, log });
      const clean = !report.leftoverNamespaces.length && !report.leftoverProcesses.length && !report.leftoverLinks.length && report.dirRemoved;
      if (opts.json) io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else {
        io.stdout.write(`lab ${opts.name}: stopped ${report.processesStopped.length} processes, deleted ${report.namespacesDeleted.length} namespaces\n`);
        if (!clean) io.stdout.write(`left behind: namespaces [${report.leftoverNamespaces.join(' ')}] processes [${report.leftoverProcesses.join(' ')}] links [${report.leftoverLinks.join(' ')}]\n`);
      }
      if (!clean) process.exitCode = 1;
    });

  common(lab.command('status'))
    .description('describe the lab (--json: the stable descriptor scripts read)')
    .option('--json', 'print the descriptor as JSON')
    .action(async (opts: Common) => {
      const d = await describeLab({ name: opts.name, root: opts.root });
      if (!d) throw new LabError(`no lab ${opts.name} (run \`smartnat lab up${opts.name === DEFAULT_LAB_NAME ? '' : ` --name ${opts.name}`}\`)`);
      if (opts.json) {
        io.stdout.write(`${JSON.stringify(d, null, 2)}\n`);
        return;
      }
      const lines = [
        `lab ${d.name} (${d.dir})`,
        `  apiserver ${d.apiserver.url} pid ${d.apiserver.pid ?? 'DOWN'}; kubeconfig ${d.kubeconfig}`,
        ...d.agents.map((a) => `  agent ${a.name} in ${a.netns}: pid ${a.pid ?? 'DOWN'}, keepalived ${a.keepalivedPid ?? '-'}, ${a.metrics}`),
        ...d.clients.map((c) => `  client ${c.name} in ${c.netns}: ${c.address} ${c.allowed ? 'allowed' : 'not allowed'}`),
        ...d.backends.map((b) => `  backend ${b.name} in ${b.netns}: ${b.address}`),
        ...d.pools.map((p) => `  pool ${p.name}: ${p.addresses[0]}..${p.addresses[p.addresses.length - 1]} (${p.addresses.length})`),
        ...d.mappings.map((m) => `  mapping ${m.namespace}/${m.name}: ${m.addresses.join(', ')} ports ${m.ports.map((p) => `${p.port}/${p.protocol}`).join(', ')}`),
      ];
      io.stdout.write(`${lines.join('\n')}\n`);
    });

  common(lab.command('api'))
    .description("one agent's path to the API server: pass, refuse (RST) or blackhole (silence), plus a delay")
    .argument('<agent>', 'agent name, e.g. a1')
    .argument('[mode]', 'pass | refuse | blackhole (absent: show the current state)')
    .option('--delay <ms>', 'delay each direction by this much', nonNegativeInt)
    .option('--delay-up <ms>', 'delay agent -> API server', nonNegativeInt)
    .option('--delay-down <ms>', 'delay API server -> agent', nonNegativeInt)
    .option('--json', 'print the proxy state as JSON')
    .action(async (agent: string, mode: string | undefined, opts: Common & { delay?: number; delayUp?: number; delayDown?: number }) => {
      requireRoot();
      const up = opts.delayUp ?? opts.delay;
      const down = opts.delayDown ?? opts.delay;
      const raw: Record<string, unknown> = {};
      if (mode !== undefined) raw['mode'] = mode;
      if (up !== undefined || down !== undefined) raw['delayMs'] = { ...(up !== undefined ? { up } : {}), ...(down !== undefined ? { down } : {}) };
      let patch;
      try {
        patch = Object.keys(raw).length ? parseStatePatch(raw) : undefined;
      } catch (err: unknown) {
        throw new UsageError(err instanceof Error ? err.message : String(err));
      }
      const s = await setApiPath({ name: opts.name, root: opts.root, agent, ...(patch ? { patch } : {}) });
      io.stdout.write(opts.json
        ? `${JSON.stringify(s, null, 2)}\n`
        : `${agent}: ${s.mode}, delay up ${s.delayMs.up} ms / down ${s.delayMs.down} ms, ${s.stats.forwarding} forwarding, ${s.stats.held} held, ${s.stats.accepted} accepted\n`);
    });

  lab.command('proxy', { hidden: true })
    .description('(run by the lab) the API proxy of one agent')
    .requiredOption('--listen <ip:port>', 'address to listen on', parseHostPort)
    .requiredOption('--target <ip:port>', 'API server address', parseHostPort)
    .requiredOption('--control <socket>', 'unix socket of the control channel')
    .option('--ready <file>', 'written once listening')
    .option('--mode <mode>', 'initial mode', 'pass')
    .action(async (opts: { listen: ReturnType<typeof parseHostPort>; target: ReturnType<typeof parseHostPort>; control: string; ready?: string; mode: string }) => {
      let initial;
      try {
        initial = parseStatePatch({ mode: opts.mode as ProxyMode });
      } catch (err: unknown) {
        throw new UsageError(err instanceof Error ? err.message : String(err));
      }
      await runApiProxy({ listen: opts.listen, target: opts.target, control: opts.control, initial, ...(opts.ready ? { ready: opts.ready } : {}) });
    });
}
