// Label-selector semantics for AddressPool.spec.agentSelector (matchLabels and matchExpressions).
// Guarantees: the meaning of metav1.LabelSelector: all matchLabels and all expressions must hold;
// an empty selector matches every agent. Pure. Does not know where agent labels come from.

import type { AddressPoolSpec, LabelRequirement } from './types.js';

function requirementHolds(r: LabelRequirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.hasOwn(labels, r.key);
  switch (r.operator) {
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
    case 'In':
      return has && r.values.includes(labels[r.key] ?? '');
    case 'NotIn':
      return !has || !r.values.includes(labels[r.key] ?? '');
  }
}

/** Whether an agent with these labels may own the pool's addresses. */
export function matchesAgentSelector(
  spec: Pick<AddressPoolSpec, 'agentSelector' | 'agentMatchExpressions'>,
  labels: Readonly<Record<string, string>>,
): boolean {
  const byLabel = Object.entries(spec.agentSelector).every(([k, v]) => Object.hasOwn(labels, k) && labels[k] === v);
  return byLabel && spec.agentMatchExpressions.every((r) => requirementHolds(r, labels));
}
