import { describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeCdfPoints, renderPlotPng, writePlotPng } from './plot.js';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Width and height from the IHDR chunk, which always follows the signature. */
function pngSize(png: Buffer): { width: number; height: number } {
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

describe('plot', () => {
  it('computes CDF steps from unsorted samples', () => {
    expect(computeCdfPoints([3, 1, 2, 4])).toEqual([
      { x: 1, y: 0 },
      { x: 1, y: 0.25 },
      { x: 2, y: 0.5 },
      { x: 3, y: 0.75 },
      { x: 4, y: 1 },
    ]);
    expect(computeCdfPoints([])).toEqual([]);
    expect(computeCdfPoints([2, 1], 4)).toEqual([{ x: 1, y: 0 }, { x: 1, y: 0.25 }, { x: 2, y: 0.5 }]);
  });

  it('renders an x/y series to a PNG with the requested size', async () => {
    const png = await renderPlotPng({
      kind: 'xy',
      title: 'programming latency',
      xLabel: 'Mappings present',
      yLabel: 'ms',
      width: 300,
      height: 200,
      series: [{ name: 'p50', points: [{ x: 1, y: 20 }, { x: 100, y: 35 }, { x: 1000, y: 90 }] }],
      logX: true,
    });
    expect(png.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
    const { width, height } = pngSize(png);
    // The chart area plus axes, title and legend, drawn at 2x.
    expect(width).toBeGreaterThan(600);
    expect(height).toBeGreaterThan(400);
    expect(png.length).toBeGreaterThan(5000);
  }, 30_000);

  it('writes a CDF of samples with a reference line to a file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sn-plot-'));
    try {
      const file = join(dir, 'sub', 'cdf.png');
      const size = await writePlotPng(file, {
        kind: 'cdf',
        title: 'failover gap',
        xLabel: 'gap (ms)',
        yLabel: 'fraction of runs',
        rules: [{ x: 2000, label: 'target p50' }],
        series: [{ name: 'kill', samples: [1800, 1900, 1750, 2100, 1950] }],
      });
      const png = await readFile(file);
      expect(png.length).toBe(size);
      expect(png.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
