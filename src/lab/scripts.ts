// The small programs the lab runs with `node FILE`: an echo server (TCP and UDP, answers with its
// node's name and the addresses it saw), a probe (TCP connect / UDP round trip, each try classified
// ok, refused or timeout) and a guard (tears a lab down when its owner dies). Plain JavaScript text
// so the same files run under ts-jest and from dist/; writeLabScripts puts them in a lab's directory.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Reply of the echo server, one JSON line (TCP, followed by `bytes` filler bytes) or one datagram (UDP). */
export interface EchoReply {
  readonly name: string;
  /** The address the lab configured on the node (its identity). */
  readonly address: string;
  /** Local address:port of the TCP connection as the server saw it ("0.0.0.0:port" for UDP). */
  readonly local: string;
  /** The peer as the server saw it: the client, or the masquerading host. */
  readonly peer: string;
  readonly request: string;
  readonly bytes: number;
}

export const ECHO_SERVER_FILE = 'echo-server.mjs';
export const PROBE_FILE = 'probe.mjs';
export const GUARD_FILE = 'lab-guard.mjs';

const ECHO_SERVER_SOURCE = String.raw`// SmartNat lab echo server (generated; see src/lab/scripts.ts).
// Usage: node echo-server.mjs --name N --address A [--tcp P]... [--udp P]... [--ready FILE] [--watch-pid PID]
// TCP: reads one request line; "big N" adds N filler bytes after the JSON line. UDP: one JSON datagram per datagram.
import net from 'node:net';
import dgram from 'node:dgram';
import fs from 'node:fs';

const o = { name: 'echo', address: '', tcp: [], udp: [], ready: '', watchPid: 0 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const k = argv[i];
  const v = argv[i + 1];
  if (v === undefined) { console.error('missing value for ' + k); process.exit(2); }
  if (k === '--name') o.name = v;
  else if (k === '--address') o.address = v;
  else if (k === '--tcp') o.tcp.push(Number(v));
  else if (k === '--udp') o.udp.push(Number(v));
  else if (k === '--ready') o.ready = v;
  else if (k === '--watch-pid') o.watchPid = Number(v);
  else { console.error('unknown option ' + k); process.exit(2); }
}
const MAX_BIG = 64 * 1024 * 1024;
const plain = (a) => (typeof a === 'string' && a.startsWith('::ffff:') ? a.slice(7) : String(a));
const reply = (local, peer, request, bytes) => JSON.stringify({ name: o.name, address: o.address, local, peer, request, bytes });
let pending = o.tcp.length + o.udp.length;
const bound = () => {
  pending -= 1;
  if (pending === 0 && o.ready) fs.writeFileSync(o.ready, String(process.pid));
};
const fail = (what) => (err) => { console.error(what + ': ' + (err && err.message)); process.exit(1); };

for (const port of o.tcp) {
  const server = net.createServer((sock) => {
    let buf = '';
    sock.setTimeout(10000, () => sock.destroy());
    sock.on('error', () => {});
    const onData = (d) => {
      buf += d.toString('latin1');
      const nl = buf.indexOf('\n');
      if (nl < 0) { if (buf.length > 1024) sock.destroy(); return; }
      sock.off('data', onData);
      const request = buf.slice(0, nl).trim().slice(0, 64);
      const m = /^big (\d+)$/.exec(request);
      const size = m ? Math.min(Number(m[1]), MAX_BIG) : 0;
      sock.write(reply(plain(sock.localAddress) + ':' + sock.localPort, plain(sock.remoteAddress) + ':' + sock.remotePort, request, size) + '\n');
      if (size > 0) sock.write(Buffer.alloc(size, 0x78));
      sock.end();
    };
    sock.on('data', onData);
  });
  server.on('error', fail('tcp ' + port));
  server.listen({ port, host: '0.0.0.0' }, bound);
}
for (const port of o.udp) {
  const sock = dgram.createSocket('udp4');
  sock.on('error', fail('udp ' + port));
  sock.on('message', (msg, rinfo) => {
    const request = msg.toString('latin1', 0, Math.min(msg.length, 64));
    sock.send(reply('0.0.0.0:' + port, rinfo.address + ':' + rinfo.port, request, 0), rinfo.port, rinfo.address);
  });
  sock.bind({ port, address: '0.0.0.0' }, bound);
}
if (o.watchPid > 0) {
  // Exit with the owner; a zombie owner (not reaped yet) counts as gone.
  setInterval(() => {
    let state = 'Z';
    try { const stat = fs.readFileSync('/proc/' + o.watchPid + '/stat', 'utf8'); state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3); } catch {}
    if (state === 'Z') process.exit(0);
  }, 500);
}
process.on('SIGTERM', () => process.exit(0));
`;

