// Differential property test: for random Mappings and AddressPools (valid, broken in one field, and
// near misses of IP/CIDR syntax), the parser and the real API server (dry-run create) agree on
// accept/refuse. A disagreement is shrunk by fast-check and printed with both sides' reasons.
import { beforeAll, describe, expect, it } from '@jest/globals';
import type { KubeConfig } from '@kubernetes/client-node';
import fc from 'fast-check';

import {
  addressPoolObject,
  brokenAddressPoolSpec,
  brokenMappingSpec,
  mappingObject,
  validAddressPoolSpec,
  validMappingSpec,
  wildAddressPoolSpec,
  wildMappingSpec,
} from '../../test/fixtures/crd/arbitraries.js';
import { asServed } from '../../test/fixtures/crd/fixtures.js';
import { dryRunCreate, installCrds, type Verdict } from '../../test/fixtures/crd/server.js';
import { createTestNamespace, loadTestKubeConfig } from '../../test/support/kube.js';
import { parseAddressPool, parseMapping } from './parse.js';
import type { ParseResult } from './types.js';

/** Objects per kind; SMARTNAT_DIFF_RUNS raises it for a longer hunt. */
const RUNS = Number(process.env.SMARTNAT_DIFF_RUNS ?? '50');

let kc: KubeConfig;
let ns: string;

beforeAll(async () => {
  kc = loadTestKubeConfig();
  await installCrds();
  ns = await createTestNamespace('crd-diff-');
}, 120_000);

function explain(obj: unknown, verdict: Verdict, parsed: ParseResult<unknown>): string {
  const server = verdict.accepted ? 'accepted' : verdict.causes.map((c) => `${c.field}: ${c.message}`).join('; ');
  const parser = parsed.ok ? 'accepted' : parsed.errors.map((e) => `${e.field}: ${e.message}`).join('; ');
  return `disagreement on ${JSON.stringify(obj)}\n  server: ${server}\n  parser: ${parser}`;
}

interface Tally {
  accepted: number;
  refused: number;
}

async function agree(obj: Record<string, unknown>, namespace: string | undefined, parse: (raw: unknown) => ParseResult<unknown>, tally: Tally): Promise<void> {
  const verdict = await dryRunCreate(kc, obj, namespace);
  const parsed = parse(asServed(obj, namespace));
  if (verdict.accepted !== parsed.ok) throw new Error(explain(obj, verdict, parsed));
  if (parsed.ok) tally.accepted += 1;
  else tally.refused += 1;
}

describe('parser and API server agree on accept/refuse', () => {
  it(`for ${RUNS} random Mappings`, async () => {
    const tally: Tally = { accepted: 0, refused: 0 };
    const candidate = fc.oneof(validMappingSpec, brokenMappingSpec, wildMappingSpec).map((spec) => mappingObject(spec, 'diff'));
    await fc.assert(
      fc.asyncProperty(candidate, (obj) => agree(obj, ns, parseMapping, tally)),
      { numRuns: RUNS },
    );
    // Both sides of the boundary were exercised, so agreement means something.
    expect(tally.accepted).toBeGreaterThan(0);
    expect(tally.refused).toBeGreaterThan(0);
  }, 300_000);

  it(`for ${RUNS} random AddressPools`, async () => {
    const tally: Tally = { accepted: 0, refused: 0 };
    const candidate = fc.oneof(validAddressPoolSpec, brokenAddressPoolSpec, wildAddressPoolSpec).map((spec) => addressPoolObject(spec, 'diff'));
    await fc.assert(
      fc.asyncProperty(candidate, (obj) => agree(obj, undefined, parseAddressPool, tally)),
      { numRuns: RUNS },
    );
    expect(tally.accepted).toBeGreaterThan(0);
    expect(tally.refused).toBeGreaterThan(0);
  }, 300_000);
});
