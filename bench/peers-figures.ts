// The peers benchmark's figures from what it reads (audit log entries, cgroup samples), as pure functions:
// no I/O, no clock.
import { auditWrites, type AuditWrite } from '../local-cluster/cluster-fixtures.ts';

export interface WriteCount {
  /** Write requests (create/update/patch/delete) in the window, Lease renewals left out. */
  total: number;
  /** Pods and Jobs the API server created (201) in the window. */
  podsCreated: number;
  jobsCreated: number;
  /** "who: verb resource[/subresource]" → count. */
  byKind: Record<string, number>;
}

/** An audit log write with the client's User-Agent, which names the controller when they share one user. */
export interface AttributedWrite extends AuditWrite {
  userAgent: string;
}

/** The write requests of an audit log text (JSON lines), with their User-Agent. */
export function attributedWrites(auditLog: string): AttributedWrite[] {
  const lines = auditLog.split('\n').filter((l) => l.trim() !== '');
  return lines.flatMap((line): AttributedWrite[] => {
    const [w] = auditWrites(line);
    if (w === undefined) return [];
    const e = JSON.parse(line) as { userAgent?: string };
    return [{ ...w, userAgent: e.userAgent ?? '' }];
  });
}

/**
 * A short name for who made a request. Kubelets by their node user; kube-controller-manager's controllers and
 * kube-scheduler by their User-Agent (the harness runs them with one admin credential; the controller manager
 * appends the controller's name to its agent); kubectl is this benchmark acting as the pre-puller; other
 * ServiceAccounts by name.
 */
export function actor(user: string, userAgent = ''): string {
  if (user.startsWith('system:node:')) return 'kubelet';
  const product = userAgent.split('/')[0] ?? '';
  if (product === 'kube-controller-manager') return userAgent.slice(userAgent.lastIndexOf('/') + 1);
  if (product === 'kube-scheduler' || user === 'system:kube-scheduler') return 'scheduler';
  if (product === 'kubectl') return 'bench (kubectl)';
  const sa = /^system:serviceaccount:([^:]+):(.+)$/.exec(user);
  if (sa !== null) return sa[1] === 'kube-system' ? (sa[2] ?? user) : `${sa[1] ?? ''}/${sa[2] ?? ''}`;
  return user;
}

/**
 * Counts the writes of a window. Leases are left out: node heartbeats and leader election renew them on a
 * clock whatever is being pulled, so they measure the window's length, not the work.
 */
export function countWrites(writes: readonly (AuditWrite & { userAgent?: string })[]): WriteCount {
  const out: WriteCount = { total: 0, podsCreated: 0, jobsCreated: 0, byKind: {} };
  for (const w of writes) {
    if (w.resource === 'leases') continue;
    out.total += 1;
    const created = w.verb === 'create' && w.subresource === undefined && w.code === 201;
    if (created && w.resource === 'pods') out.podsCreated += 1;
    if (created && w.resource === 'jobs') out.jobsCreated += 1;
    const key = `${actor(w.user, w.userAgent)}: ${w.verb} ${w.resource}${w.subresource === undefined ? '' : `/${w.subresource}`}`;
    out.byKind[key] = (out.byKind[key] ?? 0) + 1;
  }
  return out;
}

/** One reading of one container's cgroup (v1: cpuacct.usage, memory.usage_in_bytes). */
export interface CgroupReading {
  /** Sample number: readings of one pass over all containers share it. */
  pass: number;
  container: string;
  cpuNs: number;
  memoryBytes: number;
}

export interface ContainerUsage {
  /** CPU the containers used in the window, in seconds (a container's last reading minus its first). */
  cpuSeconds: number;
  /** The highest sum of the containers' memory in one pass, in bytes. */
  peakMemoryBytes: number;
  containers: number;
}

/**
 * Usage of the containers over a window from periodic passes. A container seen in the first pass was there
 * before the window: only its growth counts. One that appears later counts from zero (it started in the
 * window). A container that exits between passes loses its use since the last pass: short-lived ones are
 * under-counted by at most one sampling period each.
 */
export function containerUsage(readings: readonly CgroupReading[]): ContainerUsage {
  if (readings.length === 0) return { cpuSeconds: 0, peakMemoryBytes: 0, containers: 0 };
  const firstPass = Math.min(...readings.map((r) => r.pass));
  const first = new Map<string, number>();
  const last = new Map<string, number>();
  const memoryByPass = new Map<number, number>();
  for (const r of [...readings].sort((a, b) => a.pass - b.pass)) {
    if (!first.has(r.container)) first.set(r.container, r.pass === firstPass ? r.cpuNs : 0);
    last.set(r.container, r.cpuNs);
    memoryByPass.set(r.pass, (memoryByPass.get(r.pass) ?? 0) + r.memoryBytes);
  }
  let ns = 0;
  for (const [c, end] of last) ns += Math.max(0, end - (first.get(c) ?? 0));
  return { cpuSeconds: ns / 1e9, peakMemoryBytes: Math.max(...memoryByPass.values()), containers: last.size };
}

/** The images (as nodes name them) missing from a node's CRI image list (its repo tags). */
export function missingImages(wanted: readonly string[], repoTags: readonly string[]): string[] {
  const have = new Set(repoTags);
  return wanted.filter((w) => !have.has(w));
}
