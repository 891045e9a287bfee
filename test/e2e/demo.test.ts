// `npm run demo` keeps working on the real-node cluster: the demo script runs to the end, shows the new image on
// all three nodes, then the new version's pods on every node and, from the kubelets' events, that none of them
// waited for its image.
import { expect } from 'chai';
import { execFile } from 'node:child_process';

describe('e2e: npm run demo', function () {
  this.timeout(660_000);

  it('pre-pulls the changed image onto all three nodes, then the new pods start on every node without waiting for it, and cleans up', async () => {
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ['demo/main.ts'], { timeout: 640_000, maxBuffer: 16 * 1024 * 1024 }, (err, out, errOut) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout: out, stderr: errOut });
      });
    });
    expect(code, `demo failed:\n${stderr}\n${stdout.slice(-3000)}`).to.equal(0);
    // The demo's own account of its time (cluster start to rollout, cleanup not included), by phase.
    const inAll = /\(demo: [^\n]* in all: [^\n]*\)/.exec(stdout)?.[0];
    expect(inAll, 'the demo prints its time in all').to.not.equal(undefined);
    console.log(`      [figures] ${inAll ?? ''}`);
    expect(stdout).to.match(/deployment\.my-app\.app\s+\S+\/demo\/my-app:v2\s+3\/3\s+Completed/);
    expect(stdout).to.match(/node-1\s+-\s+Completed/).and.match(/node-2\s+-\s+Completed/).and.match(/node-3\s+-\s+Completed/);
    expect(stdout).to.include('condition met');
    for (const node of ['node-1', 'node-2', 'node-3']) expect(stdout).to.match(new RegExp(`my-app-\\S+\\s+${node}\\s+none \\(already present\\)`));
    expect(stdout).to.match(/The new image reached all 3 nodes [\d.]+ s after the Deployment changed; the rollout then took [\d.]+ s: 3 new pods on 3 nodes; none waited for its image\./);
    expect(stdout.trimEnd().endsWith('kwarm demo: cleaning up')).to.equal(true);
  });
});
