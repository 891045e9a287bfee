// For the CRI client's tests: one simulated node (a real registry, a real containerd that pulls from
// it over plain HTTP, and the gRPC CRI client on that containerd's socket), and the CriError a call
// that should fail rejects with.
import { GrpcImageRuntime } from '../agent/cri/grpc-runtime.ts';
import { CriError } from '../agent/cri/runtime.ts';
import { startContainerd, type TestContainerd } from './containerd.ts';
import { startRegistry, type RegistryOptions, type TestRegistry } from './registry.ts';

export interface CriNode {
  readonly registry: TestRegistry;
  readonly containerd: TestContainerd;
  readonly cri: GrpcImageRuntime;
  /** Closes the client and stops containerd and the registry, removing their files. */
  dispose(): Promise<void>;
}

export interface CriNodeOptions {
  /** Names the containerd instance (temp dir, process name). */
  name: string;
  registry?: RegistryOptions;
}

/** Starts the registry, then containerd; if containerd cannot start, the registry is stopped again. */
export async function startCriNode(opts: CriNodeOptions): Promise<CriNode> {
  const registry = await startRegistry(opts.registry);
  let containerd: TestContainerd;
  try {
    containerd = await startContainerd({ name: opts.name, registries: [registry] });
  } catch (err) {
    await registry.dispose();
    throw err;
  }
  const cri = new GrpcImageRuntime({ endpoint: containerd.socket });
  return {
    registry,
    containerd,
    cri,
    async dispose() {
      cri.close();
      await containerd.dispose();
      await registry.dispose();
    },
  };
}

/** The CriError `p` rejects with; any other outcome fails the test. */
export async function criRejection(p: Promise<unknown>): Promise<CriError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof CriError) return err;
    throw err;
  }
  throw new Error('expected the call to fail');
}
