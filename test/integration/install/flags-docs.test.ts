// The README's flag tables list every flag each binary accepts (read from its --help), and no flag it lacks.
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

function helpFlags(entry: string): string[] {
  const help = execFileSync(process.execPath, [entry, '--help'], { encoding: 'utf8' });
  return [...new Set([...help.matchAll(/^\s+(--[a-z0-9-]+)/gm)].map((m) => m[1]!))].filter((f) => f !== '--help' && f !== '--version');
}

function tableFlags(readme: string, heading: string): string[] {
  const start = readme.indexOf(heading);
  expect(start, `README has "${heading}"`).to.be.greaterThan(-1);
  const end = readme.indexOf('\n#', start + heading.length);
  return [...readme.slice(start, end).matchAll(/^\| `(--[a-z0-9-]+)`/gm)].map((m) => m[1]!);
}

describe('README: flag tables match the binaries', () => {
  const readme = readFileSync('README.md', 'utf8');
  for (const [entry, heading] of [['controller/main.ts', '### Controller flags'], ['agent/main.ts', '### Agent flags']] as const) {
    it(`${heading.slice(4)}: every flag of ${entry} --help, and only those`, () => {
      expect(tableFlags(readme, heading).sort()).to.deep.equal(helpFlags(entry).sort());
    });
  }
});

describe('controller flags: a flag given twice takes its last value (the chart\'s controller.extraArgs come last)', () => {
  // Flags are checked before the cluster is reached: with a kubeconfig that does not exist, the run fails on the
  // kubeconfig when the flags are fine, and on the flag when its last value is not.
  const run = (...args: string[]): string => spawnSync(process.execPath, ['controller/main.ts', '--kubeconfig=/nonexistent/kwarm-kubeconfig', ...args], { encoding: 'utf8', timeout: 60_000 }).stderr;

  it('takes the later of two values', () => {
    const later = run('--max-pulls-per-node=0', '--max-pulls-per-node=2');
    expect(later).to.include('kwarm-kubeconfig').and.not.include('--max-pulls-per-node');
    expect(run('--max-pulls-per-node=2', '--max-pulls-per-node=0')).to.include('--max-pulls-per-node must be an integer from 1 to 64');
  });
});
