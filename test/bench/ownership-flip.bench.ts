// Benchmark: ownership flip -> first translated packet, on the wire (issue 9 item 5; DESIGN < 50 ms).
// The measurement lives in the data-plane traffic suite (test/netns/dataplane-traffic.netns.ts,
// "ownership flip timing"), which owns the namespaces, the UDP blast and the tcpdump on the
// backend's interface; this runs that one test with more trials and prints its summary as JSON:
//   npx tsx test/bench/ownership-flip.bench.ts [--trials 31]
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { execa } from 'execa';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { trials: { type: 'string', default: '31' } } });
  const started = new Date().toISOString();
  const load = loadavg().map((x) => x.toFixed(2)).join(' ');
  const r = await execa('npx', ['jest', 'test/netns/dataplane-traffic.netns.ts', '--selectProjects', 'netns', '--runInBand', '-t', 'ownership flip'], {
    reject: false,
    all: true,
    env: { SMARTNAT_FLIP_TRIALS: values.trials, NODE_OPTIONS: '--experimental-vm-modules' },
  });
  const line = String(r.all ?? '').split('\n').find((l) => l.includes('ownership flip -> first translated packet:'));
  const m = line === undefined ? null : /first translated packet: (\{.*?\}) all=(\[.*?\]) loadavg=(\S+)/.exec(line);
  if (r.exitCode !== 0 || m === null) {
    process.stderr.write(`${String(r.all ?? '').slice(-4000)}\nbench failed: the flip test exited ${r.exitCode} or printed no summary\n`);
    process.exit(1);
  }
  const summary = JSON.parse(m[1] ?? '{}') as Record<string, number>;
  const result = { date: started, loadavgAtStart: load, loadavgAtEnd: m[3], command: `SMARTNAT_FLIP_TRIALS=${values.trials} jest test/netns/dataplane-traffic.netns.ts -t 'ownership flip'`, ...summary, allMs: JSON.parse(m[2] ?? '[]') as number[] };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
