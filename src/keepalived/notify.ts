// Parses keepalived's notify FIFO lines (`INSTANCE "SN_203_0_113_10" MASTER 250`) into typed VRRP
// state changes. Pure; lines it does not understand (groups, unknown states) give undefined.
export type VrrpState = 'MASTER' | 'BACKUP' | 'FAULT' | 'STOP';

export interface VrrpStateChange {
  readonly instance: string;
  /** The address the instance carries (from its SN_a_b_c_d name). */
  readonly address: string;
  readonly state: VrrpState;
  readonly priority: number;
}

const LINE = /^INSTANCE "SN_(\d{1,3})_(\d{1,3})_(\d{1,3})_(\d{1,3})" (MASTER|BACKUP|FAULT|STOP) (\d{1,3})$/;

export function parseNotifyLine(line: string): VrrpStateChange | undefined {
  const m = LINE.exec(line.trim());
  if (!m) return undefined;
  const octets = m.slice(1, 5).map(Number);
  if (octets.some((o) => o > 255)) return undefined;
  return {
    instance: `SN_${octets.join('_')}`,
    address: octets.join('.'),
    state: m[5] as VrrpState,
    priority: Number(m[6]),
  };
}
