// The agent's metrics and health listener is not on every interface unless someone asks: the CLI
// default is loopback (the Helm chart passes the node IP, or 0.0.0.0 with agent.metricsBind=all),
// and ":PORT" (all interfaces) only when written out.
import { describe, expect, it } from '@jest/globals';
import { Command } from 'commander';
import { Writable } from 'node:stream';
import { parseListenAddress } from '../agent/health-server.js';
import { parseAgentFlags, register, type AgentFlags } from './agent.js';

function agentCommand(): Command {
  const program = new Command();
  const sink = new Writable({ write: (_c, _e, done) => done() });
  register(program, { env: {}, stdout: sink, stderr: sink });
  const agent = program.commands.find((c) => c.name() === 'agent');
  if (agent === undefined) throw new Error('no agent command registered');
  return agent;
}

describe('smartnat agent --metrics-address', () => {
  it('defaults to loopback, port 9655', () => {
    const option = agentCommand().options.find((o) => o.long === '--metrics-address');
    expect(option?.defaultValue).toBe('127.0.0.1:9655');
    const flags: AgentFlags = { namespace: 'smartnat-system', interface: [], stateDir: '/var/lib/smartnat', handoffGrace: '2s', keepalived: true, metricsAddress: String(option?.defaultValue), logLevel: 'info' };
    expect(parseAgentFlags(flags, {}, 'host').listen).toEqual({ host: '127.0.0.1', port: 9655 });
  });

  it('listens on every interface only when told so, by 0.0.0.0 or an empty host', () => {
    expect(parseListenAddress('0.0.0.0:9655')).toEqual({ host: '0.0.0.0', port: 9655 });
    expect(parseListenAddress(':9655')).toEqual({ host: '0.0.0.0', port: 9655 });
    expect(parseListenAddress('198.19.255.2:9100')).toEqual({ host: '198.19.255.2', port: 9100 });
    expect(parseListenAddress('9655')).toBeUndefined();
  });
});
