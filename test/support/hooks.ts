// Mocha root hooks: shared real servers started lazily by tests are stopped once at the end of the run.
import { stopSharedControlPlane } from '../../local-cluster/control-plane.ts';

export const mochaHooks = {
  async afterAll(): Promise<void> {
    await stopSharedControlPlane();
  },
};
