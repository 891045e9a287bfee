// What the node planner remembers between passes, so that a pass re-plans only what changed: the node
// groups of each distinct selection, each node's settled NodeImageSet, and the merged entries, node classes
// and class-shaped NodeImageSets of the last pass, keyed by the identities of the targets behind them (the
// spec stage hands out the same ImageTarget object while a PrePullImage's planning inputs are unchanged,
// spec-plan.ts SpecMemos.target). Only a cache: a plan is the same with or without it.
import type { NodeImage } from '../../api/v1alpha1/index.ts';
import type { NodeImageSetView } from './node-image-set-view.ts';
import type { NodeView } from './node-eligibility.ts';
import type { ImageTarget, NodeInfo } from './target-groups.ts';

/** One merged entry and the pinned sources whose pin it does not carry (entry-merge.ts mergeEntry). */
export interface MergedEntry {
  readonly entry: NodeImage;
  readonly unchecked: readonly { readonly key: string; readonly unpinned: string }[];
}

/**
 * Nodes in the same groups want the same images from the same targets: one class each, planned once.
 * In a steady cluster every node of a class has exactly the class's entries released in their wanted
 * rounds, and then shares the class's spec, released map and entries digest instead of building its own.
 */
export interface NodeClass {
  /** image → entry, in the round its sources want. */
  readonly wanted: ReadonlyMap<string, NodeImage>;
  /** The wanted entries sorted by image. */
  readonly entries: readonly NodeImage[];
  readonly released: ReadonlyMap<string, number>;
  readonly entriesDigest: string;
  /** Wanted entries that gate the node's warm-up, released or held back by the budget (spec.gatingImages). */
  readonly gating: number;
  /** The merged entries behind `wanted`, by their memo keys, in the order they were merged. */
  readonly merged: readonly (readonly [string, MergedEntry])[];
}

/** What a node's cached NodeImageSet was found to hold, against the entries of its class. */
export interface SettledNode {
  readonly view: NodeImageSetView;
  readonly entriesDigest: string;
  /** The view released exactly the class's entries, in round 0. */
  readonly asClass: boolean;
  /** Of those, the ones not finished. */
  readonly unfinished: number;
}

/** The nodes a pass was given, sorted by name, and those that accept pulls. */
export interface NodeList {
  readonly given: readonly NodeView[];
  readonly nodes: readonly NodeInfo[];
  readonly ready: readonly NodeInfo[];
}

/** A planned NodeImageSet that is its class's spec unchanged, and what it was planned from. */
export interface ClassShaped<P> {
  readonly planned: P;
  readonly uid: string;
  readonly entries: readonly NodeImage[];
  readonly gating: number;
  readonly perNodeLimit: number;
}

export class PlanMemo {
  /** The nodes of the last pass. */
  nodes: NodeList | undefined;
  /** The Ready nodes the groups were computed against, and which nodes each group key selects. */
  ready: readonly NodeView[] = [];
  groups = new Map<string, readonly string[]>();
  groupTargets = new Map<string, ImageTarget>();
  /** Per node, how its cached NodeImageSet (the same object) compares with its class's entries. */
  settled = new Map<string, SettledNode>();
  /** Merged entries and classes of the last pass, by targetKey of the targets behind them. */
  entries = new Map<string, MergedEntry>();
  classes = new Map<string, NodeClass>();
  /** Class-shaped planned NodeImageSets of the last pass, by node. */
  classShaped = new Map<string, ClassShaped<unknown>>();
  private readonly ids = new WeakMap<ImageTarget, number>();
  private next = 1;

  /** A key naming these target objects (not their contents): equal while they are the same objects. */
  targetKey(targets: readonly ImageTarget[]): string {
    let key = '';
    for (const t of targets) {
      let id = this.ids.get(t);
      if (id === undefined) this.ids.set(t, (id = this.next++));
      key = key === '' ? String(id) : `${key},${id}`;
    }
    return key;
  }
}
