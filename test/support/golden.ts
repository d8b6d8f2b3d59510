// Golden files: compare rendered text with test/golden/<name>, rewrite them only when
// UPDATE_GOLDEN=1. A mismatch fails with the whole actual output and a line diff.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const GOLDEN_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'golden');

export function goldenPath(name: string): string {
  return join(GOLDEN_DIR, name);
}

function lineDiff(expected: string, actual: string): string {
  const e = expected.split('\n');
  const a = actual.split('\n');
  const out: string[] = [];
  for (let i = 0; i < Math.max(e.length, a.length); i++) {
    if (e[i] === a[i]) continue;
    if (e[i] !== undefined) out.push(`${i + 1}- ${e[i]}`);
    if (a[i] !== undefined) out.push(`${i + 1}+ ${a[i]}`);
  }
  return out.join('\n');
}

/** Throws (failing the test) unless `actual` equals the golden file; UPDATE_GOLDEN=1 rewrites it. */
export function expectGolden(name: string, actual: string): void {
  const path = goldenPath(name);
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, actual);
    return;
  }
  if (!existsSync(path)) {
    throw new Error(`golden file ${path} is missing; run with UPDATE_GOLDEN=1 and review it.\n--- actual ---\n${actual}`);
  }
  const expected = readFileSync(path, 'utf8');
  if (expected !== actual) {
    throw new Error(`golden ${name} differs (- golden, + actual):\n${lineDiff(expected, actual)}\n--- whole actual output ---\n${actual}`);
  }
}
