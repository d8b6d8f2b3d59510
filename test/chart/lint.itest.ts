// `helm lint --strict` on the default values and on every file in the chart's ci/ folder, and the
// values a user gets wrong: each must fail at lint and at template time with a message that names
// the offending key (values.schema.json, or a template `fail` for what a schema cannot say).
import { describe, expect, test } from '@jest/globals';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { helm } from '../support/kube.js';
import { CHART_DIR, template, withValuesFile } from './chart.js';

const ciFiles = readdirSync(join(CHART_DIR, 'ci'))
  .filter((f) => f.endsWith('.yaml'))
  .sort();

describe('helm lint --strict', () => {
  test('the ci/ folder has value files to lint', () => {
    expect(ciFiles.length).toBeGreaterThanOrEqual(3);
  });

  test('default values', async () => {
    const r = await helm(['lint', '--strict', CHART_DIR]);
    expect(r.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
  });

  test.each(ciFiles)('ci/%s', async (file) => {
    const r = await helm(['lint', '--strict', CHART_DIR, '-f', join(CHART_DIR, 'ci', file)]);
    expect(r.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
  });
});

interface BadValues {
  readonly what: string;
  readonly values: Record<string, unknown>;
  /** Every fragment must appear in helm's error output. */
  readonly message: readonly string[];
  /**
   * 'schema': values.schema.json refuses it, so `helm lint` fails too. 'template': a template
   * `fail` refuses it at template/install time; `helm lint` only prints the message (helm treats
   * a template `fail` as informational while linting).
   */
  readonly by: 'schema' | 'template';
}

const BAD: readonly BadValues[] = [
  { what: 'nodeSelector is not a map', values: { nodeSelector: 'oops' }, message: ["at '/nodeSelector'", 'want object'], by: 'schema' },
  { what: 'a misspelt top-level key', values: { agnet: { logLevel: 'info' } }, message: ["additional properties 'agnet' not allowed"], by: 'schema' },
  { what: 'a misspelt agent key', values: { agent: { leaseDuration: 1500 } }, message: ["at '/agent'", "additional properties 'leaseDuration' not allowed"], by: 'schema' },
  { what: 'an interface role other than external|internal', values: { agent: { interfaces: [{ name: 'eth1', role: 'uplink' }] } }, message: ["at '/agent/interfaces/0/role'", "'external', 'internal'"], by: 'schema' },
  { what: 'an interface name with a space', values: { agent: { interfaces: [{ name: 'eth 1', role: 'external' }] } }, message: ["at '/agent/interfaces/0/name'"], by: 'schema' },
  { what: 'a metrics port out of range', values: { agent: { metricsPort: 70000 } }, message: ["at '/agent/metricsPort'", 'maximum'], by: 'schema' },
  { what: 'a metrics bind that is neither nodeIP nor all', values: { agent: { metricsBind: '127.0.0.1' } }, message: ["at '/agent/metricsBind'"], by: 'schema' },
  { what: 'an unknown log level', values: { agent: { logLevel: 'verbose' } }, message: ["at '/agent/logLevel'"], by: 'schema' },
  { what: 'a pool without addresses', values: { addressPools: [{ name: 'p' }] }, message: ["at '/addressPools/0'", "missing property 'addresses'"], by: 'schema' },
  { what: 'a pool name that is not DNS-1123', values: { addressPools: [{ name: 'Bad_Name', addresses: ['203.0.113.1'] }] }, message: ["at '/addressPools/0/name'"], by: 'schema' },
  { what: 'a toleration effect Kubernetes does not know', values: { tolerations: [{ key: 'k', operator: 'Exists', effect: 'Never' }] }, message: ["at '/tolerations/0/effect'"], by: 'schema' },
  { what: 'a terminationGracePeriodSeconds too short for a drain', values: { terminationGracePeriodSeconds: 1 }, message: ["at '/terminationGracePeriodSeconds'", 'minimum'], by: 'schema' },
  { what: 'sysctlInit.enabled as a string', values: { sysctlInit: { enabled: 'yes' } }, message: ["at '/sysctlInit/enabled'", 'want boolean'], by: 'schema' },
  { what: 'leaseDurationMs not above renewDeadlineMs', values: { agent: { leaseDurationMs: 1200, renewDeadlineMs: 1200 } }, message: ['agent.leaseDurationMs (1200) must be greater than agent.renewDeadlineMs (1200)'], by: 'template' },
  { what: 'renewDeadlineMs under twice retryPeriodMs', values: { agent: { renewDeadlineMs: 1200, retryPeriodMs: 700 } }, message: ['agent.renewDeadlineMs (1200) must be at least 2 x agent.retryPeriodMs (700)'], by: 'template' },
  { what: 'a termination grace shorter than a drain', values: { terminationGracePeriodSeconds: 10, agent: { handoffGraceMs: 9000, leaseDurationMs: 1500 } }, message: ['terminationGracePeriodSeconds (10 s) must be longer than a drain: agent.handoffGraceMs + agent.leaseDurationMs = 10500 ms'], by: 'template' },
  { what: 'the same interface twice', values: { agent: { interfaces: [{ name: 'eth1', role: 'external' }, { name: 'eth1', role: 'internal' }] } }, message: ['agent.interfaces: eth1 is listed twice'], by: 'template' },
  { what: 'two pools with one name', values: { addressPools: [{ name: 'p', addresses: ['203.0.113.1'] }, { name: 'p', addresses: ['203.0.113.2'] }] }, message: ['addressPools: the name p is used twice'], by: 'template' },
  { what: 'a ServiceMonitor without the Service', values: { metrics: { service: { enabled: false }, serviceMonitor: { enabled: true } } }, message: ['metrics.serviceMonitor.enabled needs metrics.service.enabled'], by: 'template' },
];

describe('wrong values fail with a message naming the key', () => {
  test.each(BAD)('$what (refused by the $by)', async ({ values, message, by }) => {
    const rendered = await template(values);
    expect(rendered.exitCode).not.toBe(0);
    for (const fragment of message) expect(rendered.stderr).toContain(fragment);
    const linted = await withValuesFile(values, async (file) => helm(['lint', '--strict', CHART_DIR, '-f', file], { allowFailure: true }));
    expect(linted.exitCode === 0).toBe(by === 'template');
    for (const fragment of message) expect(`${linted.stdout}\n${linted.stderr}`).toContain(fragment);
  });

  test('a Kubernetes older than 1.31 is refused (the CRDs need CEL IP/CIDR functions)', async () => {
    const r = await template({}, { kubeVersion: '1.30.9' });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain('chart requires kubeVersion: >= 1.31.0-0');
    expect((await template({}, { kubeVersion: '1.31.0' })).exitCode).toBe(0);
  });
});
