// CRI endpoints as users write them (`--cri-socket`): a socket path or a unix:// URL, the forms the
// kubelet and crictl accept. Pure.

/**
 * The absolute socket path of a CRI endpoint. Accepts "/run/x.sock", "unix:///run/x.sock" and
 * "unix:/run/x.sock"; rejects TCP and relative paths, which no supported runtime uses.
 */
export function socketPathOf(endpoint: string): string {
  const trimmed = endpoint.trim();
  let path: string;
  if (trimmed.startsWith('unix://')) path = trimmed.slice('unix://'.length);
  else if (trimmed.startsWith('unix:')) path = trimmed.slice('unix:'.length);
  else if (/^[a-z][a-z0-9+.-]*:/i.test(trimmed)) {
    throw new Error(`CRI endpoint ${JSON.stringify(endpoint)}: only unix sockets are supported (unix:///path or /path)`);
  } else path = trimmed;
  if (!path.startsWith('/')) {
    throw new Error(`CRI endpoint ${JSON.stringify(endpoint)}: the socket path must be absolute`);
  }
  return path;
}

/** The gRPC target for a socket path, in the form @grpc/grpc-js resolves. */
export function grpcTargetOf(socketPath: string): string {
  return `unix://${socketPath}`;
}
