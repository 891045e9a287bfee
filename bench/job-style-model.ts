// What one Job per (node, image) costs the API server, computed (not measured): the objects and write
// requests Kubernetes 1.34's own components make for one short pull Job, counted step by step. A
// lower bound: retries, Pod status updates beyond two, the kubelet's final Pod delete and the pre-puller's
// own status writes are left out. Pure: no I/O.

export interface JobStyleStep {
  /** Who writes. */
  actor: string;
  /** What is written. */
  write: string;
  /** Writes per (node, image) pair. */
  writes: number;
  /** New API objects per pair from this step (Events included: they live an hour by default). */
  objects: number;
}

export const JOB_STYLE_STEPS: readonly JobStyleStep[] = [
  { actor: 'pre-puller', write: 'create Job (pinned to the node)', writes: 1, objects: 1 },
  { actor: 'job controller', write: 'create Pod (with the batch.kubernetes.io/job-tracking finalizer)', writes: 1, objects: 1 },
  { actor: 'job controller', write: 'Event SuccessfulCreate', writes: 1, objects: 1 },
  { actor: 'job controller', write: 'update Job status (startTime, active)', writes: 1, objects: 0 },
  { actor: 'kube-scheduler', write: 'create pods/binding', writes: 1, objects: 0 },
  { actor: 'kube-scheduler', write: 'Event Scheduled', writes: 1, objects: 1 },
  { actor: 'kubelet', write: 'patch Pod status (ContainerCreating, then Succeeded)', writes: 2, objects: 0 },
  { actor: 'kubelet', write: 'Events Pulling, Pulled, Created, Started', writes: 4, objects: 4 },
  { actor: 'job controller', write: 'update Job status (Pod UID into uncountedTerminatedPods)', writes: 1, objects: 0 },
  { actor: 'job controller', write: 'patch Pod (remove the job-tracking finalizer)', writes: 1, objects: 0 },
  { actor: 'job controller', write: 'update Job status (succeeded count, Complete condition)', writes: 1, objects: 0 },
  { actor: 'job controller', write: 'Event Completed', writes: 1, objects: 1 },
  { actor: 'pre-puller or TTL controller', write: 'delete Job', writes: 1, objects: 0 },
  { actor: 'garbage collector', write: 'delete Pod', writes: 1, objects: 0 },
];

export interface JobStyleCost {
  pairs: number;
  writes: number;
  objects: number;
  writesPerPair: number;
  objectsPerPair: number;
}

/** The cost for `nodes` nodes each pulling `imagesPerNode` images. */
export function jobStyleCost(nodes: number, imagesPerNode: number): JobStyleCost {
  const writesPerPair = JOB_STYLE_STEPS.reduce((n, s) => n + s.writes, 0);
  const objectsPerPair = JOB_STYLE_STEPS.reduce((n, s) => n + s.objects, 0);
  const pairs = nodes * imagesPerNode;
  return { pairs, writes: pairs * writesPerPair, objects: pairs * objectsPerPair, writesPerPair, objectsPerPair };
}
