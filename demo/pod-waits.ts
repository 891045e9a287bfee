// The demo's last screen: the new version's pods, the node each runs on and how long its kubelet waited for
// the image (from the kubelet's Pulled event, bench/rollout-figures.ts). Pure: the caller passes the facts.
import type { ImageWait } from '../bench/rollout-figures.ts';

export interface PodWait {
  pod: string;
  node: string;
  wait: ImageWait;
}

function waited(w: ImageWait): string {
  switch (w.kind) {
    case 'present':
      return 'none (already present)';
    case 'pulled':
      return `${(w.ms / 1000).toFixed(1)} s (pulled)`;
    case 'unknown':
      return 'unknown (no Pulled event)';
    default: {
      const never: never = w;
      return String(never);
    }
  }
}

export function renderPodWaits(pods: readonly PodWait[]): string {
  const header = ['POD', 'NODE', 'WAITED FOR ITS IMAGE'];
  const rows = [...pods].sort((a, b) => a.node.localeCompare(b.node) || a.pod.localeCompare(b.pod)).map((p) => [p.pod, p.node, waited(p.wait)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** "3 new pods on 3 nodes; none waited for its image" or "...; 1 waited for its image (up to 7.8 s)". */
export function podWaitSummary(pods: readonly PodWait[]): string {
  const nodes = new Set(pods.map((p) => p.node)).size;
  const pulled = pods.flatMap((p) => (p.wait.kind === 'pulled' ? [p.wait.ms] : []));
  const unknown = pods.filter((p) => p.wait.kind === 'unknown').length;
  const head = `${pods.length} new pod${pods.length === 1 ? '' : 's'} on ${nodes} node${nodes === 1 ? '' : 's'}`;
  const waits = pulled.length === 0 ? 'none waited for its image' : `${pulled.length} waited for its image (up to ${(Math.max(...pulled) / 1000).toFixed(1)} s)`;
  return `${head}; ${waits}${unknown > 0 ? `; ${unknown} unknown` : ''}`;
}
