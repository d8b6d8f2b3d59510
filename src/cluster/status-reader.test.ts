import { describe, expect, it } from '@jest/globals';
import { LeaseStoreError } from './lease-store.js';
import { withThrottleRetry } from './status-reader.js';

describe('smartnat status reads retry a throttled API server', () => {
  it('retries 429 after Retry-After, gives up after 5 attempts, and never retries other errors', async () => {
    const slept: number[] = [];
    const sleep = async (ms: number): Promise<void> => {
      slept.push(ms);
    };
    let calls = 0;
    const throttled = Object.assign(new Error('HTTP-Code: 429'), { code: 429, headers: { 'retry-after': '2' } });
    expect(await withThrottleRetry(async () => (++calls < 3 ? Promise.reject(throttled) : 'ok'), sleep)).toBe('ok');
    expect(slept).toEqual([2000, 2000]);
    calls = 0;
    await expect(withThrottleRetry(async () => Promise.reject(new LeaseStoreError('throttled', 'list', '', 429)), sleep)).rejects.toThrow('throttled');
    await expect(withThrottleRetry(async () => {
      calls++;
      throw Object.assign(new Error('forbidden'), { code: 403 });
    }, sleep)).rejects.toThrow('forbidden');
    expect(calls).toBe(1);
    expect(slept).toHaveLength(2 + 4); // four retries of the lease-store 429, 1 s each (no Retry-After)
    expect(slept.slice(2)).toEqual([1000, 1000, 1000, 1000]);
  });
});
