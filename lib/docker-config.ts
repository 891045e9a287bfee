// The two kinds of Secret that carry registry credentials, as the kubelet reads them: their `type` and the
// data key each keeps its docker config under. One home for both binaries (the agent decodes them; the
// controller copies them).
export const DOCKER_CONFIG_JSON_TYPE = 'kubernetes.io/dockerconfigjson';
export const DOCKER_CONFIG_JSON_KEY = '.dockerconfigjson';
export const DOCKERCFG_TYPE = 'kubernetes.io/dockercfg';
export const DOCKERCFG_KEY = '.dockercfg';

export type PullSecretType = typeof DOCKER_CONFIG_JSON_TYPE | typeof DOCKERCFG_TYPE;
