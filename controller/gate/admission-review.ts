// The AdmissionReview v1 envelope of the mutating webhook: read the request, answer with the same uid. The gate
// never refuses a pod (allowed is always true); at most it adds a JSONPatch. Pure: no I/O.
import { field, str } from '../../lib/raw.ts';

export interface AdmissionRequest {
  readonly uid: string;
  readonly operation: string;
  readonly namespace: string | undefined;
  /** request.object, the pod as it would be created. */
  readonly object: unknown;
  readonly dryRun: boolean;
}

/** The request of an AdmissionReview v1; undefined when the body is not one (then nothing can be answered). */
export function decodeAdmissionRequest(body: unknown): AdmissionRequest | undefined {
  if (field(body, 'apiVersion') !== 'admission.k8s.io/v1' || field(body, 'kind') !== 'AdmissionReview') return undefined;
  const uid = str(field(body, 'request', 'uid'));
  if (uid === undefined) return undefined;
  return {
    uid,
    operation: str(field(body, 'request', 'operation')) ?? '',
    namespace: str(field(body, 'request', 'namespace')),
    object: field(body, 'request', 'object'),
    dryRun: field(body, 'request', 'dryRun') === true,
  };
}

/** The AdmissionReview answering `uid`: allowed, with `patch` (a JSON patch) when there is one. */
export function admissionResponse(uid: string, patch?: readonly unknown[]): unknown {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: {
      uid,
      allowed: true,
      ...(patch !== undefined && patch.length > 0
        ? { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') }
        : {}),
    },
  };
}