const PROBE_SOURCE = String.raw`// SmartNat lab probe (generated; see src/lab/scripts.ts). One JSON line per try on stdout:
// {seq, t (epoch ms), ms, result: ok|refused|timeout|error, connected, reply, bytes, error}.
// Usage: node probe.mjs --proto tcp|udp --host H --port P [--source A] [--source-port P] [--timeout MS]
//        [--count N] [--interval MS] [--duration MS] [--request TEXT] [--no-wait] [--overlap]
import net from 'node:net';
import dgram from 'node:dgram';

const o = { proto: 'tcp', host: '', port: 0, source: undefined, sourcePort: 0, timeout: 1000, count: 0, interval: 0, duration: 0, request: 'hello', wait: true, overlap: false };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const k = argv[i];
  if (k === '--no-wait') { o.wait = false; continue; }
  if (k === '--overlap') { o.overlap = true; continue; }
  const v = argv[++i];
  if (v === undefined) { console.error('missing value for ' + k); process.exit(2); }
  if (k === '--proto') o.proto = v;
  else if (k === '--host') o.host = v;
  else if (k === '--port') o.port = Number(v);
  else if (k === '--source') o.source = v;
  else if (k === '--source-port') o.sourcePort = Number(v);
  else if (k === '--timeout') o.timeout = Number(v);
  else if (k === '--count') o.count = Number(v);
  else if (k === '--interval') o.interval = Number(v);
  else if (k === '--duration') o.duration = Number(v);
  else if (k === '--request') o.request = v;
  else { console.error('unknown option ' + k); process.exit(2); }
}
if (!o.count && !o.duration) o.count = 1;
const now = () => performance.timeOrigin + performance.now();
const REFUSED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN']);
const classify = (err) => (err && REFUSED.has(err.code) ? 'refused' : 'error');
const out = (r) => process.stdout.write(JSON.stringify(r) + '\n');

function tcpOnce(seq) {
  return new Promise((resolve) => {
    const t0 = now();
    let done = false;
    let connected = false;
    const chunks = [];
    const sock = net.connect({ host: o.host, port: o.port, localAddress: o.source, localPort: o.sourcePort || undefined });
    const finish = (result, extra) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ seq, t: t0, ms: Math.round((now() - t0) * 100) / 100, result, connected, ...extra });
    };
    const timer = setTimeout(() => finish('timeout', {}), o.timeout);
    sock.on('connect', () => { connected = true; sock.write(o.request + '\n'); });
    sock.on('data', (d) => chunks.push(d));
    sock.on('end', () => {
      const buf = Buffer.concat(chunks);
      const nl = buf.indexOf(10);
      if (nl < 0) return finish('error', { error: 'no reply line' });
      try {
        finish('ok', { reply: JSON.parse(buf.subarray(0, nl).toString()), bytes: buf.length - nl - 1 });
      } catch {
        finish('error', { error: 'reply is not JSON' });
      }
    });
    sock.on('error', (err) => finish(classify(err), { error: err.code || String(err) }));
  });
}

function udpOnce(seq) {
  return new Promise((resolve) => {
    const t0 = now();
    let done = false;
    const sock = dgram.createSocket('udp4');
    const finish = (result, extra) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try { sock.close(); } catch {}
      resolve({ seq, t: t0, ms: Math.round((now() - t0) * 100) / 100, result, ...extra });
    };
    const timer = setTimeout(() => finish('timeout', {}), o.timeout);
    sock.on('error', (err) => finish(classify(err), { error: err.code || String(err) }));
    sock.on('message', (msg) => {
      try { finish('ok', { reply: JSON.parse(msg.toString()) }); } catch { finish('error', { error: 'reply is not JSON' }); }
    });
    sock.bind({ address: o.source || '0.0.0.0', port: o.sourcePort }, () => {
      sock.connect(o.port, o.host, (err) => {
        if (err) return finish(classify(err), { error: err.code || String(err) });
        sock.send(o.request + ' ' + seq, (e) => {
          if (e) return finish(classify(e), { error: e.code || String(e) });
          if (!o.wait) finish('sent', {});
        });
      });
    });
  });
}

const once = o.proto === 'udp' ? udpOnce : tcpOnce;
const start = now();
const inFlight = new Set();
for (let seq = 0; ; seq++) {
  if (o.count && seq >= o.count) break;
  if (o.duration && now() - start >= o.duration) break;
  const t = now();
  if (o.overlap) {
    // A new try every interval whatever the earlier ones are doing (a drill's probe rate must not
    // drop while the path is down); at most 200 outstanding.
    while (inFlight.size >= 200) await Promise.race(inFlight);
    const p = once(seq).then(out).finally(() => inFlight.delete(p));
    inFlight.add(p);
  } else {
    out(await once(seq));
  }
  const rest = o.interval - (now() - t);
  if (rest > 0) await new Promise((r) => setTimeout(r, rest));
}
await Promise.all(inFlight);
`;

