// Duplicate-address check on the wire (DESIGN.md 3.3): after this agent became the owner of an
// address, an ARP probe (RFC 5227 style, `arping -D`, sender 0.0.0.0) asks whether any OTHER host
// on the segment answers for it. Through the CommandRunner, so it runs in the agent's namespace.
// It reports; it does not act (VRRP priority already decides who carries the address). arpAnswers
// asks whether a next hop answers at all (the reachability input of the agent's health).
import type { CommandRunner } from './command-runner.js';
import { isValidInterfaceName, canonicalIpv4 } from '../model/net.js';

export type ArpProbeResult = 'free' | 'duplicate';

export async function probeDuplicateAddress(runner: CommandRunner, iface: string, address: string, timeoutSeconds = 1): Promise<ArpProbeResult> {
  const addr = canonicalIpv4(address);
  if (addr === undefined) throw new Error(`not an IPv4 address: ${JSON.stringify(address)}`);
  if (!isValidInterfaceName(iface)) throw new Error(`not an interface name: ${JSON.stringify(iface)}`);
  // iputils arping -D exits 0 when nobody answered, 1 when a reply came (the address is in use).
  const r = await runner.run('arping', ['-D', '-q', '-c', '2', '-w', String(timeoutSeconds), '-I', iface, addr], { okExitCodes: [0, 1], timeoutMs: (timeoutSeconds + 2) * 1000 });
  return r.exitCode === 1 ? 'duplicate' : 'free';
}

/**
 * Whether `target` answers an ARP request on `iface` within `waitMs` (`arping -c 1` exits at the
 * first reply; 1 = no reply, 2 = the interface cannot send, e.g. it is down). arping's own deadline
 * is whole seconds, so a shorter wait ends the process (a reply on a LAN takes a millisecond). Used
 * as the internal next-hop reachability probe of the agent's health.
 */
export async function arpAnswers(runner: CommandRunner, iface: string, target: string, waitMs = 500): Promise<boolean> {
  const addr = canonicalIpv4(target);
  if (addr === undefined) throw new Error(`not an IPv4 address: ${JSON.stringify(target)}`);
  if (!isValidInterfaceName(iface)) throw new Error(`not an interface name: ${JSON.stringify(iface)}`);
  try {
    const r = await runner.run('arping', ['-q', '-c', '1', '-w', String(Math.max(1, Math.ceil(waitMs / 1000))), '-I', iface, addr], { okExitCodes: [0, 1, 2], timeoutMs: waitMs });
    return r.exitCode === 0;
  } catch {
    return false; // killed at waitMs: no answer
  }
}
