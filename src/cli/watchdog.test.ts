// The watchdog's decisions (pure) and its override of track/agent.alive on a real file system:
// a fault overwrites, a recovery restores exactly what was there unless the agent wrote since.
import { describe, expect, test } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, existsSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AliveFileOverride, decideHeartbeat, FAULT_TEXT, parseDurationMs, type HeartbeatState } from './watchdog.js';

const STALE = 2000;

describe('decideHeartbeat', () => {
  const fresh: HeartbeatState = { lastOkAt: 0, faulted: false };

  test('failing probes fault once, exactly when the last good one is stale-after old', () => {
    let s = fresh;
    const actions: string[] = [];
    for (const now of [500, 1000, 1999, 2000, 2500, 9000]) {
      const d = decideHeartbeat(s, false, now, STALE);
      s = d.state;
      actions.push(`${now}:${d.action}`);
    }
    expect(actions).toEqual(['500:none', '1000:none', '1999:none', '2000:fault', '2500:none', '9000:none']);
  });

  test('a good probe resets the clock; after a fault it recovers', () => {
    let d = decideHeartbeat(fresh, false, 1900, STALE);
    d = decideHeartbeat(d.state, true, 1950, STALE);
    expect(d).toEqual({ state: { lastOkAt: 1950, faulted: false }, action: 'none' });
    d = decideHeartbeat(d.state, false, 3900, STALE);
    expect(d.action).toBe('none');
    d = decideHeartbeat(d.state, false, 3950, STALE);
    expect(d.action).toBe('fault');
    d = decideHeartbeat(d.state, true, 4000, STALE);
    expect(d).toEqual({ state: { lastOkAt: 4000, faulted: false }, action: 'recover' });
  });
});

describe('parseDurationMs', () => {
  test.each([
    ['250ms', 250],
    ['2s', 2000],
    ['1500', 1500],
    ['2m', 120_000],
  ])('%s', (text, ms) => expect(parseDurationMs(text, '--x')).toBe(ms));
  test.each(['-1s', 'soon', '', '2h'])('%j is refused', (text) => expect(() => parseDurationMs(text, '--x')).toThrow('--x: expected a duration'));
});

describe('AliveFileOverride on a real directory', () => {
  function dir(): { path: string; cleanup: () => void } {
    const d = mkdtempSync(join(tmpdir(), 'smartnat-watchdog-'));
    mkdirSync(join(d, 'track'));
    return { path: join(d, 'track', 'agent.alive'), cleanup: () => rmSync(d, { recursive: true, force: true }) };
  }

  test('fault writes 1; restore puts back the agent\'s 0', async () => {
    const { path, cleanup } = dir();
    try {
      writeFileSync(path, '0\n');
      const o = new AliveFileOverride(path);
      await o.fault();
      expect(readFileSync(path, 'utf8')).toBe(FAULT_TEXT);
      expect(o.active).toBe(true);
      expect(await o.restore()).toBe(true);
      expect(readFileSync(path, 'utf8')).toBe('0\n');
      expect(o.active).toBe(false);
    } finally {
      cleanup();
    }
  });

  test('a file that did not exist is removed again on restore', async () => {
    const { path, cleanup } = dir();
    try {
      const o = new AliveFileOverride(path);
      await o.fault();
      expect(readFileSync(path, 'utf8')).toBe(FAULT_TEXT);
      expect(await o.restore()).toBe(true);
      expect(existsSync(path)).toBe(false);
    } finally {
      cleanup();
    }
  });

  test('when the agent wrote the file meanwhile, its value stands', async () => {
    const { path, cleanup } = dir();
    try {
      writeFileSync(path, '0\n');
      const o = new AliveFileOverride(path);
      await o.fault();
      writeFileSync(path, '0\n');
      expect(await o.restore()).toBe(false);
      expect(readFileSync(path, 'utf8')).toBe('0\n');
    } finally {
      cleanup();
    }
  });

  test('when the agent itself wrote 1 meanwhile (same text, newer mtime), the fault is not lifted', async () => {
    const { path, cleanup } = dir();
    try {
      writeFileSync(path, '0\n');
      const o = new AliveFileOverride(path);
      await o.fault();
      await new Promise((r) => setTimeout(r, 20));
      writeFileSync(path, '1\n');
      expect(await o.restore()).toBe(false);
      expect(readFileSync(path, 'utf8')).toBe('1\n');
    } finally {
      cleanup();
    }
  });
});
