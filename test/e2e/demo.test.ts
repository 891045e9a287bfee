// `npm run demo` keeps working: the demo script runs to the end and shows the new image on all three nodes.
import { expect } from 'chai';
import { execFile } from 'node:child_process';

describe('e2e: npm run demo', function () {
  this.timeout(300_000);

  it('pre-pulls the changed image onto all three nodes, shows READY 3/3 Completed, and cleans up', async () => {
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ['demo/main.ts'], { timeout: 280_000, maxBuffer: 16 * 1024 * 1024 }, (err, out, errOut) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout: out, stderr: errOut });
      });
    });
    expect(code, `demo failed:\n${stderr}\n${stdout.slice(-3000)}`).to.equal(0);
    expect(stdout).to.match(/deployment\.my-app\.app\s+\S+\/demo\/my-app:v2\s+3\/3\s+Completed/);
    expect(stdout).to.match(/node-1\s+-\s+Completed/).and.match(/node-2\s+-\s+Completed/).and.match(/node-3\s+-\s+Completed/);
    expect(stdout).to.include('condition met');
    expect(stdout).to.match(/The new image reached all 3 nodes [\d.]+ s after the Deployment changed/);
    expect(stdout.trimEnd().endsWith('kwarm demo: cleaning up')).to.equal(true);
  });
});
