// `smartnat agent`: runs one SmartNat agent. Parses and validates the flags (every problem at once,
// exit 2), builds the real adapters (lease store, informers, applier, keepalived supervisor or the
// files-only port, elector and leader duties, health server) and runs until SIGTERM/SIGINT, then
// hands every held address to its successor, waits the grace period, stops keepalived, exits 0.
// Does not read process.env or argv (main.ts passes them in).
import { startCpuProfile } from './cpu-profile.js';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { Registry } from 'prom-client';
import { Agent } from '../agent/agent.js';
import { discoverInterfaces, probeLinks } from '../agent/facts.js';
import { EligibilityRecorder, ReachabilityMonitor, vrrpHealth } from '../agent/health-inputs.js';
import { HealthServer, DEFAULT_METRICS_ADDRESS, parseListenAddress } from '../agent/health-server.js';
import { KeepalivedFiles } from '../agent/keepalived-files.js';
import { KeepalivedStateMetric, withKeepalivedStateMetric } from '../agent/keepalived-state.js';
import { LeaderDuties } from '../agent/leader-duties.js';
import { leaderDutiesHook } from '../agent/leader-hook.js';
import { createAgentMetrics } from '../agent/metrics.js';
import { registerMappingTraffic } from '../agent/mapping-metrics.js';
import { ObservedDataPlane } from '../agent/dataplane-observer.js';
import { instrumentConfiguredAddressWriter, instrumentEventSink, instrumentLeaseStore, instrumentStatusWriter } from '../agent/api-metrics.js';
import type { KeepalivedPort } from '../agent/ports.js';
import { KubeAgentEventSink, takenOverEvent } from '../cluster/agent-events.js';
import { realClock } from '../cluster/clock.js';
import { KubeConfiguredAddressWriter, readNodeLabels } from '../cluster/configured-addresses.js';
import { DedupingEventRecorder, KubeEventSink } from '../cluster/events.js';
import { ResourceInformers } from '../cluster/informers.js';
import { loadKubeConfig } from '../cluster/kubeconfig.js';
import { LeaderElector } from '../cluster/leader-elector.js';
import { LeaseInformer } from '../cluster/lease-informer.js';
import { KubeLeaseStore } from '../cluster/lease-store.js';
import { KubeStatusWriter } from '../cluster/status-writer.js';
import { DataPlaneApplier } from '../dataplane/apply.js';
import { ExecaCommandRunner } from '../dataplane/command-runner.js';
import { MappingCounterReader } from '../dataplane/counters.js';
import { probeDuplicateAddress } from '../dataplane/arp-probe.js';
import { ExecaDaemonLauncher } from '../dataplane/daemon.js';
import type { VrrpStateChange } from '../keepalived/notify.js';
import { compileKeepalivedTemplate, renderKeepalivedConfig } from '../keepalived/render.js';
import { KeepalivedSupervisor } from '../keepalived/supervisor.js';
import { createLogger } from '../log/logger.js';
import { DEFAULT_SETTINGS, validateSettings } from '../model/settings.js';
import type { InterfaceRole } from '../model/snapshot.js';
import type { LeaseView } from '../plan/lease-view.js';
import { DEFAULT_LEASE_SETTINGS, validateLeaseSettings, type LeaseSettings } from '../plan/lease-settings.js';
import { UsageError } from './errors.js';
import type { CliIo } from './index.js';

export interface AgentFlags {
  readonly name?: string;
  readonly namespace: string;
  readonly kubeconfig?: string;
  readonly labels?: string;
  readonly interface: string[];
  readonly stateDir: string;
  readonly leaseDuration?: string;
  readonly renewDeadline?: string;
  readonly retryPeriod?: string;
  readonly rebalanceHoldDown?: string;
  readonly handoffGrace: string;
  readonly keepalived: boolean;
  readonly metricsAddress: string;
  readonly logLevel: string;
  readonly netns?: string;
}

export interface AgentConfig {
  readonly name: string;
  readonly namespace: string;
  readonly labels?: Record<string, string>;
  readonly interfaces: Record<string, InterfaceRole>;
  readonly settings: LeaseSettings;
  readonly handoffGraceMs: number;
  readonly listen: { host: string; port: number };
}

