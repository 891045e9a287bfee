// The one field kwarm writes in its MutatingWebhookConfiguration: webhooks[].clientConfig.caBundle, the CA the
// API server verifies the webhook's serving certificate with. Pure: the JSON patch that brings every webhook's
// caBundle to the CA, or nothing when they all hold it already.
import { field, isRecord, str } from '../../lib/raw.ts';

export type JsonPatchOp =
  | { readonly op: 'test'; readonly path: string; readonly value: unknown }
  | { readonly op: 'add' | 'replace'; readonly path: string; readonly value: unknown };

/** caBundle is base64 of PEM. */
export function caBundleOf(caPem: string): string {
  return Buffer.from(caPem, 'utf8').toString('base64');
}

/**
 * Ops for a JSON patch of the configuration `raw`: per webhook whose caBundle differs, a `test` of its name
 * (so a reordered or edited list fails the patch with 422 instead of writing into the wrong webhook) and the
 * write of the caBundle. Also tests the resourceVersion, so a patch computed from a stale read is refused.
 */
export function caBundlePatch(raw: unknown, caPem: string): JsonPatchOp[] {
  const bundle = caBundleOf(caPem);
  const webhooks = field(raw, 'webhooks');
  if (!Array.isArray(webhooks)) return [];
  const ops: JsonPatchOp[] = [];
  (webhooks as unknown[]).forEach((w, i) => {
    if (!isRecord(w)) return;
    const name = str(w.name);
    if (name === undefined) return;
    const clientConfig = field(w, 'clientConfig');
    if (str(field(clientConfig, 'caBundle')) === bundle) return;
    ops.push({ op: 'test', path: `/webhooks/${i}/name`, value: name });
    ops.push(isRecord(clientConfig)
      ? { op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: bundle }
      : { op: 'add', path: `/webhooks/${i}/clientConfig`, value: { caBundle: bundle } });
  });
  const rv = str(field(raw, 'metadata', 'resourceVersion'));
  if (ops.length > 0 && rv !== undefined) ops.unshift({ op: 'test', path: '/metadata/resourceVersion', value: rv });
  return ops;
}
