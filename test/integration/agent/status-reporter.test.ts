// The agent's status writer against a real API server: changes inside the coalescing window wait for it,
// except an image newly Completed or Failed, which is written after the short terminal interval.
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import winston from 'winston';
import type { NodeImageSetStatus } from '../../../api/v1alpha1/index.ts';
import { createAgentMetrics } from '../../../agent/agent-metrics.ts';
import { StatusReporter } from '../../../agent/status-reporter.ts';
import { KubeClient } from '../../../lib/kube-client.ts';
import { sharedControlPlane } from '../../../local-cluster/control-plane.ts';
import { installCrds } from '../../../local-cluster/crds.ts';

const NODE = 'status-reporter-node';
const IMAGE = 'registry.example/app:v1';

function status(phase: 'Pending' | 'Pulling' | 'Completed', attempts: number): NodeImageSetStatus {
  return { images: [{ image: IMAGE, phase, attempts, round: 0 }], desired: 1, ready: phase === 'Completed' ? 1 : 0, pulling: phase === 'Pulling' ? 1 : 0, failed: 0 };
}

describe('agent: StatusReporter on a real API server', function () {
  this.timeout(120_000);
  let client: KubeClient;
  const path = `/apis/kwarm.io/v1alpha1/nodeimagesets/${NODE}`;

  before(async () => {
    const cp = await sharedControlPlane();
    await installCrds(cp);
    client = new KubeClient(cp.kubeConfig());
    const signal = AbortSignal.timeout(30_000);
    await client.delete(path, signal);
    await client.create('/apis/kwarm.io/v1alpha1/nodeimagesets', {
      apiVersion: 'kwarm.io/v1alpha1', kind: 'NodeImageSet', metadata: { name: NODE }, spec: { images: [{ image: IMAGE }] },
    }, signal);
  });

  after(async () => {
    await client.delete(path, AbortSignal.timeout(30_000));
    client.close();
  });

  async function phaseOnServer(): Promise<string | undefined> {
    const o = await client.get(path, AbortSignal.timeout(10_000)) as { status?: NodeImageSetStatus };
    return o.status?.images?.[0]?.phase;
  }

  async function waitForPhase(phase: string, deadline: number): Promise<number> {
    for (;;) {
      if (await phaseOnServer() === phase) return Date.now();
      if (Date.now() > deadline) throw new Error(`status never showed ${phase}`);
      await sleep(25);
    }
  }

  it('holds a progress change for the coalescing window, and an image finishing meanwhile cuts the wait short', async () => {
    const controller = new AbortController();
    const reporter = new StatusReporter({
      client, nodeName: NODE, log: winston.createLogger({ silent: true }), metrics: createAgentMetrics(), minIntervalMs: 4000, terminalIntervalMs: 50,
    });
    reporter.objectSeen('present');
    const running = reporter.run(controller.signal);
    try {
      reporter.update(status('Pending', 0));
      await waitForPhase('Pending', Date.now() + 10_000);
      // A progress change inside the window waits for it...
      reporter.update(status('Pulling', 1));
      await sleep(1000);
      expect(await phaseOnServer(), 'Pulling is held for the 4 s window').to.equal('Pending');
      // ...until the image finishes: that is written at once, the window notwithstanding.
      const completedAt = Date.now();
      reporter.update(status('Completed', 1));
      const shownCompleted = await waitForPhase('Completed', completedAt + 10_000);
      expect(shownCompleted - completedAt).to.be.lessThan(1500);
    } finally {
      controller.abort();
      await running;
    }
  });
});