/** "1500ms", "1.5s", "2m" or a bare number of milliseconds. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  return Math.round(m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n);
}

const LABEL = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?=([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/;

/** Flags -> config, with every problem listed (UsageError, exit 2). */
export function parseAgentFlags(flags: AgentFlags, env: Readonly<Record<string, string | undefined>>, host: string): AgentConfig {
  const problems: string[] = [];
  const name = flags.name ?? env.NODE_NAME ?? host;
  if (!DNS_SUBDOMAIN.test(name)) problems.push(`--name ${JSON.stringify(name)} must be a lowercase DNS name (it names the agent lease)`);
  let labels: Record<string, string> | undefined;
  if (flags.labels !== undefined) {
    labels = {};
    for (const pair of flags.labels.split(',').filter((p) => p !== '')) {
      if (!LABEL.test(pair)) problems.push(`--labels: ${JSON.stringify(pair)} is not key=value with a valid label key and value`);
      const [k = '', v = ''] = pair.split('=');
      labels[k] = v;
    }
  }
  const interfaces: Record<string, InterfaceRole> = {};
  for (const spec of flags.interface) {
    const [itf = '', role = ''] = spec.split('=');
    if (role !== 'external' && role !== 'internal') problems.push(`--interface ${spec}: must be NAME=external or NAME=internal`);
    else interfaces[itf] = role;
  }
  const duration = (flag: string, text: string | undefined, fallback: number): number => {
    if (text === undefined) return fallback;
    const ms = parseDuration(text);
    if (ms === undefined) problems.push(`${flag} ${JSON.stringify(text)}: not a duration (1500ms, 1.5s)`);
    return ms ?? fallback;
  };
  const d = DEFAULT_LEASE_SETTINGS;
  const holdDown = flags.rebalanceHoldDown;
  const rebalanceOff = holdDown === 'off' || holdDown === '0';
  const { rebalance: defaultRebalance, ...base } = d;
  const settings: LeaseSettings = {
    ...base,
    leaseDurationMs: duration('--lease-duration', flags.leaseDuration, d.leaseDurationMs),
    renewDeadlineMs: duration('--renew-deadline', flags.renewDeadline, d.renewDeadlineMs),
    retryPeriodMs: duration('--retry-period', flags.retryPeriod, d.retryPeriodMs),
    ...(rebalanceOff || defaultRebalance === undefined ? {} : { rebalance: { ...defaultRebalance, holdDownMs: duration('--rebalance-hold-down', holdDown, defaultRebalance.holdDownMs) } }),
  };
  problems.push(...validateLeaseSettings(settings));
  const handoffGraceMs = duration('--handoff-grace', flags.handoffGrace, 2000);
  const listen = parseListenAddress(flags.metricsAddress);
  if (!listen) problems.push(`--metrics-address ${JSON.stringify(flags.metricsAddress)}: must be host:port`);
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(flags.logLevel)) problems.push(`--log-level ${flags.logLevel}: unknown level`);
  if (problems.length > 0) throw new UsageError(`invalid agent configuration:\n  ${problems.join('\n  ')}`);
  return { name, namespace: flags.namespace, ...(labels ? { labels } : {}), interfaces, settings, handoffGraceMs, listen: listen ?? { host: '127.0.0.1', port: 9655 } };
}

export interface SignalSource {
  on(signal: 'SIGTERM' | 'SIGINT', handler: () => void): void;
}

