// Helm never upgrades crds/: the documented step is `kubectl apply --server-side --force-conflicts
// -f charts/smartnat/crds/`. This test installs a chart whose AddressPool CRD is an older one (no
// `vrrp` field, one printer column fewer), creates objects, runs exactly that step, and checks the
// objects survive unchanged and the new field is served. Its own control plane: the shared one's
// CRDs must not be swapped under other test files.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { helm, kubectl, type ToolOptions } from '../support/kube.js';
import { CHART_DIR } from './chart.js';

jest.setTimeout(120_000);

const POOL_CRD = 'smartnat.aureacentral.com_addresspools.yaml';
let plane: ControlPlane | undefined;
let work = '';

function on(): ToolOptions {
  if (plane === undefined) throw new Error('control plane not started');
  return { kubeconfig: plane.kubeconfigPath, timeoutMs: 120_000 };
}

interface CrdDoc {
  spec: {
    versions: Array<{
      additionalPrinterColumns: Array<{ name: string }>;
      schema: { openAPIV3Schema: { properties: { spec: { properties: Record<string, unknown> } } } };
    }>;
  };
}

/** The current AddressPool CRD as an older release would have shipped it. */
function olderPoolCrd(current: string): string {
  const doc = parse(current) as CrdDoc;
  const version = doc.spec.versions[0];
  if (version === undefined) throw new Error('AddressPool CRD has no version');
  const props = version.schema.openAPIV3Schema.properties.spec.properties;
  if (!('vrrp' in props)) throw new Error('the current AddressPool CRD has no spec.vrrp: pick another field for this test');
  delete props['vrrp'];
  version.additionalPrinterColumns = version.additionalPrinterColumns.filter((c) => c.name !== 'Namespaces');
  return stringify(doc);
}

beforeAll(async () => {
  plane = await startControlPlane();
  work = mkdtempSync(join(tmpdir(), 'smartnat-crd-upgrade-'));
  cpSync(CHART_DIR, join(work, 'old-chart'), { recursive: true });
  const crdPath = join(work, 'old-chart', 'crds', POOL_CRD);
  writeFileSync(crdPath, olderPoolCrd(readFileSync(crdPath, 'utf8')));
}, 180_000);

afterAll(async () => {
  await plane?.stop();
  if (work !== '') rmSync(work, { recursive: true, force: true });
});

describe('CRD upgrade over objects created with the older CRD', () => {
  test('kubectl apply --server-side --force-conflicts of the new CRDs keeps the objects and serves the new field', async () => {
    await kubectl(['create', 'namespace', 'smartnat'], on());
    await helm(['install', 'sn', join(work, 'old-chart'), '-n', 'smartnat'], on());
    await kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/addresspools.smartnat.aureacentral.com', 'crd/mappings.smartnat.aureacentral.com'], on());
    const pool = { apiVersion: 'smartnat.aureacentral.com/v1alpha1', kind: 'AddressPool', metadata: { name: 'uplink' }, spec: { addresses: ['203.0.113.16/28'], interface: 'eth1' } };
    const mapping = {
      apiVersion: 'smartnat.aureacentral.com/v1alpha1',
      kind: 'Mapping',
      metadata: { name: 'echo', namespace: 'default' },
      spec: { addresses: ['203.0.113.17'], serviceName: 'echo', ports: [{ port: 8080, protocol: 'tcp' }] },
    };
    await kubectl(['create', '-f', '-'], { ...on(), input: `${JSON.stringify(pool)}\n${JSON.stringify(mapping)}` });
    // The older CRD does not know spec.vrrp: a strict client is told so.
    const withVrrp = JSON.stringify({ ...pool, spec: { ...pool.spec, vrrp: { advertIntervalMs: 200 } } });
    const applyVrrp = ['apply', '--server-side', '--field-manager=operator', '--validate=strict', '-f', '-'];
    const refused = await kubectl(applyVrrp, { ...on(), input: withVrrp, allowFailure: true });
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr).toContain('.spec.vrrp: field not declared in schema');
    const before = await kubectl(['get', 'addresspool/uplink', 'mapping/echo', '-n', 'default', '-o', 'jsonpath={range .items[*]}{.metadata.uid} {.spec}{"\\n"}{end}'], on());

    // Without --force-conflicts the apply is refused: helm owns .spec.versions of the installed CRD.
    const crdDir = join(CHART_DIR, 'crds');
    const conflict = await kubectl(['apply', '--server-side', '-f', crdDir], { ...on(), allowFailure: true });
    expect(conflict.exitCode).not.toBe(0);
    expect(conflict.stderr).toContain('conflict with "helm"');
    // The documented step.
    await kubectl(['apply', '--server-side', '--force-conflicts', '-f', crdDir], on());
    await kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/addresspools.smartnat.aureacentral.com'], on());

    const after = await kubectl(['get', 'addresspool/uplink', 'mapping/echo', '-n', 'default', '-o', 'jsonpath={range .items[*]}{.metadata.uid} {.spec}{"\\n"}{end}'], on());
    expect(after.stdout).toBe(before.stdout);
    await kubectl(applyVrrp, { ...on(), input: withVrrp });
    const vrrp = await kubectl(['get', 'addresspool', 'uplink', '-o', 'jsonpath={.spec.vrrp.advertIntervalMs}'], on());
    expect(vrrp.stdout).toBe('200');
    const wide = await kubectl(['get', 'addresspools', '-o', 'wide'], on());
    expect(wide.stdout.split('\n')[0]).toContain('NAMESPACES');
    // helm upgrade afterwards works and does not touch the CRDs again.
    await helm(['upgrade', 'sn', CHART_DIR, '-n', 'smartnat'], on());
    expect((await kubectl(['get', 'addresspool', 'uplink', '-o', 'jsonpath={.spec.vrrp.advertIntervalMs}'], on())).stdout).toBe('200');
  });
});
