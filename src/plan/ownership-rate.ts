// Token buckets for takeovers, fencing writes and rebalance moves (ADR 0006), as plain data.
// Guarantees: pure, deterministic given `now`; never more than `burst` tokens. Does not sleep.

export interface TokenBucket {
  readonly tokens: number;
  readonly at: number;
}

export interface BucketRate {
  readonly burst: number;
  /** Tokens added per millisecond. */
  readonly perMs: number;
}

export function fullBucket(rate: BucketRate, now: number): TokenBucket {
  return { tokens: rate.burst, at: now };
}

function refill(b: TokenBucket, rate: BucketRate, now: number): TokenBucket {
  const elapsed = Math.max(0, now - b.at);
  return { tokens: Math.min(rate.burst, b.tokens + elapsed * rate.perMs), at: Math.max(b.at, now) };
}

/** Takes one token if there is one; `bucket` is the state to keep either way. */
export function takeToken(b: TokenBucket, rate: BucketRate, now: number): { granted: boolean; bucket: TokenBucket } {
  const r = refill(b, rate, now);
  return r.tokens >= 1 ? { granted: true, bucket: { tokens: r.tokens - 1, at: r.at } } : { granted: false, bucket: r };
}

/** When the next whole token is available (now if one already is). */
export function nextTokenAt(b: TokenBucket, rate: BucketRate, now: number): number {
  const r = refill(b, rate, now);
  return r.tokens >= 1 ? now : now + (1 - r.tokens) / rate.perMs;
}
