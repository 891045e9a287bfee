// The controller's writes not yet shown by its informers, one WriteOverlay per kind of write, and the views
// that lay them over the caches: what the planning stages read as "the cluster as last written".
import type { PrePullImage, PrePullImageStatus, PrePullPolicy, PrePullPolicyStatus } from '../../api/v1alpha1/index.ts';
import { SECRET_SOURCE_ANNOTATION } from '../../api/v1alpha1/labels.ts';
import type { NodeImageSetView } from '../plan/node-image-set-view.ts';
import { copyMatches, type SecretView } from '../derive/pull-secrets.ts';
import { wantedRound, type RefreshRecord } from '../status/refresh.ts';
import { WriteOverlay } from './overlay.ts';

/** A status written over the object whose resourceVersion the cache held then. */
export interface StatusWritten<S> {
  /** Once the cached object moves past this resourceVersion, the cache is the truth again. */
  readonly rvBefore: string | undefined;
  readonly status: S;
}

/** A refresh recorded in a PrePullImage status, and the uid of the object it was recorded on. */
export interface RefreshWritten {
  readonly uid: string | undefined;
  readonly refresh: RefreshRecord;
}

const statusShown = <S>(cached: { metadata: { resourceVersion?: string } } | undefined, w: StatusWritten<S>): boolean =>
  cached === undefined || cached.metadata.resourceVersion !== w.rvBefore;

export class Overlays {
  /** NodeImageSet specs: shown once the cached generation reaches the written one. */
  readonly nodeImageSets = new WriteOverlay<NodeImageSetView, { generation: number; view: NodeImageSetView }>(
    (cached, w) => cached !== undefined && cached.generation >= w.generation,
  );
  /** Derived PrePullImages: the generation and digest written. */
  readonly prePullImages = new WriteOverlay<PrePullImage, { generation: number; digest: string }>(
    (cached, w) => cached !== undefined && (cached.metadata.generation ?? 0) >= w.generation,
  );
  readonly prePullImageStatuses = new WriteOverlay<PrePullImage, StatusWritten<PrePullImageStatus>>(statusShown);
  readonly policyStatuses = new WriteOverlay<PrePullPolicy, StatusWritten<PrePullPolicyStatus>>(statusShown);
  /** Pull secret copies written or deleted. */
  readonly secretCopies = new WriteOverlay<SecretView, SecretView | 'deleted'>((cached, w) =>
    w === 'deleted' ? cached === undefined : copyMatches(cached, { name: w.name, source: w.annotations[SECRET_SOURCE_ANNOTATION] ?? '', type: w.type, data: w.data }),
  );
  /** Derived PrePullImages deleted: shown once gone from the cache. */
  readonly deletions = new WriteOverlay<PrePullImage, true>((cached) => cached === undefined);
  /**
   * Refreshes recorded: unlike a whole status, a refresh record only moves forward, so a cached object that
   * changed for another reason cannot make the controller forget one (and repeat it). Shown by the cache, or
   * written for an object of the same name deleted since.
   */
  readonly refreshes = new WriteOverlay<{ uid: string | undefined; status: PrePullImageStatus | undefined }, RefreshWritten>(
    (cached, w) => cached === undefined || w.uid !== cached.uid || wantedRound(cached.status?.refresh) >= wantedRound(w.refresh),
  );

  /** A NodeImageSet as last written: the spec this process wrote, with whatever status the cache has. */
  nodeImageSet(name: string, cached: NodeImageSetView | undefined): NodeImageSetView | undefined {
    const written = this.nodeImageSets.unshown(name, cached);
    if (written === undefined) return cached;
    if (cached === undefined) return written.view;
    const { removals: _stale, ...spec } = written.view;
    // The spec is ours; status, and what tells whether an agent works there, are the cache's.
    return {
      ...spec, status: cached.status, ...(cached.removals !== undefined ? { removals: cached.removals } : {}),
      ...(cached.agent !== undefined ? { agent: cached.agent } : {}),
      ...(cached.createdMs !== undefined ? { createdMs: cached.createdMs } : {}),
      ...(cached.pullsPaused !== undefined ? { pullsPaused: cached.pullsPaused } : {}),
    };
  }

  /** A pull secret copy as last written (undefined: deleted or never written). */
  secretCopy(name: string, cached: SecretView | undefined): SecretView | undefined {
    const written = this.secretCopies.unshown(name, cached);
    if (written === undefined) return cached;
    return written === 'deleted' ? undefined : written;
  }

  /** A PrePullImage's status as last written: this process's own write until the cache shows a newer object. */
  prePullImageStatus(key: string, p: PrePullImage): PrePullImageStatus | undefined {
    const status = this.prePullImageStatuses.unshown(key, p)?.status ?? p.status;
    const written = this.refreshes.unshown(key, { uid: p.metadata.uid, status });
    return written === undefined ? status : { ...status, refresh: written.refresh };
  }

  policyStatus(name: string, policy: PrePullPolicy): PrePullPolicyStatus | undefined {
    return this.policyStatuses.unshown(name, policy)?.status ?? policy.status;
  }
}
