// What the agent does with one spec.removals entry, decided step by step from what it knows: the spec's
// wanted images, the pull engine's records, what the runtime reports about the image and which containers
// use it, and which images the agent brought onto the node itself. Only an image kwarm pulled, that the
// runtime does not pin, that is not the pod sandbox image and that no container uses is ever removed.
// Pure: the caller makes the CRI calls between the steps and passes the time in.
import type { NodeImageSetStatus } from '../api/v1alpha1/nodeimageset.ts';
import type { NodePullPhase, RemovalKeptReason } from '../api/v1alpha1/prepullimage.ts';
import { parseImageRef, repositoryName } from '../lib/image-ref.ts';
import type { ContainerInfo, ImageInfo } from './cri/runtime.ts';
import { MAX_MESSAGE_LENGTH, MAX_REASON_LENGTH, rfc3339 } from './image-record.ts';

export type RemovalStatus = NonNullable<NodeImageSetStatus['removals']>[number];

/** Why an image asked to be removed stays. */
export type KeptReason = RemovalKeptReason;

/** What protects images that kwarm must never remove, as far as the agent knows it. */
export interface Protected {
  /** Ids of the images this agent brought onto the node (status.pulledImageIds). */
  readonly pulledImageIds: readonly string[];
  /** Ids of the runtime's pod sandbox image(s), as far as the runtime tells. */
  readonly sandboxImageIds: readonly string[];
}

/** The agent's answer for one removal entry. */
export type RemovalAnswer =
  | { readonly result: 'Removed' | 'NotPresent' }
  | { readonly result: 'Kept'; readonly reason: KeptReason; readonly message: string }
  | { readonly result: 'Failed'; readonly reason: string; readonly message: string };

/** What the pull engine holds, as far as removals care. */
export interface WantedImage {
  readonly image: string;
  readonly phase: NodePullPhase;
  readonly imageId?: string;
}

/** Before asking the runtime: answer at once, wait, or look the image up. */
export type FirstStep =
  | { readonly kind: 'answer'; readonly answer: RemovalAnswer }
  /** A pull that may bring in the same image is under way: removing now could race it. */
  | { readonly kind: 'wait'; readonly why: string }
  | { readonly kind: 'look-up' };

function repositoryOf(image: string): string | undefined {
  const r = parseImageRef(image);
  return r.ok ? repositoryName(r.ref) : undefined;
}

export function firstStep(image: string, wanted: readonly WantedImage[]): FirstStep {
  if (wanted.some((w) => w.image === image)) {
    return { kind: 'answer', answer: { result: 'Kept', reason: 'Wanted', message: 'spec.images of this NodeImageSet also lists it' } };
  }
  const repo = repositoryOf(image);
  const busy = wanted.find((w) => (w.phase === 'Pending' || w.phase === 'Pulling') && repo !== undefined && repositoryOf(w.image) === repo);
  if (busy !== undefined) return { kind: 'wait', why: `${busy.image} is ${busy.phase === 'Pulling' ? 'being pulled' : 'waiting to be pulled'}` };
  return { kind: 'look-up' };
}

/** Whether a container was created from `info` (asked for as `image`). */
export function containerUses(c: ContainerInfo, info: ImageInfo, image: string): boolean {
  const names = new Set([info.id, image, ...info.repoTags, ...info.repoDigests]);
  return (c.imageId !== '' && c.imageId === info.id) || names.has(c.imageRef) || names.has(c.image);
}

function describeContainers(users: readonly ContainerInfo[]): string {
  const shown = users.slice(0, 5).map((c) => `${c.name === '' ? '(unnamed)' : c.name} (${c.id.slice(0, 13)}, ${c.state})`);
  const more = users.length > shown.length ? ` and ${users.length - shown.length} more` : '';
  return `used by container${users.length === 1 ? '' : 's'} ${shown.join(', ')}${more}`;
}

/** After ImageStatus (and ListContainers when the image is there): answer, or remove it. */
export type SecondStep =
  | { readonly kind: 'answer'; readonly answer: RemovalAnswer }
  | { readonly kind: 'remove'; readonly imageId: string };

function kept(reason: KeptReason, message: string): SecondStep {
  return { kind: 'answer', answer: { result: 'Kept', reason, message } };
}

export function secondStep(
  image: string,
  info: ImageInfo | undefined,
  wanted: readonly WantedImage[],
  containers: readonly ContainerInfo[],
  protect: Protected,
): SecondStep {
  if (info === undefined) return { kind: 'answer', answer: { result: 'NotPresent' } };
  // The runtime removes an image with all its names: one wanted under another name is the same image.
  const same = wanted.find((w) => w.imageId !== undefined && w.imageId === info.id);
  if (same !== undefined) return kept('Wanted', `the same image (${info.id}) is wanted as ${same.image}`);
  if (info.pinned) return kept('Pinned', `the runtime pins ${info.id}`);
  if (protect.sandboxImageIds.includes(info.id)) return kept('SandboxImage', `${info.id} is the runtime's pod sandbox image`);
  if (!protect.pulledImageIds.includes(info.id)) {
    return kept('NotPulledByKwarm', `${info.id} was on the node before kwarm pulled it (or kwarm never pulled it); only images kwarm brought in are removed`);
  }
  // Only exited containers let go of their image; created, running and unknown ones do not.
  const users = containers.filter((c) => c.state !== 'exited' && containerUses(c, info, image));
  if (users.length > 0) return kept('InUse', describeContainers(users));
  return { kind: 'remove', imageId: info.id };
}

/** After RemoveImage: what ImageStatus reports now. */
export function afterRemoval(info: ImageInfo | undefined): RemovalAnswer {
  return info === undefined
    ? { result: 'Removed' }
    : { result: 'Failed', reason: 'StillPresent', message: `the runtime still reports ${info.id} after removing it` };
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** The status entry for an answer given at `time` (epoch ms). */
export function removalStatus(image: string, answer: RemovalAnswer, time: number): RemovalStatus {
  const entry: RemovalStatus = { image, result: answer.result, time: rfc3339(time) };
  if (answer.result === 'Kept' || answer.result === 'Failed') {
    entry.reason = clip(answer.reason, MAX_REASON_LENGTH);
    entry.message = clip(answer.message, MAX_MESSAGE_LENGTH);
  }
  return entry;
}
