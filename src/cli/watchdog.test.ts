// The watchdog's decisions (pure) and its fault of track/agent.alive on a real file system: a fault
// writes 1, and only the agent's own write lifts it (the watchdog never puts the old value back).
import { describe, expect, test } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AliveFileFault, decideHeartbeat, FAULT_TEXT, parseDurationMs, type HeartbeatState } from './watchdog.js';

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

describe('AliveFileFault on a real directory', () => {
  function dir(): { path: string; cleanup: () => void } {
    const d = mkdtempSync(join(tmpdir(), 'smartnat-watchdog-'));
    mkdirSync(join(d, 'track'));
    return { path: join(d, 'track', 'agent.alive'), cleanup: () => rmSync(d, { recursive: true, force: true }) };
  }

  test('restarted agent behind a stale heartbeat: the fault stays when the heartbeat returns, until the agent writes 0 itself', async () => {
    const { path, cleanup } = dir();
    try {
      writeFileSync(path, '0\n');
      const f = new AliveFileFault(path);
      await f.fault();
      expect(readFileSync(path, 'utf8')).toBe(FAULT_TEXT);
      expect(f.active).toBe(true);
      // The heartbeat is back, but the agent has not decided yet: its old track files must not come back to life.
      expect(await f.release()).toBe(false);
      expect(f.active).toBe(false);
      expect(readFileSync(path, 'utf8')).toBe(FAULT_TEXT);
    } finally {
      cleanup();
    }
  });

  test('when the agent wrote 0 before the heartbeat was seen again, release reports it lifted and leaves the 0', async () => {
    const { path, cleanup } = dir();
    try {
      const f = new AliveFileFault(path);
      await f.fault();
      writeFileSync(path, '0\n');
      expect(await f.release()).toBe(true);
      expect(readFileSync(path, 'utf8')).toBe('0\n');
    } finally {
      cleanup();
    }
  });

  test('a fault creates a missing file (and its directory)', async () => {
    const { path, cleanup } = dir();
    try {
      rmSync(join(path, '..'), { recursive: true });
      await new AliveFileFault(path).fault();
      expect(readFileSync(path, 'utf8')).toBe(FAULT_TEXT);
    } finally {
      cleanup();
    }
  });
});
