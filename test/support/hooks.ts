// Mocha root hooks: shared real servers started lazily by tests are stopped once at the end of the run.
import { stopSharedControlPlane } from '../../local-cluster/control-plane.ts';
import { stopSharedRealCluster } from '../../local-cluster/real-cluster.ts';

export const mochaHooks = {
  async afterAll(): Promise<void> {
    await stopSharedRealCluster();
    await stopSharedControlPlane();
  },
};
