import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { expectGolden } from '../../test/support/golden.js';
import {
  compileKeepalivedTemplate,
  computeKeepalivedView,
  instanceName,
  KeepalivedRenderError,
  renderAdvertInterval,
  renderKeepalivedConfig,
  type KeepalivedInput,
} from './render.js';

const template = compileKeepalivedTemplate(readFileSync(new URL('../../templates/keepalived.conf.hbs', import.meta.url), 'utf8'));

const AGENT_A_EXT0 = '203.0.113.2';
const AGENT_B_EXT0 = '203.0.113.3';
const AGENT_C_EXT0 = '203.0.113.4';
const AGENT_A_EXT1 = '192.0.2.2';
const AGENT_B_EXT1 = '192.0.2.3';
const VIP_1 = '203.0.113.10';
const VIP_2 = '203.0.113.11';
const VIP_3 = '192.0.2.10';

export const THREE_AGENTS: KeepalivedInput = {
  agent: 'agent-a',
  stateDir: '/run/smartnat/agent-a',
  instances: [
    { address: VIP_2, interface: 'ext0', vrid: 11, sourceAddress: AGENT_A_EXT0, peers: [AGENT_C_EXT0, AGENT_B_EXT0], advertIntervalMs: 100 },
    { address: VIP_3, interface: 'ext1', vrid: 10, sourceAddress: AGENT_A_EXT1, peers: [AGENT_B_EXT1], advertIntervalMs: 250 },
    { address: VIP_1, interface: 'ext0', vrid: 10, sourceAddress: AGENT_A_EXT0, peers: [AGENT_B_EXT0, AGENT_C_EXT0, AGENT_A_EXT0], advertIntervalMs: 100 },
  ],
};

export const LONE_AGENT: KeepalivedInput = {
  agent: 'agent-a',
  stateDir: '/run/smartnat/agent-a',
  instances: [{ address: VIP_1, interface: 'ext0', vrid: 10, sourceAddress: AGENT_A_EXT0, peers: [], advertIntervalMs: 100 }],
};

/** ADR 0009: each instance also carries its address's egress gateway on the internal interface. */
export const EGRESS_COMPANIONS: KeepalivedInput = {
  agent: 'agent-a',
  stateDir: '/run/smartnat/agent-a',
  instances: [
    { address: VIP_1, interface: 'ext0', vrid: 10, sourceAddress: AGENT_A_EXT0, peers: [AGENT_B_EXT0], advertIntervalMs: 100, companion: { address: '198.51.100.110', interface: 'int0' } },
    { address: VIP_2, interface: 'ext0', vrid: 11, sourceAddress: AGENT_A_EXT0, peers: [AGENT_B_EXT0], advertIntervalMs: 100 },
  ],
};

