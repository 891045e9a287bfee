// Every label, annotation, finalizer and field manager kwarm owns, named once: "which keys does kwarm write
// on objects?" is answered by this file. Values are wire contract; renaming one strands existing objects.

/** On everything the controller writes (derived PrePullImages, pull secret copies). */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'kwarm-controller';

// ---- derived PrePullImages ------------------------------------------------------------------------------

/** The PrePullPolicy a derived PrePullImage came from. */
export const POLICY_LABEL = 'kwarm.io/policy';
/** `<kind>/<name>` of the workload (or Argo object) a derived PrePullImage came from. */
export const WORKLOAD_ANNOTATION = 'kwarm.io/workload';
/** The container (or Argo template users) a derived PrePullImage came from. */
export const CONTAINER_ANNOTATION = 'kwarm.io/container';
/**
 * On static and ConfigMap images: `static` or `configmap`. The same key names the source Secret on pull
 * secret copies (SECRET_SOURCE_ANNOTATION); the kinds never overlap.
 */
export const SOURCE_ANNOTATION = 'kwarm.io/source';
/** On ConfigMap images: the data keys that list the image, comma-separated. */
export const CONFIGMAP_KEYS_ANNOTATION = 'kwarm.io/configmap-keys';
/** Every annotation the controller owns on a derived PrePullImage. */
export const MANAGED_ANNOTATIONS = [WORKLOAD_ANNOTATION, CONTAINER_ANNOTATION, SOURCE_ANNOTATION, CONFIGMAP_KEYS_ANNOTATION] as const;

// ---- any PrePullImage ----------------------------------------------------------------------------------

/** Any new value of this annotation makes every target node re-resolve and re-pull the image (kubectl annotate --overwrite). */
export const REFRESH_ANNOTATION = 'kwarm.io/refresh';
/** Held on a PrePullImage with purgeOnDelete until its image has been removed from its nodes. */
export const PURGE_FINALIZER = 'kwarm.io/purge';

// ---- pull secret copies in kwarm's namespace ------------------------------------------------------------

/** `true` on every copy; the controller's informer selects copies by it. */
export const SECRET_COPY_LABEL = 'kwarm.io/pull-secret-copy';
/** `namespace/name` of the Secret a copy was made from. */
export const SECRET_SOURCE_ANNOTATION = SOURCE_ANNOTATION;

// ---- pods (rollout gate) -------------------------------------------------------------------------------

/** The scheduling gate (KEP-3521) kwarm's webhook adds to new pods and its controller removes; nothing else of a pod is written. */
export const ROLLOUT_GATE_NAME = 'kwarm.io/images-warm';

// ---- field managers (server-side apply and patches) -----------------------------------------------------

/** The controller's applies: derived PrePullImages, NodeImageSet specs, statuses, secret copies; also its Events' component. */
export const CONTROLLER_FIELD_MANAGER = 'kwarm-controller';
/** Owns only the purge finalizer on hand-written PrePullImages, so the user's own applies never fight it. */
export const PURGE_FIELD_MANAGER = 'kwarm-controller-purge';
/** The agent's NodeImageSet status patches. */
export const AGENT_FIELD_MANAGER = 'kwarm-agent';
