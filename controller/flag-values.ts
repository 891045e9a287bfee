// Checks of flag values the webhook's and the credentials endpoint's options share; each error names the flag.
import { DNS_LABEL_PATTERN, DNS_SUBDOMAIN_PATTERN } from '../api/v1alpha1/index.ts';

const LABEL = new RegExp(DNS_LABEL_PATTERN, 'u');
const SUBDOMAIN = new RegExp(DNS_SUBDOMAIN_PATTERN, 'u');

/** A TCP port to listen on; 0 picks a free one. */
export function portFlag(flag: string, port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--${flag} ${port} is not a port (0-65535; 0 picks a free one)`);
  return port;
}

/** A Service name (a DNS label). */
export function serviceFlag(flag: string, name: string): string {
  if (!LABEL.test(name) || name.length > 63) throw new Error(`--${flag} "${name}" is not a Service name`);
  return name;
}

/** The name of a Secret, ConfigMap, ServiceAccount or webhook configuration (a DNS subdomain); `what` for the error. */
export function objectNameFlag(flag: string, name: string, what = 'an object name'): string {
  if (!SUBDOMAIN.test(name) || name.length > 253) throw new Error(`--${flag} "${name}" is not ${what}`);
  return name;
}
