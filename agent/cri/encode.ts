// Request encoding for the CRI calls: typed values from runtime.ts into the plain objects that
// @grpc/proto-loader serialises (camelCase keys, enums by name). Pure.
import { containerStateName } from './decode.ts';
import type { ContainerFilter, RegistryAuth } from './runtime.ts';

/**
 * AuthConfig.server_address as runtimes read it. containerd parses it as a URL and sends the
 * credentials only when the URL's host equals the image's registry host; a bare "host:port" fails
 * to parse ("first path segment in URL cannot contain colon") and a bare "host" never matches, so
 * the credentials are silently dropped. A scheme makes both forms work; https is what a bare
 * docker-config key means.
 */
export function criServerAddress(address: string): string {
  const trimmed = address.trim();
  if (trimmed === '' || trimmed.includes('://')) return trimmed;
  return `https://${trimmed}`;
}

export function encodeAuth(auth: RegistryAuth): Record<string, string> {
  const out: Record<string, string> = {};
  if (auth.username !== undefined) out.username = auth.username;
  if (auth.password !== undefined) out.password = auth.password;
  if (auth.auth !== undefined) out.auth = auth.auth;
  if (auth.serverAddress !== undefined) out.serverAddress = criServerAddress(auth.serverAddress);
  if (auth.identityToken !== undefined) out.identityToken = auth.identityToken;
  if (auth.registryToken !== undefined) out.registryToken = auth.registryToken;
  return out;
}

export function encodeContainerFilter(filter: ContainerFilter): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (filter.id !== undefined) out.id = filter.id;
  if (filter.state !== undefined) out.state = { state: containerStateName(filter.state) };
  if (filter.podSandboxId !== undefined) out.podSandboxId = filter.podSandboxId;
  if (filter.labelSelector !== undefined) out.labelSelector = filter.labelSelector;
  return out;
}
