// Horizontal bar charts as SVG text: panels of grouped bars, each bar a median with a min-max whisker.
// Pure: data in, markup out (no fonts or files needed; the viewer's sans-serif is used).

export type BarStyle = 'kwarm' | 'baseline';

export interface Bar {
  label: string;
  median: number;
  min: number;
  max: number;
  style: BarStyle;
}

export interface BarGroup {
  title?: string;
  bars: Bar[];
}

export interface Panel {
  title: string;
  /** Shown after values and on the axis, e.g. "s". */
  unit: string;
  groups: BarGroup[];
}

export interface Chart {
  title: string;
  subtitle: string;
  panels: Panel[];
  footnote: string;
}

const WIDTH = 760;
const LABEL_W = 250;
const PLOT_W = 400;
const ROW = 20;
const BAR_H = 13;
const COLORS: Record<BarStyle, string> = { kwarm: '#2f6fb5', baseline: '#a3abb5' };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A round tick step giving about five ticks up to `max`. */
export function tickStep(max: number): number {
  if (!(max > 0)) return 1;
  const raw = max / 5;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw);
  return step ?? 10 * magnitude;
}

function fmt(x: number): string {
  if (x === 0) return '0';
  return x >= 10 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toFixed(2);
}

function text(x: number, y: number, content: string, attrs = ''): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}"${attrs === '' ? '' : ` ${attrs}`}>${esc(content)}</text>`;
}

function renderPanel(p: Panel, top: number): { markup: string[]; height: number } {
  const out: string[] = [];
  const max = Math.max(...p.groups.flatMap((g) => g.bars.map((b) => b.max)));
  const step = tickStep(max);
  // An all-zero panel still gets one tick step of axis, not a division by zero.
  const axisMax = Math.ceil(max / step) * step || step;
  const x = (v: number): number => LABEL_W + (v / axisMax) * PLOT_W;
  let y = top;
  out.push(text(12, y + 14, p.title, 'font-size="13" font-weight="bold"'));
  y += 24;
  const plotTop = y;
  for (const g of p.groups) {
    if (g.title !== undefined) {
      out.push(text(12, y + 13, g.title, 'font-size="11" font-style="italic" fill="#444"'));
      y += ROW;
    }
    for (const b of g.bars) {
      const cy = y + ROW / 2;
      out.push(text(LABEL_W - 8, cy + 4, b.label, 'font-size="11" text-anchor="end"'));
      out.push(`<rect x="${LABEL_W}" y="${(cy - BAR_H / 2).toFixed(1)}" width="${Math.max(1, x(b.median) - LABEL_W).toFixed(1)}" height="${BAR_H}" fill="${COLORS[b.style]}"/>`);
      out.push(`<line x1="${x(b.min).toFixed(1)}" y1="${cy.toFixed(1)}" x2="${x(b.max).toFixed(1)}" y2="${cy.toFixed(1)}" stroke="#222" stroke-width="1"/>`);
      for (const v of [b.min, b.max]) out.push(`<line x1="${x(v).toFixed(1)}" y1="${(cy - 4).toFixed(1)}" x2="${x(v).toFixed(1)}" y2="${(cy + 4).toFixed(1)}" stroke="#222" stroke-width="1"/>`);
      out.push(text(x(b.max) + 6, cy + 4, `${fmt(b.median)} ${p.unit}`, 'font-size="11"'));
      y += ROW;
    }
  }
  // Axis with ticks under the bars.
  out.push(`<line x1="${LABEL_W}" y1="${plotTop}" x2="${LABEL_W}" y2="${y}" stroke="#888"/>`);
  out.push(`<line x1="${LABEL_W}" y1="${y}" x2="${LABEL_W + PLOT_W}" y2="${y}" stroke="#888"/>`);
  for (let v = 0; v <= axisMax + step / 1000; v += step) {
    out.push(`<line x1="${x(v).toFixed(1)}" y1="${y}" x2="${x(v).toFixed(1)}" y2="${y + 4}" stroke="#888"/>`);
    out.push(text(x(v), y + 15, `${fmt(v)}${v === 0 ? '' : ` ${p.unit}`}`, 'font-size="10" text-anchor="middle" fill="#555"'));
  }
  return { markup: out, height: y + 24 - top };
}

export function renderChart(c: Chart): string {
  const body: string[] = [];
  let y = 12;
  body.push(text(12, y + 14, c.title, 'font-size="16" font-weight="bold"'));
  body.push(text(12, y + 32, c.subtitle, 'font-size="11" fill="#444"'));
  y += 46;
  for (const p of c.panels) {
    const r = renderPanel(p, y);
    body.push(...r.markup);
    y += r.height + 8;
  }
  // Legend and footnote.
  body.push(`<rect x="12" y="${y}" width="12" height="10" fill="${COLORS.kwarm}"/>`, text(28, y + 9, 'kwarm', 'font-size="11"'));
  body.push(`<rect x="80" y="${y}" width="12" height="10" fill="${COLORS.baseline}"/>`, text(96, y + 9, 'baseline (bare CRI)', 'font-size="11"'));
  body.push(text(230, y + 9, 'bar: median; whisker: min to max', 'font-size="11" fill="#444"'));
  y += 24;
  body.push(text(12, y, c.footnote, 'font-size="10" fill="#666"'));
  y += 12;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${y}" viewBox="0 0 ${WIDTH} ${y}" font-family="sans-serif">`,
    `<rect width="${WIDTH}" height="${y}" fill="#fff"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}
