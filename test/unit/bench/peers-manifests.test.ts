import { expect } from 'chai';
import {
  CELL_LABEL, cpuMillis, fledgedJobs, kubeletDeployment, kwarmPolicy, memoryBytes, podRequests, pullerDaemonSet, totalRequests,
  type CellSpec, type PodSpecLike,
} from '../../../bench/peers-manifests.ts';

const SPEC: CellSpec = {
  cell: 'x-2-r1',
  namespace: 'bench-peers',
  images: ['127.0.0.1:5001/bench/peers:a', '127.0.0.1:5001/bench/peers:b'],
  nodes: ['node-1', 'node-2', 'node-3'],
  busybox: '10.250.0.1:5000/bench/peers-tool:1',
};

interface Container { name: string; image: string; command: string[]; resources?: { requests?: Record<string, string>; limits?: Record<string, string> }; volumeMounts: { name: string; mountPath: string }[] }
interface PodTemplate {
  metadata: { labels: Record<string, string> };
  spec: { nodeSelector?: Record<string, string>; restartPolicy?: string; initContainers: Container[]; containers: Container[]; volumes: { name: string; emptyDir: object }[] };
}
interface Workload { kind: string; metadata: { name: string; namespace: string; labels: Record<string, string> }; spec: { backoffLimit?: number; replicas?: number; template: PodTemplate } }

/** The tool binary an init container copies must be what the containers run, through the same volume. */
function expectToolCopiedIn(t: PodTemplate): void {
  const init = t.spec.initContainers[0]!;
  expect(init.image).to.equal(SPEC.busybox);
  const mount = init.volumeMounts[0]!;
  expect(init.command).to.deep.equal(['/bin/busybox', 'cp', '/bin/busybox', `${mount.mountPath}/busybox`]);
  expect(t.spec.volumes).to.deep.equal([{ name: mount.name, emptyDir: {} }]);
  for (const c of t.spec.containers) {
    expect(c.command[0]).to.equal(`${mount.mountPath}/busybox`);
    expect(c.volumeMounts).to.deep.equal([mount]);
  }
}

describe('bench/peers-manifests', () => {
  it('kube-fledged: one Job per (node, image), pinned, backoffLimit 0, the target image running a copied-in command', () => {
    const jobs = fledgedJobs(SPEC) as unknown as Workload[];
    expect(jobs).to.have.length(6);
    expect(new Set(jobs.map((j) => j.metadata.name)).size).to.equal(6);
    const pairs = jobs.map((j) => `${j.spec.template.spec.nodeSelector?.['kubernetes.io/hostname'] ?? ''} ${j.spec.template.spec.containers[0]!.image}`);
    expect(new Set(pairs).size).to.equal(6);
    for (const j of jobs) {
      expect(j.kind).to.equal('Job');
      expect(j.spec.backoffLimit).to.equal(0);
      expect(j.spec.template.spec.restartPolicy).to.equal('Never');
      expect(j.spec.template.spec.containers).to.have.length(1);
      expect(j.metadata.labels[CELL_LABEL]).to.equal(SPEC.cell);
      expect(j.spec.template.metadata.labels[CELL_LABEL]).to.equal(SPEC.cell);
      expectToolCopiedIn(j.spec.template);
    }
  });

  it('kubernetes-image-puller: one DaemonSet, one sleeping container per image with the puller\'s default requests', () => {
    const ds = pullerDaemonSet(SPEC) as unknown as Workload;
    expect(ds.kind).to.equal('DaemonSet');
    const cs = ds.spec.template.spec.containers;
    expect(cs.map((c) => c.image)).to.deep.equal(SPEC.images);
    for (const c of cs) {
      expect(c.command.slice(1, 2)).to.deep.equal(['sleep']);
      expect(c.resources).to.deep.equal({ requests: { cpu: '50m', memory: '10Mi' }, limits: { cpu: '200m', memory: '20Mi' } });
    }
    expectToolCopiedIn(ds.spec.template);
    expect(podRequests(ds.spec.template.spec)).to.deep.equal({ cpuMillis: 100, memoryBytes: 20 * 2 ** 20 });
  });

  it('kubelet alone: a Deployment with one pod per node running every image', () => {
    const d = kubeletDeployment(SPEC) as unknown as Workload;
    expect(d.kind).to.equal('Deployment');
    expect(d.spec.replicas).to.equal(3);
    expect(d.spec.template.spec.containers.map((c) => c.image)).to.deep.equal(SPEC.images);
    expectToolCopiedIn(d.spec.template);
  });

  it('kwarm: a PrePullPolicy listing the images for every node, selecting no workload', () => {
    const p = kwarmPolicy(SPEC) as { kind: string; metadata: { name: string }; spec: { images: string[]; nodeSelector: object; selector: { matchLabels: Record<string, string> } } };
    expect(p.kind).to.equal('PrePullPolicy');
    expect(p.metadata.name).to.equal(SPEC.cell);
    expect(p.spec.images).to.deep.equal(SPEC.images);
    expect(p.spec.nodeSelector).to.deep.equal({ matchLabels: {} });
    expect(Object.keys(p.spec.selector.matchLabels)).to.have.length(1);
  });

  describe('requests', () => {
    it('reads CPU and memory quantities', () => {
      expect(cpuMillis('50m')).to.equal(50);
      expect(cpuMillis('0.5')).to.equal(500);
      expect(cpuMillis('2')).to.equal(2000);
      expect(memoryBytes('10Mi')).to.equal(10 * 2 ** 20);
      expect(memoryBytes('64M')).to.equal(64e6);
      expect(memoryBytes('1Gi')).to.equal(2 ** 30);
      expect(memoryBytes('4096')).to.equal(4096);
      expect(() => cpuMillis('lots')).to.throw(/not a CPU quantity/);
      expect(() => memoryBytes('10 MB')).to.throw(/not a memory quantity/);
    });

    it('a pod reserves the larger of its containers\' sum and its largest init container', () => {
      const spec: PodSpecLike = {
        initContainers: [{ resources: { requests: { cpu: '300m', memory: '1Mi' } } }],
        containers: [{ resources: { requests: { cpu: '100m', memory: '10Mi' } } }, { resources: { requests: { cpu: '100m' } } }, {}],
      };
      expect(podRequests(spec)).to.deep.equal({ cpuMillis: 300, memoryBytes: 10 * 2 ** 20 });
      expect(totalRequests([spec, { containers: [{}] }, spec])).to.deep.equal({ cpuMillis: 600, memoryBytes: 20 * 2 ** 20 });
    });
  });
});
