// Owns: measuring how long the test environment takes to come up warm (binaries already built).
// Guarantees: prints, for N fresh control planes, the time from startControlPlane() to ready
// (certificates, etcd /health, kube-apiserver /readyz and namespace default) and the time of an
// API server restart on the same data, then the medians. Does not: build binaries or keep anything.
// Run: npx tsx test/bench/testenv-start.ts [N=3]   (SMARTNAT_TESTENV_BIN or a cached build)
import { startControlPlane } from '../support/control-plane.js';

const rounds = Number(process.argv[2] ?? '3');
if (!Number.isInteger(rounds) || rounds < 1) {
  process.stderr.write('usage: testenv-start.ts [rounds >= 1]\n');
  process.exit(2);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const seconds = (ms: number): string => (ms / 1000).toFixed(2);

const cold: number[] = [];
const restart: number[] = [];
for (let i = 1; i <= rounds; i++) {
  const t0 = performance.now();
  const plane = await startControlPlane();
  const t1 = performance.now();
  try {
    await plane.stopApiServer();
    const t2 = performance.now();
    await plane.startApiServer();
    restart.push(performance.now() - t2);
  } finally {
    await plane.stop();
  }
  cold.push(t1 - t0);
  process.stdout.write(`round ${i}: start to ready ${seconds(cold.at(-1)!)} s, API server restart to ready ${seconds(restart.at(-1)!)} s\n`);
}
process.stdout.write(`median of ${rounds}: start to ready ${seconds(median(cold))} s, API server restart to ready ${seconds(median(restart))} s\n`);