/** Runs the agent until a signal; resolves after the planned handoff and shutdown. */
export async function runAgent(flags: AgentFlags, io: CliIo, signals: SignalSource): Promise<void> {
  const config = parseAgentFlags(flags, io.env, hostname().toLowerCase());
  const dpProblems = validateSettings(DEFAULT_SETTINGS).filter((p) => p.problem !== 'overlapsForeignBits');
  if (dpProblems.length > 0) throw new UsageError(dpProblems.map((p) => p.message).join('; '));
  const log = createLogger({ level: flags.logLevel, destination: io.stderr });
  const kc = loadKubeConfig(flags.kubeconfig, io.env);
  const clock = realClock;
  const runner = new ExecaCommandRunner(flags.netns);
  const discovered = await discoverInterfaces(runner, config.interfaces);
  const labels = config.labels ?? (await readNodeLabels(kc, config.name)) ?? {};
  const registry = new Registry();
  const metrics = createAgentMetrics(registry);
  // Every API request through the agent's ports is timed and its failures counted (api-metrics.ts).
  const store = instrumentLeaseStore(new KubeLeaseStore(kc, config.namespace), metrics);
  const stateDir = flags.stateDir;
  const ref: { agent?: Agent } = {};
  const trigger = (reason: string): void => ref.agent?.trigger(reason);
  const cluster = new ResourceInformers({ kc, changed: () => ref.agent?.resourcesChanged(), onError: (c, err) => log.warn({ component: 'informers', collection: c, err }, 'watch failed; restarting') });
  let keepalivedPort: KeepalivedPort;
  // smartnat_keepalived_state from the notify FIFO in both modes (the chart's keepalived shares the state dir).
  const vrrpMetric = new KeepalivedStateMetric(metrics.keepalivedState);
  // keepalived's last reported state per address (either mode's FIFO): a health input (health-inputs.ts).
  const vrrpStates = new Map<string, VrrpStateChange>();
  if (flags.keepalived) {
    const supervisor = new KeepalivedSupervisor({
      runner,
      launcher: new ExecaDaemonLauncher(flags.netns),
      stateDir,
      log: log.child({ component: 'keepalived' }),
      onStateChange: (change) => {
        vrrpMetric.observe(change);
        vrrpStates.set(change.address, change);
        trigger('vrrp');
      },
    });
    keepalivedPort = withKeepalivedStateMetric(supervisor, vrrpMetric);
  } else {
    keepalivedPort = withKeepalivedStateMetric(new KeepalivedFiles(stateDir, runner, log.child({ component: 'keepalived' }), {
      onStateChange: (change) => {
        vrrpMetric.observe(change);
        vrrpStates.set(change.address, change);
      },
    }), vrrpMetric);
  }
  const eligibility = new EligibilityRecorder(keepalivedPort);
  const applier = new DataPlaneApplier({ runner });
  // Per-Mapping connections, packets and bytes from our rule and set counters, read at scrape time in the applier's namespace.
  registerMappingTraffic(registry, new MappingCounterReader({ runner, current: () => applier.current() }), log.child({ component: 'metrics' }));
  const reachability = new ReachabilityMonitor({
    runner,
    desired: () => applier.current(),
    internal: discovered.interfaces.filter((i) => i.role === 'internal').map((i) => i.name),
    log: log.child({ component: 'health' }),
  });
  const template = compileKeepalivedTemplate(await readFile(new URL('../../templates/keepalived.conf.hbs', import.meta.url), 'utf8'));
  const elector = new LeaderElector(store, config.name, config.settings, clock, {
    startedLeading: () => trigger('leader'),
    stoppedLeading: () => trigger('leader'),
    error: (err: unknown) => log.debug({ component: 'leader', err }, 'leader election error'),
  });
  const duties = new LeaderDuties({ leases: store, status: instrumentStatusWriter(new KubeStatusWriter(kc), metrics), events: new DedupingEventRecorder(instrumentEventSink(new KubeEventSink(kc, config.name), metrics), clock), namespace: config.namespace, log: log.child({ component: 'leader' }), clock, settings: config.settings });
  const agentEvents = instrumentEventSink(new KubeAgentEventSink(kc, config.namespace, config.name), metrics);
  const created: Agent = new Agent({
    name: config.name,
    clock,
    log: log.child({ component: 'agent' }),
    metrics,
    settings: config.settings,
    dataPlaneSettings: DEFAULT_SETTINGS,
    store,
    cluster,
    makeLeaseFeed: (view, changed) =>
      new LeaseInformer({ kc, namespace: config.namespace, view, clock, changed, quietAfterMs: Math.max(30_000, 4 * config.settings.leaseDurationMs), onError: (err: unknown) => log.warn({ component: 'leases', err }, 'lease watch failed; restarting') }),
    // Rule/set sizes after each apply; one DataPlaneApplyFailed Event on the agent's Lease per failure streak.
    applier: new ObservedDataPlane(applier, { metrics, events: agentEvents, clock, log: log.child({ component: 'dataplane' }) }),
    // One FailoverCompleted / HandoffCompleted Event per address received, off the sync path.
    onTakenOver: (e) => {
      const event = takenOverEvent(e);
      agentEvents.create(event, clock.wallTime()).catch((err: unknown) => log.warn({ component: 'agent', address: e.address, reason: event.reason, err }, 'cannot record the Event'));
    },
    keepalived: { port: eligibility, render: (input) => renderKeepalivedConfig(template, input), stateDir },
    statusWriter: instrumentConfiguredAddressWriter(new KubeConfiguredAddressWriter(kc, config.name), metrics),
    local: { facts: { name: config.name, labels, interfaces: discovered.interfaces }, macs: discovered.macs },
    stateFile: join(stateDir, 'ownership.json'),
    handoffGraceMs: config.handoffGraceMs,
    // Health (src/plan/agent-health.ts): links, keepalived FAULT of eligible addresses, internal reachability.
    links: async () => [...(await probeLinks(runner, discovered.interfaces)), ...vrrpHealth(eligibility, () => vrrpStates), ...reachability.samples()],
    arpProbe: async (iface, address) => probeDuplicateAddress(runner, iface, address),
    leader: { elector, duties: leaderDutiesHook(duties, { objects: () => cluster.objects(), view: (): LeaseView => created.view, me: config.name, settings: config.settings, clock }) },
  });
  ref.agent = created;
  const health = new HealthServer({ live: () => created.live(), ready: () => created.ready() }, registry);
  const bound = await health.listen(config.listen.host, config.listen.port);
  log.info({ component: 'agent', agent: config.name, namespace: config.namespace, metrics: `${bound.address}:${bound.port}`, interfaces: discovered.interfaces.map((i) => `${i.name}=${i.role}`) }, 'starting');
  const stop = new Promise<string>((resolve) => {
    // `on`, not `once`: execa's signal-exit handler (installed while a command runs) re-raises a
    // signal when it finds only its own listeners left, and a `once` listener is removed before the
    // others run, so a SIGTERM arriving mid-command killed the agent without its handoff.
    signals.on('SIGTERM', () => resolve('SIGTERM'));
    signals.on('SIGINT', () => resolve('SIGINT'));
  });
  const profile = await startCpuProfile(config.name, undefined, (path) => log.info({ component: 'agent', path }, 'CPU profile written')).catch((err: unknown) => {
    log.warn({ component: 'agent', err }, 'cannot start the CPU profiler (SMARTNAT_CPU_PROFILE_DIR)');
    return undefined;
  });
  await created.start();
  reachability.start();
  const signal = await stop;
  log.info({ component: 'agent', reason: signal }, 'shutting down: handing off every held address');
  reachability.stop();
  const { handedOff } = await created.shutdown();
  log.info({ component: 'agent', addresses: handedOff.length }, 'handed off; stopped');
  if (profile !== undefined) {
    await profile.stop().then(
      (path) => log.info({ component: 'agent', path }, 'CPU profile written'),
      (err: unknown) => log.warn({ component: 'agent', err }, 'cannot write the CPU profile'),
    );
  }
  await health.close();
  metrics.close();
}