const GUARD_SOURCE = String.raw`// SmartNat lab guard (generated; see src/lab/scripts.ts). Watches the process that built a lab;
// when it dies without tearing the lab down (crash, SIGKILL, a test runner that never ran its
// hooks), stops the lab's recorded processes and deletes its recorded namespaces, then exits.
// It has to run commands itself because it outlives the process that owns the CommandRunner;
// it uses argument arrays only. SIGTERM (the owner's normal teardown) makes it exit quietly.
// Usage: node lab-guard.mjs --name NAME --dir DIR --watch-pid PID
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const o = { name: '', dir: '', watchPid: 0 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const k = argv[i];
  const v = argv[i + 1];
  if (k === '--name') o.name = v;
  else if (k === '--dir') o.dir = v;
  else if (k === '--watch-pid') o.watchPid = Number(v);
  else { console.error('unknown option ' + k); process.exit(2); }
}
if (!/^[a-z][a-z0-9]{1,9}$/.test(o.name) || !o.dir || !(o.watchPid > 0)) { console.error('bad arguments'); process.exit(2); }
for (const sig of ['SIGINT', 'SIGHUP', 'SIGPIPE']) process.on(sig, () => {});
process.on('SIGTERM', () => process.exit(0));

const startTime = (pid) => {
  try {
    const stat = fs.readFileSync('/proc/' + pid + '/stat', 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[0] === 'Z' ? undefined : rest[19];
  } catch { return undefined; }
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// A zombie counts as dead: kill(pid, 0) still succeeds on one that nobody has reaped yet.
const alive = (pid) => startTime(pid) !== undefined;

async function cleanUp() {
  let procs = [];
  try { procs = JSON.parse(fs.readFileSync(path.join(o.dir, 'owner.json'), 'utf8')).processes || []; } catch {}
  const mine = procs.filter((p) => startTime(p.pid) === p.startTime);
  for (const p of mine) { try { process.kill(p.pid, 'SIGTERM'); } catch {} }
  const deadline = Date.now() + 2000;
  while (Date.now() < deadline && mine.some((p) => startTime(p.pid) === p.startTime)) await sleep(20);
  for (const p of mine) if (startTime(p.pid) === p.startTime) { try { process.kill(p.pid, 'SIGKILL'); } catch {} }
  // Only the namespaces the lab recorded: a prefix alone could match someone else's.
  let recorded = [];
  try { recorded = JSON.parse(fs.readFileSync(path.join(o.dir, 'owner.json'), 'utf8')).namespaces || []; } catch {}
  let listed = '';
  try { listed = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }); } catch {}
  for (const line of listed.split('\n')) {
    const ns = line.split(' ')[0];
    if (ns && ns.startsWith(o.name + '-') && recorded.includes(ns)) { try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch {} }
  }
  fs.rmSync(o.dir, { recursive: true, force: true });
  console.log('guard: owner ' + o.watchPid + ' gone, lab ' + o.name + ' torn down');
  process.exit(0);
}

const timer = setInterval(() => {
  if (!alive(o.watchPid)) { clearInterval(timer); void cleanUp(); }
}, 200);
`;

/** Writes the echo server, the probe and the guard into `dir`; returns their paths. */
export async function writeLabScripts(dir: string): Promise<LabScripts> {
  const scripts = { echoServer: join(dir, ECHO_SERVER_FILE), probe: join(dir, PROBE_FILE), guard: join(dir, GUARD_FILE) };
  await writeFile(scripts.echoServer, ECHO_SERVER_SOURCE, { mode: 0o644 });
  await writeFile(scripts.probe, PROBE_SOURCE, { mode: 0o644 });
  await writeFile(scripts.guard, GUARD_SOURCE, { mode: 0o644 });
  return scripts;
}

export interface LabScripts {
  readonly echoServer: string;
  readonly probe: string;
  readonly guard: string;
}
