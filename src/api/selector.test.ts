// Label-selector semantics of AddressPool.spec.agentSelector.
import { describe, expect, it } from '@jest/globals';

import { matchesAgentSelector } from './selector.js';
import type { LabelRequirement } from './types.js';

const AGENT = { 'smartnat.aureacentral.com/pool': 'blue', zone: 'a' };

describe('matchesAgentSelector', () => {
  it.each<[string, Record<string, string>, LabelRequirement[], boolean]>([
    ['empty selector matches every agent', {}, [], true],
    ['matching label', { zone: 'a' }, [], true],
    ['label with another value', { zone: 'b' }, [], false],
    ['missing label', { rack: '1' }, [], false],
    ['In holds', {}, [{ key: 'zone', operator: 'In', values: ['a', 'b'] }], true],
    ['In fails', {}, [{ key: 'zone', operator: 'In', values: ['b'] }], false],
    ['In on a missing key fails', {}, [{ key: 'rack', operator: 'In', values: ['1'] }], false],
    ['NotIn on a missing key holds', {}, [{ key: 'rack', operator: 'NotIn', values: ['1'] }], true],
    ['NotIn fails', {}, [{ key: 'zone', operator: 'NotIn', values: ['a'] }], false],
    ['Exists', {}, [{ key: 'zone', operator: 'Exists', values: [] }], true],
    ['DoesNotExist', {}, [{ key: 'zone', operator: 'DoesNotExist', values: [] }], false],
    ['labels and expressions must all hold', { zone: 'a' }, [{ key: 'smartnat.aureacentral.com/pool', operator: 'In', values: ['red'] }], false],
    ['an inherited property is not a label', {}, [{ key: 'toString', operator: 'Exists', values: [] }], false],
  ])('%s', (_name, agentSelector, agentMatchExpressions, expected) => {
    expect(matchesAgentSelector({ agentSelector, agentMatchExpressions }, AGENT)).toBe(expected);
  });
});
