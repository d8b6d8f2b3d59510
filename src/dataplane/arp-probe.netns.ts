// The ARP probe against the real arping on a real L2 segment: an address another host holds is a
// duplicate, a free one is free, and the prober's own address on its own interface is not a
// duplicate (it only hears other hosts). The next-hop reachability probe: a neighbour that answers,
// a silent address, and an interface that is down.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { ExecaCommandRunner } from './command-runner.js';
import { arpAnswers, probeDuplicateAddress } from './arp-probe.js';

const run = `snap${randomBytes(2).toString('hex')}`;
const [seg, a, b] = [`${run}-seg`, `${run}-a`, `${run}-b`];
const host = new ExecaCommandRunner();
const VIP_HELD_BY_B = '203.0.113.10';
const VIP_FREE = '203.0.113.11';
const VIP_OWN = '203.0.113.12';

beforeAll(async () => {
  await host.run('ip', ['netns', 'add', seg]);
  await host.run('ip', ['-n', seg, 'link', 'add', 'br0', 'type', 'bridge']);
  await host.run('ip', ['-n', seg, 'link', 'set', 'br0', 'up']);
  for (const [i, [ns, addr]] of [[a, '203.0.113.2'], [b, '203.0.113.3']].entries()) {
    await host.run('ip', ['netns', 'add', ns!]);
    await host.run('ip', ['-n', seg, 'link', 'add', `p${i}`, 'type', 'veth', 'peer', 'name', 'ext0', 'netns', ns!]);
    await host.run('ip', ['-n', seg, 'link', 'set', `p${i}`, 'master', 'br0', 'up']);
    await host.run('ip', ['-n', ns!, 'link', 'set', 'ext0', 'up']);
    await host.run('ip', ['-n', ns!, 'addr', 'add', `${addr}/24`, 'dev', 'ext0']);
  }
  await host.run('ip', ['-n', b, 'addr', 'add', `${VIP_HELD_BY_B}/32`, 'dev', 'ext0']);
  await host.run('ip', ['-n', a, 'addr', 'add', `${VIP_OWN}/32`, 'dev', 'ext0']);
});

afterAll(async () => {
  for (const ns of [a, b, seg]) await host.run('ip', ['netns', 'del', ns], { okExitCodes: [0, 1] });
});

describe('duplicate address probe', () => {
  const fromA = new ExecaCommandRunner(a);
  it('finds an address another host answers for', async () => {
    expect(await probeDuplicateAddress(fromA, 'ext0', VIP_HELD_BY_B)).toBe('duplicate');
  });
  it('finds a free address free', async () => {
    expect(await probeDuplicateAddress(fromA, 'ext0', VIP_FREE)).toBe('free');
  });
  it('does not call its own address a duplicate', async () => {
    expect(await probeDuplicateAddress(fromA, 'ext0', VIP_OWN)).toBe('free');
  });
  it('refuses a crafted interface name without running anything', async () => {
    await expect(probeDuplicateAddress(fromA, 'ext0;reboot', VIP_FREE)).rejects.toThrow(/not an interface name/);
  });
});

describe('next-hop reachability probe (arpAnswers)', () => {
  const fromA = new ExecaCommandRunner(a);
  it('a neighbour on the segment answers', async () => {
    expect(await arpAnswers(fromA, 'ext0', '203.0.113.3')).toBe(true);
  });
  it('an address nobody holds does not, within the wait (shorter than arping\'s whole-second deadline)', async () => {
    const started = performance.now();
    expect(await arpAnswers(fromA, 'ext0', VIP_FREE, 300)).toBe(false);
    process.stderr.write(`arpAnswers on a silent address returned after ${Math.round(performance.now() - started)} ms (wait 300 ms)\n`);
  });
  it('nothing answers through an interface that is down', async () => {
    await host.run('ip', ['-n', a, 'link', 'set', 'ext0', 'down']);
    try {
      expect(await arpAnswers(fromA, 'ext0', '203.0.113.3')).toBe(false);
    } finally {
      await host.run('ip', ['-n', a, 'link', 'set', 'ext0', 'up']);
    }
  });
});