describe('keepalived rendering', () => {
  it('puts an egress companion in the same instance as its address, on its own interface (golden)', () => {
    const text = renderKeepalivedConfig(template, EGRESS_COMPANIONS);
    expectGolden('keepalived/egress-companion.conf', text);
    expect(text).toContain(`virtual_ipaddress {\n        ${VIP_1}/32 dev ext0\n        198.51.100.110/32 dev int0\n    }`);
    expect(text).toContain(`virtual_ipaddress {\n        ${VIP_2}/32 dev ext0\n    }`);
  });

  it('refuses a companion that is not an IPv4 address, has a bad interface, or repeats an address', () => {
    const one = EGRESS_COMPANIONS.instances[0]!;
    const withCompanion = (companion: { address: string; interface: string }): KeepalivedInput => ({ ...EGRESS_COMPANIONS, instances: [{ ...one, companion }] });
    expect(() => computeKeepalivedView(withCompanion({ address: '198.51.100.1; rm', interface: 'int0' }))).toThrow(KeepalivedRenderError);
    expect(() => computeKeepalivedView(withCompanion({ address: '198.51.100.110', interface: 'int0 x' }))).toThrow(/bad companion interface/);
    expect(() => computeKeepalivedView(withCompanion({ address: VIP_1, interface: 'int0' }))).toThrow(/listed twice/);
  });

  it('renders three agents, two interfaces (golden)', () => {
    expectGolden('keepalived/three-agents.conf', renderKeepalivedConfig(template, THREE_AGENTS));
  });

  it('renders a lone agent with itself as its only unicast peer, never multicast (golden)', () => {
    const text = renderKeepalivedConfig(template, LONE_AGENT);
    expectGolden('keepalived/lone-agent.conf', text);
    expect(text).toContain(`unicast_peer {\n        ${AGENT_A_EXT0}\n    }`);
  });

  it('never renders vrrp_strict (it installs nftables drops that break the NAT)', () => {
    expect(renderKeepalivedConfig(template, THREE_AGENTS)).not.toMatch(/vrrp_strict/);
  });

  it('gives the same text whatever the input order', () => {
    fc.assert(
      fc.property(fc.shuffledSubarray([...THREE_AGENTS.instances], { minLength: 3, maxLength: 3 }), (instances) => {
        const shuffled = instances.map((i) => ({ ...i, peers: [...i.peers].reverse() }));
        expect(renderKeepalivedConfig(template, { ...THREE_AGENTS, instances: shuffled })).toBe(
          renderKeepalivedConfig(template, THREE_AGENTS),
        );
      }),
    );
  });

  it('drops its own address from the peer list and sorts peers numerically', () => {
    const view = computeKeepalivedView(THREE_AGENTS);
    expect(view.instances.map((i) => i.address)).toEqual([VIP_3, VIP_1, VIP_2]);
    expect(view.instances[1]?.peers).toEqual([AGENT_B_EXT0, AGENT_C_EXT0]);
  });

  it.each([
    ['0.1 s', 100, '0.1'],
    ['1 s', 1000, '1'],
    ['0.25 s', 250, '0.25'],
    ['2.5 s', 2500, '2.5'],
  ])('prints advert interval %s', (_label, ms, text) => {
    expect(renderAdvertInterval(ms)).toBe(text);
  });

  const bad: Array<[string, Partial<KeepalivedInput['instances'][number]> | { agent?: string; stateDir?: string }]> = [
    ['a newline in the interface', { interface: 'ext0\n}' }],
    ['a brace in the address', { address: '203.0.113.10}' }],
    ['an overlong interface name', { interface: 'averyverylongname0' }],
    ['a VRID of 0', { vrid: 0 }],
    ['a VRID of 256', { vrid: 256 }],
    ['a peer with a quote', { peers: ['203.0.113.3"'] }],
    ['an advert interval of 5 ms', { advertIntervalMs: 5 }],
    ['a quote in the state dir', { stateDir: '/run/x"y' }],
    ['a relative state dir', { stateDir: 'run/x' }],
    ['an agent name with a space', { agent: 'agent a' }],
  ];
  it.each(bad)('refuses %s with a clear error', (_label, change) => {
    const { agent, stateDir, ...instanceChange } = change as Record<string, unknown>;
    const input: KeepalivedInput = {
      agent: (agent as string | undefined) ?? LONE_AGENT.agent,
      stateDir: (stateDir as string | undefined) ?? LONE_AGENT.stateDir,
      instances: [{ ...LONE_AGENT.instances[0]!, ...instanceChange }],
    };
    expect(() => computeKeepalivedView(input)).toThrow(KeepalivedRenderError);
  });

  it('refuses two instances with one VRID on one interface', () => {
    const dup = { ...THREE_AGENTS.instances[0]!, vrid: 10 };
    expect(() => computeKeepalivedView({ ...THREE_AGENTS, instances: [dup, THREE_AGENTS.instances[2]!] })).toThrow(/VRID 10 on ext0/);
  });

  it('names instances SN_a_b_c_d', () => {
    expect(instanceName(VIP_1)).toBe('SN_203_0_113_10');
  });
});
