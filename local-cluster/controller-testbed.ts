// The set-up the controller's integration tests share: the shared API server with kwarm's CRDs, Node objects
// without kubelets, namespaces of the test's own, and one kwarm-controller process. tearDown removes what setUp
// and the test made (cluster-scoped objects through `cleanup`), also after a setUp that failed half-way.
import { KubeClient } from '../lib/kube-client.ts';
import { createNode, deleteNodes, type NodeSpecFixture } from './cluster-fixtures.ts';
import { sharedControlPlane, startControlPlane, type ControlPlane } from './control-plane.ts';
import { ControllerProcess, controllerKubeconfig, type ControllerProcessOptions } from './controller-process.ts';
import { installCrds } from './crds.ts';

export interface ControllerTestbedOptions {
  readonly nodes: readonly NodeSpecFixture[];
  readonly namespaces: readonly string[];
  /** kubectl arguments run after the controller stopped (failures ignored), e.g. deleting a PrePullPolicy. */
  readonly cleanup?: readonly (readonly string[])[];
  /** An API server of the test's own, stopped by tearDown: for tests that count every node or object. */
  readonly ownControlPlane?: boolean;
}

export class ControllerTestbed {
  readonly #o: ControllerTestbedOptions;
  readonly #ac = new AbortController();
  #cp: ControlPlane | undefined;
  #admin: KubeClient | undefined;
  #controller: ControllerProcess | undefined;

  constructor(o: ControllerTestbedOptions) {
    this.#o = o;
  }

  /** Aborted by tearDown. */
  get signal(): AbortSignal {
    return this.#ac.signal;
  }

  get controller(): ControllerProcess | undefined {
    return this.#controller;
  }

  async setUp(): Promise<{ cp: ControlPlane; admin: KubeClient }> {
    const cp = this.#o.ownControlPlane === true ? await startControlPlane() : await sharedControlPlane();
    this.#cp = cp;
    await installCrds(cp);
    const admin = new KubeClient(cp.kubeConfig());
    this.#admin = admin;
    for (const n of this.#o.nodes) await createNode(admin, n, this.signal);
    for (const ns of this.#o.namespaces) await cp.kubectl(['create', 'namespace', ns]);
    return { cp, admin };
  }

  /** Starts kwarm-controller with a kubeconfig holding its ServiceAccount's rights in `namespace` (kwarm-system). */
  async startController(o: Omit<ControllerProcessOptions, 'kubeconfig'> = {}): Promise<ControllerProcess> {
    if (this.#cp === undefined) throw new Error('ControllerTestbed.startController before setUp');
    const namespace = o.namespace ?? 'kwarm-system';
    this.#controller = await ControllerProcess.start({ ...o, namespace, kubeconfig: await controllerKubeconfig(this.#cp, namespace) });
    return this.#controller;
  }

  async tearDown(): Promise<void> {
    await this.#controller?.stop();
    const cp = this.#cp;
    if (cp !== undefined) {
      for (const args of this.#o.cleanup ?? []) await cp.kubectl([...args], { allowFailure: true });
      for (const ns of this.#o.namespaces) await cp.kubectl(['delete', 'namespace', ns, '--wait=false'], { allowFailure: true });
    }
    if (this.#admin !== undefined) {
      await deleteNodes(this.#admin, this.#o.nodes.map((n) => n.name), this.signal).catch(() => undefined);
      this.#admin.close();
    }
    this.#ac.abort();
    if (this.#o.ownControlPlane === true) await cp?.stop();
  }
}
