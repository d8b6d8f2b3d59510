// The container image's packages have one source of truth: packaging/debian-packages-runtime.txt.
// No container engine runs here, so instead of building the image this test reads the Dockerfile:
// the final stage installs exactly that list (its own shell pipeline is run on the file), no build
// tools reach it, the bases are pinned, the runtime list is a subset of what the lab and CI install,
// and every command the agent runs comes from a listed or an Essential Debian package (asked of
// dpkg on this machine).
import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RUNTIME_LIST = `${ROOT}packaging/debian-packages-runtime.txt`;
const TEST_LIST = `${ROOT}packaging/debian-packages-test.txt`;

/** One package per line, '#' comments, blanks ignored (the format .ci/run reads). */
function readList(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l !== '');
}

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

/** Dockerfile instructions with line continuations joined and comments dropped. */
function parseDockerfile(text: string): Instruction[][] {
  const joined = text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ');
  const stages: Instruction[][] = [];
  for (const line of joined.split('\n')) {
    const m = /^\s*([A-Z]+)\s+(.*)$/.exec(line);
    if (m === null) continue;
    const instruction = { keyword: m[1]!, args: m[2]!.trim() };
    if (instruction.keyword === 'FROM') stages.push([]);
    stages[stages.length - 1]?.push(instruction);
  }
  return stages;
}

const stages = parseDockerfile(readFileSync(`${ROOT}Dockerfile`, 'utf8'));
const final = stages[stages.length - 1] ?? [];

describe('Dockerfile', () => {
  test('is multi-stage with pinned bases (an exact version tag, never latest)', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) {
      const image = stage[0]!.args.split(/\s+/)[0]!;
      expect(image).toMatch(/^[a-z0-9./-]+:(\d+\.\d+\.\d+)[-a-z0-9.]*$|@sha256:[0-9a-f]{64}$/);
    }
  });

  test('the final stage installs exactly packaging/debian-packages-runtime.txt', async () => {
    const copy = final.find((i) => i.keyword === 'COPY' && i.args.startsWith('packaging/debian-packages-runtime.txt '));
    expect(copy).toBeDefined();
    const target = copy!.args.split(/\s+/)[1]!;
    const installs = final.filter((i) => i.keyword === 'RUN' && i.args.includes('apt-get install'));
    expect(installs).toHaveLength(1);
    const run = installs[0]!.args;
    // The words the Dockerfile pipes into `xargs apt-get install`: run its own pipeline on the real file.
    const pipeline = /&&\s*(sed .*?)\|\s*xargs apt-get install -y --no-install-recommends\s*&&/.exec(run);
    expect(pipeline).not.toBeNull();
    const listed = await execa('bash', ['-c', pipeline![1]!.replaceAll(target, RUNTIME_LIST)]);
    expect(listed.stdout.split('\n').filter((l) => l !== '')).toEqual(readList(RUNTIME_LIST));
    // Nothing else is installed in the final stage: after `apt-get install` come only flags.
    const named = [...run.matchAll(/apt-get install((?:\s+[^\s&|;]+)*)/g)].flatMap((m) => m[1]!.trim().split(/\s+/)).filter((w) => !w.startsWith('-'));
    expect(named).toEqual([]);
  });

  test('no build tools in the final stage: it copies the build output, it does not build', () => {
    const text = final.map((i) => `${i.keyword} ${i.args}`).join('\n');
    expect(text).not.toMatch(/\bnpm\b|\btsc\b|\bnpx\b|build-essential|\bgcc\b|\bmake\b|\bgit\b/);
    expect(final.filter((i) => i.keyword === 'COPY' && i.args.startsWith('--from=build')).map((i) => i.args.split(/\s+/)[1])).toEqual(['/src/node_modules', '/src/dist']);
    const build = (stages[0] ?? []).map((i) => i.args).join('\n');
    expect(build).toContain('npm prune --omit=dev');
  });
});

describe('one package list', () => {
  test('the runtime list is a subset of what the lab and CI install (debian-packages-test.txt)', () => {
    const runtime = readList(RUNTIME_LIST);
    const testList = readList(TEST_LIST);
    expect(runtime.length).toBeGreaterThan(0);
    expect(runtime.filter((p) => !testList.includes(p))).toEqual([]);
  });

  // Every program the agent and the watchdog execute (src/dataplane, src/keepalived, host checks).
  const COMMANDS = ['ip', 'ipset', 'iptables-legacy-restore', 'iptables-legacy-save', 'iptables-nft-restore', 'iptables-nft-save', 'conntrack', 'keepalived', 'sysctl', 'mkfifo', 'setpriv', 'arping'];

  test.each(COMMANDS)('%s comes from a runtime-listed or Essential package', async (command) => {
    const path = (await execa('bash', ['-c', `readlink -f "$(command -v ${command})"`])).stdout.trim();
    expect(path).not.toBe('');
    // usrmerge: dpkg may know /sbin/ip rather than /usr/sbin/ip.
    const candidates = [path, path.replace(/^\/usr/, '')];
    let pkg = '';
    for (const p of candidates) {
      const r = await execa('dpkg', ['-S', p], { reject: false });
      if (r.exitCode === 0) {
        pkg = r.stdout.split(':')[0]!.trim();
        break;
      }
    }
    expect(pkg).not.toBe('');
    const essential = (await execa('dpkg-query', ['-W', '-f=${Essential}', pkg])).stdout.trim() === 'yes';
    expect({ command, pkg, provided: essential || readList(RUNTIME_LIST).includes(pkg) }).toEqual({ command, pkg, provided: true });
  });
});
