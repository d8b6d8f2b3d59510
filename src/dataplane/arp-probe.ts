// Duplicate-address check on the wire (DESIGN.md 3.3): after this agent became the owner of an
// address, an ARP probe (RFC 5227 style, `arping -D`, sender 0.0.0.0) asks whether any OTHER host
// on the segment answers for it. Through the CommandRunner, so it runs in the agent's namespace.
// It reports; it does not act (VRRP priority already decides who carries the address).
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
