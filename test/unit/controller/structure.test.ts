// The controller's layout stays readable: no import circle between its files (type-only imports count: they
// tie the files' meanings together just the same), and no file a newcomer cannot read in one sitting.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { expect } from 'chai';
import ts from 'typescript';

const ROOT = resolve(import.meta.dirname, '..', '..', '..', 'controller');
const MAX_LINES = 500;
const MAX_FUNCTION_LINES = 150;

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

/** Functions (declarations, methods, arrows) whose body spans more than `max` lines, as `file:line (lines)`. */
export function longFunctions(name: string, text: string, max: number): string[] {
  const sf = ts.createSourceFile(name, text, ts.ScriptTarget.Latest, true);
  const out: string[] = [];
  const visit = (n: ts.Node): void => {
    if (ts.isFunctionLike(n) && 'body' in n && n.body !== undefined) {
      const first = sf.getLineAndCharacterOfPosition(n.getStart(sf)).line;
      const lines = sf.getLineAndCharacterOfPosition(n.end).line - first + 1;
      if (lines > max) out.push(`${name}:${first + 1} (${lines})`);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
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

  it('finds a long function when there is one (the check itself)', () => {
    const body = Array.from({ length: 5 }, (_, i) => `  const x${i} = ${i};`).join('\n');
    expect(longFunctions('f.ts', `export function f(): void {\n${body}\n}\nconst g = () => 1;\n`, 6)).to.deep.equal(['f.ts:1 (7)']);
    expect(longFunctions('f.ts', `export function f(): void {\n${body}\n}\n`, 7)).to.deep.equal([]);
  });

  it(`has no function over ${MAX_FUNCTION_LINES} lines`, () => {
    expect(files.flatMap((f) => longFunctions(relative(ROOT, f), texts.get(f) ?? '', MAX_FUNCTION_LINES))).to.deep.equal([]);
  });
});
