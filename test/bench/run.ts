// The benchmark runner behind `npm run bench` (all) and `npm run bench -- NAME...` (some):
// builds dist/, runs each benchmark as its own process one after the other (two shared cores: never
// two at once), then regenerates the BENCHMARKS.md sections of every result file present under
// test/bench/results/. `npm run bench -- --render` only regenerates
// the sections (`--render --replot` also redraws the plots from the result files). Guarantees: a failing
// benchmark does not stop the others; the exit status says whether any failed. Does not: touch
// the hand-written sections (data-plane sync, keepalived CPU, on-the-wire flip), whose benchmarks
// it runs and whose raw output it keeps in results/NAME.out.json.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { replaceSection } from './report.js';
import { BENCHES } from './run-config.js';
import type { BenchResult } from './summary.js';

const RESULTS = 'test/bench/results';

async function renderAll(replot: boolean): Promise<void> {
  let doc = await readFile('BENCHMARKS.md', 'utf8');
  for (const [name, bench] of Object.entries(BENCHES)) {
    if (!bench.result || !bench.render || !existsSync(`${RESULTS}/${bench.result}`)) continue;
    const r = JSON.parse(await readFile(`${RESULTS}/${bench.result}`, 'utf8')) as BenchResult;
    if (replot && bench.plot) await bench.plot(r);
    doc = replaceSection(doc, name, bench.render(r));
  }
  await writeFile('BENCHMARKS.md', doc);
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { render: { type: 'boolean', default: false }, replot: { type: 'boolean', default: false } } });
  if (!values.render) {
    const names = positionals.length ? positionals : Object.keys(BENCHES);
    const unknown = names.filter((n) => !(n in BENCHES));
    if (unknown.length) {
      process.stderr.write(`unknown benchmark(s): ${unknown.join(', ')}; known: ${Object.keys(BENCHES).join(', ')}\n`);
      process.exit(2);
    }
    await execa('npm', ['run', 'build'], { stdio: 'inherit' });
    const failed: string[] = [];
    for (const name of names) {
      const bench = BENCHES[name];
      if (!bench) continue;
      process.stderr.write(`run: ${name}: tsx ${bench.argv.join(' ')}\n`);
      const r = await execa('node_modules/.bin/tsx', bench.argv, { reject: false, stdout: bench.result ? 'inherit' : 'pipe', stderr: 'inherit' });
      if (r.exitCode !== 0) failed.push(name);
      else if (!bench.result) await writeFile(`${RESULTS}/${name}.out.json`, String(r.stdout));
    }
    if (failed.length) process.stderr.write(`run: failed: ${failed.join(', ')}\n`);
    await renderAll(false);
    process.exit(failed.length ? 1 : 0);
  }
  await renderAll(values.replot);
}

main().catch((err: unknown) => {
  process.stderr.write(`run failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
