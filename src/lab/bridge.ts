// Crossings between a lab namespace and the host that need no link to the host's network: socat
// inside a namespace joins a TCP listener or target there to a Unix socket in the lab directory
// (the filesystem is shared across network namespaces). Guarantees every socat address is built
// from validated typed values; it does not proxy, delay or cut anything itself.
import { parseIpv4 } from '../model/net.js';
import type { Topology } from './topology.js';
import type { BackgroundProcess } from './processes.js';

export interface TcpAddress {
  readonly host: string;
  readonly port: number;
}

/** What socat listens on inside the namespace. */
export type BridgeListen = { readonly tcpListen: TcpAddress } | { readonly unixListen: string };
/** Where each accepted connection goes. */
export type BridgeTarget = { readonly tcpConnect: TcpAddress } | { readonly unixConnect: string };

const SOCKET_PATH = /^\/[A-Za-z0-9/_.-]{1,100}$/;

function tcp(a: TcpAddress): { host: string; port: string } {
  if (parseIpv4(a.host) === undefined) throw new Error(`bad IPv4 address ${JSON.stringify(a.host)}`);
  if (!Number.isInteger(a.port) || a.port < 1 || a.port > 65535) throw new Error(`bad port ${a.port}`);
  return { host: a.host, port: String(a.port) };
}

function unixPath(p: string): string {
  if (!SOCKET_PATH.test(p) || p.includes('..')) throw new Error(`bad socket path ${JSON.stringify(p)}`);
  return p;
}

/** The two socat address arguments for a bridge. Pure. */
export function renderSocatAddresses(listen: BridgeListen, target: BridgeTarget): [string, string] {
  let left: string;
  if ('tcpListen' in listen) {
    const a = tcp(listen.tcpListen);
    left = `TCP-LISTEN:${a.port},bind=${a.host},reuseaddr,fork`;
  } else {
    left = `UNIX-LISTEN:${unixPath(listen.unixListen)},fork,unlink-early,mode=600`;
  }
  let right: string;
  if ('tcpConnect' in target) {
    const a = tcp(target.tcpConnect);
    right = `TCP:${a.host}:${a.port}`;
  } else {
    right = `UNIX-CONNECT:${unixPath(target.unixConnect)}`;
  }
  return [left, right];
}

/** Starts socat inside `node`, tracked by the topology (stopped by teardown or stopProcess). */
export async function startBridge(topo: Topology, node: string, listen: BridgeListen, target: BridgeTarget, label = 'bridge'): Promise<BackgroundProcess> {
  const [left, right] = renderSocatAddresses(listen, target);
  return topo.startProcess(node, { label, cmd: '/usr/bin/socat', args: ['-d', '-d', left, right], readyLogText: 'listening on' });
}
