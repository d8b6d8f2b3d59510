// Owns: the small Node program the egress lab test runs inside its namespaces (plain JavaScript
// text, written to the lab directory and run with `node FILE`, as src/lab/scripts.ts does).
// Server mode logs the peer of every TCP connection and UDP datagram it receives (one JSON line
// per arrival, so a source is recorded even when no reply can get back) and answers with it.
// Client modes print one JSON line per try. Guarantees: it never runs a command or a shell, and
// the server exits when the watched pid is gone. Asserts nothing.

export const PEER_SCRIPT_FILE = 'egress-peer.mjs';

export interface PeerArrival {
  readonly t: number;
  readonly proto: 'tcp' | 'udp';
  readonly peer: string;
}

export interface PeerTry {
  readonly t: number;
  readonly ok: boolean;
  /** The source address the server saw (its reply), when ok. */
  readonly peer?: string;
  readonly error?: string;
}

/** One line of `stream`: a reply on the long-lived connection, or what happened to it. */
export interface StreamEvent {
  readonly t: number;
  readonly event: 'connected' | 'reply' | 'closed' | 'error';
  /** The connection number (1 = the first one; a new number means it was re-opened). */
  readonly conn: number;
  readonly seq?: number;
  readonly peer?: string;
  readonly error?: string;
}

export const PEER_SCRIPT = String.raw`// SmartNat egress lab peer (generated; see test/egress/peer-script.ts).
// node egress-peer.mjs server PORT LOGFILE WATCHPID
// node egress-peer.mjs once tcp|udp HOST PORT TIMEOUT_MS
// node egress-peer.mjs loop tcp|udp HOST PORT DURATION_MS INTERVAL_MS TIMEOUT_MS
// node egress-peer.mjs stream HOST PORT DURATION_MS INTERVAL_MS
// node egress-peer.mjs udpstream HOST PORT DURATION_MS INTERVAL_MS   (one socket, one source port)
import net from 'node:net';
import dgram from 'node:dgram';
import fs from 'node:fs';

const [mode, ...a] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const plain = (x) => (typeof x === 'string' && x.startsWith('::ffff:') ? x.slice(7) : String(x));

if (mode === 'server') {
  const [port, logFile, watchPid] = [Number(a[0]), a[1], Number(a[2])];
  const log = (proto, peer) => fs.appendFileSync(logFile, JSON.stringify({ t: Date.now(), proto, peer }) + '\n');
  net.createServer((sock) => {
    const peer = plain(sock.remoteAddress);
    log('tcp', peer);
    sock.on('error', () => {});
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const seq = buf.slice(0, nl).trim().slice(0, 32);
        buf = buf.slice(nl + 1);
        sock.write(JSON.stringify({ peer, seq }) + '\n');
      }
    });
  }).listen({ port, host: '0.0.0.0' });
  const udp = dgram.createSocket('udp4');
  udp.on('message', (msg, r) => {
    log('udp', r.address);
    udp.send(JSON.stringify({ peer: r.address, seq: msg.toString('latin1', 0, 32) }), r.port, r.address);
  });
  udp.bind({ port, address: '0.0.0.0' });
  setInterval(() => { try { process.kill(watchPid, 0); } catch { process.exit(0); } }, 500);
  process.on('SIGTERM', () => process.exit(0));
} else if (mode === 'once' || mode === 'loop') {
  const [proto, host, port] = [a[0], a[1], Number(a[2])];
  const duration = mode === 'loop' ? Number(a[3]) : 0;
  const interval = mode === 'loop' ? Number(a[4]) : 0;
  const timeout = Number(mode === 'loop' ? a[5] : a[3]);
  const tryOnce = () => new Promise((resolve) => {
    const t = Date.now();
    let done = false;
    const finish = (o, close) => { if (done) return; done = true; clearTimeout(timer); close(); resolve({ t, ...o }); };
    let close = () => {};
    const timer = setTimeout(() => finish({ ok: false, error: 'timeout' }, close), timeout);
    if (proto === 'tcp') {
      const s = net.connect({ host, port });
      close = () => s.destroy();
      let buf = '';
      s.on('connect', () => s.write('1\n'));
      s.on('data', (d) => { buf += d; if (buf.includes('\n')) { try { finish({ ok: true, peer: JSON.parse(buf).peer }, close); } catch (e) { finish({ ok: false, error: 'bad reply' }, close); } } });
      s.on('error', (e) => finish({ ok: false, error: e.code || e.message }, close));
    } else {
      const s = dgram.createSocket('udp4');
      close = () => { try { s.close(); } catch {} };
      s.on('message', (m) => { try { finish({ ok: true, peer: JSON.parse(m.toString()).peer }, close); } catch (e) { finish({ ok: false, error: 'bad reply' }, close); } });
      s.on('error', (e) => finish({ ok: false, error: e.code || e.message }, close));
      s.connect(port, host, () => s.send('1'));
    }
  });
  const start = Date.now();
  do {
    const next = Date.now() + interval;
    out(await tryOnce());
    const wait = next - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  } while (Date.now() - start < duration);
} else if (mode === 'stream') {
  const [host, port, duration, interval] = [a[0], Number(a[1]), Number(a[2]), Number(a[3])];
  const start = Date.now();
  let conn = 0;
  const open = () => {
    conn += 1;
    const n = conn;
    const s = net.connect({ host, port });
    let seq = 0;
    let buf = '';
    let timer;
    s.setNoDelay(true);
    s.on('connect', () => {
      out({ t: Date.now(), event: 'connected', conn: n });
      timer = setInterval(() => { seq += 1; s.write(seq + '\n'); }, interval);
    });
    s.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const r = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        out({ t: Date.now(), event: 'reply', conn: n, seq: Number(r.seq), peer: r.peer });
      }
    });
    let ended = false;
    const end = (event, error) => {
      if (ended) return;
      ended = true;
      clearInterval(timer);
      s.destroy();
      out({ t: Date.now(), event, conn: n, ...(error ? { error } : {}) });
      if (Date.now() - start < duration) setTimeout(open, 100);
    };
    s.on('error', (e) => end('error', e.code || e.message));
    s.on('end', () => end('closed'));
  };
  open();
  setTimeout(() => process.exit(0), duration);
} else if (mode === 'udpstream') {
  const [host, port, duration, interval] = [a[0], Number(a[1]), Number(a[2]), Number(a[3])];
  const s = dgram.createSocket('udp4');
  let seq = 0;
  s.on('message', (m) => {
    try { const r = JSON.parse(m.toString()); out({ t: Date.now(), event: 'reply', conn: 1, seq: Number(r.seq), peer: r.peer }); } catch {}
  });
  s.on('error', (e) => out({ t: Date.now(), event: 'error', conn: 1, error: e.code || e.message }));
  s.connect(port, host, () => {
    out({ t: Date.now(), event: 'connected', conn: 1 });
    setInterval(() => { seq += 1; s.send(String(seq)); }, interval);
  });
  setTimeout(() => process.exit(0), duration);
} else {
  console.error('usage: see the header');
  process.exit(2);
}
`;
