// Rendering tests for the values that change the chart's output: helm template with the real helm,
// parsed with `yaml`, asserted field by field. No API server is involved here (install.itest.ts
// puts the same objects in front of one).
import { AGENT_NODE_ARGV, agentNodeOptions } from '../../src/cli/node-flags.js';
import { describe, expect, test } from '@jest/globals';
import type { V1ClusterRole, V1Container, V1DaemonSet, V1Role } from '@kubernetes/client-node';
import { findObject, render, type KubeObject } from './chart.js';

function daemonSet(objects: readonly KubeObject[]): V1DaemonSet {
  return findObject(objects, 'DaemonSet') as unknown as V1DaemonSet;
}

function container(ds: V1DaemonSet, name: string): V1Container {
  const c = ds.spec?.template.spec?.containers.find((x) => x.name === name);
  if (c === undefined) throw new Error(`no container ${name} in ${JSON.stringify(ds.spec?.template.spec?.containers.map((x) => x.name))}`);
  return c;
}

describe('chart rendering', () => {
  test('defaults: the objects a release is made of, and nothing else', async () => {
    const objects = await render();
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'ClusterRole/rel-smartnat',
      'ClusterRoleBinding/rel-smartnat',
      'DaemonSet/rel-smartnat',
      'Role/rel-smartnat-leases',
      'RoleBinding/rel-smartnat-leases',
      'Service/rel-smartnat-metrics',
      'ServiceAccount/rel-smartnat',
    ]);
    for (const o of objects) {
      if (o.kind !== 'ClusterRole' && o.kind !== 'ClusterRoleBinding') expect(o.metadata.namespace).toBe('smartnat');
    }
  });

  test('the DaemonSet shares the host as DESIGN 4 says', async () => {
    const ds = daemonSet(await render());
    const pod = ds.spec!.template.spec!;
    expect(pod.hostNetwork).toBe(true);
    expect(pod.dnsPolicy).toBe('ClusterFirstWithHostNet');
    expect(ds.spec!.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } });
    expect(pod.terminationGracePeriodSeconds).toBe(30);
    expect(pod.serviceAccountName).toBe('rel-smartnat');
    expect(pod.containers.map((c) => c.name)).toEqual(['agent', 'keepalived']);
    expect(pod.shareProcessNamespace).toBeUndefined();
    const agent = container(ds, 'agent');
    expect(agent.env?.find((e) => e.name === 'NODE_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('spec.nodeName');
    expect(agent.env?.find((e) => e.name === 'HOST_IP')?.valueFrom?.fieldRef?.fieldPath).toBe('status.hostIP');
    // The same V8 settings as the lab's agents (src/cli/node-flags.ts).
    expect(agent.env?.find((e) => e.name === 'NODE_OPTIONS')?.value).toBe(agentNodeOptions().join(' '));
    expect(agent.command).toEqual(['node', ...AGENT_NODE_ARGV, '/opt/smartnat/dist/main.js']);
    expect(agent.args).toContain('--metrics-address=$(HOST_IP):9655');
    expect(agent.args).toContain('--name=$(NODE_NAME)');
    expect(agent.args).toContain('--namespace=smartnat');
    expect(agent.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(agent.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(agent.ports).toEqual([{ name: 'metrics', containerPort: 9655, protocol: 'TCP' }]);
    expect(agent.resources?.requests).toEqual({ cpu: '50m', memory: '96Mi' });
    expect(agent.volumeMounts?.map((m) => m.mountPath).sort()).toEqual(['/run/smartnat', '/run/xtables.lock', '/tmp']);
    const keepalived = container(ds, 'keepalived');
    expect(keepalived.args?.[0]).toBe('keepalived-watchdog');
    expect(keepalived.args).toContain('--heartbeat-url=http://$(HOST_IP):9655/healthz');
    expect(keepalived.volumeMounts?.find((m) => m.mountPath === '/run/smartnat')?.name).toBe('state');
    const lock = pod.volumes?.find((v) => v.name === 'xtables-lock');
    expect(lock?.hostPath).toEqual({ path: '/run/xtables.lock', type: 'FileOrCreate' });
    expect(pod.volumes?.find((v) => v.name === 'state')?.emptyDir).toEqual({});
  });

  test('every container: UID 0, capabilities exactly [NET_ADMIN, NET_RAW], never privileged', async () => {
    const ds = daemonSet(await render());
    for (const c of ds.spec!.template.spec!.containers) {
      expect(c.securityContext).toEqual({
        runAsUser: 0,
        runAsNonRoot: false,
        privileged: false,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW'] },
        seccompProfile: { type: 'RuntimeDefault' },
      });
    }
  });

  test('the privileged sysctl init container is off by default and on when asked, with the external interfaces', async () => {
    expect(daemonSet(await render()).spec!.template.spec!.initContainers).toBeUndefined();
    const ds = daemonSet(
      await render({
        sysctlInit: { enabled: true, extra: { 'net.netfilter.nf_conntrack_max': '262144' } },
        agent: { interfaces: [{ name: 'eth1.100', role: 'external' }, { name: 'ens5', role: 'external' }, { name: 'eth0', role: 'internal' }] },
      }),
    );
    const init = ds.spec!.template.spec!.initContainers ?? [];
    expect(init.map((c) => c.name)).toEqual(['sysctls']);
    expect(init[0]!.securityContext?.privileged).toBe(true);
    expect(init[0]!.command).toEqual([
      'sysctl',
      '-w',
      'net.ipv4.ip_forward=1',
      'net.ipv4.conf.eth1/100.rp_filter=2',
      'net.ipv4.conf.ens5.rp_filter=2',
      'net.netfilter.nf_conntrack_max=262144',
    ]);
    // The long-running containers stay unprivileged when the init container is on.
    for (const c of ds.spec!.template.spec!.containers) expect(c.securityContext?.privileged).toBe(false);
  });

  test('nodeSelector, tolerations and affinity come from values, replacing the defaults', async () => {
    const tolerations = [{ key: 'smartnat.aureacentral.com/dedicated', operator: 'Exists', effect: 'NoSchedule' }];
    const affinity = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['zone-a'] }] }] } } };
    const pod = daemonSet(await render({ nodeSelector: { 'smartnat.aureacentral.com/pool': 'blue' }, tolerations, affinity })).spec!.template.spec!;
    // helm merges maps: the default kubernetes.io/os stays unless set to null.
    expect(pod.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux', 'smartnat.aureacentral.com/pool': 'blue' });
    expect(pod.tolerations).toEqual(tolerations);
    expect(pod.affinity).toEqual(affinity);
    const defaults = daemonSet(await render()).spec!.template.spec!;
    expect(defaults.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(defaults.tolerations).toBeUndefined();
  });

  test('agent settings become flags: lease timings, interfaces, labels, log level, metrics port', async () => {
    const ds = daemonSet(
      await render({
        agent: {
          logLevel: 'debug',
          leaseDurationMs: 3000,
          renewDeadlineMs: 2000,
          retryPeriodMs: 500,
          handoffGraceMs: 5000,
          metricsPort: 9700,
          interfaces: [{ name: 'eth1', role: 'external' }, { name: 'eth0', role: 'internal' }],
          labels: { zone: 'a', 'smartnat.aureacentral.com/pool': 'blue' },
        },
        keepalived: { heartbeatStaleMs: 1500 },
      }),
    );
    const agent = container(ds, 'agent');
    expect(agent.args).toEqual([
      'agent',
      '--name=$(NODE_NAME)',
      '--namespace=smartnat',
      '--state-dir=/run/smartnat',
      '--no-keepalived',
      '--metrics-address=$(HOST_IP):9700',
      '--log-level=debug',
      '--lease-duration=3000ms',
      '--renew-deadline=2000ms',
      '--retry-period=500ms',
      '--handoff-grace=5000ms',
      '--interface=eth1=external',
      '--interface=eth0=internal',
      '--labels=smartnat.aureacentral.com/pool=blue,zone=a',
    ]);
    expect(agent.ports?.[0]?.containerPort).toBe(9700);
    expect(container(ds, 'keepalived').args).toEqual([
      'keepalived-watchdog',
      '--state-dir=/run/smartnat',
      '--heartbeat-url=http://$(HOST_IP):9700/healthz',
      '--stale-after=1500ms',
      '--log-level=debug',
    ]);
  });

  test('metrics and health listen on the node IP unless the values ask for every interface (agent.metricsBind=all)', async () => {
    const args = async (values: Record<string, unknown>): Promise<string[]> => container(daemonSet(await render(values)), 'agent').args ?? [];
    expect((await args({})).filter((a) => a.startsWith('--metrics-address='))).toEqual(['--metrics-address=$(HOST_IP):9655']);
    expect((await args({ agent: { metricsBind: 'nodeIP' } })).filter((a) => a.startsWith('--metrics-address='))).toEqual(['--metrics-address=$(HOST_IP):9655']);
    expect((await args({ agent: { metricsBind: 'all', metricsPort: 9700 } })).filter((a) => a.startsWith('--metrics-address='))).toEqual(['--metrics-address=0.0.0.0:9700']);
    // The watchdog's heartbeat keeps using the node IP, which every bind includes.
    expect(container(daemonSet(await render({ agent: { metricsBind: 'all' } })), 'keepalived').args).toContain('--heartbeat-url=http://$(HOST_IP):9655/healthz');
  });

  test('AddressPools from values: one object per entry, spec passed through without the chart keys', async () => {
    const pool = { name: 'uplink', addresses: ['203.0.113.16-203.0.113.31'], interface: 'eth1', allowedNamespaces: ['default'], labels: { team: 'net' } };
    const objects = await render({ addressPools: [pool, { name: 'second', addresses: ['192.0.2.0/28'] }] });
    const pools = objects.filter((o) => o.kind === 'AddressPool');
    expect(pools.map((p) => p.metadata.name)).toEqual(['uplink', 'second']);
    expect(pools[0]!.apiVersion).toBe('smartnat.aureacentral.com/v1alpha1');
    expect(pools[0]!['spec']).toEqual({ addresses: ['203.0.113.16-203.0.113.31'], interface: 'eth1', allowedNamespaces: ['default'] });
    expect(pools[0]!.metadata.labels?.['team']).toBe('net');
    expect(pools[0]!.metadata.namespace).toBeUndefined();
    expect((await render()).filter((o) => o.kind === 'AddressPool')).toEqual([]);
  });

  test('the metrics Service is headless on the metrics port; the ServiceMonitor only when asked', async () => {
    const objects = await render({ metrics: { serviceMonitor: { enabled: true, interval: '30s', labels: { release: 'prometheus' } } } });
    const svc = findObject(objects, 'Service');
    expect(svc['spec']).toEqual({
      clusterIP: 'None',
      selector: { 'app.kubernetes.io/name': 'smartnat', 'app.kubernetes.io/instance': 'rel' },
      ports: [{ name: 'metrics', port: 9655, targetPort: 'metrics', protocol: 'TCP' }],
    });
    const sm = findObject(objects, 'ServiceMonitor');
    expect(sm.metadata.labels?.['release']).toBe('prometheus');
    expect(sm['spec']).toMatchObject({ endpoints: [{ port: 'metrics', path: '/metrics', interval: '30s' }] });
    expect((await render({ metrics: { service: { enabled: false } } })).filter((o) => o.kind === 'Service')).toEqual([]);
  });

  test('rbac.readNodes=false drops the one rule on nodes and nothing else', async () => {
    const withNodes = findObject(await render(), 'ClusterRole') as unknown as V1ClusterRole;
    const without = findObject(await render({ rbac: { readNodes: false } }), 'ClusterRole') as unknown as V1ClusterRole;
    expect(withNodes.rules?.filter((r) => r.resources?.includes('nodes'))).toEqual([{ apiGroups: [''], resources: ['nodes'], verbs: ['get'] }]);
    expect(without.rules).toEqual(withNodes.rules?.filter((r) => !r.resources?.includes('nodes')));
    const role = findObject(await render(), 'Role') as unknown as V1Role;
    expect(role.rules).toEqual([{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] }]);
  });

  test('a hostPath state dir replaces the emptyDir', async () => {
    const pod = daemonSet(await render({ stateDir: { hostPath: '/var/lib/smartnat' } })).spec!.template.spec!;
    expect(pod.volumes?.find((v) => v.name === 'state')).toEqual({ name: 'state', hostPath: { path: '/var/lib/smartnat', type: 'DirectoryOrCreate' } });
  });
});
