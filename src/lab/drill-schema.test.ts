// docs/drill.schema.json and the DrillReport type describe the same object: a report literal
// typed as DrillReport (so the compiler demands every field) is walked against the schema's
// required/properties/additionalProperties/enum/type, and the text rendering names every run.
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderDrillReport } from '../cli/drill.js';
import { computeDrillTimings, DRILL_KINDS } from './drill-plan.js';
import type { DrillReport, DrillRunReport } from './drill.js';

interface Schema {
  type?: string | string[];
  required?: string[];
  properties?: Record<string, Schema>;
  additionalProperties?: boolean;
  items?: Schema;
  enum?: unknown[];
  const?: unknown;
  oneOf?: Schema[];
  $ref?: string;
  $defs?: Record<string, Schema>;
}

const root = JSON.parse(readFileSync(join(process.cwd(), 'docs', 'drill.schema.json'), 'utf8')) as Schema;

function resolve(s: Schema): Schema {
  if (!s.$ref) return s;
  const name = s.$ref.replace('#/$defs/', '');
  const target = root.$defs?.[name];
  if (!target) throw new Error(`unresolved ${s.$ref}`);
  return resolve(target);
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** Every way `value` breaks `schema` (a subset of JSON Schema: enough for this document). */
function check(value: unknown, schemaIn: Schema, path = '$'): string[] {
  const schema = resolve(schemaIn);
  if (schema.oneOf) {
    const passing = schema.oneOf.filter((s) => check(value, s, path).length === 0);
    return passing.length === 1 ? [] : [`${path}: matches ${passing.length} of oneOf`];
  }
  const problems: string[] = [];
  if (schema.const !== undefined && value !== schema.const) problems.push(`${path}: not ${JSON.stringify(schema.const)}`);
  if (schema.enum && !schema.enum.includes(value)) problems.push(`${path}: ${JSON.stringify(value)} not in enum`);
  if (schema.type) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    const t = typeOf(value);
    if (!types.includes(t) && !(t === 'integer' && types.includes('number'))) problems.push(`${path}: ${t}, want ${types.join('|')}`);
  }
  if (typeOf(value) === 'object' && (schema.properties || schema.required)) {
    const obj = value as Record<string, unknown>;
    for (const key of schema.required ?? []) if (!(key in obj)) problems.push(`${path}.${key}: missing`);
    for (const [key, v] of Object.entries(obj)) {
      const sub = schema.properties?.[key];
      if (!sub) {
        if (schema.additionalProperties === false) problems.push(`${path}.${key}: not in the schema`);
        continue;
      }
      problems.push(...check(v, sub, `${path}.${key}`));
    }
  }
  if (Array.isArray(value) && schema.items) value.forEach((v, i) => problems.push(...check(v, schema.items!, `${path}[${i}]`)));
  return problems;
}

const summary = { tries: 300, ok: 120, refused: 0, failed: 180, gapMs: 1874.8 };
const killed: DrillRunReport = {
  run: 1, ok: true, problems: [], previousOwner: 'a1', owner: 'a3', moved: true, injectedAt: '2026-11-26T14:31:02.114Z',
  gapMs: 1894.7, refused: 0, failed: 283, recoveryMs: 1941.9, leaseTransitionMs: 1497.8, stop: 'recovered',
  tcp: summary, udp: { ...summary, gapMs: 1894.7 }, addressOn: ['a3'],
  fault: { method: 'SIGKILL agent 5945 and keepalived 6188, links ext0,ext1,int0,mgmt0 down' },
};
const held: DrillRunReport = {
  ...killed, run: 2, ok: false, problems: ['the address moved from a1 to a3'], recoveryMs: null, leaseTransitionMs: null,
  stop: 'deadline', udp: null, fault: { method: 'API server 11638 stopped (SIGTERM)', heldMs: 4600 },
};
const report: DrillReport = {
  schemaVersion: 1, kind: 'kill', lab: 'smartnat', address: '203.0.113.10', tcpPort: 8080, udpPort: 8080,
  client: { name: 'c1', address: '198.18.1.10' }, leaseDurationMs: 1500, timings: computeDrillTimings({ leaseDurationMs: 1500 }),
  probe: { tcpPerSecond: 100, udpPerSecond: 50, timeoutMs: 200 }, ok: false, runs: [killed, held],
  summary: { runs: 2, passed: 1, gapMs: { p50: 1894.7, p99: 1894.7, max: 1894.7 }, recoveryMs: null, leaseTransitionMs: { p50: 1497.8, p99: 1497.8, max: 1497.8 }, refused: 0, failed: 566 },
};

describe('docs/drill.schema.json', () => {
  it('accepts a report of the DrillReport type, including nulls and a held fault', () => {
    expect(check(JSON.parse(JSON.stringify(report)) as unknown, root)).toEqual([]);
  });

  it('refuses a field the schema does not know, a missing one and a kind that does not exist', () => {
    const bad = JSON.parse(JSON.stringify(report)) as Record<string, unknown> & { runs: Record<string, unknown>[] };
    bad['kind'] = 'reboot';
    delete bad.runs[0]!['gapMs'];
    bad.runs[1]!['extra'] = 1;
    expect(check(bad, root)).toEqual(['$.kind: "reboot" not in enum', '$.runs[0].gapMs: missing', '$.runs[1].extra: not in the schema']);
  });

  it('lists exactly the drill kinds', () => {
    expect(root.properties?.['kind']?.enum).toEqual([...DRILL_KINDS]);
  });
});

describe('renderDrillReport', () => {
  it('prints one line per run with its problems, and the summary', () => {
    const text = renderDrillReport(report);
    expect(text).toContain('run 1: ok  gap 1895 ms  recovery 1942 ms  refused 0  failed 283  lease a1 -> a3 after 1498 ms');
    expect(text).toContain('run 2: FAILED');
    expect(text).toContain('      the address moved from a1 to a3');
    expect(text).toContain('1/2 passed; gap p50 1895 ms p99 1895 ms max 1895 ms; lease transition p50 1498 ms');
  });
});
