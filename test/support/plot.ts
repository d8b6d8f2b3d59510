// Owns: turning measured series into PNG charts for BENCHMARKS.md (line/point series, or samples
// drawn as an empirical CDF). Guarantees: the spec is built by pure functions (same input, same
// spec); rendering is Vega-Lite -> Vega -> SVG (pure JS, no browser) -> PNG by resvg, with fonts
// from the system (Debian's fonts-dejavu-core). Does not: fetch anything, or choose what to measure.
import { writeFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export interface Point {
  x: number;
  y: number;
}

/** One named line of x/y points. */
export interface XySeries {
  name: string;
  points: readonly Point[];
}

/** One named list of samples, drawn as an empirical CDF (x = value, y = fraction <= x). */
export interface SampleSeries {
  name: string;
  samples: readonly number[];
  /** Denominator of the CDF when some trials gave no sample (timed out): the curve then ends below 1. */
  total?: number;
}

export interface PlotLabels {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Optional vertical reference lines (e.g. a target), each with a label. */
  rules?: readonly { x: number; label: string }[];
  width?: number;
  height?: number;
}

export type PlotInput =
  | ({ kind: 'xy'; series: readonly XySeries[]; logX?: boolean } & PlotLabels)
  | ({ kind: 'cdf'; series: readonly SampleSeries[] } & PlotLabels);

interface Row {
  series: string;
  x: number;
  y: number;
}

/** Empirical CDF steps of samples: (value, i/n) for each sorted sample, after a (min, 0) start. */
export function computeCdfPoints(samples: readonly number[], total?: number): Point[] {
  const sorted = [...samples].filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const n = Math.max(sorted.length, total ?? 0);
  if (n === 0) return [];
  const first = sorted[0] ?? 0;
  const points: Point[] = [{ x: first, y: 0 }];
  sorted.forEach((v, i) => points.push({ x: v, y: (i + 1) / n }));
  return points;
}

function rowsOf(input: PlotInput): Row[] {
  if (input.kind === 'xy') {
    return input.series.flatMap((s) => s.points.map((p) => ({ series: s.name, x: p.x, y: p.y })));
  }
  return input.series.flatMap((s) => computeCdfPoints(s.samples, s.total).map((p) => ({ series: s.name, ...p })));
}

/** The Vega-Lite spec for a plot (pure). */
export function renderPlotSpec(input: PlotInput): TopLevelSpec {
  const logX = input.kind === 'xy' && input.logX === true;
  const line = {
    mark: input.kind === 'cdf' ? { type: 'line' as const, interpolate: 'step-after' as const } : { type: 'line' as const, point: true },
    encoding: {
      x: { field: 'x', type: 'quantitative' as const, title: input.xLabel, scale: logX ? { type: 'log' as const } : { zero: false } },
      y: { field: 'y', type: 'quantitative' as const, title: input.yLabel },
      color: { field: 'series', type: 'nominal' as const, title: null, legend: { orient: 'bottom' as const, columns: 2, labelLimit: 400 } },
    },
  };
  const rules = input.rules ?? [];
  const layers = [
    { data: { values: rowsOf(input) }, ...line },
    ...(rules.length === 0
      ? []
      : [
          {
            data: { values: rules.map((r) => ({ x: r.x, label: r.label })) },
            layer: [
              { mark: { type: 'rule' as const, strokeDash: [4, 4], color: '#888' }, encoding: { x: { field: 'x', type: 'quantitative' as const } } },
              {
                mark: { type: 'text' as const, align: 'left' as const, dx: 3, dy: -4, color: '#555' },
                encoding: { x: { field: 'x', type: 'quantitative' as const }, y: { value: 8 }, text: { field: 'label', type: 'nominal' as const } },
              },
            ],
          },
        ]),
  ];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: input.title,
    width: input.width ?? 560,
    height: input.height ?? 300,
    background: 'white',
    config: { font: 'DejaVu Sans' },
    layer: layers,
  } as TopLevelSpec;
}

/** SVG text of a plot (no I/O beyond Vega's own evaluation). */
export async function renderPlotSvg(input: PlotInput): Promise<string> {
  const vgSpec = compile(renderPlotSpec(input)).spec;
  const view = new vega.View(vega.parse(vgSpec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** PNG bytes of a plot. */
export async function renderPlotPng(input: PlotInput): Promise<Buffer> {
  const svg = await renderPlotSvg(input);
  const resvg = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: 2 },
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  });
  return resvg.render().asPng();
}

/** Renders a plot and writes it to `file` (parent folders created). Returns the PNG's size in bytes. */
export async function writePlotPng(file: string, input: PlotInput): Promise<number> {
  const png = await renderPlotPng(input);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, png);
  return png.length;
}
