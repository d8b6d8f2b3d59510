// Owns: cleaning up after a test process that died without stopping its control plane.
// Guarantees: when its stdin closes without a "done" line (the parent exited, crashed, was
// interrupted or SIGKILLed), every process group it was told about gets SIGTERM, then SIGKILL, and
// every directory it was told about is removed. Does not: start anything; it is plain JS so that
// node runs it without a TypeScript loader.
//
// Usage: node process-guard.mjs DIR... (the directories to remove; naming them on the command line
// also lets a test find the guard). Then one command per line on stdin: "group PGID", "ungroup PGID",
// "done".
import { rmSync } from 'node:fs';
import process from 'node:process';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';

const groups = new Set();
const dirs = new Set(process.argv.slice(2));
let finished = false;

// Interrupts aimed at the terminal's foreground group must not stop the cleanup.
for (const signal of ['SIGINT', 'SIGHUP', 'SIGPIPE']) process.on(signal, () => {});

const alive = (pgid) => {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
};
const signalGroup = (pgid, signal) => {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
};

async function cleanUp() {
  for (const pgid of groups) signalGroup(pgid, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while ([...groups].some(alive) && Date.now() < deadline) await sleep(50);
  for (const pgid of groups) signalGroup(pgid, 'SIGKILL');
  while ([...groups].some(alive) && Date.now() < deadline + 5_000) await sleep(50);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const space = line.indexOf(' ');
  const verb = space < 0 ? line : line.slice(0, space);
  const arg = space < 0 ? '' : line.slice(space + 1);
  if (verb === 'group') groups.add(Number(arg));
  else if (verb === 'ungroup') groups.delete(Number(arg));
  else if (verb === 'done') finished = true;
});
lines.on('close', () => {
  if (finished) process.exit(0);
  cleanUp().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
