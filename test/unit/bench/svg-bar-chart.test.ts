import { expect } from 'chai';
import { renderChart, tickStep, type Bar, type Chart } from '../../../bench/svg-bar-chart.ts';

interface Element {
  name: string;
  attrs: Record<string, string>;
  /** Text content (entities decoded) for <text>; empty for the others. */
  text: string;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: '\'' };

function decodeEntities(s: string, where: string): string {
  return s.replace(/&([a-z]+|#\d+);|&/g, (m, name: string | undefined) => {
    if (name === undefined) throw new Error(`bare & in ${where}`);
    if (name.startsWith('#')) return String.fromCodePoint(Number(name.slice(1)));
    const v = ENTITIES[name];
    if (v === undefined) throw new Error(`unknown entity ${m} in ${where}`);
    return v;
  });
}

/**
 * A strict check of the XML this renderer writes (elements, double-quoted attributes, text, no comments or
 * CDATA): tags balance, one root <svg>, no raw < or stray & in text or attributes. Returns every element in
 * document order.
 */
function parseSvg(svg: string): Element[] {
  const elements: Element[] = [];
  const open: Element[] = [];
  let roots = 0;
  for (const [token] of svg.matchAll(/<[^>]*>|[^<]+|</g)) {
    if (!token.startsWith('<')) {
      if (open.length === 0) {
        if (token.trim() !== '') throw new Error(`text outside the root: ${JSON.stringify(token)}`);
        continue;
      }
      const parent = open[open.length - 1]!;
      parent.text += decodeEntities(token, `text of <${parent.name}>`);
      continue;
    }
    const end = /^<\/([A-Za-z][\w:-]*)\s*>$/.exec(token);
    if (end !== null) {
      const top = open.pop();
      if (top?.name !== end[1]) throw new Error(`</${end[1]!}> closes <${top?.name ?? 'nothing'}>`);
      continue;
    }
    const start = /^<([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>$/.exec(token);
    if (start === null) throw new Error(`malformed tag: ${token}`);
    if (open.length === 0 && ++roots > 1) throw new Error('more than one root element');
    const attrs: Record<string, string> = {};
    for (const [, k, v] of start[2]!.matchAll(/([\w:-]+)="([^"]*)"/g)) {
      if (k! in attrs) throw new Error(`duplicate attribute ${k!} in ${token}`);
      attrs[k!] = decodeEntities(v!, `attribute ${k!}`);
    }
    const el: Element = { name: start[1]!, attrs, text: '' };
    elements.push(el);
    if (start[3] !== '/') open.push(el);
  }
  if (open.length > 0) throw new Error(`unclosed <${open[open.length - 1]!.name}>`);
  if (elements[0]?.name !== 'svg') throw new Error('root is not <svg>');
  return elements;
}

function num(el: Element, attr: string): number {
  const v = el.attrs[attr];
  if (v === undefined) throw new Error(`<${el.name}> has no ${attr}`);
  return Number(v);
}

function bar(label: string, median: number, min = median, max = median): Bar {
  return { label, median, min, max, style: 'kwarm' };
}

function chart(bars: Bar[], unit = 's'): Chart {
  return {
    title: 'Time to warm',
    subtitle: 'one machine',
    panels: [{ title: 'Panel one', unit, groups: [{ title: 'group one', bars }] }],
    footnote: 'from results',
  };
}

/** The bar's rectangle: the element right after its label. */
function barRect(elements: readonly Element[], label: string): Element {
  const i = elements.findIndex((e) => e.name === 'text' && e.text === label);
  if (i < 0) throw new Error(`no label ${label}`);
  const rect = elements[i + 1];
  if (rect?.name !== 'rect') throw new Error(`no rect after label ${label}`);
  return rect;
}

/** An axis tick label (the centred texts under the plot). */
function tick(elements: readonly Element[], content: string): Element {
  const t = elements.find((e) => e.name === 'text' && e.attrs['text-anchor'] === 'middle' && e.text === content);
  if (t === undefined) throw new Error(`no tick ${content}`);
  return t;
}

describe('bench/svg-bar-chart', () => {
  describe('tickStep', () => {
    it('picks a round step giving about five ticks, at every magnitude', () => {
      expect(tickStep(10)).to.equal(2);
      expect(tickStep(12.5)).to.equal(2.5);
      expect(tickStep(15)).to.equal(5);
      expect(tickStep(30)).to.equal(10);
      expect(tickStep(50)).to.equal(10);
      expect(tickStep(51)).to.equal(20);
      expect(tickStep(1000)).to.equal(200);
      expect(tickStep(37_000)).to.equal(10_000);
      expect(tickStep(1)).to.be.closeTo(0.2, 1e-12);
      expect(tickStep(0.3)).to.be.closeTo(0.1, 1e-12);
    });

    it('always gives 2 to 5 steps up to the maximum, with a step of 1, 2, 2.5 or 5 times a power of ten', () => {
      for (let e = -3; e <= 6; e++) {
        for (const m of [1, 1.1, 1.5, 2, 2.4, 3, 3.3, 4.9, 5, 6, 7.5, 9.99]) {
          const max = m * 10 ** e;
          const step = tickStep(max);
          const what = `max ${max} step ${step}`;
          const ticks = Math.ceil(max / step - 1e-9);
          expect(ticks, what).to.be.within(2, 5);
          const mantissa = step / 10 ** Math.floor(Math.log10(step) + 1e-9);
          expect([1, 2, 2.5, 5].some((r) => Math.abs(r - mantissa) < 1e-9), what).to.equal(true);
        }
      }
    });

    it('falls back to 1 for a maximum that is not positive', () => {
      expect(tickStep(0)).to.equal(1);
      expect(tickStep(-5)).to.equal(1);
      expect(tickStep(Number.NaN)).to.equal(1);
    });
  });

  describe('renderChart', () => {
    it('writes well-formed SVG with titles, footnote, each bar\'s label and median', () => {
      const svg = renderChart(chart([bar('serial pulls', 12), bar('kwarm, 2 at once', 2.5), bar('kwarm, 4 at once', 0.25)]));
      const elements = parseSvg(svg);
      expect(elements[0]!.attrs.xmlns).to.equal('http://www.w3.org/2000/svg');
      const texts = elements.filter((e) => e.name === 'text').map((e) => e.text);
      expect(texts).to.include.members([
        'Time to warm', 'one machine', 'Panel one', 'group one', 'from results',
        'serial pulls', 'kwarm, 2 at once', 'kwarm, 4 at once',
        '12 s', '2.5 s', '0.25 s',
      ]);
    });

    it('sizes the document to hold everything drawn', () => {
      const elements = parseSvg(renderChart(chart([bar('a', 1), bar('b', 2), bar('c', 3), bar('d', 4)])));
      const height = num(elements[0]!, 'height');
      const width = num(elements[0]!, 'width');
      expect(elements[0]!.attrs.viewBox).to.equal(`0 0 ${width} ${height}`);
      for (const e of elements.slice(1)) {
        for (const a of ['y', 'y1', 'y2']) if (a in e.attrs) expect(num(e, a), `${e.name} ${a}`).to.be.within(0, height);
        for (const a of ['x', 'x1', 'x2']) if (a in e.attrs) expect(num(e, a), `${e.name} ${a}`).to.be.within(0, width);
      }
    });

    it('draws bar lengths in proportion to the medians, on the axis\'s scale', () => {
      const elements = parseSvg(renderChart(chart([bar('ten', 10), bar('twenty', 20), bar('forty', 40)])));
      const ten = num(barRect(elements, 'ten'), 'width');
      const twenty = num(barRect(elements, 'twenty'), 'width');
      const forty = barRect(elements, 'forty');
      expect(twenty / ten).to.be.closeTo(2, 0.01);
      expect(num(forty, 'width') / ten).to.be.closeTo(4, 0.01);
      // The 20 s bar ends under the "20 s" tick, the 40 s bar under the "40 s" one.
      const x0 = num(forty, 'x');
      expect(x0 + twenty).to.be.closeTo(num(tick(elements, '20 s'), 'x'), 0.11);
      expect(x0 + num(forty, 'width')).to.be.closeTo(num(tick(elements, '40 s'), 'x'), 0.11);
      expect(num(tick(elements, '0'), 'x')).to.be.closeTo(x0, 0.11);
    });

    it('draws each whisker from the bar\'s min to its max', () => {
      const elements = parseSvg(renderChart(chart([bar('spread', 20, 10, 40)])));
      const rect = barRect(elements, 'spread');
      const x0 = num(rect, 'x');
      const perSecond = num(rect, 'width') / 20;
      const cy = num(rect, 'y') + num(rect, 'height') / 2;
      const whisker = elements.find((e) => e.name === 'line' && Math.abs(num(e, 'y1') - cy) < 0.11 && num(e, 'y1') === num(e, 'y2'));
      expect(whisker, 'horizontal whisker through the bar').to.not.equal(undefined);
      expect(num(whisker!, 'x1')).to.be.closeTo(x0 + 10 * perSecond, 0.2);
      expect(num(whisker!, 'x2')).to.be.closeTo(x0 + 40 * perSecond, 0.2);
    });

    it('escapes XML special characters in labels, titles and units', () => {
      const c = chart([bar('a < b & "c" > d', 3)], '<u>');
      c.title = 'R&D "fast" <path>';
      const svg = renderChart(c);
      expect(svg).to.not.include('a < b');
      expect(svg).to.not.include('R&D');
      expect(svg).to.include('a &lt; b &amp; &quot;c&quot; &gt; d');
      const texts = parseSvg(svg).filter((e) => e.name === 'text').map((e) => e.text);
      expect(texts).to.include.members(['a < b & "c" > d', 'R&D "fast" <path>', '3.0 <u>']);
    });

    it('draws every panel and group, and colours kwarm and baseline bars apart', () => {
      const c: Chart = {
        title: 't', subtitle: 's', footnote: 'f',
        panels: [
          { title: 'first', unit: 's', groups: [{ bars: [{ label: 'base', median: 5, min: 4, max: 6, style: 'baseline' }, bar('ours', 3)] }] },
          { title: 'second', unit: 'ms', groups: [{ title: 'g1', bars: [bar('x', 100)] }, { title: 'g2', bars: [bar('y', 300)] }] },
        ],
      };
      const elements = parseSvg(renderChart(c));
      const texts = elements.filter((e) => e.name === 'text').map((e) => e.text);
      expect(texts).to.include.members(['first', 'second', 'g1', 'g2', 'base', 'ours', 'x', 'y', '100 ms', '300 ms']);
      expect(barRect(elements, 'base').attrs.fill).to.not.equal(barRect(elements, 'ours').attrs.fill);
      // Bars compare within their own panel's scale.
      expect(num(barRect(elements, 'y'), 'width') / num(barRect(elements, 'x'), 'width')).to.be.closeTo(3, 0.01);
    });

    it('writes finite coordinates when every value in a panel is zero', () => {
      const svg = renderChart(chart([bar('nothing', 0), bar('still nothing', 0)]));
      parseSvg(svg);
      expect(svg).to.not.include('NaN');
      expect(svg).to.not.include('Infinity');
    });
  });
});
