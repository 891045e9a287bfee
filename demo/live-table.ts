// The demo's screen: nodes × images with each pull's phase and duration, drawn from NodeImageSet statuses.
// Pure: the caller passes the objects and the current time.
import type { NodeImageSet } from '../api/v1alpha1/index.ts';

export interface TableInput {
  nodeImageSets: readonly NodeImageSet[];
  /** Images to show as columns, in order (others found in the sets are appended). */
  images: readonly string[];
  now: number;
}

function seconds(fromIso: string | undefined, toIso: string | undefined, now: number): string {
  if (fromIso === undefined) return '';
  const from = Date.parse(fromIso);
  const to = toIso === undefined ? now : Date.parse(toIso);
  return Number.isNaN(from) || Number.isNaN(to) ? '' : ` ${((to - from) / 1000).toFixed(1)}s`;
}

function cell(set: NodeImageSet, image: string, now: number): string {
  const wanted = set.spec.images.some((i) => i.image === image);
  const st = set.status?.images?.find((i) => i.image === image);
  if (st === undefined) return wanted ? 'Pending' : '-';
  switch (st.phase) {
    case 'Pending':
      return 'Pending';
    case 'Pulling':
      return `Pulling${seconds(st.startedAt, undefined, now)}`;
    case 'Completed':
      return `Completed${seconds(st.startedAt, st.finishedAt, now)}`;
    case 'Failed':
      return `Failed (${st.reason ?? 'unknown'})`;
    default: {
      const never: never = st.phase;
      return String(never);
    }
  }
}

/** A short column title for an image reference: the last path part with its tag. */
export function shortImage(ref: string): string {
  return ref.slice(ref.lastIndexOf('/') + 1);
}

export function renderTable(input: TableInput): string {
  const images = [...input.images];
  for (const set of input.nodeImageSets) {
    for (const i of set.spec.images) if (!images.includes(i.image)) images.push(i.image);
  }
  const nameOf = (set: NodeImageSet): string => set.metadata.name ?? '';
  const sets = [...input.nodeImageSets].sort((a, b) => nameOf(a).localeCompare(nameOf(b)));
  const header = ['NODE', ...images.map(shortImage)];
  const rows = sets.map((set) => [nameOf(set), ...images.map((img) => cell(set, img, input.now))]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
