// Owns: the README's observability picture: several small plots of test/support/plot.ts stacked
// one above the other (one per agent, plus the total), so lines of equal value never hide each
// other. Guarantees: each row's spec is plot.ts's own (renderPlotSpec); rendering is the same
// Vega -> SVG -> resvg path, no browser. Does not: query Prometheus or decide what to plot.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { renderPlotSpec, type PlotInput } from '../support/plot.js';

/** One PNG with `rows` stacked vertically under a common title. */
export async function writeStackedPlotPng(file: string, title: string, rows: readonly PlotInput[]): Promise<number> {
  const inner = rows.map((r) => {
    // Only the top level may carry $schema, background and config.
    const spec: Record<string, unknown> = { ...(renderPlotSpec(r) as unknown as Record<string, unknown>) };
    for (const key of ['$schema', 'background', 'config']) delete spec[key];
    return spec;
  });
  const top = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    background: 'white',
    config: { font: 'DejaVu Sans' },
    vconcat: inner,
    resolve: { scale: { color: 'independent' } },
  } as unknown as TopLevelSpec;
  const view = new vega.View(vega.parse(compile(top).spec), { renderer: 'none' });
  let svg: string;
  try {
    svg = await view.toSVG();
  } finally {
    view.finalize();
  }
  const png = new Resvg(svg, { background: 'white', fitTo: { mode: 'zoom', value: 2 }, font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render().asPng();
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, png);
  return png.length;
}