export function register(program: Command, io: CliIo): void {
  program
    .command('agent')
    .description('run the SmartNat agent on this instance (until SIGTERM: then a planned handoff of everything it holds)')
    .option('--name <name>', 'agent name (default: env NODE_NAME, else the hostname)')
    .option('--namespace <ns>', 'namespace of the agents\' leases', 'smartnat-system')
    .option('--kubeconfig <file>', 'kubeconfig (default: KUBECONFIG, in-cluster, ~/.kube/config)')
    .option('--labels <k=v,...>', 'agent labels for pool selectors (default: this Node\'s labels, if readable)')
    .option('--interface <name=role>', 'an interface and its role, external or internal (repeatable; default: discovered)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--state-dir <dir>', 'track files, keepalived.conf, notify FIFO and ownership.json', '/var/lib/smartnat')
    .option('--lease-duration <d>', `observer expiry (default ${DEFAULT_LEASE_SETTINGS.leaseDurationMs}ms)`)
    .option('--renew-deadline <d>', `holder self-degrade deadline (default ${DEFAULT_LEASE_SETTINGS.renewDeadlineMs}ms)`)
    .option('--retry-period <d>', `renewal cadence (default ${DEFAULT_LEASE_SETTINGS.retryPeriodMs}ms)`)
    .option('--rebalance-hold-down <d>', 'how long a recovered agent must be ready before addresses move back to it; "off" disables')
    .option('--handoff-grace <d>', 'how long an old owner keeps DNAT after a planned handoff', '2s')
    .option('--no-keepalived', 'do not run keepalived; only write its config and track files into --state-dir')
    .option('--metrics-address <host:port>', '/metrics, /healthz, /readyz', DEFAULT_METRICS_ADDRESS)
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent', 'info')
    .option('--netns <name>', 'run the data-plane tools and keepalived inside this network namespace (lab)')
    .action(async (flags: AgentFlags) => {
      await runAgent(flags, io, process);
    });
}
