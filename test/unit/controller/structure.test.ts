// The controller's layout stays readable: no import circle between its files (type-only imports count: they
// tie the files' meanings together just the same), and no file a newcomer cannot read in one sitting.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { expect } from 'chai';

const ROOT = resolve(import.meta.dirname, '..', '..', '..', 'controller');
const MAX_LINES = 500;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

/** Relative imports of a file that stay inside controller/, as absolute paths. */
function importsOf(file: string, text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*'(\.{1,2}\/[^']+)'/g)) {
    const target = resolve(dirname(file), m[1] ?? '');
    if (target.startsWith(ROOT)) out.push(target);
  }
  return out;
}

/** Every circle in the graph, each as the path that closes it. */
export function circles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): void => {
    state.set(n, 'open');
    stack.push(n);
    for (const next of graph.get(n) ?? []) {
      const s = state.get(next);
      if (s === 'open') found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (s === undefined) visit(next);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of [...graph.keys()].sort()) if (!state.has(n)) visit(n);
  return found;
}

describe('controller/ structure', () => {
  const files = sourceFiles(ROOT);
  const texts = new Map(files.map((f) => [f, readFileSync(f, 'utf8')]));

  it('finds a circle when there is one (the check itself)', () => {
    expect(circles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]]))).to.deep.equal([['a', 'b', 'c', 'a']]);
    expect(circles(new Map([['a', ['b']], ['b', []]]))).to.deep.equal([]);
  });

  it('has no import circle between its files', () => {
    const graph = new Map(files.map((f) => [f, importsOf(f, texts.get(f) ?? '')]));
    expect(graph.size).to.be.greaterThan(20);
    const named = circles(graph).map((c) => c.map((f) => relative(ROOT, f)).join(' -> '));
    expect(named).to.deep.equal([]);
  });

  it(`has no file over ${MAX_LINES} lines`, () => {
    const long = files.map((f) => ({ file: relative(ROOT, f), lines: (texts.get(f) ?? '').split('\n').length })).filter((x) => x.lines > MAX_LINES);
    expect(long).to.deep.equal([]);
  });
});
