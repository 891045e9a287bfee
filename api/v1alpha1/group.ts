// The API group and version every kwarm kind belongs to.
export const GROUP = 'kwarm.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}` as const;
/** `kubectl get kwarm` lists every kwarm object. */
export const CATEGORY = 'kwarm';
