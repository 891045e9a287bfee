// Mocha root hooks: shared real servers started lazily by tests are stopped once at the end of the run.
import type { Context } from 'mocha';
import { stopLeftoverControlPlanes, stopSharedControlPlane } from '../../local-cluster/control-plane.ts';
import { stopSharedRealCluster } from '../../local-cluster/real-cluster.ts';

export const mochaHooks = {
  async afterAll(this: Context): Promise<void> {
    // Stopping real nodes (kubelets, containerd shims, unmounts) took over mocha's 120 s once the machine's load
    // average passed 30; a hook that times out would leave the rest of the teardown undone.
    this.timeout(600_000);
    const started = Date.now();
    await stopSharedRealCluster();
    await stopSharedControlPlane();
    // Own control planes a test started and did not stop (its after hook failed first): their files go too.
    await stopLeftoverControlPlanes();
    const seconds = (Date.now() - started) / 1000;
    if (seconds > 30) console.log(`    [harness] shared servers stopped in ${seconds.toFixed(0)} s`);
  },
};
