// In-cluster access to the API server without @kubernetes/client-node: the ServiceAccount token and
// CA the kubelet mounts, and the KUBERNETES_SERVICE_HOST/PORT the kubelet sets. Loading client-node's
// KubeConfig pulls in its generated API models (about 60 MiB of resident memory), which an agent on
// every node should not pay; client-node stays in use for --kubeconfig (development, tests).
// Implements the two KubeConfig methods KubeClient calls.
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import type { OutgoingHttpHeaders } from 'node:http';
import type { RequestOptions } from 'node:https';
import type { Cluster, KubeConfig } from '@kubernetes/client-node';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** What KubeClient needs of a KubeConfig. */
export type ClusterAccess = Pick<KubeConfig, 'getCurrentCluster' | 'applyToHTTPSOptions'>;

export interface InClusterOptions {
  /** KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT. */
  host: string | undefined;
  port: string | undefined;
  /** Where the token and ca.crt are mounted. */
  dir?: string;
  /** How long a token read from the file is reused; the kubelet rotates it well before expiry. */
  tokenCacheMs?: number;
  now?: () => number;
}

export class InClusterConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InClusterConfigError';
  }
}

function isHeaderList(h: RequestOptions['headers']): h is readonly string[] {
  return Array.isArray(h);
}

export function inClusterAccess(opts: InClusterOptions): ClusterAccess {
  const { host, port } = opts;
  if (host === undefined || host === '' || port === undefined || port === '') {
    throw new InClusterConfigError('not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (use --kubeconfig)');
  }
  const dir = opts.dir ?? SERVICE_ACCOUNT_DIR;
  const tokenFile = `${dir}/token`;
  const caFile = `${dir}/ca.crt`;
  const cacheMs = opts.tokenCacheMs ?? 60_000;
  const now = opts.now ?? Date.now;
  const cluster: Cluster = {
    name: 'in-cluster',
    server: `https://${isIPv6(host) ? `[${host}]` : host}:${port}`,
    caFile,
    skipTLSVerify: false,
  };
  let token: { value: string; readAt: number } | undefined;
  const readToken = (): string => {
    if (token === undefined || now() - token.readAt >= cacheMs) {
      const value = readFileSync(tokenFile, 'utf8').trim();
      if (value === '') throw new InClusterConfigError(`${tokenFile} is empty`);
      token = { value, readAt: now() };
    }
    return token.value;
  };
  return {
    getCurrentCluster: () => cluster,
    applyToHTTPSOptions: (opts) => {
      const o = opts as RequestOptions;
      o.ca = readFileSync(caFile);
      const headers: OutgoingHttpHeaders = {};
      // KubeClient passes headers as an object; the array form is not used.
      if (o.headers !== undefined && !isHeaderList(o.headers)) Object.assign(headers, o.headers);
      headers.authorization = `Bearer ${readToken()}`;
      o.headers = headers;
      return Promise.resolve();
    },
  };
}
