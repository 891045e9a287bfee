// How much a NodeImageSet may hold. etcd refuses a request over 1.5 MiB, and the object carries its spec,
// the server-side apply managedFields describing that spec (which repeat every keyed item: the image and the
// secret names; the sources too before decision 0019, and the estimate still counts them), the agent's
// status and its managedFields. A count alone (512 entries) does not bound
// that: a heavy entry (a 512-character image, 16 pull secrets of 253 characters, sources) is several KB,
// and 512 of them came to several MiB, which the API server refused on every pass. So a new entry is
// released onto a node only while the estimated bytes of its entries stay under a cap; entries already
// there are kept. Pure: no I/O.
import { MAX_NODE_IMAGES, type NodeImage } from '../../api/v1alpha1/index.ts';

/**
 * Cap on the estimated bytes of a NodeImageSet's spec.images together with their managedFields. With the
 * agent's status (at most 512 entries, a few hundred bytes each in practice) and metadata the object stays
 * near 1 MiB at worst, under etcd's 1.5 MiB. Typical entries (an 80-character image, one secret, one
 * source) estimate at about 700 bytes, so 512 of them (about 350 KiB) never reach it.
 */
export const MAX_NODE_IMAGE_SET_SPEC_BYTES = 512 * 1024;

/** managedFields per entry besides what repeats the entry's values: `f:` field names and braces. */
const MANAGED_FIELDS_OVERHEAD = 160;

const entryBytesMemo = new WeakMap<NodeImage, number>();

/**
 * An estimate of what one entry adds to the stored object: its JSON, once in spec and once more in
 * managedFields (keys and set values repeat the image, secret names and sources), plus field names.
 */
export function entryBytes(entry: NodeImage): number {
  let bytes = entryBytesMemo.get(entry);
  if (bytes === undefined) {
    bytes = 2 * Buffer.byteLength(JSON.stringify(entry)) + MANAGED_FIELDS_OVERHEAD;
    entryBytesMemo.set(entry, bytes);
  }
  return bytes;
}

const listBytesMemo = new WeakMap<readonly NodeImage[], number>();

export function entriesBytes(entries: Iterable<NodeImage>): number {
  let total = 0;
  for (const e of entries) total += entryBytes(e);
  return total;
}

/** entriesBytes of a spec's list, computed once per list: the nodes of a class share their class's list. */
export function listBytes(entries: readonly NodeImage[]): number {
  let bytes = listBytesMemo.get(entries);
  if (bytes === undefined) listBytesMemo.set(entries, (bytes = entriesBytes(entries)));
  return bytes;
}

/** The last total computed for a node's entries map, while its size is unchanged (entries are only added). */
const totals = new WeakMap<ReadonlyMap<string, NodeImage>, { readonly size: number; readonly bytes: number }>();

/**
 * Whether `entry` can be added to a node's entries: under MAX_NODE_IMAGES and under the byte cap. Called
 * before each addition, and the caller adds the entry when it fits, so the running total is kept per map.
 */
export function fitsNodeImageSet(entries: ReadonlyMap<string, NodeImage>, entry: NodeImage): boolean {
  if (entries.size >= MAX_NODE_IMAGES) return false;
  const known = totals.get(entries);
  const bytes = known?.size === entries.size ? known.bytes : entriesBytes(entries.values());
  const after = bytes + entryBytes(entry);
  if (after > MAX_NODE_IMAGE_SET_SPEC_BYTES) {
    totals.set(entries, { size: entries.size, bytes });
    return false;
  }
  totals.set(entries, { size: entries.size + 1, bytes: after });
  return true;
}
