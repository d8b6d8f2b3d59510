import { describe, expect, it } from '@jest/globals';
import { UsageError } from './errors.js';
import { parseAgentFlags, parseDuration, type AgentFlags } from './agent.js';

const BASE: AgentFlags = { namespace: 'smartnat-system', interface: [], stateDir: '/var/lib/smartnat', handoffGrace: '2s', keepalived: true, metricsAddress: '127.0.0.1:9655', logLevel: 'info' };

describe('smartnat agent flags', () => {
  it('takes the name from --name, else NODE_NAME, else the hostname', () => {
    expect(parseAgentFlags({ ...BASE, name: 'edge-1' }, { NODE_NAME: 'node-a' }, 'host').name).toBe('edge-1');
    expect(parseAgentFlags(BASE, { NODE_NAME: 'node-a' }, 'host').name).toBe('node-a');
    expect(parseAgentFlags(BASE, {}, 'host').name).toBe('host');
  });

  it('reads durations, labels, interfaces and the listen address', () => {
    const c = parseAgentFlags(
      { ...BASE, leaseDuration: '3s', renewDeadline: '2000ms', retryPeriod: '500', labels: 'smartnat.aureacentral.com/pool=edge,zone=a', interface: ['eth0=external', 'eth1=internal'], rebalanceHoldDown: 'off' },
      {},
      'host',
    );
    expect(c.settings).toMatchObject({ leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 });
    expect(c.settings.rebalance).toBeUndefined();
    expect(c.labels).toEqual({ 'smartnat.aureacentral.com/pool': 'edge', zone: 'a' });
    expect(c.interfaces).toEqual({ eth0: 'external', eth1: 'internal' });
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 9655 });
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('soon')).toBeUndefined();
  });

  it('lists every problem at once as a usage error (exit 2)', () => {
    let err: unknown;
    try {
      parseAgentFlags({ ...BASE, name: 'Bad_Name', leaseDuration: '1s', renewDeadline: '900ms', retryPeriod: '10ms', interface: ['eth0=uplink'], metricsAddress: 'nope', labels: 'bad key=x' }, {}, 'host');
    } catch (e: unknown) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    const lines = (err as Error).message.split('\n').slice(1).map((l) => l.trim());
    expect(lines).toEqual([
      '--name "Bad_Name" must be a lowercase DNS name (it names the agent lease)',
      '--labels: "bad key=x" is not key=value with a valid label key and value',
      '--interface eth0=uplink: must be NAME=external or NAME=internal',
      'leaseDurationMs - renewDeadlineMs must be at least 200 ms',
      'retryPeriodMs must be at least 50 ms',
      '--metrics-address "nope": must be host:port',
    ]);
  });
});
